"""Step validity: the share of generated steps the task's checker accepts, and, among correct
answers, the share reached through at least one invalid step (right answer, wrong reasons) --
the number a final-answer benchmark cannot see."""

from __future__ import annotations

from eval.probes.base import Metric, Outcome, Probe, mean
from eval.requests import Unsupported


class StepValidity(Probe):
    name = "step_validity"
    metrics = {"reasoning/step_validity": Metric(True, "share of written steps the task's checker accepts"),
               "reasoning/right_answer_wrong_steps": Metric(
                   False, "among correct answers, the share reached through at least one invalid step"),
               "reasoning/no_steps_frac": Metric(None, "share of completions with no reasoning step")}

    def score(self, run, answers):
        checked, wrong_steps_among_right, valid = [], [], []
        for ex, steps, ok in zip(run.examples, run.steps, run.correct):
            verdicts = [v for v in (run.task.check_step(s, ex) for s in steps) if v is not None]
            valid.append(verdicts or None)
            if verdicts:
                checked.extend(float(v) for v in verdicts)
                if ok:
                    wrong_steps_among_right.append(float(not all(verdicts)))
        if not checked:
            return Unsupported(f"task '{run.task.name}' cannot check steps (or no steps were written)")
        return Outcome({"reasoning/step_validity": mean(checked),
                        "reasoning/right_answer_wrong_steps": mean(wrong_steps_among_right),
                        "reasoning/no_steps_frac": mean([float(not s) for s in run.steps])},
                       fields={"steps_valid": valid})


PROBE = StepValidity
