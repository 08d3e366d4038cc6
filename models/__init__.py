"""Models: the common model interface.

`load_model(model_cfg, task, init_from=None)` returns (model, tokenizer) for every trainer:
  - kind=tiny: a small Llama built in-process with a character tokenizer from the task's alphabet
    (any shape: bench/ builds Qwen2.5-0.5B's with num_kv_heads and a padded vocab_size);
  - kind=hf:   any causal LM from the hub or a local directory (`name_or_path`), the real path;
  - init_from: another run's directory, whose `final/` checkpoint is loaded instead (the study
    starts every method from the same base this way).
A checkpoint directory (`save_checkpoint`) loads with AutoModelForCausalLM / AutoTokenizer alone.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from reasonlab.core import ConfigError, first_line
from reasonlab.models.tokenizer import build_char_tokenizer
from reasonlab.tasks.base import Task

log = logging.getLogger(__name__)
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _dtype(name: str) -> torch.dtype:
    if name not in DTYPES:
        raise ConfigError(f"model.dtype must be one of {', '.join(DTYPES)}, got '{name}'")
    return DTYPES[name]


def build_tiny(cfg: Mapping[str, Any], task: Task, seed: int):
    tokenizer = build_char_tokenizer(task.alphabet())
    vocab = cfg.get("vocab_size") or len(tokenizer)
    if vocab < len(tokenizer):
        raise ConfigError(f"model.vocab_size={vocab} is smaller than the tokenizer ({len(tokenizer)} tokens); "
                          "leave it null or make it larger")
    heads, kv_heads = cfg["num_heads"], cfg.get("num_kv_heads") or cfg["num_heads"]
    if heads % kv_heads or cfg["hidden_size"] % heads:
        raise ConfigError(f"model.num_heads={heads} must divide model.hidden_size={cfg['hidden_size']} and be a "
                          f"multiple of model.num_kv_heads={kv_heads}")
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=cfg["hidden_size"],
        intermediate_size=cfg["intermediate_size"],
        num_hidden_layers=cfg["num_layers"],
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        max_position_embeddings=cfg["max_position_embeddings"],
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)  # the initial weights depend on the run's seed only
    model = LlamaForCausalLM(config)
    return model, tokenizer


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A run directory (uses its final/) or a checkpoint directory; fails clearly if neither."""
    p = Path(path).expanduser()
    if not p.exists():
        raise ConfigError(f"checkpoint path does not exist: {p}")
    for cand in (p / "final", p):
        if (cand / "config.json").is_file() and any(cand.glob("*.safetensors")):
            return cand
    if is_adapter(p):
        return p
    raise ConfigError(
        f"no checkpoint in {p}: expected config.json and *.safetensors there or in {p}/final "
        "(did that run finish?)"
    )


def load_pretrained(path: str, dtype: str = "float32", trust_remote_code: bool = False):
    """Load a causal LM and its tokenizer from a hub id or a local directory."""
    if trust_remote_code:
        log.warning("trust_remote_code=true: code shipped with %s will run on this machine", path)
    local = Path(path).expanduser()
    if local.exists() or path.startswith(("/", ".", "~")):
        path = str(resolve_checkpoint(local))  # a path, not a hub id: fail clearly if it is not a checkpoint
        if is_adapter(Path(path)):
            return load_adapter(Path(path), dtype, trust_remote_code)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=_dtype(dtype), trust_remote_code=trust_remote_code, use_safetensors=True
        )
    except Exception as e:  # noqa: BLE001 - missing, truncated or corrupt files, an unknown model_type: one line
        raise ConfigError(f"could not load model '{path}': {first_line(e)}") from None
    if model.config.vocab_size < len(tokenizer):
        raise ConfigError(
            f"tokenizer of '{path}' has {len(tokenizer)} tokens but the model only {model.config.vocab_size}: "
            "the tokenizer does not belong to this model"
        )
    return model, _for_batches(tokenizer)


