"""The common data interface every trainer, reward and evaluator probe uses.

A task yields `Example`s and owns everything that depends on the text format: how a prompt and a
reference completion are written, how the final answer is extracted, how a completion is scored,
how reasoning is split into steps and how a step is checked. Rewards and the evaluator call the
same `score`, so the number a method is trained on and the number it is judged on cannot drift;
`answer_span` locates the characters that answer is read from, which calibration and the
confidence reward measure.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

SPLITS = ("train", "test", "ood")


@dataclass(frozen=True)
class Example:
    id: str
    prompt: str  # the problem as the model sees it (already formatted)
    answer: str  # gold final answer, canonical string
    steps: tuple[str, ...] = ()  # reference reasoning, one string per step
    split: str = "train"
    knowledge: Optional[str] = None  # optional context an RLAG-style trainer may add to the prompt
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


# how completions begin: a text whose tokens do not change when one of these follows is a safe prompt
_COMPLETION_STARTS = ("He", "The", "she", "We", "1", "12", "#", "$", "A")


def stable_prompt(tokenizer, prompt: str) -> tuple[str, str]:
    """(head, lead): the longest head of `prompt` whose tokens stay the same whatever a completion
    begins with (`_COMPLETION_STARTS`), and the characters after it, which the completion then
    begins with. A SentencePiece tokenizer writes Llama-3's "<|end_header_id|>\n\n" + "He" as
    "\n" + "\nHe": a prompt ending in "\n\n" would be tokenized one way at generation time and
    another inside prompt + completion, so the head ends before the second newline and the
    completion begins with it. Byte-level BPE and character tokenizers keep the whole prompt."""
    cut = len(prompt)
    for _ in range(8):
        head = prompt[:cut]
        enc = tokenizer(head, add_special_tokens=False, return_offsets_mapping=True)
        ids = enc["input_ids"]
        if not ids or all(tokenizer(head + s, add_special_tokens=False)["input_ids"][: len(ids)] == ids
                          for s in _COMPLETION_STARTS):
            return head, prompt[cut:]
        cut = enc["offset_mapping"][-1][0]  # without the last token's characters
    return prompt, ""


class Task:
    """Base class. Subclasses set `name`, `version` and implement `_build_split`."""

    name: str = "task"
    version: str = "0"
    answer_prefix: str = "A:"  # written before the final answer; the evaluator forces answers with it
    step_separator: str = "\n"  # joins reference steps into a completion

    def __init__(self) -> None:
        self._cache: dict[str, list[Example]] = {}

    # -- data -------------------------------------------------------------------------------
    def examples(self, split: str) -> list[Example]:
        if split not in SPLITS:
            from reasonlab.core import ConfigError

            raise ConfigError(f"unknown split '{split}'; valid splits: {', '.join(SPLITS)}")
        if split not in self._cache:
            self._cache[split] = self._build_split(split)
        return self._cache[split]

    def _build_split(self, split: str) -> list[Example]:
        raise NotImplementedError

    def use_tokenizer(self, tokenizer) -> None:
        """Called once the model's tokenizer is known (a task with chat prompts renders them here)."""

    # -- text format ------------------------------------------------------------------------
    def format_completion(self, steps: list[str] | tuple[str, ...], answer: str) -> str:
        """Reference completion: the steps, then the answer prefix and the answer."""
        parts = [*steps, f"{self.answer_prefix}{answer}"]
        return self.step_separator.join(parts)

    def reasoning_of(self, completion: str) -> str:
        """The part of a completion before the (last) answer prefix."""
        idx = completion.rfind(self.answer_prefix)
        return completion if idx < 0 else completion[:idx]

    def split_steps(self, completion: str) -> list[str]:
        reasoning = self.reasoning_of(completion)
        return [s.strip() for s in reasoning.split(self.step_separator) if s.strip()]

    def step_spans(self, completion: str) -> Optional[list[tuple[int, int]]]:
        """Character offsets [start, end) in `completion` of each of `split_steps(completion)`, found
        in order (None when a step is not the completion's own text, as for a task whose
        `split_steps` rewrites it). The probes cut the model's own text at these boundaries."""
        spans, pos = [], 0
        for step in self.split_steps(completion):
            start = completion.find(step, pos)
            if start < 0:
                return None
            spans.append((start, start + len(step)))
            pos = start + len(step)
        return spans

    def answer_span(self, completion: str) -> Optional[tuple[int, int]]:
        """Character offsets [start, end) in `completion` of exactly the text the final answer is read
        from (None if there is none): here the first number after the last answer prefix, before the
        next step separator. Calibration and the RLSF reward measure confidence on these characters
        (models/scoring.py), so a task that grades differently overrides this with its grader's span."""
        idx = completion.rfind(self.answer_prefix)
        if idx < 0:
            return None
        start = idx + len(self.answer_prefix)
        match = _NUMBER.search(completion[start:].split(self.step_separator)[0])
        return (start + match.start(), start + match.end()) if match else None

    def extract_answer(self, completion: str) -> Optional[str]:
        """The final answer: the answer span's text, normalized (the same characters, by construction)."""
        span = self.answer_span(completion)
        return None if span is None else self.normalize(completion[span[0] : span[1]])

    def has_answer(self, completion: str) -> bool:
        """Whether the completion states a final answer in the task's format (the format reward)."""
        return self.extract_answer(completion) is not None

    def normalize(self, answer: str) -> str:
        return answer.strip()

    def score(self, completion: str, example: Example) -> float:
        """1.0 if the completion's final answer equals the gold answer, else 0.0."""
        predicted = self.extract_answer(completion)
        return float(predicted is not None and predicted == self.normalize(example.answer))

    def check_step(self, step: str, context: Example) -> Optional[bool]:
        """True/False if the step can be verified against the example; None if the task cannot tell."""
        return None

    # -- probes' hooks (optional: a task without them makes those probes report null) --------
    can_paraphrase = False
    can_corrupt = False

    def paraphrase_steps(self, steps: list[str]) -> Optional[list[str]]:
        """The steps reworded with meaning and numbers kept."""
        return None

    def corrupt_step(self, step: str, rng) -> Optional[str]:
        """The step with one intermediate result changed."""
        return None

    def implied_answer(self, example: Example, steps: list[str], original_steps: Optional[list[str]] = None) -> Optional[str]:
        """The final answer that follows from `steps` (the last one corrupted), continued correctly;
        `original_steps` is the whole chain before the corruption."""
        return None

    # -- faithfulness hooks (eval/probes/swap.py, hint.py, step_validity.py, the chance levels) --
    paraphrase_in_distribution = False  # the paraphraser writes only forms the task itself produces

    def answer_space(self) -> Optional[list[str]]:
        """Every answer the task can have, when it is finite (the chance levels are computed from it)."""
        return None

    def concluded(self, steps: list[str]) -> Optional[str]:
        """The answer that reasoning `steps` conclude (the last step's result), if the task can tell."""
        return None

    def hinted_prompt(self, example: Example, value: str) -> Optional[str]:
        """The example's prompt with a hint that the answer is `value`, in the task's hint format."""
        return None

    def wrong_answer(self, example: Example, rng, avoid: tuple = ()) -> Optional[str]:
        """A plausible answer other than the gold one and those in `avoid` (a hint to mislead with)."""
        return None

    def states_hint(self, completion: str, example: Example, value: str) -> bool:
        """Whether the completion's reasoning mentions the hint or arrives at `value` (it verbalizes it)."""
        return False

    def check_chain(self, steps: list[str], example: Example, answer: Optional[str]) -> Optional[bool]:
        """True if `steps`, in order, derive `answer` from the problem (no missing, repeated or
        reordered step); None if the task cannot tell."""
        return None

    def alphabet(self) -> str:
        """Characters a character-level tokenizer for this task must cover."""
        import string

        return string.digits + string.ascii_letters + string.punctuation + " \n"
