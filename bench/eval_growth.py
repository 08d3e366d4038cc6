"""How evaluation cost grows with the number of samples and with chain length.

  (1) samples 50, 200, 800: accuracy-only and full-suite evaluator time on the study's base model;
  (2) chain length 2, 4, 8, 16 steps (arith problems of exactly that many steps, their reference
      chains): information gain + early answering through the prefix-sharing path and the naive
      path (every truncated context re-encoded and decoded from scratch), on the same chains.
With prefix reuse the probes' cost grows about linearly with chain length (one encoding of the
chain plus a short suffix per point); the naive path re-encodes a context per point, so it grows
quadratically. Prints both tables and writes docs/eval_growth.png.

    python bench/eval_growth.py --checkpoint outputs/study/base --repeats 3
    python bench/eval_growth.py --checkpoint <a Qwen2.5-0.5B-shaped run> --dtype bfloat16 --png docs/eval_growth_gpu.png
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import describe_machine, device, timed, truncation_requests  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="outputs/study/base")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--samples", type=int, nargs="+", default=[50, 200, 800])
    ap.add_argument("--lengths", type=int, nargs="+", default=[2, 4, 8, 16])
    ap.add_argument("--chains", type=int, default=50, help="chains per length (naive path is slow)")
    ap.add_argument("--png", default=str(ROOT / "docs" / "eval_growth.png"))
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--naive-repeats", type=int, default=1)
    args = ap.parse_args()

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
    machine = describe_machine()
    print(f"{machine}; {args.checkpoint} ({args.dtype})", flush=True)
    ALL_PROBES = list(EvalConfig.default().probes)
    cfg = dict(max_new_tokens=112, batch_size=args.batch_size, progress=False, seed=0, answer_max_tokens=8,
               pass_at_k=dict(n=8, k=[1, 8], prompts=64, temperature=1.0), entropy_threshold=None)
    task = load_task("arith", test_size=max(args.samples), ood_size=max(args.samples))
    evaluate(model, tok, task, {**cfg, "num_samples": min(args.samples), "probes": ALL_PROBES})  # warm-up, untimed
    by_samples = []
    for n in args.samples:
        acc = timed(lambda: evaluate(model, tok, task, {**cfg, "num_samples": n, "probes": []}), args.repeats)
        full = timed(lambda: evaluate(model, tok, task, {**cfg, "num_samples": n, "probes": ALL_PROBES}), args.repeats)
        by_samples.append((n, acc, full))
        print(f"samples {n}: accuracy-only {acc[0]:.2f}s, full suite {full[0]:.2f}s", flush=True)

    by_length = []
    for k in args.lengths:
        t = load_task("arith", train_steps=[k, k], ood_steps=[k, k], train_size=200, test_size=args.chains, ood_size=1)
        requests = truncation_requests(t, [(ex.prompt, list(ex.steps), ex.answer) for ex in t.examples("test")])
        fast = timed(lambda: LMBackend(model, tok, t, batch_size=args.batch_size, truncation_rows=80).answer(requests),
                     args.repeats)
        naive = timed(lambda: ReferenceBackend(model, tok, t).answer(requests), args.naive_repeats)
        by_length.append((k, fast, naive))
        print(f"steps {k}: fast {fast[0]:.2f}s, naive {naive[0]:.2f}s", flush=True)

    print("\n| samples | accuracy-only s | full suite s | suite / accuracy |\n|---|---|---|---|")
    for n, acc, full in by_samples:
        print(f"| {n} | {acc[0]:.2f} ({acc[1][0]:.2f}-{acc[1][1]:.2f}) | {full[0]:.2f} ({full[1][0]:.2f}-{full[1][1]:.2f}) "
              f"| {full[0] / acc[0]:.2f} |")
    print(f"\n| steps per chain ({args.chains} chains) | info gain + early answer, fast s | naive s | naive / fast |\n|---|---|---|---|")
    for k, fast, naive in by_length:
        print(f"| {k} | {fast[0]:.3f} ({fast[1][0]:.3f}-{fast[1][1]:.3f}) | {naive[0]:.2f} | {naive[0] / fast[0]:.1f} |")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4))
    ns = [r[0] for r in by_samples]
    a.plot(ns, [r[1][0] for r in by_samples], "o-", label="accuracy only")
    a.plot(ns, [r[2][0] for r in by_samples], "o-", label="full suite")
    a.set(xlabel="test samples (and as many ood)", ylabel="seconds", title="Evaluator time vs samples", xscale="log",
          yscale="log")
    a.legend()
    ks = [r[0] for r in by_length]
    b.plot(ks, [r[1][0] for r in by_length], "o-", label="prefix sharing (reasonlab)")
    b.plot(ks, [r[2][0] for r in by_length], "o-", label="naive re-encoding")
    b.set(xlabel="steps per chain", ylabel="seconds", title=f"Info gain + early answering, {args.chains} chains")
    b.legend()
    fig.suptitle(f"{machine}; {Path(args.checkpoint).name} ({args.dtype}); medians of {args.repeats} runs", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.png, dpi=110)
    print(f"\nfigure: {args.png}")


if __name__ == "__main__":
    main()
