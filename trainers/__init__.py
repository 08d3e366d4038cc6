"""Trainers: one file per method, one registry key per method.

A method module exposes `build(ctx: RunContext) -> transformers.Trainer` (a TRL trainer).
"""

from __future__ import annotations

from types import ModuleType

from tasks.registry import Registry
from trainers import grpo, sft
from trainers.base import RunContext

TRAINERS: Registry[ModuleType] = Registry("trainer")
TRAINERS.register("sft")(sft)
TRAINERS.register("grpo")(grpo)

__all__ = ["TRAINERS", "RunContext"]
