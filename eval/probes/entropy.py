"""Token entropy over the generated reasoning: the mean, and the share of tokens above a threshold
(`eval.entropy_threshold`; the study sets it to the base model's 80th percentile so trained
models are compared against the base; unset, the model's own 80th percentile is used and
reported as entropy/threshold)."""

from __future__ import annotations

from eval.probes.base import EvalState, Probe, mean


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


class Entropy(Probe):
    name = "entropy"

    def run(self, state: EvalState):
        values = [e for st in state.stats() for e in st.reasoning_entropies]
        keys = ["entropy/token_mean", "entropy/high_frac", "entropy/threshold", "entropy/p80"]
        if not values:
            return self.unsupported(state, "no reasoning tokens were generated", keys)
        own_p80 = percentile(values, 0.8)
        threshold = state.cfg.get("entropy_threshold")
        threshold = own_p80 if threshold is None else float(threshold)
        return {
            keys[0]: mean(values),
            keys[1]: mean([float(v > threshold) for v in values]),
            keys[2]: threshold,
            keys[3]: own_p80,
        }


PROBE = Entropy
