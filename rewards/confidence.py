"""RLSF confidence reward (van Niekerk et al. 2025): the answer-span confidence of a completion
under the current policy -- mean over the answer tokens of p(top-1) - p(top-2) -- computed by the
same code as the evaluator's calibration (models/scoring.py). Label-free: the gold answer is never
read. A completion with no answer gets confidence 0."""

from __future__ import annotations

from typing import Any, Optional

from reasonlab.models.scoring import completion_stats
from reasonlab.rewards.base import Reward, RewardError


class ConfidenceReward(Reward):
    name = "confidence"

    def __init__(self, task, batch_size: int = 64):
        super().__init__(task)
        self.model = self.tokenizer = None
        self.batch_size = batch_size

    def bind(self, model, tokenizer) -> None:
        """The policy whose confidence is the reward (the trainer's model, updated in place)."""
        self.model, self.tokenizer = model, tokenizer

    def confidences(self, prompts: list[str], completions: list[str]) -> list[Optional[float]]:
        if self.model is None:
            raise RewardError("reward 'confidence' has no model: call bind(model, tokenizer) first")
        was_training = self.model.training
        self.model.eval()
        try:
            stats = completion_stats(self.model, self.tokenizer, self.task, prompts, completions, self.batch_size)
        finally:
            self.model.train(was_training)
        return [s.answer_confidence for s in stats]

    def __call__(self, prompts: list[str], completions: list[Any], **kwargs: Any) -> list[Optional[float]]:
        texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
        try:
            conf = self.confidences(list(prompts), texts)
        except RewardError:
            raise
        except Exception as e:
            raise RewardError(f"reward 'confidence' failed on a batch of {len(texts)} completions: {type(e).__name__}: {e}") from e
        return [0.0 if c is None else c for c in conf]
