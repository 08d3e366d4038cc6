"""pass@k: the unbiased estimator 1 - C(n-c, k) / C(n, k) from n samples per prompt (Chen et al. 2021).

Asks whether training creates reasoning or only selects what the model could already sample.
"""

from __future__ import annotations

from math import comb

from eval.generation import Request
from eval.probes.base import EvalState, Probe, mean


def pass_at_k(n: int, c: int, k: int) -> float:
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


class PassAtK(Probe):
    name = "pass_at_k"

    def requests(self, cfg, examples):
        opts = cfg["pass_at_k"]
        return {"samples": Request([ex.prompt for ex in examples[: int(opts["prompts"])]], n=int(opts["n"]),
                                   temperature=float(opts["temperature"]))}

    def run(self, state: EvalState):
        opts = state.cfg["pass_at_k"]
        n, ks = int(opts["n"]), [int(k) for k in opts["k"]]
        examples = state.examples[: int(opts["prompts"])]
        samples = state.generated.get(f"{self.name}/samples")
        if samples is None:
            samples = state.backend.generate(
                [ex.prompt for ex in examples], state.cfg["max_new_tokens"], do_sample=True,
                temperature=float(opts["temperature"]), n=n, seed=state.cfg.get("seed", 0),
                desc="eval pass@k" if state.cfg.get("progress", True) else None,
            )
        out = {}
        counts = []
        for i, ex in enumerate(examples):
            counts.append(int(sum(state.task.score(s, ex) for s in samples[i * n : (i + 1) * n])))
            state.records[i]["pass_at_k_correct"] = counts[-1]
        for k in ks:
            out[f"pass_at_k/{k}"] = mean([pass_at_k(n, c, k) for c in counts]) if k <= n else None
        return out


PROBE = PassAtK
