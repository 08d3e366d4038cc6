"""An LM paraphraser for the paraphrase probe: `eval.paraphraser=<checkpoint or hub id>`.

Each step is reworded by the paraphrasing model (greedy, one line, through its chat template when
it has one). A rewording must keep every number of the step, in any order; one that drops, adds or
changes a number is replaced by the task's rule-based rewording, and the share of such fallbacks
is reported (`faithfulness/paraphrase_lm_fallback`). The default, `eval.paraphraser=rule`, uses the
task's deterministic paraphraser only.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Optional

from reasonlab.eval.generation import generate
from reasonlab.tasks.base import Task

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
INSTRUCTION = "Reword the following sentence without changing its meaning or any of its numbers."


def numbers(text: str) -> list[str]:
    return sorted(n.replace(",", "") for n in _NUMBER.findall(text))


class LMParaphraser:
    def __init__(self, model, tokenizer, batch_size: int = 32, max_new_tokens: int = 96):
        self.model, self.tokenizer, self.batch_size, self.max_new_tokens = model, tokenizer, batch_size, max_new_tokens

    def prompt(self, step: str) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template([{"role": "user", "content": f"{INSTRUCTION}\n\n{step}"}],
                                                      tokenize=False, add_generation_prompt=True)
        return f"{INSTRUCTION}\nSentence: {step}\nReworded:"

    def __call__(self, task: Task, chains: list[list[str]]) -> tuple[list[Optional[list[str]]], float]:
        """Reworded chains (None where the task cannot reword either) and the share of fallbacks."""
        flat = [s for steps in chains for s in steps]
        outputs = generate(self.model, self.tokenizer, [self.prompt(s) for s in flat], self.max_new_tokens,
                           batch_size=self.batch_size) if flat else []
        reworded, fallbacks, k = [], 0, 0
        for steps in chains:
            new = []
            for step in steps:
                line = outputs[k].strip().split("\n")[0].strip()
                k += 1
                if line and line != step and numbers(line) == numbers(step):
                    new.append(line)
                    continue
                fallbacks += 1
                rule = task.paraphrase_steps([step])
                new.append(rule[0] if rule else None)
            reworded.append(None if any(s is None for s in new) else new)
        return reworded, fallbacks / max(1, len(flat))


@lru_cache(maxsize=2)
def load_lm_paraphraser(path: str, dtype: str = "float32") -> LMParaphraser:
    from reasonlab.models import load_pretrained

    model, tokenizer = load_pretrained(path, dtype)
    return LMParaphraser(model, tokenizer)
