"""Information gain per reasoning step (after Wu et al. 2025; reasonlab's definition in REFERENCES.md).

L_i = mean log-probability of the gold answer's tokens given prompt + s1..si + answer prefix,
i = 0..n. Step gain = L_i - L_(i-1); total = L_n - L_0; per_step = total / n;
positive_step_frac = share of steps whose gain is above zero. Scored by a fixed reader when
`eval.scorer` is a checkpoint (reported as info_gain/...; the model's own as info_gain_self/...).
"""

from __future__ import annotations

from reasonlab.eval.probes.base import Metric, Outcome, Probe, mean
from reasonlab.eval.requests import AnswerLogprob

KEYS = {"total": "log-prob of the gold answer gained from no steps to all steps (nats)",
        "per_step": "log-prob of the gold answer gained per reasoning step (nats)",
        "positive_step_frac": "share of steps after which the gold answer is more likely"}


def summarize(logprobs: list[list[float]]) -> tuple[dict[str, float | None], list[list[float] | None], dict[str, int]]:
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
    return metrics, gains_all, {"total": len(totals), "per_step": len(per_step), "positive_step_frac": len(totals)}


class InfoGain(Probe):
    name = "info_gain"
    metrics = {**{f"info_gain/{k}": Metric(True, m) for k, m in KEYS.items()},
               **{f"info_gain_self/{k}": Metric(True, m + ", read by the model itself", optional=True)
                  for k, m in KEYS.items()}}

    def requests(self, run):
        readers = [True, False] if run.has_reader else [False]
        self.sources = [("info_gain", readers[0]), *([("info_gain_self", False)] if run.has_reader else [])]
        return [AnswerLogprob(ctx, ex.answer, reader=who) for who in readers
                for i, ex in enumerate(run.examples) for ctx in run.truncations(i)]

    def score(self, run, answers):
        out, fields, note, it, n = {}, {}, None, iter(answers), {}
        for prefix, _ in self.sources:
            lps = [[next(it) for _ in run.truncations(i)] for i in range(len(run.examples))]
            metrics, gains, counts = summarize(lps)
            out.update({f"{prefix}/{k}": v for k, v in metrics.items()})
            n.update({f"{prefix}/{k}": v for k, v in counts.items()})
            if metrics["total"] is None:
                note = "no completion had reasoning steps to score"
            fields[f"{prefix}/step_logprobs"] = [lp if g is not None else None for lp, g in zip(lps, gains)]
            fields[f"{prefix}/step_gains"] = gains
        return Outcome(out, fields=fields, note=note, n=n)


PROBE = InfoGain
