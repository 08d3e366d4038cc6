"""RLAG-style explanation rationality: the share of the completion's steps that the task's step
checker accepts; for a task without a checker, the length-normalised log-likelihood of the
explanation under the knowledge-augmented prompt (exp of the mean token log-prob, so in [0, 1])."""

from __future__ import annotations

from typing import Optional

import torch

from reasonlab.rewards.base import Reward
from reasonlab.tasks.base import Example


class RationalityReward(Reward):
    name = "rationality"

    def __init__(self, task):
        super().__init__(task)
        self.model = self.tokenizer = None

    def bind(self, model, tokenizer) -> None:
        self.model, self.tokenizer = model, tokenizer

    def score_one(self, completion: str, example: Example) -> Optional[float]:
        steps = self.task.split_steps(completion)
        if not steps:
            return 0.0  # no explanation at all
        verdicts = [self.task.check_step(s, example) for s in steps]
        if all(v is not None for v in verdicts):
            return sum(map(float, verdicts)) / len(verdicts)
        return self.likelihood(example, self.task.reasoning_of(completion))

    @torch.no_grad()
    def likelihood(self, example: Example, explanation: str) -> Optional[float]:
        if self.model is None or not example.knowledge:
            return None
        context = augment(example.knowledge, example.prompt)
        ids = self.tokenizer(context + explanation, return_tensors="pt", add_special_tokens=False)["input_ids"]
        n_ctx = len(self.tokenizer(context, add_special_tokens=False)["input_ids"])
        ids = ids.to(next(self.model.parameters()).device)
        logp = torch.log_softmax(self.model(input_ids=ids).logits[0, :-1].float(), -1)
        token_lp = logp.gather(-1, ids[0, 1:, None]).squeeze(-1)[n_ctx - 1 :]  # the explanation's tokens
        return float(token_lp.mean().exp()) if token_lp.numel() else None


def augment(knowledge: str, prompt: str) -> str:
    """The knowledge-augmented prompt RLAG generates from: the example's knowledge, then the problem."""
    return f"{knowledge}|{prompt}"


__all__ = ["RationalityReward", "augment"]
