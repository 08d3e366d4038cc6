"""Train one method and evaluate it: `python -m launch.train trainer=<name> task=<name> model=<name> seed=<int>`.

`train(cfg)` is a plain function (tests and the study call it directly); the Hydra app around it
only composes the config. A run directory holds the composed config (.hydra/), `final/` (weights
as safetensors, tokenizer, config), `samples.jsonl` and `metrics.json`, the last written at the
very end, atomically: a run that failed leaves no metrics.json.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from launch.common import latest_checkpoint, provenance, quiet_libraries, seed_everything, write_json_atomic
from launch.schema import validate
from launch.scoring import load_reader, run_evaluation, score_checkpoint, task_from_cfg

if TYPE_CHECKING:
    from eval.config import EvalConfig

log = logging.getLogger("reasonlab")


def start_logger(cfg: DictConfig, run_dir: Path) -> list[str]:
    """W&B when logger=wandb (offline without credentials); returns TRL's report_to."""
    if cfg.logger.kind == "none":
        return []
    import wandb  # logger.kind is none or wandb (schema.LoggerConf.check)

    mode = cfg.logger.mode or os.environ.get("WANDB_MODE")
    if not mode:
        has_key = bool(os.environ.get("WANDB_API_KEY")) or (Path.home() / ".netrc").is_file()
        mode = "online" if has_key else "offline"
        if not has_key:
            log.info("W&B: no credentials found, logging offline (sync later with `wandb sync %s/wandb`)", run_dir)
    config = OmegaConf.to_container(cfg, resolve=True)
    wandb.init(
        project=cfg.logger.project,
        group=cfg.logger.group or Path(cfg.output_root).name,  # the study's or sweep's name
        job_type=cfg.trainer.name,
        name=cfg.run_name,
        tags=[f"trainer:{cfg.trainer.name}", f"task:{cfg.task.name}", f"model:{cfg.model.kind}", f"seed:{cfg.seed}"],
        config=config,
        dir=str(run_dir),
        mode=mode,
        reinit="finish_previous",
    )
    return ["wandb"]


