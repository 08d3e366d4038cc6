"""What every method file gets (`RunContext`) and the pieces they share: datasets and the
TrainingArguments that come from the fair-comparison budget."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset

from reasonlab.core import ConfigError, dist
from reasonlab.tasks.base import Example, Task

log = logging.getLogger("reasonlab")


@dataclass
class RunContext:
    cfg: Any  # the composed run config (DictConfig)
    task: Task
    model: Any
    tokenizer: Any
    run_dir: Path
    report_to: list[str]
    callbacks: list[Any] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)  # what building the trainer measured (-> metrics.json)

    @property
    def method(self) -> Any:
        return self.cfg.trainer


def train_examples(ctx: RunContext) -> list[Example]:
    examples = ctx.task.examples("train")
    if not examples:
        raise ConfigError(f"task '{ctx.task.name}' has no train examples")
    return examples


def rl_dataset(task: Task, examples: list[Example]) -> Dataset:
    """Columns TRL's RL trainers read (`prompt`) plus what rewards need to rebuild the Example."""
    return Dataset.from_dict(
        {
            "prompt": [ex.prompt for ex in examples],
            "raw_prompt": [ex.prompt for ex in examples],
            "answer": [ex.answer for ex in examples],
            "steps": [list(ex.steps) for ex in examples],
            "knowledge": [ex.knowledge or "" for ex in examples],
            "example_id": [ex.id for ex in examples],
        }
    )


def check_options(method: Any) -> None:
    """The trainer group's options that every method reads (through `common_args`); launch.schema's
    `validate` calls this before anything is loaded. Method-specific options are checked by the
    method's own `build`."""
    if method.batch_size < 1:
        raise ConfigError(f"trainer.batch_size must be a positive integer, got {method.batch_size}")
    if method.learning_rate <= 0:
        raise ConfigError(f"trainer.learning_rate must be positive, got {method.learning_rate}")
    if method.get("num_generations") is not None and method.num_generations < 2:
        raise ConfigError(f"trainer.num_generations must be >= 2 (group-relative advantages compare completions of "
                          f"one prompt), got {method.num_generations}")
    if method.get("temperature") is not None and not method.temperature > 0:
        raise ConfigError(f"trainer.temperature must be > 0 (sampling), got {method.temperature}")
    if method.get("per_device_batch_size") is not None and method.per_device_batch_size < 1:
        raise ConfigError(f"trainer.per_device_batch_size must be a positive integer or null, got "
                          f"{method.per_device_batch_size}")
    length = method.get("max_length")
    if length is not None and (isinstance(length, bool) or not isinstance(length, int) or length < 1):
        raise ConfigError(f"trainer.max_length must be a positive integer or null (fit the data), got {length!r}")
    allowed = method.get("max_truncated")
    if allowed is not None and (isinstance(allowed, bool) or not isinstance(allowed, (int, float)) or not 0 <= allowed <= 1):
        raise ConfigError(f"trainer.max_truncated must be a share between 0 and 1, got {allowed!r}")
    if method.get("rewards") is not None:  # names and import paths, before any model loads
        from reasonlab.rewards import REWARDS
        from reasonlab.rewards.imported import is_import_path, load_function

        for name in method.rewards:
            load_function(name) if is_import_path(str(name)) else REWARDS.get(str(name))
        if len(method.rewards) != len(method.get("reward_weights") or []):
            raise ConfigError(f"trainer.rewards ({len(method.rewards)}) and trainer.reward_weights "
                              f"({len(method.get('reward_weights') or [])}) must have the same length")


def world_size() -> int:
    """Processes of this run (torchrun and accelerate set WORLD_SIZE; 1 without them)."""
    return dist.env_world()


