"""rlag: RLAG-style dual reward (after Nie et al. 2025, "Reinforcement Learning from Augmented
Generation", arXiv 2509.20162).

Differences from grpo:
  1) Reward = w_accuracy * accuracy + w_rationality * rationality (`trainer.w_accuracy`,
     `trainer.w_rationality`, default 1 and 1), logged separately (rewards/accuracy/mean, rewards/rationality/mean).
     Rationality is the share of the completion's steps the task's checker accepts; for tasks
     without a checker, the length-normalised likelihood of the explanation under the
     knowledge-augmented prompt (rewards/rationality.py).
  2) Generation cycles between knowledge-augmented prompts (the example's knowledge context, then
     the problem) and plain prompts: of every `augment_every` optimizer steps, the first
     `augment_ratio` share sample from augmented prompts. What the model learns with the
     knowledge in view it must reproduce without it; the evaluator only ever shows plain prompts.
  3) Where this differs from the paper: the paper optimises a contrastive loss (augmented sample
     preferred over the plain one, plus a term on the knowledge text); here its two criteria,
     answer accuracy and explanation rationality, are GRPO rewards. `trainer.objective` accepts
     only `dual_reward`; `contrastive` is not implemented.

    python -m reasonlab.train trainer=rlag model.init_from=outputs/study/base
"""

from __future__ import annotations

import random

from reasonlab.core import ConfigError
from reasonlab.rewards.rationality import augment
from reasonlab.trainers import grpo
from reasonlab.trainers.base import RunContext, rl_dataset, train_examples


def schedule(n_steps: int, every: int, ratio: float) -> list[bool]:
    """Per optimizer step: True if that step samples from augmented prompts."""
    return [(s % every) < round(ratio * every) for s in range(n_steps)]


def cycled_dataset(ctx: RunContext):
    method = ctx.method
    if method.objective != "dual_reward":
        raise ConfigError(f"trainer.objective '{method.objective}' is not implemented; use dual_reward")
    if method.augment_every < 1 or not 0.0 <= method.augment_ratio <= 1.0:
        raise ConfigError("trainer.augment_every must be >= 1 and trainer.augment_ratio in [0, 1]")
    examples = list(train_examples(ctx))
    if not any(ex.knowledge for ex in examples[:100]):
        raise ConfigError(f"trainer=rlag needs knowledge context, and task '{ctx.task.name}' has none")
    random.Random(ctx.cfg.seed).shuffle(examples)
    per_step = method.batch_size // method.num_generations  # prompts per optimizer step
    flags = schedule(ctx.cfg.budget.max_steps, method.augment_every, method.augment_ratio)
    n = min(len(examples), per_step * len(flags))
    data = rl_dataset(ctx.task, examples[:n])
    prompts = [augment(ex.knowledge, ex.prompt) if flags[i // per_step] and ex.knowledge else ex.prompt
               for i, ex in enumerate(examples[:n])]
    return data.remove_columns("prompt").add_column("prompt", prompts)


def build(ctx: RunContext):
    # Rewards [accuracy, rationality] and their weights come from conf/trainer/rlag.yaml. The
    # schedule is in the dataset's order, so the sampler must not reshuffle it.
    return grpo.build(ctx, dataset=cycled_dataset(ctx), shuffle_dataset=False)
