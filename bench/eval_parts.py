"""Where the suite's extra time goes: each part of its work, counted in tokens and timed alone.

The full suite (bench/eval_speed.py's (b)) fuses its parts into shared passes; this script runs
each part on its own after accuracy-only, on the same checkpoint and prompts, and prints the
tokens it computes, so the suite's cost over accuracy-only can be read as a sum of work:
  (a) accuracy-only: the greedy test + ood completions;
  pass@k: n samples of the first prompts (distinct prefixes = tokens computed with prefix sharing);
  mistakes: a greedy continuation from each corrupted context;
  truncation pass: information gain, early answering, filler and paraphrase together;
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
    """(part, its work in words, median seconds alone) for accuracy-only and each extra part."""
    from eval.backend import LMBackend
    from eval.evaluator import ALL_PROBES, evaluate
    from eval.generation import generate
    from eval.probes.mistake import corrupted
    from eval.truncation import analyze_truncations

    def ntok(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    seen_chains = []
    backend = LMBackend(model, tok, task, batch_size=cfg["batch_size"], answer_max_tokens=cfg["answer_max_tokens"],
                        truncation_rows=cfg["truncation_rows"])
    truncations = backend.truncations

    def keep_chains(chains, **kw):
        if kw.get("answers"):
            seen_chains.append(list(chains))
        return truncations(chains, **kw)

    backend.truncations = keep_chains
    _, samples, _ = evaluate(model, tok, task, {**cfg, "probes": ALL_PROBES}, backend=backend)
    test = [s for s in samples if s["split"] == "test"]
    examples = task.examples("test")[: cfg["num_samples"]]
    prompts = [s["prompt"] for s in samples]
    rows = []

    t, _, _ = timed(lambda: evaluate(model, tok, task, {**cfg, "probes": []}), repeats)
    rows.append(("(a) accuracy-only", f"{len(samples)} greedy completions: {sum(ntok(s['completion']) + 1 for s in samples):,} "
                 f"decoded tokens after {sum(ntok(p) for p in prompts):,} prompt tokens", t))

    opts = cfg["pass_at_k"]
    n, sampled_prompts = int(opts["n"]), [ex.prompt for ex in examples[: int(opts["prompts"])]]
    run = lambda: generate(model, tok, sampled_prompts, cfg["max_new_tokens"], batch_size=cfg["batch_size"],  # noqa: E731
                           do_sample=True, temperature=float(opts["temperature"]), num_return_sequences=n,
                           seed=cfg["seed"])
    t, _, texts = timed(run, repeats)
    distinct = 0
    for i in range(len(sampled_prompts)):
        prefixes = set()
        for text in texts[i * n:(i + 1) * n]:
            ids = (*tok(text, add_special_tokens=False)["input_ids"], None)  # None: the EOS step
            prefixes |= {ids[:k] for k in range(1, len(ids) + 1)}
        distinct += len(prefixes)
    rows.append(("pass@k", f"{len(texts)} samples: {sum(ntok(x) + 1 for x in texts):,} sampled tokens from "
                 f"{distinct:,} distinct prefixes", t))

    contexts = [made[0] for i, s in enumerate(test)
                if s["answer"] is not None and (made := corrupted(task, examples[i], s["completion"], cfg["seed"], i))]
    t, _, conts = timed(lambda: generate(model, tok, contexts, cfg["max_new_tokens"], batch_size=cfg["batch_size"]), repeats)
    rows.append(("mistakes", f"{len(contexts)} continuations: {sum(ntok(c) + 1 for c in conts):,} decoded tokens after "
                 f"{sum(ntok(c) for c in contexts):,} context tokens", t))

    chains = seen_chains[0]
    run = lambda: analyze_truncations(model, tok, task, chains, max_answer_tokens=cfg["answer_max_tokens"],  # noqa: E731
                                      batch_size=cfg["batch_size"], max_rows=cfg["truncation_rows"])
    t, _, _ = timed(run, repeats)
    rows.append(("truncation pass", f"{len(chains)} chains: {sum(len(c.steps) + 1 for c in chains)} points, "
                 f"{sum(len(c.branches) for c in chains)} branches", t))
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

    from launch.common import quiet_libraries
    from models import load_pretrained
    from tasks import load_task

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
