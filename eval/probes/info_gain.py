"""Information gain per reasoning step (after Wu et al. 2025; reasonlab's definition in REFERENCES.md).

L_i = mean log-probability of the gold answer's tokens given prompt + s1..si + answer prefix,
i = 0..n. Step gain = L_i - L_(i-1); total = L_n - L_0; per_step = total / n;
positive_step_frac = share of steps whose gain is above zero. Scored by a fixed reader when
`eval.scorer` is a checkpoint (reported as info_gain/...; the model's own as info_gain_self/...).
"""

from __future__ import annotations

from eval.probes.base import EvalState, Probe, mean

KEYS = ["total", "per_step", "positive_step_frac"]


def summarize(logprobs: list[list[float]]) -> tuple[dict[str, float | None], list[list[float] | None]]:
    totals, per_step, positive, gains_all = [], [], [], []
    for lps in logprobs:
        if len(lps) < 2:  # no target, or no steps
            gains_all.append(None)
            continue
        gains = [b - a for a, b in zip(lps, lps[1:])]
        gains_all.append(gains)
        totals.append(lps[-1] - lps[0])
        per_step.append((lps[-1] - lps[0]) / len(gains))
        positive.extend(g > 0 for g in gains)
    metrics = {"total": mean(totals), "per_step": mean(per_step), "positive_step_frac": mean([float(p) for p in positive])}
    return metrics, gains_all


class InfoGain(Probe):
    name = "info_gain"

    def run(self, state: EvalState):
        out = {}
        sources = [("info_gain", "self")] if state.reader is None else [("info_gain", "reader"), ("info_gain_self", "self")]
        for prefix, who in sources:
            lps = state.truncations(who).logprobs
            metrics, gains = summarize(lps)
            out.update({f"{prefix}/{k}": v for k, v in metrics.items()})
            if metrics["total"] is None:
                state.notes[self.name] = "no completion had reasoning steps to score"
            for rec, lp, g in zip(state.records, lps, gains):
                rec[f"{prefix}/step_logprobs"] = lp if g is not None else None
                rec[f"{prefix}/step_gains"] = g
        return out


PROBE = InfoGain
