"""Typed schema for the run config, registered in Hydra's ConfigStore.

Types and help only: the default values live in conf/*.yaml (one place). A wrong type on the
command line (`budget.max_steps=abc`) or a misspelled key (`budget.max_step=3`) fails at
composition, before any work starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING


@dataclass
class Budget:
    max_steps: int = MISSING  # optimizer steps of every trainer; 2 turns any run into a smoke test
    max_completion_length: int = MISSING  # tokens a completion may have, in training and evaluation
    eval_samples: int = MISSING  # test (and ood) problems the evaluator scores


@dataclass
class PassAtKConf:
    n: int = MISSING  # samples per prompt
    k: list[int] = MISSING
    prompts: int = MISSING  # test prompts sampled
    temperature: float = MISSING


@dataclass
class EvalConf:
    batch_size: int = MISSING  # prompts per generation batch
    max_new_tokens: int = MISSING  # defaults to budget.max_completion_length
    progress: bool = MISSING  # progress bars during evaluation
    probes: list[str] = MISSING  # reasoning-quality probes (eval/probes/)
    scorer: str = MISSING  # information-gain reader: self or a checkpoint path
    pass_at_k: PassAtKConf = field(default_factory=PassAtKConf)
    paraphraser: str = MISSING  # rule, or an LM checkpoint / hub id that rewords the steps
    answer_max_tokens: int = MISSING
    truncation_rows: int = 80  # truncation points per packed batch
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


@dataclass
class LoggerConf:
    kind: str = MISSING  # none or wandb
    project: Optional[str] = None  # W&B project
    group: Optional[str] = None  # W&B group (the study or sweep name)
    mode: Optional[str] = None  # W&B mode: online, offline, disabled; unset = offline without credentials


@dataclass
class CheckpointConf:
    every_steps: int = MISSING  # save a resumable checkpoint every N optimizer steps (0: none)
    keep: int = MISSING  # keep the last N checkpoints


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


@dataclass
class EvaluateConfig:
    seed: int = MISSING
    budget: Budget = field(default_factory=Budget)
    eval: EvalConf = field(default_factory=EvalConf)
    model: ModelConf = field(default_factory=ModelConf)
    task: Any = MISSING
    output_dir: str = MISSING


def register() -> None:
    cs = ConfigStore.instance()
    cs.store(name="run_schema", node=RunConfig)
    cs.store(name="evaluate_schema", node=EvaluateConfig)
