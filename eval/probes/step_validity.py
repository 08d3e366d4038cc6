"""Step validity: the share of generated steps the task's checker accepts, and, among correct
answers, the share reached through at least one invalid step (right answer, wrong reasons) --
the number a final-answer benchmark cannot see."""

from __future__ import annotations

from eval.probes.base import EvalState, Probe, mean


class StepValidity(Probe):
    name = "step_validity"

    def run(self, state: EvalState):
        keys = ["reasoning/step_validity", "reasoning/right_answer_wrong_steps", "reasoning/no_steps_frac"]
        checked, wrong_steps_among_right, checkable = [], [], False
        for rec, ex, steps, ok in zip(state.records, state.examples, state.steps, state.correct):
            verdicts = [state.task.check_step(s, ex) for s in steps]
            verdicts = [v for v in verdicts if v is not None]
            rec["steps_valid"] = verdicts or None
            if verdicts:
                checkable = True
                checked.extend(float(v) for v in verdicts)
                if ok:
                    wrong_steps_among_right.append(float(not all(verdicts)))
        if not checkable:
            return self.unsupported(state, f"task '{state.task.name}' cannot check steps (or no steps were written)", keys)
        return {
            keys[0]: mean(checked),
            keys[1]: mean(wrong_steps_among_right),
            keys[2]: mean([float(not s) for s in state.steps]),
        }


PROBE = StepValidity
