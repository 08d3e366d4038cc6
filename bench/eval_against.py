"""The suite against accuracy-only, this tree's evaluator against an earlier one, in one process.

Both evaluators are imported side by side: this tree's as `reasonlab.*`, the earlier checkout's
under its own top-level names (`eval`, `models`, `tasks`: checkouts from before the `reasonlab`
namespace, such as 9e3f36a, the code issue 17 compares against). Each repeat runs (a) accuracy-only
and (b) the suite with both, the order of the two evaluators alternating from repeat to repeat, so
a drift in the machine's speed hits both alike. (b) gets the earlier evaluator's probe list (its
conf/eval/default.yaml) in both, so both do the same work.

    git worktree add /tmp/old 9e3f36a
    python bench/eval_against.py --baseline /tmp/old --checkpoint outputs/study/base --repeats 15

Prints every repeat, the medians, and per repeat (b)/(a) of each and their quotient.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import describe_machine  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", required=True, help="an earlier checkout whose packages are top-level (git worktree)")
    ap.add_argument("--checkpoint", default="outputs/study/base")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="cpu: this process's CPU time (less moved by other load on a shared machine; "
                         "with --threads 1 it counts the work done)")
    args = ap.parse_args()

    baseline = Path(args.baseline).resolve()
    if not (baseline / "eval" / "evaluator.py").is_file() or (baseline / "reasonlab").is_dir():
        sys.exit(f"error: {baseline} is not a checkout from before the reasonlab namespace (no top-level eval/evaluator.py)")
    import torch
    import yaml

    from reasonlab.eval.evaluator import evaluate as this_evaluate
    from reasonlab.launch.common import quiet_libraries
    from reasonlab.models import load_pretrained as this_load
    from reasonlab.tasks import load_task as this_task

    sys.path.insert(0, str(baseline))  # before this tree's root, whose folders have the same names
    import eval.evaluator  # noqa: E402  (the baseline's top-level packages)
    from eval.evaluator import evaluate as old_evaluate  # noqa: E402
    from models import load_pretrained as old_load  # noqa: E402
    from tasks import load_task as old_task  # noqa: E402

    assert Path(eval.evaluator.__file__).resolve().is_relative_to(baseline), eval.evaluator.__file__

    quiet_libraries()
    if args.threads:
        torch.set_num_threads(args.threads)
    probes = yaml.safe_load((baseline / "conf" / "eval" / "default.yaml").read_text())["probes"]
    cfg = dict(num_samples=args.samples, max_new_tokens=112, batch_size=128, progress=False, seed=0, answer_max_tokens=8,
               pass_at_k=dict(n=8, k=[1, 8], prompts=64, temperature=1.0), entropy_threshold=None, truncation_rows=80)
    (om, ot), (nm, nt) = old_load(args.checkpoint, "float32"), this_load(args.checkpoint, "float32")
    om.eval(), nm.eval()
    old_t, this_t = old_task("arith", test_size=max(500, args.samples)), this_task("arith", test_size=max(500, args.samples))
    runs = {"baseline": lambda p: old_evaluate(om, ot, old_t, {**cfg, "probes": p}),
            "this": lambda p: this_evaluate(nm, nt, this_t, {**cfg, "probes": p})}
    print(f"{describe_machine()}; torch threads {torch.get_num_threads()}; checkpoint {args.checkpoint}; "
          f"{args.clock} clock; {args.samples} test + ood prompts; baseline {baseline}; (b) probes {','.join(probes)}", flush=True)
    for run in runs.values():
        run(probes)  # warm-up
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    t: dict[tuple[str, str], list[float]] = {(v, m): [] for v in runs for m in ("a", "b")}
    print("\n| repeat | baseline (a) / (b) s | (b)/(a) | this (a) / (b) s | (b)/(a) | quotient |\n|---|---|---|---|---|---|")
    for r in range(args.repeats):
        for v in (("baseline", "this") if r % 2 == 0 else ("this", "baseline")):
            for m, p in (("a", []), ("b", probes)):
                t0 = clock()
                runs[v](p)
                t[(v, m)].append(clock() - t0)
        ob, tb = t[("baseline", "b")][-1] / t[("baseline", "a")][-1], t[("this", "b")][-1] / t[("this", "a")][-1]
        print(f"| {r + 1} | {t[('baseline', 'a')][-1]:.2f} / {t[('baseline', 'b')][-1]:.2f} | {ob:.2f} | "
              f"{t[('this', 'a')][-1]:.2f} / {t[('this', 'b')][-1]:.2f} | {tb:.2f} | {tb / ob:.2f} |", flush=True)
    med = {k: statistics.median(x) for k, x in t.items()}
    ratio = {v: [b / a for a, b in zip(t[(v, "a")], t[(v, "b")])] for v in runs}
    quotients = [x / y for x, y in zip(ratio["this"], ratio["baseline"])]
    print(f"\nmedians (s): baseline (a) {med[('baseline', 'a')]:.2f}, (b) {med[('baseline', 'b')]:.2f}; "
          f"this (a) {med[('this', 'a')]:.2f}, (b) {med[('this', 'b')]:.2f}")
    print(f"(b)/(a), median over repeats: baseline {statistics.median(ratio['baseline']):.2f}, this "
          f"{statistics.median(ratio['this']):.2f}; per-repeat quotient this/baseline: median "
          f"{statistics.median(quotients):.3f} (range {min(quotients):.2f}-{max(quotients):.2f}; target <= 1.05)")
    rng = random.Random(0)  # a 95% bootstrap interval of the median quotient (the repeats resampled)
    boot = sorted(statistics.median(rng.choices(quotients, k=len(quotients))) for _ in range(2000))
    print(f"median quotient, 95% bootstrap interval: [{boot[50]:.3f}, {boot[1949]:.3f}]")
    print(f"quotient of the medians' (b)/(a): {(med[('this', 'b')] / med[('this', 'a')]) / (med[('baseline', 'b')] / med[('baseline', 'a')]):.3f}")
    print(f"this/baseline, medians: (a) {med[('this', 'a')] / med[('baseline', 'a')]:.3f}, "
          f"(b) {med[('this', 'b')] / med[('baseline', 'b')]:.3f}")


if __name__ == "__main__":
    main()
