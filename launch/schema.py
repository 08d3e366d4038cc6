"""Typed schema for the run config, registered in Hydra's ConfigStore, and its checks.

Types, help and checks: the default values live in conf/*.yaml (one place). A wrong type on the
command line (`budget.max_steps=abc`) or a misspelled key (`budget.max_step=3`) fails at
composition, before any work starts; a bad value (`budget.max_steps=0`) fails in `validate`,
which the entry points call first: each group's `check` stands next to its type, the trainer
group's in trainers/base.py (`check_options`, next to where the options are read) and the
evaluator's in eval/config.py (`EvalConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from reasonlab.core import ConfigError

if TYPE_CHECKING:
    from reasonlab.eval.config import EvalConfig


@dataclass
class Budget:
    max_steps: int = MISSING  # optimizer steps of every trainer; 2 turns any run into a smoke test
    max_completion_length: int = MISSING  # tokens a completion may have, in training and evaluation
    eval_samples: int = MISSING  # test (and ood) problems the evaluator scores

    @staticmethod
    def check(node, training: bool = True) -> None:
        """launch.evaluate trains nothing: its max_steps is 0 and not checked."""
        keys = ("max_steps", "max_completion_length", "eval_samples") if training else (
            "max_completion_length", "eval_samples")
        for key in keys:
            if node[key] < 1:
                raise ConfigError(f"budget.{key} must be a positive integer, got {node[key]}")


@dataclass
class PassAtKConf:
    n: int = MISSING  # samples per prompt
    k: list[int] = MISSING
    prompts: int = MISSING  # test prompts sampled
    temperature: float = MISSING


@dataclass
class EvalConf:  # checked by eval.config.EvalConfig.from_run (validate), the evaluator's own type
    batch_size: int = MISSING  # prompts per generation batch
    max_new_tokens: int = MISSING  # defaults to budget.max_completion_length
    progress: bool = MISSING  # progress bars during evaluation
    probes: list[str] = MISSING  # reasoning-quality probes (eval/probes/)
    scorer: str = MISSING  # information-gain reader: self or a checkpoint path
    pass_at_k: PassAtKConf = field(default_factory=PassAtKConf)
    paraphraser: str = MISSING  # rule, or an LM checkpoint / hub id that rewords the steps
    answer_max_tokens: int = MISSING
    truncation_rows: int = MISSING  # truncation points per packed batch
    entropy_threshold: Optional[float] = None
    every_steps: int = MISSING  # evaluate every N training steps (0: only at the end)
    during_train_samples: int = MISSING
    table_rows: int = MISSING  # per-sample rows in the W&B table


@dataclass
class ModelConf:
    kind: str = MISSING  # tiny (built in-process) or hf (hub id / local directory)
    name_or_path: Optional[str] = None  # model=hf: hub id or local directory
    init_from: Optional[str] = None  # another run's directory: start from its final/ checkpoint
    dtype: str = "float32"  # float32, bfloat16, float16
    trust_remote_code: bool = False  # never on unless the user sets it
    hidden_size: Optional[int] = None  # model=tiny only, and the three below
    intermediate_size: Optional[int] = None
    num_layers: Optional[int] = None
    num_heads: Optional[int] = None
    num_kv_heads: Optional[int] = None  # grouped-query attention; null: as many as num_heads
    vocab_size: Optional[int] = None  # pad the embedding to this size (a real model's shape); null: the tokenizer's
    max_position_embeddings: Optional[int] = None
    # published per-method settings for this model (conf/model/<name>.yaml), read by conf/trainer/*.yaml:
    # recipe.<sft|grpo|dpo>.<learning_rate|lr_scheduler_type|warmup_steps>; null: the trainer's own defaults
    recipe: Any = None

    @staticmethod
    def check(node) -> None:
        """The loader's own checks (models.check_model_options), before anything loads."""
        from reasonlab.models import check_model_options

        check_model_options(node)


