"""Re-score a study's checkpoints with this working tree's evaluator and list what moved.

For an evaluator change that must leave the numbers alone (or move only what it says):
every run of the study directory is evaluated again from its `final/` checkpoint with the
study's settings (its config, the base model as information-gain reader for the other rows,
the base's 80th-percentile entropy threshold), and every metric and per-sample field that
differs from the run's metrics.json / samples.jsonl is printed (floats: beyond --tolerance).

    python bench/rescore_study.py outputs/study --out outputs/bench/rescore
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def differs(a, b, tol: float) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return abs(a - b) > tol
    if isinstance(a, list) and isinstance(b, list):
        return len(a) != len(b) or any(differs(x, y, tol) for x, y in zip(a, b))
    return a != b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", help="a study directory (make study: outputs/study)")
    ap.add_argument("--runs", default="base,sft,grpo,rlag,rlsf,entropy_rlvr")
    ap.add_argument("--out", default="outputs/bench/rescore")
    ap.add_argument("--tolerance", type=float, default=0.0, help="float differences up to this are not listed")
    args = ap.parse_args()

    from omegaconf import OmegaConf

    from reasonlab.eval.config import EvalConfig
    from reasonlab.eval.evaluator import evaluate
    from reasonlab.launch.common import quiet_libraries, seed_everything
    from reasonlab.launch.scoring import task_from_cfg
    from reasonlab.models import load_pretrained

    quiet_libraries()
    root, out = Path(args.study), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    reader = load_pretrained(str(root / "base" / "final"))
    for name in args.runs.split(","):
        run = root / name
        cfg = OmegaConf.load(run / ".hydra" / "config.yaml" if (run / ".hydra").is_dir() else root / "sft" / ".hydra" / "config.yaml")
        base = name == "base"  # the base reads itself, against its own percentile
        ec = EvalConfig.from_run(cfg, progress=False, scorer="self" if base else str(root / "base"),
                                 **({"entropy_threshold": None} if base else {}))
        old = json.loads((run / "metrics.json").read_text())
        old_samples = [json.loads(line) for line in (run / "samples.jsonl").open()]
        model, tok = load_pretrained(str(run / "final"))
        task = task_from_cfg(cfg)
        seed_everything(cfg.seed)
        metrics, samples, _ = evaluate(model, tok, task, ec, reader=None if base else reader)
        (out / f"{name}.json").write_text(json.dumps(metrics, indent=1))
        moved = [(k, old.get(k), v) for k, v in metrics.items()
                 if isinstance(v, (int, float)) and not k.startswith("eval/") and differs(old.get(k), v, args.tolerance)]
        fields = {}
        for a, b in zip(old_samples, samples):
            for k in set(a) | set(b):
                if differs(a.get(k), b.get(k), max(args.tolerance, 1e-6)):
                    fields[k] = fields.get(k, 0) + 1
        print(f"== {name}: {len(moved)} metrics moved; per-sample fields that differ (count): {fields or 'none'}")
        for k, a, b in moved:
            print(f"   {k}: {a} -> {b}")


if __name__ == "__main__":
    main()
