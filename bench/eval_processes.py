"""Evaluation on 1 against 2 processes: does sharding the evaluator's requests pay?

Runs `launch.evaluate` on the same checkpoint (every probe) in one process and under
`torch.distributed.run` with 2 (one CPU thread each: OMP_NUM_THREADS=1; on a GPU machine each rank
takes a GPU), alternating, `--repeats` times, and reads each run's `eval/seconds` (the evaluation
alone: no start-up, no loading) and the wall time of the whole command. Prints the medians and the
speed-up of 2 processes (target >= 1.7x). Also checks that both give the same metrics.

    python bench/eval_processes.py --checkpoint outputs/study/base --samples 200 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(procs: int, checkpoint: str, samples: int, out: Path, threads: int) -> tuple[float, float, dict]:
    launcher = [sys.executable] if procs == 1 else [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                                     f"--nproc_per_node={procs}"]
    cmd = [*launcher, "-m", "reasonlab.evaluate", f"model.name_or_path={checkpoint}", "task=arith",
           f"budget.eval_samples={samples}", "eval.progress=false", "progress=false", f"output_dir={out}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"error: {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    return metrics["eval/seconds"], wall, metrics


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default="outputs/study/base")
    ap.add_argument("--samples", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per process")
    args = ap.parse_args()
    times: dict[int, list[tuple[float, float]]] = {1: [], 2: []}
    results = {}
    with tempfile.TemporaryDirectory(prefix="reasonlab-eval-procs-") as tmp:
        for i in range(args.repeats):
            for procs in (1, 2):
                ev, wall, results[procs] = run(procs, args.checkpoint, args.samples, Path(tmp) / f"{procs}-{i}", args.threads)
                times[procs].append((ev, wall))
                print(f"run {i + 1}, {procs} process(es): evaluation {ev:.2f} s, command {wall:.2f} s", flush=True)
    skip = ("seconds", "provenance", "git", "python", "torch", "host", "versions", "curves")
    moved = [k for k, v in results[1].items() if not any(s in k for s in skip) and isinstance(v, (int, float))
             and abs(v - results[2].get(k, float("nan"))) > 1e-6]
    med = {p: (statistics.median(e for e, _ in t), statistics.median(w for _, w in t)) for p, t in times.items()}
    print(f"\n{args.samples} test + {args.samples} ood problems, every probe, {args.threads} thread(s) per process, "
          f"medians of {args.repeats}:\n\n| processes | evaluation s | whole command s |\n|---|---|---|")
    for p in (1, 2):
        print(f"| {p} | {med[p][0]:.2f} | {med[p][1]:.2f} |")
    print(f"\nspeed-up of 2 processes: evaluation {med[1][0] / med[2][0]:.2f}x (target >= 1.7), whole command "
          f"{med[1][1] / med[2][1]:.2f}x; metrics that differ by more than 1e-6: {moved or 'none'}")


if __name__ == "__main__":
    main()
