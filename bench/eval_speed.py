"""Evaluator speed: do the probes multiply evaluation cost?

Times, on a tiny checkpoint and N test prompts (medians of --repeats runs, same process, (a) and
(b) alternating):
  (a) accuracy-only evaluation (eval.probes=[]: greedy test + ood generation and scoring)
  (b) the full suite (every probe)
  (c) information gain + early answering answered by the reference backend (eval/reference.py:
      every truncated context re-encoded from scratch, one at a time) against the LM backend's
      packed path on the same requests.
Prints (b)/(a) (target <= 2) and (c)/fast (target >= 10). Figures go in docs/benchmarks.md.

Then --repeats more runs of (a) and (b), alternating, with hooks that split each run's wall time
into the time inside the model's forward calls and the evaluator's own work around them
(bookkeeping, tokenizing, sampling, cache row selection). (b)'s forward calls alone against all of
(a) is the ratio the suite would reach if the evaluator's own work cost nothing.

Also prints evaluation tokens/s (generated tokens over the accuracy-only time) and, on a GPU, peak
memory.

    python bench/eval_speed.py --checkpoint outputs/study/sft --samples 200
    python bench/eval_speed.py --checkpoint <a Qwen2.5-0.5B-shaped run> --dtype bfloat16 --batch-size 256  # GPU
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (describe_machine, device, forward_seconds, peak_gib, reset_peak, timed,  # noqa: E402
                          truncation_requests)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="outputs/study/sft", help="run or checkpoint directory (make study makes one)")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--batch-size", type=int, default=128, help="eval.batch_size")
    ap.add_argument("--truncation-rows", type=int, default=80, help="eval.truncation_rows (a GPU wants more)")
    ap.add_argument("--naive-chains", type=int, default=None,
                    help="time (c) and the fast path on the first N chains only (the naive path is slow on big models)")
    ap.add_argument("--probes", default=None,
                    help="comma-separated probes of (b) (default: every probe of conf/eval/default.yaml); e.g. an "
                         "earlier evaluator's list, to compare the two on the same work")
    args = ap.parse_args()

    import torch

    from reasonlab.eval.backend import LMBackend
    from reasonlab.eval.config import EvalConfig
    from reasonlab.eval.evaluator import evaluate
    from reasonlab.eval.reference import ReferenceBackend
    from reasonlab.launch.common import quiet_libraries
    from reasonlab.models import load_pretrained
    from reasonlab.tasks import load_task

    quiet_libraries()
    model, tok = load_pretrained(args.checkpoint, args.dtype)
    model = model.to(device()).eval()
    task = load_task("arith", test_size=max(500, args.samples))
    ALL_PROBES = args.probes.split(",") if args.probes else list(EvalConfig.default().probes)
    cfg = dict(num_samples=args.samples, max_new_tokens=112, batch_size=args.batch_size, progress=False, seed=0, answer_max_tokens=8,
               pass_at_k=dict(n=8, k=[1, 8], prompts=64, temperature=1.0), entropy_threshold=None,
               truncation_rows=args.truncation_rows)
    print(f"{describe_machine()}; checkpoint {args.checkpoint} ({args.dtype}), {args.samples} test prompts "
          f"(+ as many ood), batch {args.batch_size}, truncation rows {args.truncation_rows}", flush=True)

    # warm-up at full size: on a GPU a 16-sample warm-up left the first timed runs cold (new shapes)
    evaluate(model, tok, task, {**cfg, "probes": ALL_PROBES})
    times: dict[str, list[float]] = {"acc": [], "full": []}
    mem: dict[str, float | None] = {"acc": None, "full": None}
    results = {}
    for _ in range(args.repeats):  # alternating, so drift in the machine's speed hits both alike
        for mode, probes in (("acc", []), ("full", ALL_PROBES)):
            reset_peak()
            t0 = time.perf_counter()
            results[mode] = evaluate(model, tok, task, {**cfg, "probes": probes})
            times[mode].append(time.perf_counter() - t0)
            peak = peak_gib()
            mem[mode] = None if peak is None else max(peak, mem[mode] or 0.0)
    (t_acc, r_acc), (t_full, r_full) = [(statistics.median(times[m]), (min(times[m]), max(times[m]))) for m in times]
    acc, full, mem_acc, mem_full = results["acc"], results["full"], mem["acc"], mem["full"]
    generated = sum(len(tok(s["completion"], add_special_tokens=False)["input_ids"]) for s in acc[1])
    samples = [s for s in full[1] if s["split"] == "test"][: args.naive_chains]
    requests = truncation_requests(task, [(s["prompt"], s["steps"], s["gold"]) for s in samples])
    fast = lambda: LMBackend(model, tok, task, batch_size=args.batch_size, truncation_rows=args.truncation_rows).answer(requests)  # noqa: E731
    t_fast, r_fast, _ = timed(fast, args.repeats)
    t_naive, r_naive, _ = timed(lambda: ReferenceBackend(model, tok, task).answer(requests), 1)
    steps = sum(len(s["steps"]) for s in samples) / len(samples)
    chains = samples

    rows = [
        ("(a) accuracy only", t_acc, r_acc), ("(b) full suite", t_full, r_full),
        ("info gain + early answer, fast", t_fast, r_fast), ("(c) info gain + early answer, naive", t_naive, r_naive),
    ]
    print(f"\nmean reasoning steps per chain: {steps:.2f}; fast and naive on {len(chains)} chains; "
          f"{generated} tokens generated by accuracy-only evaluation: {generated / t_acc:.0f} tokens/s")
    if mem_acc is not None:
        print(f"peak GPU memory: accuracy-only {mem_acc:.2f} GiB, full suite {mem_full:.2f} GiB")
    print("\n| measurement | median s | range |\n|---|---|---|")
    for name, t, (lo, hi) in rows:
        print(f"| {name} | {t:.2f} | {lo:.2f}-{hi:.2f} |")
    print(f"\n(b)/(a) = {t_full / t_acc:.2f}  (target <= 2)")
    print(f"(c)/fast = {t_naive / t_fast:.1f}  (target >= 10)")
    print("per-probe seconds (last full run; 'answer': the backend answering every probe's requests):",
          full[2]["probe_seconds"], f"; its first phase (greedy splits): {full[0]['eval/accuracy_seconds']:.2f} s")
    split: dict[str, list[tuple[float, float, int]]] = {"acc": [], "full": []}
    for _ in range(args.repeats):  # alternating again, hooks on; not mixed with the timings above
        for mode, probes in (("acc", []), ("full", ALL_PROBES)):
            split[mode].append(forward_seconds(model, lambda p=probes: evaluate(model, tok, task, {**cfg, "probes": p}))[1:])
    print(f"\n{args.repeats} more runs of each, wall time split (medians, range):\n\n| measurement | wall s | inside the "
          "model's forward calls s | calls | the evaluator's own work s |\n|---|---|---|---|---|")
    inside_of = {}
    for mode, name in (("acc", "(a) accuracy only"), ("full", "(b) full suite")):
        cols = [[w for w, _, _ in split[mode]], [i for _, i, _ in split[mode]], [w - i for w, i, _ in split[mode]]]
        wall, inside, own = (f"{statistics.median(c):.2f} ({min(c):.2f}-{max(c):.2f})" for c in cols)
        inside_of[mode] = statistics.median(cols[1])
        print(f"| {name} | {wall} | {inside} | {split[mode][-1][2]} | {own} |")
    print(f"(b)/(a) counting the forward calls only: {inside_of['full'] / inside_of['acc']:.2f}; the (b) forward calls "
          f"alone against all of (a): {inside_of['full'] / t_acc:.2f}")
    print("every run, in order (s): accuracy only", [round(t, 2) for t in times["acc"]], "full suite",
          [round(t, 2) for t in times["full"]])


if __name__ == "__main__":
    main()
