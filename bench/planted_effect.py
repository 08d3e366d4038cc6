"""Planted effect: does the evaluator see reasoning that does the work?

Two tiny models are trained by SFT from scratch on the same problems for the same steps: one on
the genuine traces, one with " ..." filler in place of the steps (same length). The genuine one's
answers must depend on its reasoning, so it must score clearly higher on early-answering AOC,
filler sensitivity and information gain. Prints the table that docs/evaluator.md quotes.

    python bench/planted_effect.py [--steps 600] [--out outputs/bench/planted]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

KEYS = ["accuracy", "faithfulness/early_answer_aoc", "faithfulness/filler_sensitivity", "info_gain/total",
        "info_gain/per_step", "info_gain_self/total", "faithfulness/mistake_followed", "reasoning/step_validity"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="outputs/bench/planted")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s] %(message)s", datefmt="%H:%M:%S")

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from launch.common import CONF_DIR
    from launch.schema import register
    from launch.train import train

    register()
    results = {}
    for target in ("trace", "filler"):
        # Information gain of both models is read by the same fixed reader, the trace model:
        # self-reading would reward the filler model for being surprised by a missing filler.
        reader = ["eval.scorer=self"] if target == "trace" else [f"eval.scorer={Path(args.out) / 'sft-trace'}"]
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("config", overrides=[
                "trainer=sft", f"trainer.target={target}", f"budget.max_steps={args.steps}", f"seed={args.seed}",
                f"output_root={args.out}", f"run_name=sft-{target}", *reader,
                "eval.probes=[info_gain,early_answer,filler,mistake,step_validity]",
            ])
        results[target] = train(cfg)
    results["trace"].setdefault("info_gain_self/total", results["trace"]["info_gain/total"])
    print("\n(info_gain/: read by the trace model for both; info_gain_self/: each model reading itself)")
    print("\n| metric | trace | filler | trace - filler |\n|---|---|---|---|")
    for k in KEYS:
        a, b = results["trace"].get(k), results["filler"].get(k)
        diff = f"{a - b:+.3f}" if a is not None and b is not None else "-"
        fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
        print(f"| {k} | {fmt(a)} | {fmt(b)} | {diff} |")
    Path(args.out).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "planted_effect.json").write_text(json.dumps({t: {k: r.get(k) for k in KEYS} for t, r in results.items()}, indent=2))


if __name__ == "__main__":
    main()
