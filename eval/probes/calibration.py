"""Calibration of answer confidence. Confidence = mean over the answer tokens of
p(top-1) - p(top-2) (the answer-span confidence RLSF rewards; models/scoring.py). ECE over 10
equal-width bins: sum over bins of (bin size / n) * |accuracy - mean confidence|; Brier = mean
(confidence - correct)^2. A completion with no answer has no confidence and is left out (counted)."""

from __future__ import annotations

from eval.probes.base import EvalState, Probe, mean


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

    def run(self, state: EvalState):
        stats = state.stats()
        conf, probs, ok = [], [], []
        for rec, st, c in zip(state.records, stats, state.correct):
            rec["confidence"], rec["answer_prob"] = st.answer_confidence, st.answer_prob
            if st.answer_confidence is not None:
                conf.append(st.answer_confidence)
                probs.append(st.answer_prob)
                ok.append(c)
        keys = ["calibration/confidence_mean", "calibration/answer_prob_mean", "calibration/ece", "calibration/brier"]
        if not conf:
            return self.unsupported(state, "no completion had an answer", keys)
        bins = [{"confidence": (b + 0.5) / 10} for b in range(10)]
        for b in range(10):
            members = [i for i, c in enumerate(conf) if int(min(c, 0.9999) * 10) == b]
            bins[b].update(count=len(members), accuracy=mean([ok[i] for i in members]),
                           mean_confidence=mean([conf[i] for i in members]))
        state.curves["reliability"] = bins
        return {
            keys[0]: mean(conf),
            keys[1]: mean(probs),
            keys[2]: ece(conf, ok),
            keys[3]: mean([(c - y) ** 2 for c, y in zip(conf, ok)]),
            "calibration/num_scored": float(len(conf)),
        }


PROBE = Calibration
