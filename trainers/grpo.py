"""grpo: Group Relative Policy Optimisation with a verifiable accuracy reward (TRL's GRPOTrainer).

Differences from SFT:
  1) No reference traces are imitated: for each prompt the policy samples `num_generations`
     completions and is rewarded by the task's own `score` (the number the evaluator reports),
     plus an optional format reward (an answer can be extracted).
  2) Advantage = reward minus the group mean (divided by the group std, `scale_rewards`).
  3) Clipped policy-gradient loss; `beta` = 0 (no KL to a reference model) by default, as in
     DAPO/Dr.GRPO practice, so no reference model is kept in memory.

    python -m launch.train trainer=grpo task=arith model=tiny seed=0
"""

from __future__ import annotations

from trl import GRPOConfig, GRPOTrainer

from rewards import REWARDS
from tasks.registry import ConfigError
from trainers.base import RunContext, common_args, rl_dataset, train_examples


def grpo_args(ctx: RunContext, **overrides) -> GRPOConfig:
    method = ctx.method
    if method.batch_size % method.num_generations:
        raise ConfigError(
            f"trainer.batch_size ({method.batch_size}) must be a multiple of trainer.num_generations "
            f"({method.num_generations}): each prompt's completions form one group"
        )
    kwargs = dict(
        **common_args(ctx),
        num_generations=method.num_generations,
        max_completion_length=ctx.cfg.budget.max_completion_length,
        temperature=method.temperature,
        beta=method.beta,
        loss_type=method.loss_type,
        scale_rewards=method.scale_rewards,
        epsilon=method.epsilon,
        epsilon_high=method.get("epsilon_high") or method.epsilon,
        top_entropy_quantile=method.get("top_entropy_quantile", 1.0),
        reward_weights=list(method.reward_weights),
        log_completions=False,
        shuffle_dataset=True,
    )
    kwargs.update(overrides)
    return GRPOConfig(**kwargs)


def reward_funcs(ctx: RunContext) -> list:
    names = list(ctx.method.rewards)
    if len(names) != len(ctx.method.reward_weights):
        raise ConfigError(
            f"trainer.rewards ({len(names)}) and trainer.reward_weights ({len(ctx.method.reward_weights)}) "
            "must have the same length"
        )
    return [REWARDS.get(name)(ctx.task) for name in names]


def build(ctx: RunContext) -> GRPOTrainer:
    return GRPOTrainer(
        model=ctx.model,
        reward_funcs=reward_funcs(ctx),
        args=grpo_args(ctx),
        train_dataset=rl_dataset(ctx.task, train_examples(ctx)),
        processing_class=ctx.tokenizer,
        callbacks=ctx.callbacks,
    )
