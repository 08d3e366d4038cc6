"""Evaluate any checkpoint: `python -m launch.evaluate model.name_or_path=<dir or hub id> task=<name>`.

Writes the same metrics.json (and samples.jsonl) as a training run, to `output_dir`
(default: <checkpoint>/eval-<task>).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from launch.common import provenance, quiet_libraries, seed_everything, write_json_atomic
from launch.train import task_from_cfg
from tasks.registry import ConfigError

log = logging.getLogger("reasonlab")


def score_checkpoint(cfg: DictConfig, checkpoint: str, out_dir: Path) -> tuple[dict[str, Any], Any]:
    """(metrics with curves, the task) of a saved checkpoint through the evaluator `cfg` composes;
    samples.jsonl goes to `out_dir`. Shared by launch.evaluate and the re-scoring of a complete run
    whose metrics an older evaluator version wrote (launch.train)."""
    from launch.evaluation import eval_cfg, load_reader, run_evaluation
    from models import load_pretrained

    task = task_from_cfg(cfg)
    eval_cfg(cfg)
    reader = load_reader(cfg)
    model, tokenizer = load_pretrained(checkpoint, cfg.model.dtype, cfg.model.trust_remote_code)
    task.use_tokenizer(tokenizer)
    seed_everything(cfg.seed)
    return run_evaluation(cfg, model, tokenizer, task, out_dir, reader), task


def evaluate_checkpoint(cfg: DictConfig) -> dict[str, Any]:
    quiet_libraries()
    if not cfg.model.name_or_path:
        raise ConfigError("launch.evaluate needs model.name_or_path=<checkpoint directory, run directory or hub id>")
    if cfg.budget.eval_samples < 1:
        raise ConfigError(f"budget.eval_samples must be a positive integer, got {cfg.budget.eval_samples}")
    out = Path(cfg.output_dir)
    metrics, task = score_checkpoint(cfg, cfg.model.name_or_path, out)
    result = {"trainer": None, "task": task.name, "task_version": task.version, "model": cfg.model.name_or_path,
              "seed": cfg.seed, **metrics, **provenance()}
    write_json_atomic(out / "metrics.json", result)
    log.info("accuracy %.3f, ood_accuracy %.3f -> %s/metrics.json", result["accuracy"], result["ood_accuracy"] or 0.0, out)
    return result


def main() -> None:
    from launch.cli import run_hydra_app

    run_hydra_app(evaluate_checkpoint, "evaluate")


if __name__ == "__main__":
    main()