@dataclass
class LoggerConf:
    kind: str = MISSING  # none or wandb
    project: Optional[str] = None  # W&B project
    group: Optional[str] = None  # W&B group (the study or sweep name)
    mode: Optional[str] = None  # W&B mode: online, offline, disabled; unset = offline without credentials

    @staticmethod
    def check(node) -> None:
        if node.kind not in ("none", "wandb"):
            raise ConfigError(f"unknown logger '{node.kind}'; valid loggers: none, wandb")


@dataclass
class CheckpointConf:
    every_steps: int = MISSING  # save a resumable checkpoint every N optimizer steps (0: none)
    keep: int = MISSING  # keep the last N checkpoints

    @staticmethod
    def check(node) -> None:
        if node.every_steps < 0 or node.keep < 1:
            raise ConfigError("checkpoint.every_steps must be >= 0 and checkpoint.keep >= 1")


@dataclass
class RunConfig:
    seed: int = MISSING
    budget: Budget = field(default_factory=Budget)
    eval: EvalConf = field(default_factory=EvalConf)
    model: ModelConf = field(default_factory=ModelConf)
    logger: LoggerConf = field(default_factory=LoggerConf)
    trainer: Any = MISSING  # method options: conf/trainer/<name>.yaml
    task: Any = MISSING  # task options: conf/task/<name>.yaml
    peft: Any = MISSING  # conf/peft/<name>.yaml
    logging_steps: int = MISSING
    resume: str = MISSING  # auto or force_restart
    checkpoint: CheckpointConf = field(default_factory=CheckpointConf)
    progress: bool = MISSING  # progress bars during training
    output_root: str = MISSING  # where run directories go
    run_name: str = MISSING  # named from the options, never from the clock
    run_dir: str = MISSING
    sweep_keys: list[str] = field(default_factory=list)  # set by launch.cli in a multirun

    @staticmethod
    def check(cfg) -> None:
        """The top-level fields."""
        if cfg.resume not in ("auto", "force_restart"):
            raise ConfigError(f"resume must be auto or force_restart, got '{cfg.resume}'")
        if cfg.seed < 0:
            raise ConfigError(f"seed must be >= 0, got {cfg.seed}")
        if cfg.logging_steps < 1:
            raise ConfigError(f"logging_steps must be a positive integer, got {cfg.logging_steps}")
        for group in ("trainer", "task"):
            check_types(cfg[group], group)
        check_output_dir(cfg)


def check_types(node, group: str) -> None:
    """An option of an untyped group (trainer, task) has the type of its default in
    conf/<group>/<name>.yaml: `trainer.learning_rate=abc` fails here, in one line."""
    from reasonlab.launch.common import group_defaults

    defaults = group_defaults(group, node.get("name") or "")
    import re

    import yaml

    for key, default in defaults.items():
        value = node.get(key)
        fallback = re.fullmatch(r"\$\{oc\.select:[^,]+,(.+)\}", default) if isinstance(default, str) else None
        if fallback:  # `${oc.select:model.recipe.sft.learning_rate,2.0e-3}`: the fallback's type
            default = yaml.safe_load(fallback.group(1))
        if value is None or default is None or isinstance(default, str) and "${" in default:
            continue
        if isinstance(default, bool):
            kind = None if isinstance(value, bool) else "true or false"
        elif isinstance(default, float):
            kind = None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
        elif isinstance(default, int):
            kind = None if isinstance(value, int) and not isinstance(value, bool) else "an integer"
        else:
            kind = None
        if kind:
            raise ConfigError(f"{group}.{key} must be {kind}, got {value!r}")


