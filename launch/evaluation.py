"""Evaluation as the entry points use it: config -> evaluator -> files (and W&B).

Shared by launch.train (end of training, and every `eval.every_steps` through a callback) and
launch.evaluate (any checkpoint), so a row of the study and a re-evaluated checkpoint go through
the same code.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf
from transformers import TrainerCallback

from launch.common import write_jsonl_atomic
from tasks.registry import ConfigError

log = logging.getLogger("reasonlab")


def eval_cfg(cfg: DictConfig, num_samples: Optional[int] = None) -> dict[str, Any]:
    out = OmegaConf.to_container(cfg.eval, resolve=True)
    out["num_samples"] = num_samples or cfg.budget.eval_samples
    out["seed"] = cfg.seed
    if min(out["answer_max_tokens"], out["batch_size"], out["truncation_rows"]) < 1:
        raise ConfigError("eval.answer_max_tokens, eval.batch_size and eval.truncation_rows must be positive integers")
    from eval.probes import PROBES

    for name in out["probes"]:
        PROBES.get(name)  # an unknown probe fails here, before training, with the valid names
    para = str(out.get("paraphraser") or "rule")
    if para != "rule" and (Path(para).expanduser().exists() or para.startswith(("/", ".", "~"))):
        from models import resolve_checkpoint

        resolve_checkpoint(para)  # a path that is no checkpoint fails here, before training
    out["paraphraser_dtype"] = cfg.model.get("dtype", "float32")
    pk = out["pass_at_k"]
    if pk["n"] < 1 or pk["prompts"] < 0 or any(k < 1 for k in pk["k"]):
        raise ConfigError(f"eval.pass_at_k needs n >= 1, prompts >= 0 and every k >= 1, got {pk}")
    return out


def load_reader(cfg: DictConfig):
    """(model, tokenizer) of the fixed information-gain reader, or None for eval.scorer=self.

    The reader keeps its own tokenizer: the probes pass text, so each model tokenizes it itself."""
    if cfg.eval.scorer in (None, "self"):
        return None
    from models import load_pretrained, resolve_checkpoint

    path = Path(str(cfg.eval.scorer)).expanduser()
    if not path.exists():
        raise ConfigError(f"eval.scorer path does not exist: {path} (use eval.scorer=self or a checkpoint directory)")
    return load_pretrained(str(resolve_checkpoint(path)), cfg.model.get("dtype", "float32"))


def run_evaluation(cfg: DictConfig, model, tokenizer, task, out_dir: Path, reader=None) -> dict[str, Any]:
    """Evaluate, write samples.jsonl, and return the metrics (with `curves`) for metrics.json."""
    from eval.evaluator import evaluate

    metrics, samples, curves = evaluate(model, tokenizer, task, eval_cfg(cfg), reader=reader)
    write_jsonl_atomic(out_dir / "samples.jsonl", samples)
    log_to_wandb(cfg, metrics, samples)
    return {**metrics, "curves": curves}


def scalars(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def log_to_wandb(cfg: DictConfig, metrics: dict[str, Any], samples: list[dict[str, Any]], step: Optional[int] = None) -> None:
    if cfg.get("logger") is None or cfg.logger.kind != "wandb":
        return
    import wandb

    if wandb.run is None:
        return
    data = {f"eval/{k.removeprefix('eval/')}": v for k, v in scalars(metrics).items()}
    if samples and step is None:
        cols = ["id", "split", "prompt", "completion", "answer", "gold", "correct"]
        rows = [[json.dumps(s.get(c)) if isinstance(s.get(c), (list, dict)) else s.get(c) for c in cols]
                for s in samples[: cfg.eval.table_rows]]
        data["eval/samples"] = wandb.Table(columns=cols, data=rows)
    wandb.log(data, step=step)


class PeriodicEval(TrainerCallback):
    """Runs the evaluator every `eval.every_steps` optimizer steps on `eval.during_train_samples`
    test problems, so information gain and faithfulness appear as curves over training."""

    def __init__(self, cfg: DictConfig, tokenizer, task, run_dir: Path, reader=None):
        self.cfg, self.tokenizer, self.task, self.run_dir, self.reader = cfg, tokenizer, task, run_dir, reader

    def on_step_end(self, args, state, control, model=None, **kwargs):
        every = self.cfg.eval.every_steps
        if not every or state.global_step % every or state.global_step == state.max_steps:
            return
        from eval.evaluator import evaluate

        opts = eval_cfg(self.cfg, self.cfg.eval.during_train_samples)
        opts["progress"] = False
        metrics, _, _ = evaluate(model, self.tokenizer, self.task, opts, reader=self.reader)
        row = {"step": state.global_step, **scalars(metrics)}
        with (self.run_dir / "eval_history.jsonl").open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        state.log_history.append({f"eval/{k.removeprefix('eval/')}": v for k, v in row.items()})
        log_to_wandb(self.cfg, metrics, [], step=state.global_step)
