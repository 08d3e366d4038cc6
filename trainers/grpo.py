"""grpo: Group Relative Policy Optimisation with a verifiable accuracy reward (TRL's GRPOTrainer).

Differences from SFT:
  1) No reference traces are imitated: for each prompt the policy samples `num_generations`
     completions and is rewarded by the task's own `score` (the number the evaluator reports),
     plus an optional format reward (an answer can be extracted).
  2) Advantage = reward minus the group mean (divided by the group std, `scale_rewards`).
  3) Clipped policy-gradient loss; `beta` = 0 (no KL to a reference model) by default, as in
     DAPO/Dr.GRPO practice, so no reference model is kept in memory.

    python -m reasonlab.train trainer=grpo task=arith model=tiny seed=0
"""

from __future__ import annotations

import torch
from trl import GRPOConfig, GRPOTrainer

from reasonlab.core import ConfigError
from reasonlab.rewards import REWARDS
from reasonlab.rewards.imported import imported_reward, is_import_path
from reasonlab.trainers.base import RunContext, common_args, rl_dataset, train_examples
from reasonlab.trainers.options import build_config


class MaskStatsGRPOTrainer(GRPOTrainer):
    """TRL's GRPOTrainer, plus two logged numbers: the share of completion tokens that receive
    policy gradient (`entropy_mask/grad_token_share`) and the entropy threshold that selects them
    (`entropy_mask/threshold`). With top_entropy_quantile = 1.0 every token gets gradient."""

    def get_high_entropy_mask(self, entropies, mask, threshold):
        selected = super().get_high_entropy_mask(entropies, mask, threshold)
        valid = mask.bool()
        mode = "train" if self.model.training else "eval"
        share = (selected & valid).sum().item() / max(1, valid.sum().item())
        self._metrics[mode]["entropy_mask/grad_token_share"].append(share)
        if valid.any():
            self._metrics[mode]["entropy_mask/threshold"].append(torch.quantile(entropies[valid].float(), threshold).item())
        return selected

    def _compute_loss(self, model, inputs):
        if self.top_entropy_quantile >= 1.0:
            self._metrics["train" if self.model.training else "eval"]["entropy_mask/grad_token_share"].append(1.0)
        return super()._compute_loss(model, inputs)


def grpo_args(ctx: RunContext, **overrides) -> GRPOConfig:
    method = ctx.method
    quantile = method.get("top_entropy_quantile", 1.0)
    if not 0.0 < quantile <= 1.0:
        raise ConfigError(f"trainer.top_entropy_quantile must be in (0, 1], got {quantile}")
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
        top_entropy_quantile=quantile,
        reward_weights=list(method.reward_weights),
        log_completions=bool(method.get("log_completions", False)),
        shuffle_dataset=True,
    )
    kwargs.update(overrides)
    return build_config(GRPOConfig, method, kwargs)


def reward_funcs(ctx: RunContext) -> list:
    names = list(ctx.method.rewards)
    if len(names) != len(ctx.method.reward_weights):
        raise ConfigError(
            f"trainer.rewards ({len(names)}) and trainer.reward_weights ({len(ctx.method.reward_weights)}) "
            "must have the same length"
        )
    return [imported_reward(name, ctx.task) if is_import_path(name) else REWARDS.get(name)(ctx.task) for name in names]


def build(ctx: RunContext, rewards: list | None = None, dataset=None, **arg_overrides) -> GRPOTrainer:
    """The GRPO trainer; the GRPO-family methods (rlag, rlsf, entropy_rlvr) call this with their
    own rewards, dataset or arguments."""
    trainer = MaskStatsGRPOTrainer(
        model=ctx.model,
        reward_funcs=rewards if rewards is not None else reward_funcs(ctx),
        args=grpo_args(ctx, **arg_overrides),
        train_dataset=dataset if dataset is not None else rl_dataset(ctx.task, train_examples(ctx)),
        processing_class=ctx.tokenizer,
        callbacks=ctx.callbacks,
    )
    for reward in trainer.reward_funcs:
        if hasattr(reward, "bind"):
            reward.bind(trainer.model, ctx.tokenizer)  # rewards scored by the current policy
    return trainer
