"""rlsf: Reinforcement Learning from Self-Feedback (van Niekerk et al. 2025, arXiv 2507.21931).

Differences from grpo:
  1) Label-free reward: a completion's answer-span confidence under the current policy, the
     mean over the answer tokens of p(top-1) - p(top-2) (rewards/confidence.py, the same code as
     the evaluator's calibration). No gold answer reaches the reward.
  2) The accuracy reward is computed and logged (rewards/accuracy/mean) with weight 0, so a user
     sees whether confidence tracks correctness without it steering training.
  3) `rlsf.mode=dpo` follows the paper's preference route instead of GRPO: sample
     `rlsf.samples_per_prompt` chains per prompt, prefer i over j when conf_i > conf_j and
     conf_i >= `rlsf.threshold` (0.9), and train with TRL's DPOTrainer against an explicit frozen
     copy of the starting model as reference. (The paper trains a reward model on those pairs and
     runs PPO; DPO on the same pairs is its lighter variant.)

    python -m reasonlab.train trainer=rlsf model.init_from=outputs/study/base
    python -m reasonlab.train trainer=rlsf trainer.mode=dpo model.init_from=outputs/study/base
"""

from __future__ import annotations

import copy
import logging
import random
from typing import Optional

from datasets import Dataset

from reasonlab.core import ConfigError
from reasonlab.rewards import ConfidenceReward
from reasonlab.trainers import grpo
from reasonlab.trainers.base import RunContext, common_args, fit_max_length, train_examples
from reasonlab.trainers.options import build_config

log = logging.getLogger("reasonlab")


def build_preference_pairs(
    confidences: list[Optional[float]], threshold: float, max_pairs: int | None = None
) -> list[tuple[int, int]]:
    """(i, j) index pairs, i preferred over j, among one prompt's samples: conf_i > conf_j and
    conf_i >= threshold. A sample with no answer (None) has confidence 0. Ordered by the preferred
    sample's confidence, then by the widest margin, so a cap keeps the clearest preferences."""
    conf = [0.0 if c is None else c for c in confidences]
    order = sorted(range(len(conf)), key=lambda i: -conf[i])
    pairs = [(i, j) for i in order if conf[i] >= threshold for j in reversed(order) if conf[i] > conf[j]]
    return pairs[:max_pairs] if max_pairs else pairs


def dpo_dataset(ctx: RunContext, reward: ConfidenceReward) -> Dataset:
    from reasonlab.eval.generation import generate

    method = ctx.method
    rng = random.Random(ctx.cfg.seed)
    pool = train_examples(ctx)
    examples = rng.sample(pool, min(method.prompts, len(pool)))
    k = method.samples_per_prompt
    samples = generate(ctx.model, ctx.tokenizer, [ex.prompt for ex in examples], ctx.cfg.budget.max_completion_length,
                       do_sample=True, temperature=method.temperature, num_return_sequences=k, seed=ctx.cfg.seed,
                       desc="rlsf: sampling chains" if ctx.cfg.progress else None)
    conf = reward.confidences([ex.prompt for ex in examples for _ in range(k)], samples)
    rows = {"prompt": [], "chosen": [], "rejected": []}
    for p, ex in enumerate(examples):
        group = samples[p * k : (p + 1) * k]
        for i, j in build_preference_pairs(conf[p * k : (p + 1) * k], method.threshold, method.max_pairs_per_prompt):
            rows["prompt"].append(ex.prompt)
            rows["chosen"].append(group[i])
            rows["rejected"].append(group[j])
    if not rows["prompt"]:
        raise ConfigError(
            f"rlsf (dpo): no preference pair reached confidence {method.threshold} on {len(examples)} prompts; "
            "lower trainer.threshold or start from a trained model (model.init_from)"
        )
    log.info("rlsf (dpo): %d preference pairs from %d prompts", len(rows["prompt"]), len(examples))
    return Dataset.from_dict(rows)


def build(ctx: RunContext):
    method = ctx.method
    if method.mode == "grpo":
        if "accuracy" in method.rewards and method.reward_weights[list(method.rewards).index("accuracy")] != 0:
            raise ConfigError("trainer=rlsf is label-free: the accuracy reward may be logged but its weight must be 0")
        return grpo.build(ctx)  # rewards [confidence, accuracy] with weights [1, 0] (conf/trainer/rlsf.yaml)
    if method.mode != "dpo":
        raise ConfigError(f"trainer.mode must be grpo or dpo, got '{method.mode}'")
    from trl import DPOConfig, DPOTrainer

    confidence = ConfidenceReward(ctx.task)
    confidence.bind(ctx.model, ctx.tokenizer)
    dataset = dpo_dataset(ctx, confidence)
    reference = copy.deepcopy(ctx.model).eval()  # explicit: without it DPOTrainer would try to load one
    pairs = [p + c for p, a, b in zip(dataset["prompt"], dataset["chosen"], dataset["rejected"]) for c in (a, b)]
    max_length = fit_max_length(ctx, pairs, "completions (chosen and rejected)")
    args = build_config(DPOConfig, method, dict(**common_args(ctx), beta=method.dpo_beta, max_length=max_length))
    return DPOTrainer(model=ctx.model, ref_model=reference, args=args, train_dataset=dataset,
                      processing_class=ctx.tokenizer, callbacks=ctx.callbacks)
