"""Evaluate any checkpoint: `python -m reasonlab.evaluate model.name_or_path=<dir or hub id> task=<name>`.

Writes the same metrics.json (and samples.jsonl) as a training run, to `output_dir`
(default: <checkpoint>/eval-<task>), through the same code (launch.scoring).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from reasonlab.core import dist
from reasonlab.launch.common import provenance, quiet_libraries, write_json_atomic
from reasonlab.launch.schema import validate
from reasonlab.launch.scoring import score_checkpoint, start_logger

log = logging.getLogger("reasonlab")


def evaluate_checkpoint(cfg: DictConfig) -> dict[str, Any]:
    quiet_libraries()
    eval_config = validate(cfg)
    dist.start()  # under torchrun / accelerate launch: the ranks share the evaluation, rank 0 writes
    if not cfg.progress:
        eval_config = eval_config.replace(progress=False)
    out = Path(cfg.output_dir)
    report_to = start_logger(cfg, out)
    metrics, task = score_checkpoint(cfg, eval_config, cfg.model.name_or_path, out)
    result = {"trainer": None, "task": task.name, "task_version": task.version, "model": cfg.model.name_or_path,
              "seed": cfg.seed, **metrics, **provenance()}
    if dist.is_main():
        write_json_atomic(out / "metrics.json", result)
    if report_to:
        import wandb

        # what the history (eval/<metric>, train/<metric>) does not already hold: no key twice
        logged = {k.removeprefix("eval/") for k in wandb.run.summary.keys()}
        wandb.run.summary.update({k: v for k, v in result.items() if isinstance(v, (int, float, str)) and k not in logged})
        wandb.finish()
    if dist.is_main():
        log.info("accuracy %.3f, ood_accuracy %.3f -> %s/metrics.json", result["accuracy"], result["ood_accuracy"] or 0.0, out)
    dist.barrier()  # no rank leaves before rank 0 has written
    return result


def main() -> None:
    from reasonlab.launch.cli import run_hydra_app

    run_hydra_app(evaluate_checkpoint, "evaluate")


if __name__ == "__main__":
    main()
