"""Calibration of answer confidence. Confidence = mean over the answer tokens of
p(top-1) - p(top-2) (the answer-span confidence RLSF rewards; models/scoring.py). ECE over 10
equal-width bins: sum over bins of (bin size / n) * |accuracy - mean confidence|; Brier = mean
(confidence - correct)^2. A completion with no answer has no confidence and is left out (counted)."""

from __future__ import annotations

from reasonlab.eval.probes.base import Metric, Outcome, Probe, mean
from reasonlab.eval.requests import TokenStats, Unsupported


def ece(confidences: list[float], correct: list[float], bins: int = 10) -> float:
    total, n = 0.0, len(confidences)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [i for i, c in enumerate(confidences) if (lo <= c < hi) or (b == bins - 1 and c == 1.0)]
        if members:
            acc = sum(correct[i] for i in members) / len(members)
            conf = sum(confidences[i] for i in members) / len(members)
            total += len(members) / n * abs(acc - conf)
    return total


class Calibration(Probe):
    name = "calibration"
    reads_token_stats = True
    metrics = {"calibration/confidence_mean": Metric(None, "mean answer confidence, p(top-1) - p(top-2) over the answer span"),
               "calibration/answer_prob_mean": Metric(None, "mean probability of the answer's tokens"),
               "calibration/ece": Metric(False, "expected calibration error of the answer confidence (10 bins)"),
               "calibration/brier": Metric(False, "Brier score: mean (answer confidence - correct)^2"),
               "calibration/num_scored": Metric(None, "completions with an answer span, the n behind these", optional=True)}

    def requests(self, run):
        return [TokenStats(ex.prompt, c) for ex, c in zip(run.examples, run.completions)]

    def score(self, run, answers):
        conf, probs, ok = [], [], []
        for st, c in zip(answers, run.correct):
            if st.answer_confidence is not None:
                conf.append(st.answer_confidence)
                probs.append(st.answer_prob)
                ok.append(c)
        if not conf:
            return Unsupported("no completion had an answer")
        bins = [{"confidence": (b + 0.5) / 10} for b in range(10)]
        for b in range(10):
            members = [i for i, c in enumerate(conf) if int(min(c, 0.9999) * 10) == b]
            bins[b].update(count=len(members), accuracy=mean([ok[i] for i in members]),
                           mean_confidence=mean([conf[i] for i in members]))
        metrics = {"calibration/confidence_mean": mean(conf), "calibration/answer_prob_mean": mean(probs),
                   "calibration/ece": ece(conf, ok), "calibration/brier": mean([(c - y) ** 2 for c, y in zip(conf, ok)]),
                   "calibration/num_scored": float(len(conf))}
        fields = {"confidence": [st.answer_confidence for st in answers], "answer_prob": [st.answer_prob for st in answers]}
        return Outcome(metrics, fields=fields, curves={"reliability": bins},
                       n={**{k: len(conf) for k in metrics}, "calibration/num_scored": len(run.examples)})


PROBE = Calibration