def _for_batches(tokenizer):
    """A pad token (the EOS when the tokenizer has none) and left padding, as batched decoding needs."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def is_adapter(path: Path) -> bool:
    """A PEFT adapter directory (adapter_config.json, no full weights of its own)."""
    return (path / "adapter_config.json").is_file() and not (path / "config.json").is_file()


def load_adapter(path: Path, dtype: str = "float32", trust_remote_code: bool = False):
    """A LoRA adapter on the base model its adapter_config.json names, merged: the same weights
    as the run's merged final/ (up to rounding)."""
    import json

    base = json.loads((path / "adapter_config.json").read_text()).get("base_model_name_or_path")
    if not base:
        raise ConfigError(f"the adapter in {path} names no base model (base_model_name_or_path is empty: its base was "
                          f"built in-process); load the merged weights in {path.parent} instead")
    model, tokenizer = load_pretrained(str(base), dtype, trust_remote_code)
    from peft import PeftModel

    try:
        model = PeftModel.from_pretrained(model, str(path)).merge_and_unload()
    except Exception as e:  # noqa: BLE001 - a corrupt or mismatched adapter: one line
        raise ConfigError(f"could not load the adapter in {path} on {base}: {first_line(e)}") from None
    if (path / "tokenizer_config.json").is_file():
        tokenizer = _for_batches(AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code))
    return model, tokenizer


def check_model_options(cfg: Mapping[str, Any]) -> None:
    """The model options `load_model` reads (kind, dtype, name_or_path unless init_from); the run
    config's schema calls this too, so they fail before the task or any weights load."""
    if cfg["kind"] not in ("tiny", "hf"):
        raise ConfigError(f"unknown model kind '{cfg['kind']}'; valid kinds: tiny, hf")
    _dtype(cfg.get("dtype", "float32"))
    if cfg["kind"] == "hf" and not cfg.get("name_or_path") and not cfg.get("init_from"):
        raise ConfigError("model=hf needs model.name_or_path=<hub id or local directory>")


def load_model(cfg: Mapping[str, Any], task: Task, seed: int = 0, init_from: str | None = None):
    """(model, tokenizer) for a run. `init_from` wins over the model kind."""
    if init_from:
        init_from = str(resolve_checkpoint(init_from))  # always a local run or checkpoint directory
        return load_pretrained(init_from, cfg.get("dtype", "float32"), cfg.get("trust_remote_code", False))
    check_model_options({**cfg, "init_from": None})
    if cfg["kind"] == "tiny":
        model, tokenizer = build_tiny(cfg, task, seed)
        return model.to(_dtype(cfg.get("dtype", "float32"))), tokenizer
    return load_pretrained(cfg["name_or_path"], cfg.get("dtype", "float32"), cfg.get("trust_remote_code", False))


def wrap_peft(model, peft_cfg: Mapping[str, Any]):
    """Wrap with a PEFT LoRA adapter when peft=lora; peft=none returns the model unchanged."""
    if not peft_cfg or peft_cfg.get("kind", "none") == "none":
        return model
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=peft_cfg["r"],
        lora_alpha=peft_cfg["alpha"],
        lora_dropout=peft_cfg["dropout"],
        target_modules=list(peft_cfg["target_modules"]),
        task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(model, lora)
    except ValueError as e:
        names = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)})
        raise ConfigError(f"peft.target_modules={list(peft_cfg['target_modules'])} does not fit this model "
                          f"({first_line(e)}); its linear layers: {', '.join(names)}") from None


ADAPTER_DIR = "adapter"  # a LoRA run's final/adapter: the adapter alone, in PEFT's format


def save_checkpoint(model, tokenizer, out_dir: str | os.PathLike) -> Path:
    """Weights as safetensors + config + tokenizer; a LoRA model also saves its adapter in PEFT's
    format (out_dir/adapter, with the tokenizer: small, shareable, loads on its base model), then
    is merged so that out_dir loads alone."""
    out = Path(out_dir)
    if hasattr(model, "merge_and_unload"):
        model.save_pretrained(out / ADAPTER_DIR, safe_serialization=True)
        tokenizer.save_pretrained(out / ADAPTER_DIR)
        model = model.merge_and_unload()
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    from reasonlab.core import make_readable

    make_readable(out)  # safetensors writes its file 0600
    return out


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
