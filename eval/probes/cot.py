"""Chain-of-thought length: steps and tokens per completion, and accuracy by number of steps
(saved as a curve: the inverted-U question of Wu et al. 2025)."""

from __future__ import annotations

from collections import defaultdict

from reasonlab.eval.probes.base import Metric, Outcome, Probe, mean


class Cot(Probe):
    name = "cot"
    metrics = {"cot/steps_mean": Metric(None, "reasoning steps per completion"),
               "cot/tokens_mean": Metric(None, "tokens per completion")}

    def score(self, run, answers):
        by_steps: dict[int, list[float]] = defaultdict(list)
        for steps, ok in zip(run.steps, run.correct):
            by_steps[len(steps)].append(ok)
        tokens = [run.num_tokens(c) for c in run.completions]
        curve = {n: {"accuracy": mean(v), "count": len(v)} for n, v in sorted(by_steps.items())}
        return Outcome({"cot/steps_mean": mean([float(len(s)) for s in run.steps]),
                        "cot/tokens_mean": mean([float(t) for t in tokens])},
                       fields={"num_tokens": tokens}, curves={"accuracy_by_steps": curve},
                       n={"cot/steps_mean": len(run.steps), "cot/tokens_mean": len(tokens)})


PROBE = Cot