@dataclass
class EvaluateConfig:
    seed: int = MISSING
    budget: Budget = field(default_factory=Budget)
    eval: EvalConf = field(default_factory=EvalConf)
    model: ModelConf = field(default_factory=ModelConf)
    task: Any = MISSING
    output_dir: str = MISSING
    logger: LoggerConf = field(default_factory=LoggerConf)
    progress: bool = True  # progress bars; false turns eval.progress off too

    @staticmethod
    def check(cfg) -> None:
        """The top-level fields."""
        from pathlib import Path

        if not cfg.model.name_or_path:
            raise ConfigError("launch.evaluate needs model.name_or_path=<checkpoint directory, run directory or hub id>")
        path = str(cfg.model.name_or_path)
        if path.startswith(("/", ".", "~")) and not Path(path).expanduser().exists():
            raise ConfigError(f"model.name_or_path: no such directory {path}")
        LoggerConf.check(cfg.logger)
        check_output_dir(cfg)


def check_output_dir(cfg) -> None:
    """The output directory (a run's run_dir, launch.evaluate's output_dir) can be created and
    written. launch.cli also calls this before Hydra, which creates the directory, runs."""
    import tempfile
    from pathlib import Path

    key, setting = ("run_dir", "output_root") if "run_dir" in cfg else ("output_dir", "output_dir")
    if key not in cfg or not cfg[key]:
        return
    if key == "run_dir":
        root, run_dir = Path(str(cfg.output_root)).resolve(), Path(str(cfg.run_dir)).resolve()
        if run_dir == root or not run_dir.is_relative_to(root):
            raise ConfigError(f"run_name '{cfg.run_name}' puts the run outside output_root ({cfg.output_root}); use a "
                              "plain name")
    target = Path(str(cfg[key]))
    try:
        target.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=target).close()
    except OSError as e:
        raise ConfigError(f"cannot write to the output directory {target} ({e.strerror or e}); "
                          f"set {setting} to a writable directory") from None


def check_finite(cfg) -> None:
    """No setting is NaN or infinite (`trainer.learning_rate=nan` passes every `<= 0` check)."""
    import math

    from reasonlab.launch.common import flatten

    for key, value in flatten(cfg).items():
        for i, v in enumerate(value if isinstance(value, list) else [value]):
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"{key}{f'[{i}]' if isinstance(value, list) else ''} must be a finite number, got {v}")


def validate(cfg) -> EvalConfig:
    """Check a composed run config (RunConfig, or EvaluateConfig for launch.evaluate) group by
    group; the first bad value raises ConfigError with one line. Returns the evaluator's settings,
    whose construction is the eval group's check: the run evaluates with exactly these."""
    from reasonlab.eval.config import EvalConfig

    training = "trainer" in cfg
    check_finite(cfg)
    (RunConfig if training else EvaluateConfig).check(cfg)
    Budget.check(cfg.budget, training=training)
    if training:
        from reasonlab.launch.common import group_defaults
        from reasonlab.trainers import options
        from reasonlab.trainers.base import check_options

        check_options(cfg.trainer)
        options.check(cfg.trainer, group_defaults("trainer", cfg.trainer.name))
        CheckpointConf.check(cfg.checkpoint)
        LoggerConf.check(cfg.logger)
    ModelConf.check(cfg.model)
    return EvalConfig.from_run(cfg)


def sweep_suffix(keys, *, _root_) -> str:
    """`,key=value` for each swept key not already in the run name (trainer, task, seed); a
    config group's value is its option's name."""
    from omegaconf import DictConfig, OmegaConf

    parts = []
    for key in keys or []:
        if key in ("trainer", "task", "seed"):
            continue
        value = OmegaConf.select(_root_, key, default=None)
        if isinstance(value, DictConfig):
            from hydra.core.hydra_config import HydraConfig

            value = HydraConfig.get().runtime.choices.get(key) if HydraConfig.initialized() else None
        parts.append(f"{key}={value}")
    return "".join(f",{p}" for p in parts).replace("/", "_")


def register() -> None:
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("sweep_suffix", sweep_suffix, replace=True)
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    cs.store(name="evaluate_schema", node=EvaluateConfig)
