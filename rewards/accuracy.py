"""Accuracy (the task's `score`) and a format reward (an answer can be extracted at all)."""

from __future__ import annotations

from typing import Optional

from reasonlab.rewards.base import Reward
from reasonlab.tasks.base import Example


class AccuracyReward(Reward):
    name = "accuracy"

    def score_one(self, completion: str, example: Example) -> Optional[float]:
        return self.task.score(completion, example)


class FormatReward(Reward):
    name = "format"

    def score_one(self, completion: str, example: Example) -> Optional[float]:
        return float(self.task.has_answer(completion))
