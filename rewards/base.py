"""Base class for rewards: names itself, and names itself again when it fails."""

from __future__ import annotations

from typing import Any, Optional

from reasonlab.core import RewardError
from reasonlab.tasks.base import Example, Task


class Reward:
    name = "reward"

    def __init__(self, task: Task):
        self.task = task
        self.__name__ = self.name  # TRL and W&B show this

    def score_one(self, completion: str, example: Example) -> Optional[float]:
        raise NotImplementedError

    def __call__(self, prompts: list[str], completions: list[Any], **kwargs: Any) -> list[Optional[float]]:
        out = []
        for i, (prompt, completion) in enumerate(zip(prompts, completions)):
            text = completion if isinstance(completion, str) else completion[-1]["content"]
            example = example_from_columns(kwargs, i, prompt)
            try:
                out.append(self.score_one(text, example))
            except Exception as e:  # name the reward and the sample: a bare traceback from inside TRL says neither
                raise RewardError(
                    f"reward '{self.name}' failed on sample {example.id!r} (completion {text[:80]!r}): "
                    f"{type(e).__name__}: {e}"
                ) from e
        return out


def example_from_columns(columns: dict[str, Any], i: int, prompt: str) -> Example:
    """Rebuild the Example of row i from the dataset columns TRL passes to rewards."""
    return Example(
        id=str(columns["example_id"][i]) if "example_id" in columns else str(i),
        prompt=columns["raw_prompt"][i] if "raw_prompt" in columns else prompt,
        answer=str(columns["answer"][i]),
        steps=tuple(columns["steps"][i]) if "steps" in columns else (),
        knowledge=columns["knowledge"][i] if "knowledge" in columns else None,
    )