def quiet_progress(trainer) -> None:
    """Keep TRL's progress bar but not its per-log dict dump: metrics go to W&B and trainer_state."""
    from transformers.trainer_callback import ProgressCallback

    class BarOnly(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            pass

    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(BarOnly())


def prepare_run_dir(cfg: DictConfig, run_dir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(metrics of a complete run to reuse, or None; checkpoint to resume from, or None)."""
    metrics_path = run_dir / "metrics.json"
    if cfg.resume == "force_restart":
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        metrics_path.unlink(missing_ok=True)
        return None, None
    if metrics_path.is_file():
        log.info("%s: already complete (%s); skipping it (resume=force_restart retrains)", cfg.run_name, metrics_path)
        return json.loads(metrics_path.read_text()), None
    latest = latest_checkpoint(run_dir)
    if latest:
        log.info("%s: resuming from %s", cfg.run_name, latest)
    return None, latest


def reevaluate_if_stale(cfg: DictConfig, eval_config: EvalConfig, done: dict[str, Any]) -> dict[str, Any]:
    """A complete run scored by another evaluator version is re-scored, not retrained: its final
    checkpoint goes through the current evaluator and metrics.json and samples.jsonl are
    rewritten with the training fields kept, so a table never mixes evaluator versions."""
    from eval.evaluator import EVALUATOR_VERSION

    if done.get("eval/version") == EVALUATOR_VERSION:
        return done
    run_dir = Path(cfg.run_dir)
    final = run_dir / "final"
    if not (final / "config.json").is_file():
        log.warning("%s: scored by evaluator version %s (now %s) and its final checkpoint is gone; keeping the old "
                    "metrics (resume=force_restart retrains)", cfg.run_name, done.get("eval/version"), EVALUATOR_VERSION)
        return done
    log.info("%s: scored by evaluator version %s, now %s: re-evaluating its final checkpoint (no retraining)",
             cfg.run_name, done.get("eval/version"), EVALUATOR_VERSION)
    metrics, _ = score_checkpoint(cfg, eval_config, str(final), run_dir)
    result = {**done, **metrics, **provenance()}
    write_json_atomic(run_dir / "metrics.json", result)
    return result


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train `cfg.trainer` from `cfg.model` on `cfg.task`, evaluate, write metrics.json; return the metrics."""
    quiet_libraries()
    eval_config = validate(cfg)  # every group, the evaluator's settings included: bad values fail before training
    done, resume_from = prepare_run_dir(cfg, Path(cfg.run_dir))
    if done is not None:
        return reevaluate_if_stale(cfg, eval_config, done)
    from launch.callbacks import PeriodicEval, SaveOnPreemption, StopOnNonFiniteLoss
    from models import count_parameters, load_model, save_checkpoint, wrap_peft
    from trainers import TRAINERS, RunContext

    method = TRAINERS.get(cfg.trainer.name)
    run_dir = Path(cfg.run_dir)
    seed_everything(cfg.seed)
    task = task_from_cfg(cfg)
    reader = load_reader(cfg)
    model, tokenizer = load_model(cfg.model, task, seed=cfg.seed, init_from=cfg.model.init_from)
    task.use_tokenizer(tokenizer)  # chat prompts are rendered with the model's own template
    model = wrap_peft(model, cfg.peft)
    log.info(
        "run %s: trainer=%s task=%s model=%s (%s parameters)%s",
        cfg.run_name, cfg.trainer.name, task.name, cfg.model.kind, f"{count_parameters(model):,}",
        f" from {cfg.model.init_from}" if cfg.model.init_from else "",
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    report_to = start_logger(cfg, run_dir)
    preemption = SaveOnPreemption()
    callbacks = [StopOnNonFiniteLoss(), preemption]
    if cfg.eval.every_steps:
        callbacks.append(PeriodicEval(cfg, eval_config, tokenizer, task, run_dir, reader))
    ctx = RunContext(cfg=cfg, task=task, model=model, tokenizer=tokenizer, run_dir=run_dir, report_to=report_to,
                     callbacks=callbacks)
    trainer = method.build(ctx)
    quiet_progress(trainer)

    t0 = time.perf_counter()
    try:
        trainer.train(resume_from_checkpoint=resume_from)
    finally:
        preemption.restore()
    train_seconds = time.perf_counter() - t0
    model = trainer.model
    final = save_checkpoint(model, tokenizer, run_dir / "final")

    seed_everything(cfg.seed)
    metrics = run_evaluation(cfg, eval_config, trainer.model, tokenizer, task, run_dir, reader)
    result = {
        "trainer": cfg.trainer.name,
        "task": task.name,
        "task_version": task.version,
        "model": cfg.model.kind if cfg.model.kind != "hf" else cfg.model.name_or_path,
        "init_from": cfg.model.init_from,
        "seed": cfg.seed,
        **metrics,
        "train/steps": trainer.state.global_step,
        "train/seconds": round(train_seconds, 3),
        "train/final_loss": next((h["loss"] for h in reversed(trainer.state.log_history) if "loss" in h), None),
        # the last training log (TRL's metrics: rewards per function, entropy-mask share, ...)
        "train/last_log": next((h for h in reversed(trainer.state.log_history) if "loss" in h), {}),
        "checkpoint": str(final),
        **provenance(),
    }
    write_json_atomic(run_dir / "metrics.json", result)
    if report_to:
        import wandb

        wandb.run.summary.update({k: v for k, v in result.items() if isinstance(v, (int, float, str))})
        wandb.finish()
    log.info(
        "%s: accuracy %.3f, ood_accuracy %.3f (train %.0fs, eval %.0fs) -> %s/metrics.json",
        cfg.run_name, result["accuracy"], result["ood_accuracy"] or 0.0, train_seconds, metrics["eval/seconds"], run_dir,
    )
    return result


def main() -> None:
    from launch.cli import run_hydra_app

    run_hydra_app(train, "config")


if __name__ == "__main__":
    main()
