"""Two runs at a time or one after the other on this machine?

Times the same two training runs (sft and grpo from one base, same budget) run (a) one after the
other, each with all cores, and (b) at the same time, each with cores / 2 threads. Prints the
wall times and the speed-up of (b).

    python bench/parallel_runs.py --base outputs/study/base --steps 100
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def command(trainer: str, base: str, steps: int, out: str) -> list[str]:
    return [sys.executable, "-m", "reasonlab.train", f"trainer={trainer}", f"model.init_from={base}",
            f"budget.max_steps={steps}", "progress=false", "eval.progress=false", "eval.probes=[cot]",
            f"output_root={out}", "resume=force_restart"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="outputs/study/base")
    ap.add_argument("--steps", type=int, default=100)
    args = ap.parse_args()
    cores = os.cpu_count() or 2
    out = tempfile.mkdtemp(prefix="reasonlab-parallel-")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "disabled"}
    try:
        t0 = time.perf_counter()
        for trainer in ("sft", "grpo"):
            subprocess.run(command(trainer, args.base, args.steps, f"{out}/seq"), cwd=ROOT, env=env, check=True,
                           capture_output=True)
        sequential = time.perf_counter() - t0
        half = {**env, "OMP_NUM_THREADS": str(max(1, cores // 2))}
        t0 = time.perf_counter()
        procs = [subprocess.Popen(command(t, args.base, args.steps, f"{out}/par"), cwd=ROOT, env=half,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for t in ("sft", "grpo")]
        if any(p.wait() for p in procs):
            sys.exit("a parallel run failed")
        parallel = time.perf_counter() - t0
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(f"{cores} cores, sft + grpo, {args.steps} steps each")
    print(f"| mode | wall s |\n|---|---|\n| one after the other ({cores} threads each) | {sequential:.1f} |")
    print(f"| both at once ({max(1, cores // 2)} threads each) | {parallel:.1f} |")
    print(f"speed-up of running two at once: {sequential / parallel:.2f}x")


if __name__ == "__main__":
    main()
