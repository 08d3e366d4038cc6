"""The probe protocol: a probe declares what it needs from the model as requests, then scores
the answers.

    class MyProbe(Probe):
        name = "my_probe"
        metrics = {"my/metric": Metric(higher_is_better=True, meaning="share of ...")}

        def requests(self, run):                       # -> list[Request] | Unsupported
            return [ForcedAnswer(ex.prompt) for ex in run.examples]

        def score(self, run, answers):                 # answers[i] answers requests[i]
            same = [float(a == ref) for a, ref in zip(answers, run.answers)]
            return Outcome({"my/metric": mean(same)}, fields={"my/same": same})

`run` is what the evaluator knows before any probe runs (the greedy test completions, their
answers, steps and grades); it is never changed by a probe. A probe instance lives for one
evaluation, so `score` may read what `requests` kept on `self`.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Optional, Sequence, Union

from eval.requests import Request, Unsupported
from tasks.base import Example, Task

if TYPE_CHECKING:  # eval.config checks probe names against eval.probes
    from eval.config import EvalConfig


@dataclass(frozen=True)
class Metric:
    """What a metric means, for reports (launch/compare.py) and readers of metrics.json."""

    higher_is_better: Optional[bool]  # None: a description, neither better nor worse
    meaning: str  # one line
    chance: Optional[float] = None  # the value a model without the property would get, where known
    optional: bool = False  # reported only by some runs (a reader model, an LM paraphraser, ...)


@dataclass(frozen=True)
class Run:
    """The evaluated model's greedy completions of the test split, and what they say."""

    task: Task
    cfg: "EvalConfig"
    examples: list[Example]
    completions: list[str]
    answers: list[Optional[str]]  # the task's extracted answer, or None
    correct: list[float]  # the task's grade of each completion
    steps: list[list[str]]  # the task's reasoning steps of each completion
    has_reader: bool  # AnswerLogprob(reader=True) requests are answered by a fixed reader model
    num_tokens: Callable[[str], int]  # the evaluated model's tokenizer's count

    def usable(self) -> list[int]:
        """The samples with both reasoning steps and an answer."""
        return [i for i, (steps, ref) in enumerate(zip(self.steps, self.answers)) if ref is not None and steps]

    def truncations(self, i: int) -> list[str]:
        """Sample i's truncation contexts: its prompt, then each step and the separator added, c_0..c_n."""
        sep, text = self.task.step_separator, self.examples[i].prompt
        out = [text]
        for step in self.steps[i]:
            text += step + sep
            out.append(text)
        return out


@dataclass
class Outcome:
    metrics: dict[str, Optional[float]]
    fields: dict[str, Sequence[Any]] = field(default_factory=dict)  # per-sample values (samples.jsonl), by sample
    curves: dict[str, Any] = field(default_factory=dict)  # curves.json / metrics.json "curves"
    note: Optional[str] = None  # why a metric is null


class Probe:
    name: ClassVar[str] = "probe"
    # key -> Metric; a `{...}` part of a key stands for any text (pass_at_k/{k})
    metrics: ClassVar[dict[str, Metric]] = {}
    # asks TokenStats of the greedy test completions: the evaluator's backend then keeps them while
    # decoding (a speed hint only: without it they come from a forward, with the same values)
    reads_token_stats: ClassVar[bool] = False
    # asks Continue of contexts that begin like the greedy completions (prompt + edited steps): the
    # backend then keeps their KV caches and encodes only what follows (a speed hint only)
    continues_completions: ClassVar[bool] = False

    @classmethod
    def metric(cls, key: str) -> Optional[Metric]:
        """The declared Metric `key` is an instance of, or None."""
        if key in cls.metrics:
            return cls.metrics[key]
        return next((m for pattern, m in cls.metrics.items() if "{" in pattern and _matches(pattern, key)), None)

    def requests(self, run: Run) -> Union[list[Request], Unsupported]:
        """What the probe needs from the model (default: nothing)."""
        return []

    def score(self, run: Run, answers: list[Any]) -> Union[Outcome, Unsupported]:
        raise NotImplementedError


def _matches(pattern: str, key: str) -> bool:
    return re.fullmatch(re.sub(r"\\{[^}]*\\}", r"[^/]+", re.escape(pattern)), key) is not None


def mean(xs: Sequence[float]) -> Optional[float]:
    return statistics.fmean(xs) if xs else None
