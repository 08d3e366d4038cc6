"""Token entropy over the generated reasoning: the mean, and the share of tokens above a threshold
(`eval.entropy_threshold`; the study sets it to the base model's 80th percentile so trained
models are compared against the base; unset, the model's own 80th percentile is used and
reported as entropy/threshold)."""

from __future__ import annotations

from reasonlab.eval.probes.base import Metric, Outcome, Probe, mean
from reasonlab.eval.requests import TokenStats, Unsupported


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


class Entropy(Probe):
    name = "entropy"
    reads_token_stats = True
    metrics = {"entropy/token_mean": Metric(None, "mean entropy of the reasoning tokens' distributions (nats)"),
               "entropy/high_frac": Metric(None, "share of reasoning tokens above eval.entropy_threshold"),
               "entropy/threshold": Metric(None, "the threshold used (nats)"),
               "entropy/p80": Metric(None, "the model's own 80th percentile of reasoning-token entropy (nats)")}

    def requests(self, run):
        return [TokenStats(ex.prompt, c) for ex, c in zip(run.examples, run.completions)]

    def score(self, run, answers):
        values = [e for st in answers for e in st.reasoning_entropies]
        if not values:
            return Unsupported("no reasoning tokens were generated")
        used = sum(1 for st in answers if st.reasoning_entropies)  # samples with reasoning tokens
        own_p80 = percentile(values, 0.8)
        threshold = own_p80 if run.cfg.entropy_threshold is None else run.cfg.entropy_threshold
        return Outcome({"entropy/token_mean": mean(values), "entropy/high_frac": mean([float(v > threshold) for v in values]),
                        "entropy/threshold": threshold, "entropy/p80": own_p80},
                       n={k: used for k in ("entropy/token_mean", "entropy/high_frac", "entropy/threshold", "entropy/p80")})


PROBE = Entropy
