"""Reward functions, TRL-style: `fn(prompts, completions, **kwargs) -> list[float | None]`.

Each is a small picklable callable class whose `__name__` is what TRL logs and W&B shows. The
accuracy reward calls the task's own `score`, the same function the evaluator reports.
"""

from __future__ import annotations

from reasonlab.core import Registry
from reasonlab.rewards.base import Reward
from reasonlab.rewards.accuracy import AccuracyReward, FormatReward
from reasonlab.rewards.confidence import ConfidenceReward
from reasonlab.rewards.rationality import RationalityReward

REWARDS: Registry[type[Reward]] = Registry("reward")
REWARDS.register("accuracy")(AccuracyReward)
REWARDS.register("format")(FormatReward)
REWARDS.register("confidence")(ConfidenceReward)
REWARDS.register("rationality")(RationalityReward)

__all__ = ["REWARDS", "Reward", "AccuracyReward", "ConfidenceReward", "FormatReward", "RationalityReward"]
