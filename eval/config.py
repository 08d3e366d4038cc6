"""The evaluator's settings, typed and checked in one place.

    cfg = EvalConfig.default()                       # conf/eval/default.yaml + conf/config.yaml's budget
    cfg = EvalConfig.default(probes=("info_gain",), num_samples=50)
    cfg = EvalConfig.from_run(run_cfg)               # a composed Hydra run config (launch/)

Default values live only in conf/eval/*.yaml (and the budget in conf/config.yaml); this file
holds the types and the checks. A bad value fails here, before any training or decoding, with
one line that names the key.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from reasonlab.core import ConfigError

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"


@dataclass(frozen=True)
class PassAtKConfig:
    n: int  # samples per prompt
    k: tuple[int, ...]
    prompts: int  # test prompts sampled (the first ones of the split)
    temperature: float


@dataclass(frozen=True)
class EvalConfig:
    num_samples: int  # test (and ood) problems scored: budget.eval_samples
    max_new_tokens: int  # tokens per completion: budget.max_completion_length
    batch_size: int  # rows per generation batch
    progress: bool  # progress bars
    probes: tuple[str, ...]  # eval/probes/ (accuracy always runs)
    scorer: str  # information-gain reader: self, or a checkpoint / run directory
    pass_at_k: PassAtKConfig
    paraphraser: str  # rule, or an LM checkpoint / hub id
    answer_max_tokens: int  # tokens decoded for a forced answer
    truncation_rows: int  # contexts per packed forward of the forced-answer / log-prob engine
    entropy_threshold: Optional[float]  # None: the evaluated model's own 80th percentile
    every_steps: int  # also evaluate every N training steps (0: only at the end)
    during_train_samples: int
    table_rows: int  # per-sample rows sent to W&B
    seed: int = 0  # the run's seed: pass@k's draws, the mistake probe's corrupted step
    paraphraser_dtype: str = "float32"  # the run's model.dtype, for an LM paraphraser

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        for key in ("num_samples", "max_new_tokens", "batch_size", "answer_max_tokens", "truncation_rows"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"eval.{key} must be a positive integer, got {value!r}")
        for key in ("every_steps", "during_train_samples", "table_rows"):
            if getattr(self, key) < 0:
                raise ConfigError(f"eval.{key} must be >= 0, got {getattr(self, key)!r}")
        pk = self.pass_at_k
        if pk.n < 1 or pk.prompts < 0 or not pk.k or any(k < 1 for k in pk.k) or not pk.temperature > 0:
            raise ConfigError(f"eval.pass_at_k needs n >= 1, prompts >= 0, every k >= 1 and temperature > 0, got "
                              f"n={pk.n} k={list(pk.k)} prompts={pk.prompts} temperature={pk.temperature}")
        from reasonlab.eval.probes import PROBES

        for name in self.probes:
            PROBES.get(name)  # an unknown probe fails here, with the valid names
        para = str(self.paraphraser or "rule")
        if para != "rule" and (Path(para).expanduser().exists() or para.startswith(("/", ".", "~"))):
            from reasonlab.models import resolve_checkpoint

            resolve_checkpoint(para)  # a path that is no checkpoint fails here

    def replace(self, **changes: Any) -> "EvalConfig":
        return dataclasses.replace(self, **changes)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "EvalConfig":
        """From plain values (an `eval:` group plus num_samples, max_new_tokens, seed); unknown
        keys fail with the valid ones."""
        values = dict(values)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            from reasonlab.core import did_you_mean

            raise ConfigError(f"unknown evaluator setting '{unknown[0]}'.{did_you_mean(unknown[0], names)} "
                              f"Valid settings: {', '.join(sorted(names))}")
        missing = sorted(f.name for f in dataclasses.fields(cls)
                         if f.name not in values and f.default is dataclasses.MISSING)
        if missing:
            raise ConfigError(f"evaluator settings missing: {', '.join(missing)}")
        pk = values["pass_at_k"]
        if not isinstance(pk, PassAtKConfig):
            pk = PassAtKConfig(n=int(pk["n"]), k=tuple(int(k) for k in pk["k"]), prompts=int(pk["prompts"]),
                               temperature=float(pk["temperature"]))
        values["pass_at_k"] = pk
        values["probes"] = tuple(values["probes"])
        values["scorer"] = "self" if values["scorer"] in (None, "") else str(values["scorer"])
        values["paraphraser"] = str(values["paraphraser"] or "rule")
        if values["entropy_threshold"] is not None:
            values["entropy_threshold"] = float(values["entropy_threshold"])
        return cls(**values)

    @classmethod
    def from_run(cls, cfg, num_samples: Optional[int] = None, **changes: Any) -> "EvalConfig":
        """From a composed run config (`cfg.eval`, `cfg.budget`, `cfg.seed`, `cfg.model.dtype`),
        then `changes` (a `pass_at_k` dict updates the group's)."""
        from omegaconf import OmegaConf

        values = OmegaConf.to_container(cfg.eval, resolve=True)
        values["num_samples"] = num_samples or cfg.budget.eval_samples
        values["seed"] = cfg.seed
        values["paraphraser_dtype"] = cfg.model.get("dtype", "float32") if "model" in cfg else "float32"
        if isinstance(changes.get("pass_at_k"), Mapping):
            changes["pass_at_k"] = {**values["pass_at_k"], **changes["pass_at_k"]}
        return cls.from_mapping({**values, **changes})

    @classmethod
    def default(cls, eval_group: str = "default", **changes: Any) -> "EvalConfig":
        """conf/eval/<eval_group>.yaml with conf/config.yaml's budget and seed, then `changes`."""
        from omegaconf import OmegaConf

        def group(name: str):
            path = CONF_DIR / "eval" / f"{name}.yaml"
            if not path.is_file():
                raise ConfigError(f"no evaluator config '{name}' in {CONF_DIR / 'eval'}")
            node = OmegaConf.load(path)
            parents = [group(p) for p in node.pop("defaults", []) if p != "_self_"]
            return OmegaConf.merge(*parents, node)

        root = OmegaConf.load(CONF_DIR / "config.yaml")
        run = OmegaConf.create({"seed": root.seed, "budget": root.budget, "eval": group(eval_group),
                                "model": {"dtype": "float32"}})
        return cls.from_run(run, **changes)
