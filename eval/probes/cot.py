"""Chain-of-thought length: steps and tokens per completion, and accuracy by number of steps
(saved as a curve: the inverted-U question of Wu et al. 2025)."""

from __future__ import annotations

from collections import defaultdict

from eval.probes.base import EvalState, Probe, mean


class Cot(Probe):
    name = "cot"

    def run(self, state: EvalState):
        by_steps: dict[int, list[float]] = defaultdict(list)
        tokens = []
        for rec, steps, completion, ok in zip(state.records, state.steps, state.completions, state.correct):
            by_steps[len(steps)].append(ok)
            rec["num_tokens"] = state.backend.num_tokens(completion)
            tokens.append(rec["num_tokens"])
        state.curves["accuracy_by_steps"] = {n: {"accuracy": mean(v), "count": len(v)} for n, v in sorted(by_steps.items())}
        return {"cot/steps_mean": mean([float(len(s)) for s in state.steps]), "cot/tokens_mean": mean([float(t) for t in tokens])}


PROBE = Cot
