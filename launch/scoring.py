"""Evaluation as the entry points use it: run config -> task, reader, evaluator -> files (and W&B).

Shared by launch.train (end of training; re-scoring a complete run that an older evaluator version
scored) and launch.evaluate (any checkpoint), so a row of the study and a re-evaluated checkpoint
go through the same code; launch.callbacks.PeriodicEval (every `eval.every_steps`) logs the same
way. Light to import (no torch or transformers at module level): every entry point imports it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from omegaconf import DictConfig, OmegaConf

from reasonlab.core import ConfigError, dist
from reasonlab.launch.common import seed_everything, write_jsonl_atomic

if TYPE_CHECKING:
    from reasonlab.eval.config import EvalConfig

log = logging.getLogger("reasonlab")


def task_from_cfg(cfg: DictConfig):
    from reasonlab.tasks import load_task

    options = OmegaConf.to_container(cfg.task, resolve=True)
    name = options.pop("name")
    if name == "arith":
        options.setdefault("seed", 0)  # the task's own seed: every run of a study sees the same problems
    return load_task(name, **options)


def load_reader(cfg: DictConfig):
    """(model, tokenizer) of the fixed information-gain reader, or None for eval.scorer=self.

    The reader keeps its own tokenizer: the probes pass text, so each model tokenizes it itself."""
    if cfg.eval.scorer in (None, "self"):
        return None
    from reasonlab.models import load_pretrained, resolve_checkpoint

    path = Path(str(cfg.eval.scorer)).expanduser()
    if not path.exists():
        raise ConfigError(f"eval.scorer path does not exist: {path} (use eval.scorer=self or a checkpoint directory)")
    return load_pretrained(str(resolve_checkpoint(path)), cfg.model.get("dtype", "float32"))


def start_logger(cfg: DictConfig, run_dir: Path) -> list[str]:
    """W&B when logger=wandb (offline without credentials); returns TRL's report_to. launch.train and
    launch.evaluate both start it here."""
    if cfg.logger.kind == "none" or not dist.is_main():  # one W&B run per run: rank 0's
        return []
    import wandb  # logger.kind is none or wandb (schema.LoggerConf.check)

    mode = cfg.logger.mode or os.environ.get("WANDB_MODE")
    if not mode:
        has_key = bool(os.environ.get("WANDB_API_KEY")) or (Path.home() / ".netrc").is_file()
        mode = "online" if has_key else "offline"
        if not has_key:
            log.info("W&B: no credentials found, logging offline (sync later with `wandb sync %s/wandb`)", run_dir)
    config = OmegaConf.to_container(cfg, resolve=True)
    trainer = cfg.trainer.name if "trainer" in cfg else "evaluate"  # launch.evaluate trains nothing
    wandb.init(
        project=cfg.logger.project,
        group=cfg.logger.group or Path(str(cfg.get("output_root") or run_dir.parent)).name,  # the study's or sweep's name
        job_type=trainer,
        name=cfg.get("run_name") or f"eval-{Path(str(cfg.model.name_or_path)).name}-{cfg.task.name}",
        tags=[f"trainer:{trainer}", f"task:{cfg.task.name}", f"model:{cfg.model.kind}", f"seed:{cfg.seed}"],
        config=config,
        dir=str(run_dir),
        mode=mode,
        reinit="finish_previous",
    )
    # evaluations are plotted against the training step they were measured at (eval/step), not
    # against whatever train/global_step the trainer logged last
    wandb.define_metric("eval/step")
    wandb.define_metric("eval/*", step_metric="eval/step")
    return ["wandb"]


def run_evaluation(cfg: DictConfig, eval_config: EvalConfig, model, tokenizer, task, out_dir: Path,
                   reader=None, step: Optional[int] = None) -> dict[str, Any]:
    """Evaluate with `eval_config` (schema.validate's), write samples.jsonl, log to W&B when
    logger=wandb, and return the metrics (with `curves`) for metrics.json."""
    from reasonlab.eval.evaluator import evaluate

    metrics, samples, curves = evaluate(model, tokenizer, task, eval_config, reader=reader)  # every rank: its share
    if dist.is_main():
        write_jsonl_atomic(out_dir / "samples.jsonl", samples)
        log_to_wandb(cfg, metrics, samples, step=step)
    return {**metrics, "curves": curves}


def score_checkpoint(cfg: DictConfig, eval_config: EvalConfig, checkpoint: str, out_dir: Path) -> tuple[dict[str, Any], Any]:
    """(metrics with curves, the task) of a saved checkpoint through the evaluator; samples.jsonl
    goes to `out_dir`. Used by launch.evaluate and by launch.train to re-score a complete run whose
    metrics an older evaluator version wrote."""
    from reasonlab.models import load_pretrained

    task = task_from_cfg(cfg)
    reader = load_reader(cfg)
    model, tokenizer = load_pretrained(checkpoint, cfg.model.dtype, cfg.model.trust_remote_code)
    task.use_tokenizer(tokenizer)
    seed_everything(cfg.seed)
    return run_evaluation(cfg, eval_config, model, tokenizer, task, out_dir, reader), task


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


BASE_COLUMNS = ["id", "split", "prompt", "completion", "answer", "gold", "correct"]


def log_to_wandb(cfg: DictConfig, metrics: dict[str, Any], samples: list[dict[str, Any]], step: Optional[int] = None) -> None:
    """The evaluation's metrics as eval/<metric> at eval/step = `step` (the training step it was
    measured at; 0 for a checkpoint evaluated alone), and the first eval.table_rows samples with every probe's per-sample outcome."""
    if cfg.get("logger") is None or cfg.logger.kind != "wandb":
        return
    import wandb

    if wandb.run is None:
        return
    data: dict[str, Any] = {f"eval/{k.removeprefix('eval/')}": v for k, v in scalars(metrics).items()}
    data["eval/step"] = step or 0
    if samples:
        rows = samples[: cfg.eval.table_rows]
        extra = sorted({k for s in rows for k in s} - set(BASE_COLUMNS))
        cols = [*BASE_COLUMNS, *extra]
        data["eval/samples"] = wandb.Table(columns=cols, data=[
            [json.dumps(s.get(c)) if isinstance(s.get(c), (list, dict)) else s.get(c) for c in cols] for s in rows])
    wandb.log(data)
