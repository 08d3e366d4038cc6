"""SFT trace variants: task-side transforms of the reference completion (`sft.target`).

  trace        the reference steps, then the answer (default)
  answer_only  the answer alone, no reasoning
  swapped      another problem's reasoning, this problem's answer ("reasonless traces",
               Stechly et al. 2025): a fixed random derangement of the training set
  filler       the reasoning replaced by " ..." filler of the same length in characters
               (= tokens for the character tokenizer; close to it for subword tokenizers)
"""

from __future__ import annotations

import random

from reasonlab.core import ConfigError
from reasonlab.tasks.base import Example, Task

TARGETS = ("trace", "answer_only", "swapped", "filler")
FILLER = " ..."


def filler_like(text: str) -> str:
    reps = len(text) // len(FILLER) + 1
    return (FILLER * reps)[: len(text)]


def sft_completions(task: Task, examples: list[Example], target: str, seed: int = 0) -> list[str]:
    """The completion SFT trains on for each example, under the chosen trace variant."""
    if target not in TARGETS:
        raise ConfigError(f"unknown sft target '{target}'; valid targets: {', '.join(TARGETS)}")
    if target != "answer_only" and not any(ex.steps for ex in examples[:100]):
        raise ConfigError(
            f"trainer=sft with target '{target}' needs reference steps, and task '{task.name}' has none: "
            "use trainer.target=answer_only or a task with steps"
        )
    if target == "trace":
        return [task.format_completion(ex.steps, ex.answer) for ex in examples]
    if target == "answer_only":
        return [task.format_completion([], ex.answer) for ex in examples]
    if target == "filler":
        sep = task.step_separator
        return [filler_like(sep.join(ex.steps) + sep) + task.format_completion([], ex.answer) for ex in examples]
    # swapped: a derangement (no example keeps its own steps)
    order = list(range(len(examples)))
    rng = random.Random(seed)
    rng.shuffle(order)
    donors = order[1:] + order[:1]  # i-th in the shuffled cycle takes the next one's steps
    donor_of = dict(zip(order, donors))
    return [task.format_completion(examples[donor_of[i]].steps, ex.answer) for i, ex in enumerate(examples)]
