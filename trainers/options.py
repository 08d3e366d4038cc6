"""TRL's own settings under `trainer.`, by TRL's own names.

Every field of the TRL config class a method builds (SFTConfig for sft, GRPOConfig for the GRPO
family, DPOConfig for `trainer=rlsf trainer.mode=dpo`) can be set on the command line:

    python -m reasonlab.train trainer=grpo trainer.use_vllm=true trainer.vllm_mode=colocate
    python -m reasonlab.train trainer=sft trainer.packing=true trainer.dataset_num_proc=4

A name reasonlab's conf/trainer/*.yaml already has (`learning_rate`, `beta`, `num_generations`,
...) is read by reasonlab and passed on; any other TRL field is passed to the config unchanged and
wins over a value reasonlab would otherwise fix (`packing`, `shuffle_dataset`, ...). The fields
reasonlab derives from the fair-comparison budget or the run's own settings (`OWNED`) cannot be
set here: the error names the setting to use. An unknown name gets a did-you-mean among TRL's
fields and reasonlab's options. Optional back-ends TRL would import late (vLLM, DeepSpeed) are
checked up front, so their absence is one line, not a traceback in the middle of a run.
"""

from __future__ import annotations

import importlib.util
from dataclasses import fields
from typing import Any, Iterable, Optional

from reasonlab.core import ConfigError, did_you_mean

# TRL's fields that reasonlab sets from one of its own settings: field -> the setting to use instead
OWNED = {
    "per_device_train_batch_size": "trainer.batch_size (the global batch) and trainer.per_device_batch_size",
    "max_steps": "budget.max_steps",
    "num_train_epochs": "budget.max_steps (training is counted in optimizer steps)",
    "max_completion_length": "budget.max_completion_length",
    "output_dir": "output_root (a run writes to output_root/run_name)",
    "run_name": "run_name",
    "seed": "seed",
    "data_seed": "seed",
    "logging_steps": "logging_steps (top level)",
    "save_steps": "checkpoint.every_steps",
    "save_strategy": "checkpoint.every_steps (0: no checkpoints)",
    "save_total_limit": "checkpoint.keep",
    "report_to": "logger.kind (none or wandb)",
    "bf16": "model.dtype=bfloat16 (bf16 is on exactly when the model is bfloat16 on a GPU)",
    "fp16": "model.dtype",
    "use_cpu": "the machine (no GPU visible: CPU; set CUDA_VISIBLE_DEVICES= to hide one)",
    "disable_tqdm": "progress",
    "resume_from_checkpoint": "resume (auto: the latest checkpoint of the run directory)",
}

# trainer options reasonlab reads itself under TRL's name (trainers/base.py, grpo.py, sft.py,
# rlsf.py) and passes on, possibly checked or derived (epsilon_high: null means epsilon)
READ = {
    "learning_rate", "lr_scheduler_type", "warmup_steps", "weight_decay", "max_grad_norm",
    "gradient_accumulation_steps", "gradient_checkpointing", "num_generations", "temperature", "beta",
    "loss_type", "scale_rewards", "epsilon", "epsilon_high", "top_entropy_quantile", "reward_weights",
    "log_completions", "max_length",
}

# optional packages a TRL setting needs: field -> (module, the extra that installs it)
NEEDS = {"use_vllm": ("vllm", "vllm"), "deepspeed": ("deepspeed", "deepspeed")}


def config_classes() -> dict[str, type]:
    from trl import DPOConfig, GRPOConfig, SFTConfig

    return {"SFTConfig": SFTConfig, "GRPOConfig": GRPOConfig, "DPOConfig": DPOConfig}


def config_class(method: Any) -> type:
    """The TRL config class trainer `method` (the trainer config node) is built with."""
    classes = config_classes()
    if method.get("name") == "sft":
        return classes["SFTConfig"]
    if method.get("name") == "rlsf" and method.get("mode") == "dpo":
        return classes["DPOConfig"]
    return classes["GRPOConfig"]


def field_names(cls: type) -> set[str]:
    return {f.name for f in fields(cls)}


def all_field_names() -> set[str]:
    """Every field of SFTConfig, GRPOConfig and DPOConfig."""
    return set().union(*(field_names(c) for c in config_classes().values()))


def owned_message(key: str) -> Optional[str]:
    if key not in OWNED:
        return None
    return f"trainer.{key} is set by reasonlab from {OWNED[key]}: set that instead"


def check(method: Any, own_keys: Iterable[str]) -> None:
    """Every key of the trainer node is reasonlab's (`own_keys`: the trainer's conf/trainer YAML)
    or a field of its TRL config class, none is one reasonlab owns, and the optional packages
    the settings need are installed."""
    cls, own = config_class(method), set(own_keys)
    names = field_names(cls)
    for key in method.keys():
        if key in own:
            continue
        if (message := owned_message(key)) is not None:
            raise ConfigError(message)
        if key not in names:
            raise ConfigError(f"unknown trainer option '{key}': neither reasonlab's trainer={method.get('name')} nor a "
                              f"field of TRL's {cls.__name__}.{did_you_mean(key, [*names, *own])}")
    for key, (module, extra) in NEEDS.items():
        if method.get(key) and importlib.util.find_spec(module) is None:
            raise ConfigError(f"trainer.{key} needs {module}, which is not installed: pip install -e \".[{extra}]\"")


def passed_through(method: Any, cls: type) -> dict[str, Any]:
    """The trainer node's TRL fields that reasonlab does not read itself: given to `cls` as they are."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    names = field_names(cls)
    out = {}
    for key in method.keys():
        if key in names and key not in READ and key not in OWNED:
            value = method.get(key)
            out[key] = OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value
    return out


def build_config(cls: type, method: Any, kwargs: dict[str, Any]) -> Any:
    """`cls(**kwargs)` with the user's TRL-named settings on top; TRL's own refusal as one line."""
    settings = {**kwargs, **passed_through(method, cls)}
    try:
        return cls(**settings)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"TRL's {cls.__name__} refused the trainer settings: {str(e).splitlines()[0]}") from None
