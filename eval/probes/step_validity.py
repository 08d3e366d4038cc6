"""Step validity: the share of generated steps the task's checker accepts; among correct answers,
the share reached through at least one invalid step (right answer, wrong reasons) -- the number
a final-answer benchmark cannot see; and `chain_valid`, the share of chains whose steps, in
order, derive the final answer from the problem (`Task.check_chain`: a repeated, missing or
reordered step fails a chain whose every step is valid on its own)."""

from __future__ import annotations

from reasonlab.eval.probes.base import Metric, Outcome, Probe, mean
from reasonlab.eval.requests import Unsupported

KEYS = ["reasoning/step_validity", "reasoning/right_answer_wrong_steps", "reasoning/no_steps_frac",
        "reasoning/chain_valid"]


class StepValidity(Probe):
    name = "step_validity"
    metrics = {KEYS[0]: Metric(True, "share of written steps the task's checker accepts"),
               KEYS[1]: Metric(False, "among correct answers, the share reached through at least one invalid step"),
               KEYS[2]: Metric(None, "share of completions with no reasoning step"),
               KEYS[3]: Metric(True, "share of chains whose steps, in order, derive the answer from the problem",
                               optional=True)}

    def score(self, run, answers):
        checked, wrong_steps_among_right, valid, chains, samples = [], [], [], [], 0
        for ex, steps, ok, answer in zip(run.examples, run.steps, run.correct, run.answers):
            verdicts = [v for v in (run.task.check_step(s, ex) for s in steps) if v is not None]
            valid.append(verdicts or None)
            chain = run.task.check_chain(steps, ex, answer)
            chains.append(None if chain is None else float(chain))
            if verdicts:
                samples += 1
                checked.extend(float(v) for v in verdicts)
                if ok:
                    wrong_steps_among_right.append(float(not all(verdicts)))
        if not any(run.steps):
            return Outcome({KEYS[0]: None, KEYS[1]: None, KEYS[2]: 1.0}, n={KEYS[0]: 0, KEYS[1]: 0, KEYS[2]: len(run.steps)},
                           note="no completion had a reasoning step")
        if not checked:
            return Unsupported(f"task '{run.task.name}' cannot check steps")
        known = [c for c in chains if c is not None]
        metrics = {KEYS[0]: mean(checked), KEYS[1]: mean(wrong_steps_among_right),
                   KEYS[2]: mean([float(not s) for s in run.steps])}
        n = {KEYS[0]: samples, KEYS[1]: len(wrong_steps_among_right), KEYS[2]: len(run.steps)}
        if known:
            metrics[KEYS[3]], n[KEYS[3]] = mean(known), len(known)
        return Outcome(metrics, fields={"steps_valid": valid, "chain_valid": chains}, n=n)


PROBE = StepValidity
