"""pass@k: the unbiased estimator 1 - C(n-c, k) / C(n, k) from n samples per prompt (Chen et al. 2021).

Asks whether training creates reasoning or only selects what the model could already sample.
"""

from __future__ import annotations

from math import comb

from reasonlab.eval.probes.base import Metric, Outcome, Probe, mean
from reasonlab.eval.requests import Sample


def pass_at_k(n: int, c: int, k: int) -> float:
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


class PassAtK(Probe):
    name = "pass_at_k"
    metrics = {"pass_at_k/{k}": Metric(True, "share of prompts at least one of k samples solves (unbiased, from n samples)")}

    def requests(self, run):
        opts = run.cfg.pass_at_k
        return [Sample(ex.prompt, opts.n, opts.temperature) for ex in run.examples[: opts.prompts]]

    def score(self, run, answers):
        opts = run.cfg.pass_at_k
        counts = [int(sum(run.task.score(s, ex) for s in samples)) for ex, samples in zip(run.examples, answers)]
        metrics = {f"pass_at_k/{k}": mean([pass_at_k(opts.n, c, k) for c in counts]) if k <= opts.n else None
                   for k in opts.k}
        return Outcome(metrics, fields={"pass_at_k_correct": counts, "pass_at_k_n": [opts.n] * len(counts)}, n={k: len(counts) for k in metrics})


PROBE = PassAtK
