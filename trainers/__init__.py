"""Trainers: one file per method, one registry key per method.

A method module exposes `build(ctx: RunContext) -> transformers.Trainer` (a TRL trainer).
"""

from __future__ import annotations

from types import ModuleType

from reasonlab.core import Registry
from reasonlab.trainers import entropy_rlvr, grpo, rlag, rlsf, sft
from reasonlab.trainers.base import RunContext

TRAINERS: Registry[ModuleType] = Registry("trainer")
TRAINERS.register("sft")(sft)
TRAINERS.register("grpo")(grpo)
TRAINERS.register("entropy_rlvr")(entropy_rlvr)
TRAINERS.register("rlsf")(rlsf)
TRAINERS.register("rlag")(rlag)

__all__ = ["TRAINERS", "RunContext"]
