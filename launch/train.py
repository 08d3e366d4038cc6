"""Train one method and evaluate it: `python -m reasonlab.train trainer=<name> task=<name> model=<name> seed=<int>`.

`train(cfg)` is a plain function (tests and the study call it directly); the Hydra app around it
only composes the config. A run directory holds its settings (run.json, launch/identity.py), the
composed config (.hydra/config.yaml), `final/` (weights as safetensors, tokenizer, config),
`samples.jsonl` and `metrics.json`, the last written at the very end, atomically: a run that
failed leaves no metrics.json.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from reasonlab.core import ConfigError, dist
from reasonlab.launch import identity
from reasonlab.launch.common import checkpoint_step, latest_checkpoint, provenance, quiet_libraries, seed_everything, write_json_atomic
from reasonlab.launch.schema import validate
from reasonlab.launch.scoring import load_reader, run_evaluation, score_checkpoint, start_logger, task_from_cfg

if TYPE_CHECKING:
    from reasonlab.eval.config import EvalConfig

log = logging.getLogger("reasonlab")


def quiet_progress(trainer) -> None:
    """Keep TRL's progress bar but not its per-log dict dump: metrics go to W&B and trainer_state."""
    from transformers.trainer_callback import ProgressCallback

    class BarOnly(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            pass

    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(BarOnly())


def prepare_run_dir(cfg: DictConfig, run_dir: Path) -> tuple[dict[str, Any] | None, str | None, list[str]]:
    """(metrics of a complete run to reuse, or None; checkpoint to resume from, or None; the
    evaluation settings that changed since the run was recorded). A run recorded with other
    training settings refuses (launch/identity.py)."""
    metrics_path = run_dir / "metrics.json"
    if cfg.resume == "force_restart":
        for name in ("checkpoints", "final"):
            shutil.rmtree(run_dir / name, ignore_errors=True)
        for name in ("metrics.json", "samples.jsonl", "eval_history.jsonl", identity.RECORD):
            (run_dir / name).unlink(missing_ok=True)
        return None, None, []
    changed = identity.compare(cfg, run_dir)
    for name in ("metrics.json", "samples.jsonl"):
        if (run_dir / name).is_dir():
            raise ConfigError(f"{run_dir / name} is a directory, where the run writes a file; move it away")
    if metrics_path.is_file():
        try:
            done = json.loads(metrics_path.read_text())
        except ValueError:
            raise ConfigError(f"{metrics_path} is unreadable (truncated?); resume=force_restart retrains the run, or "
                              "delete it to evaluate the final checkpoint again") from None
        if not changed:
            log.info("%s: already complete (%s); skipping it (resume=force_restart retrains)", cfg.run_name, metrics_path)
        return done, None, changed
    latest = latest_checkpoint(run_dir)
    if latest:
        log.info("%s: resuming from %s", cfg.run_name, latest)
    return None, latest, changed


def reevaluate_if_stale(cfg: DictConfig, eval_config: EvalConfig, done: dict[str, Any],
                        changed: list[str] = ()) -> dict[str, Any]:
    """A complete run scored by another evaluator version, or rerun with other evaluation settings
    (`changed`), is re-scored, not retrained: its final checkpoint goes through the current
    evaluator and metrics.json and samples.jsonl are rewritten with the training fields kept, so a
    table never mixes evaluator versions or settings."""
    from reasonlab.eval.evaluator import EVALUATOR_VERSION

    if done.get("eval/version") == EVALUATOR_VERSION and not changed:
        return done
    run_dir = Path(cfg.run_dir)
    final = run_dir / "final"
    why = (f"evaluation settings changed ({', '.join(changed)})" if changed else
           f"scored by evaluator version {done.get('eval/version')}, now {EVALUATOR_VERSION}")
    if not (final / "config.json").is_file():
        if changed:
            raise ConfigError(f"{cfg.run_name}: {why}, and its final checkpoint is gone; resume=force_restart retrains it")
        log.warning("%s: %s and its final checkpoint is gone; keeping the old metrics (resume=force_restart retrains)",
                    cfg.run_name, why)
        return done
    log.info("%s: %s: re-evaluating its final checkpoint (no retraining)", cfg.run_name, why)
    metrics, _ = score_checkpoint(cfg, eval_config, str(final), run_dir)
    result = {**done, **metrics, **provenance()}
    if dist.is_main():
        write_json_atomic(run_dir / "metrics.json", result)
        if changed:
            identity.record(cfg, run_dir)
    dist.barrier()
    return result


def save_final(trainer, tokenizer, out: Path) -> Path:
    """The trained weights to `out` (models.save_checkpoint: merged LoRA, adapter, tokenizer), by
    rank 0 alone. Under DeepSpeed ZeRO-3 or FSDP the weights are sharded: the trainer's
    `save_model` gathers them (every rank takes part) and writes on rank 0."""
    from reasonlab.models import save_checkpoint

    if getattr(trainer, "is_deepspeed_enabled", False) or getattr(trainer, "is_fsdp_enabled", False):
        trainer.save_model(str(out))
        if dist.is_main():
            tokenizer.save_pretrained(out)
    elif dist.is_main():
        save_checkpoint(trainer.model, tokenizer, out)
    dist.barrier()
    return out


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train `cfg.trainer` from `cfg.model` on `cfg.task`, evaluate, write metrics.json; return the metrics."""
    quiet_libraries()
    eval_config = validate(cfg)  # every group, the evaluator's settings included: bad values fail before training
    dist.start()  # under torchrun / accelerate launch: join the process group now, to share the run directory's set-up
    with identity.RunLock(Path(cfg.run_dir)):  # (rank 0's)
        if dist.is_main():
            decision = prepare_run_dir(cfg, Path(cfg.run_dir))
            if decision[0] is None:
                identity.record(cfg, Path(cfg.run_dir))
        decision = dist.broadcast(decision if dist.is_main() else None)  # every rank resumes, skips or trains alike
        done, resume_from, changed = decision
        if done is not None:
            return reevaluate_if_stale(cfg, eval_config, done, changed)
        return _train(cfg, eval_config, resume_from)


def _train(cfg: DictConfig, eval_config: EvalConfig, resume_from: str | None) -> dict[str, Any]:
    from reasonlab.launch.callbacks import PeriodicEval, SaveOnPreemption, StopOnNonFiniteLoss, check_weights
    from reasonlab.models import count_parameters, load_model, wrap_peft
    from reasonlab.trainers import TRAINERS, RunContext

    method = TRAINERS.get(cfg.trainer.name)
    run_dir = Path(cfg.run_dir)
    seed_everything(cfg.seed)
    task = task_from_cfg(cfg)
    if not task.examples("test"):
        raise ConfigError(f"task {task.name} has no test problems, so the run could not be evaluated; give the data "
                          "more rows, or rows with \"split\": \"test\"")
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
        if resume_from and checkpoint_step(resume_from) >= trainer.args.max_steps:
            # trained to the end, interrupted while saving or evaluating: nothing left to train
            log.info("%s: %s is at max_steps=%d; saving and evaluating it", cfg.run_name, resume_from,
                     trainer.args.max_steps)
            from transformers.trainer_callback import TrainerState

            trainer._load_from_checkpoint(resume_from)
            trainer.state = TrainerState.load_from_json(str(Path(resume_from) / "trainer_state.json"))
        else:
            trainer.train(resume_from_checkpoint=resume_from)
    finally:
        preemption.restore()
    train_seconds = time.perf_counter() - t0
    model = trainer.model
    check_weights(model, trainer.state.global_step, trainer.args.output_dir)  # the last steps, after the last log
    final = save_final(trainer, tokenizer, run_dir / "final")

    seed_everything(cfg.seed)
    metrics = run_evaluation(cfg, eval_config, trainer.model, tokenizer, task, run_dir, reader,
                             step=trainer.state.global_step)
    result = {
        "trainer": cfg.trainer.name,
        "task": task.name,
        "task_version": task.version,
        "model": cfg.model.kind if cfg.model.kind != "hf" else cfg.model.name_or_path,
        "init_from": cfg.model.init_from,
        "seed": cfg.seed,
        **metrics,
        **ctx.metrics,
        "train/steps": trainer.state.global_step,
        "train/seconds": round(train_seconds, 3),
        "train/final_loss": next((h["loss"] for h in reversed(trainer.state.log_history) if "loss" in h), None),
        # the last training log (TRL's metrics: rewards per function, entropy-mask share, ...)
        "train/last_log": next((h for h in reversed(trainer.state.log_history) if "loss" in h), {}),
        "checkpoint": str(final),
        **provenance(),
    }
    if dist.is_main():
        write_json_atomic(run_dir / "metrics.json", result)
    if report_to:
        import wandb

        # what the history (eval/<metric>, train/<metric>) does not already hold: no key twice
        logged = {k.removeprefix("eval/") for k in wandb.run.summary.keys()}
        wandb.run.summary.update({k: v for k, v in result.items() if isinstance(v, (int, float, str)) and k not in logged})
        wandb.finish()
    dist.barrier()  # no rank leaves before rank 0 has written
    if not dist.is_main():
        return result
    log.info(
        "%s: accuracy %.3f, ood_accuracy %.3f (train %.0fs, eval %.0fs) -> %s/metrics.json",
        cfg.run_name, result["accuracy"], result["ood_accuracy"] or 0.0, train_seconds, metrics["eval/seconds"], run_dir,
    )
    return result


def main() -> None:
    from reasonlab.launch.cli import run_hydra_app

    run_hydra_app(train, "config")


if __name__ == "__main__":
    main()
