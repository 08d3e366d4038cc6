"""Where the suite's extra time goes: each part of its work, counted in tokens and timed alone.

The full suite (bench/eval_speed.py's (b)) fuses its parts into shared passes; this script runs
each part on its own after accuracy-only, on the same checkpoint and prompts, and prints the
tokens it computes, so the suite's cost over accuracy-only can be read as a sum of work:
  (a) accuracy-only: the greedy test + ood completions;
  pass@k: n samples of the first prompts (distinct prefixes = tokens computed with prefix sharing);
  mistakes: a greedy continuation from each corrupted context;
  packed pass: information gain, early answering, filler and paraphrase together;
and, at the end, the machine's unit costs: one decoding step per row at 128 rows, and one token of
a long packed forward. Figures go in docs/benchmarks.md, section 3.

    python bench/eval_parts.py --checkpoint outputs/study/base --samples 200 --repeats 5
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import describe_machine, device, timed  # noqa: E402


def parts(model, tok, task, cfg: dict, repeats: int) -> list[tuple[str, str, float]]:
    """(part, its work in words, median seconds alone) for accuracy-only and each extra part: the
    probes' requests of one full evaluation, answered by kind."""
    from reasonlab.eval.backend import LMBackend
    from reasonlab.eval.config import EvalConfig
    from reasonlab.eval.evaluator import evaluate
    from reasonlab.eval.requests import AnswerLogprob, Continue, ForcedAnswer, Sample

    def ntok(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    def backend():
        return LMBackend(model, tok, task, batch_size=cfg["batch_size"], max_new_tokens=cfg["max_new_tokens"],
                         answer_max_tokens=cfg["answer_max_tokens"], truncation_rows=cfg["truncation_rows"], seed=cfg["seed"])

    seen = []
    spy = backend()
    answer = spy.answer
    spy.answer = lambda requests, **kw: seen.append(list(requests)) or answer(requests, **kw)
    _, samples, _ = evaluate(model, tok, task, {**cfg, "probes": list(EvalConfig.default().probes)}, backend=spy)
    probe_requests = [r for call in seen for r in call if not (isinstance(r, Sample) and r.temperature is None)]
    prompts = [s["prompt"] for s in samples]
    rows = []

    t, _, _ = timed(lambda: evaluate(model, tok, task, {**cfg, "probes": []}), repeats)
    rows.append(("(a) accuracy-only", f"{len(samples)} greedy completions: {sum(ntok(s['completion']) + 1 for s in samples):,} "
                 f"decoded tokens after {sum(ntok(p) for p in prompts):,} prompt tokens", t))

    sampled = [r for r in probe_requests if isinstance(r, Sample)]  # decoded with the greedy splits in the suite
    t, _, texts = timed(lambda: backend().answer(sampled), repeats)
    distinct = 0
    for group in texts:
        prefixes = set()
        for text in group:
            ids = (*tok(text, add_special_tokens=False)["input_ids"], None)  # None: the EOS step
            prefixes |= {ids[:k] for k in range(1, len(ids) + 1)}
        distinct += len(prefixes)
    flat = [x for group in texts for x in group]
    rows.append(("pass@k", f"{len(flat)} samples: {sum(ntok(x) + 1 for x in flat):,} sampled tokens from "
                 f"{distinct:,} distinct prefixes", t))

    contexts = [r for r in probe_requests if isinstance(r, Continue)]
    t, _, conts = timed(lambda: backend().answer(contexts), repeats)
    rows.append(("mistakes", f"{len(contexts)} continuations: {sum(ntok(c) + 1 for c in conts):,} decoded tokens after "
                 f"{sum(ntok(c.context) for c in contexts):,} context tokens", t))

    packed = list(dict.fromkeys(r for r in probe_requests if isinstance(r, (ForcedAnswer, AnswerLogprob))))
    t, _, _ = timed(lambda: backend().answer(packed), repeats)
    n_forced = sum(isinstance(r, ForcedAnswer) for r in packed)
    rows.append(("packed pass", f"{len(packed) - n_forced} answer log-probs, {n_forced} forced answers", t))
    return rows


def unit_costs(model, rows: int = 128, context: int = 80, packed: int = 250) -> tuple[float, float]:
    """(seconds per row of one decoding step with `rows` rows on a `context`-token cache, seconds
    per token of a forward over 64 sequences of `packed` tokens)."""
    import time

    import torch

    dev = next(model.parameters()).device
    vocab = model.get_input_embeddings().weight.shape[0]
    with torch.no_grad():
        ids = torch.randint(3, min(vocab, 60), (rows, context), device=dev)
        cache = model(input_ids=ids, use_cache=True).past_key_values
        nxt = torch.randint(3, min(vocab, 60), (rows, 1), device=dev)
        steps = 30
        t0 = time.perf_counter()
        for i in range(steps):
            model(input_ids=nxt, attention_mask=torch.ones(rows, context + 1 + i, dtype=torch.long, device=dev),
                  position_ids=torch.full((rows, 1), context + i, device=dev), past_key_values=cache, use_cache=True)
        step = (time.perf_counter() - t0) / steps / rows
        t0 = time.perf_counter()
        model(input_ids=torch.randint(3, min(vocab, 60), (64, packed), device=dev))
        token = (time.perf_counter() - t0) / (64 * packed)
    return step, token


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="outputs/study/base", help="run or checkpoint directory (make study makes one)")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    args = ap.parse_args()

    from reasonlab.launch.common import quiet_libraries
    from reasonlab.models import load_pretrained
    from reasonlab.tasks import load_task

    quiet_libraries()
    model, tok = load_pretrained(args.checkpoint, args.dtype)
    model = model.to(device()).eval()
    task = load_task("arith", test_size=max(500, args.samples))
    cfg = dict(num_samples=args.samples, max_new_tokens=112, batch_size=128, progress=False, seed=0, answer_max_tokens=8,
               pass_at_k=dict(n=8, k=[1, 8], prompts=64, temperature=1.0), entropy_threshold=None, truncation_rows=80)
    print(f"{describe_machine()}; checkpoint {args.checkpoint} ({args.dtype}), {args.samples} test prompts (+ as many ood), "
          f"medians of {args.repeats}\n", flush=True)
    rows = parts(model, tok, task, cfg, args.repeats)
    print("| part | work | alone s |\n|---|---|---|")
    for name, work, t in rows:
        print(f"| {name} | {work} | {t:.2f} |")
    extra = sum(t for _, _, t in rows[1:])
    print(f"\nthe extra parts alone: {extra:.2f} s = {extra / rows[0][2]:.2f}x accuracy-only, so (b)/(a) ~ {1 + extra / rows[0][2]:.2f} "
          "if fusing them saves nothing")
    step, token = unit_costs(model)
    print(f"unit costs: {step * 1e6:.0f} us per row of a decoding step at 128 rows; {token * 1e6:.1f} us per token of a packed forward")


if __name__ == "__main__":
    main()
