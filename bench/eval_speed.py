"""Evaluator speed: do the probes multiply evaluation cost?

Times, on a tiny checkpoint and N test prompts (medians of --repeats runs, same process):
  (a) accuracy-only evaluation (eval.probes=[]: greedy test + ood generation and scoring)
  (b) the full suite (every probe)
  (c) information gain + early answering computed naively (every truncated context re-encoded
      from scratch, one at a time) against the fast prefix-sharing path on the same chains.
Prints (b)/(a) (target <= 2) and (c)/fast (target >= 5). Figures go in docs/benchmarks.md.

    python bench/eval_speed.py --checkpoint outputs/study/sft --samples 200
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def timed(fn, repeats):
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), (min(times), max(times)), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="outputs/study/sft", help="run or checkpoint directory (make study makes one)")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import torch

    from eval.evaluator import ALL_PROBES, evaluate
    from eval.truncation import Chain, analyze_truncations, answer_logprobs_naive, forced_answers_naive
    from launch.common import quiet_libraries
    from models import load_pretrained
    from tasks import load_task

    quiet_libraries()
    model, tok = load_pretrained(args.checkpoint)
    task = load_task("arith", test_size=max(500, args.samples))
    cfg = dict(num_samples=args.samples, max_new_tokens=112, batch_size=128, progress=False, seed=0, answer_max_tokens=8,
               pass_at_k=dict(n=8, k=[1, 8], prompts=64, temperature=1.0), entropy_threshold=None)
    print(f"checkpoint {args.checkpoint}, {args.samples} test prompts (+ as many ood), torch threads {torch.get_num_threads()}")

    t_acc, r_acc, _ = timed(lambda: evaluate(model, tok, task, {**cfg, "probes": []}), args.repeats)
    t_full, r_full, full = timed(lambda: evaluate(model, tok, task, {**cfg, "probes": ALL_PROBES}), args.repeats)
    samples = [s for s in full[1] if s["split"] == "test"]
    chains = [Chain(s["prompt"], s["steps"], s["gold"]) for s in samples]
    t_fast, r_fast, _ = timed(lambda: analyze_truncations(model, tok, task, chains, batch_size=16), args.repeats)
    t_naive, r_naive, _ = timed(
        lambda: (answer_logprobs_naive(model, tok, task, chains), forced_answers_naive(model, tok, task, chains)), 1)
    steps = sum(len(c.steps) for c in chains) / len(chains)

    rows = [
        ("(a) accuracy only", t_acc, r_acc), ("(b) full suite", t_full, r_full),
        ("info gain + early answer, fast", t_fast, r_fast), ("(c) info gain + early answer, naive", t_naive, r_naive),
    ]
    print(f"\nmean reasoning steps per chain: {steps:.2f}\n\n| measurement | median s | range |\n|---|---|---|")
    for name, t, (lo, hi) in rows:
        print(f"| {name} | {t:.2f} | {lo:.2f}-{hi:.2f} |")
    print(f"\n(b)/(a) = {t_full / t_acc:.2f}  (target <= 2)")
    print(f"(c)/fast = {t_naive / t_fast:.1f}  (target >= 5)")
    print("per-probe seconds (last full run):", full[2]["probe_seconds"])


if __name__ == "__main__":
    main()