def batch_layout(method: Any, world: int | None = None) -> tuple[int, int]:
    """(per-device batch, gradient accumulation steps) that make `trainer.batch_size` the global
    batch: every optimizer step trains on batch_size examples (GRPO: completions) whatever the
    number of processes, so a laptop, one GPU and eight train on the same examples per step.
    `trainer.per_device_batch_size` (memory) sets the accumulation; otherwise
    `trainer.gradient_accumulation_steps` (default 1) sets the per-device batch."""
    world = world or world_size()
    batch, per_device = method.batch_size, method.get("per_device_batch_size")
    if per_device is not None:
        if per_device < 1 or batch % (world * per_device):
            raise ConfigError(f"trainer.batch_size ({batch}) is the global batch: it must be a multiple of the "
                              f"{world} process(es) x trainer.per_device_batch_size ({per_device})")
        return per_device, batch // (world * per_device)
    accumulation = method.get("gradient_accumulation_steps") or 1
    if accumulation < 1 or batch % (world * accumulation):
        raise ConfigError(f"trainer.batch_size ({batch}) is the global batch: it must be a multiple of the {world} "
                          f"process(es) x trainer.gradient_accumulation_steps ({accumulation}); or set "
                          "trainer.per_device_batch_size")
    return batch // (world * accumulation), accumulation


def common_args(ctx: RunContext) -> dict[str, Any]:
    """TrainingArguments shared by all methods; the budget is read here and nowhere else."""
    cfg, method = ctx.cfg, ctx.method
    use_cuda = torch.cuda.is_available()
    world = world_size()
    per_device, accumulation = batch_layout(method, world)
    ctx.metrics.update({"train/world_size": world, "train/global_batch": method.batch_size,
                        "train/per_device_batch_size": per_device, "train/gradient_accumulation_steps": accumulation})
    return dict(
        output_dir=str(ctx.run_dir / "checkpoints"),
        max_steps=cfg.budget.max_steps,
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=accumulation,
        learning_rate=method.learning_rate,
        lr_scheduler_type=method.get("lr_scheduler_type", "cosine"),
        warmup_steps=method.get("warmup_steps", 0),
        weight_decay=method.get("weight_decay", 0.0),
        max_grad_norm=method.get("max_grad_norm", 1.0),
        logging_steps=cfg.logging_steps,
        save_strategy="steps" if cfg.checkpoint.every_steps else "no",
        save_steps=cfg.checkpoint.every_steps or 500,
        save_total_limit=cfg.checkpoint.keep,
        report_to=ctx.report_to,
        seed=cfg.seed,
        data_seed=cfg.seed,
        use_cpu=not use_cuda,
        bf16=use_cuda and cfg.model.get("dtype") == "bfloat16",
        dataloader_num_workers=0,
        disable_tqdm=not cfg.progress,
        # TRL's SFTConfig turns this on by default; it costs ~30% time and saves nothing on tiny models
        gradient_checkpointing=method.get("gradient_checkpointing", False),
        run_name=cfg.run_name,
    )


def fit_max_length(ctx: RunContext, texts: list[str], what: str) -> int:
    """The max_length of a method that trains on whole texts (SFT, DPO): `trainer.max_length`, or
    with null the longest of `texts` (each prompt + completion, plus the end token TRL appends),
    never more than the model's positions. Examples still longer are counted (`train/truncated`,
    `train/truncated_share` in metrics.json and the log); more than `trainer.max_truncated` of
    them (a share) is an error, so no run silently trains on answers cut off."""
    method = ctx.method
    lengths = [len(ids) + 1 for ids in ctx.tokenizer(texts, add_special_tokens=False)["input_ids"]]
    positions = getattr(getattr(ctx.model, "config", None), "max_position_embeddings", None)
    wanted = method.get("max_length") or max(lengths, default=1)
    limit = min(wanted, positions) if positions else wanted
    cut = sum(n > limit for n in lengths)
    share = cut / max(1, len(lengths))
    ctx.metrics.update({"train/max_length": limit, "train/longest_example": max(lengths, default=0),
                        "train/truncated": cut, "train/truncated_share": round(share, 4)})
    allowed = method.get("max_truncated", 0.01)
    source = (f"trainer.max_length={method.max_length}" if method.get("max_length") else "the model's "
              f"max_position_embeddings ({positions})") if limit < max(lengths, default=0) else ""
    if cut:
        log.warning("%s: %d of %d training %s (%.1f%%) are longer than %d tokens (%s) and are cut at the end",
                    method.name, cut, len(lengths), what, 100 * share, limit, source)
    if share > allowed:
        raise ConfigError(
            f"{cut} of {len(lengths)} training {what} ({100 * share:.1f}%) are longer than max_length {limit} "
            f"({source}; the longest has {max(lengths)} tokens) and would lose their answers; raise trainer.max_length "
            f"(null: fit the data), or allow it with trainer.max_truncated={share:.2f}")
    return limit
