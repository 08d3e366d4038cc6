"""The probe protocol: a probe declares what it needs from the model as requests, then scores
the answers.

    class MyProbe(Probe):
        name = "my_probe"
        metrics = {"my/metric": Metric(higher_is_better=True, meaning="share of ...")}

        def requests(self, run):                       # -> list[Request] | Unsupported
            return [ForcedAnswer(ex.prompt) for ex in run.examples]

        def score(self, run, answers):                 # answers[i] answers requests[i]
            same = [float(a == ref) for a, ref in zip(answers, run.answers)]
            return Outcome({"my/metric": mean(same)}, fields={"my/same": same}, n={"my/metric": len(same)})

`run` is what the evaluator knows before any probe runs (the greedy test completions, their
answers, steps and grades); it is never changed by a probe. A probe instance lives for one
evaluation, so `score` may read what `requests` kept on `self`.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Optional, Sequence, Union

from reasonlab.eval.requests import Request, Unsupported
from reasonlab.tasks.base import Example, Task

if TYPE_CHECKING:  # eval.config checks probe names against eval.probes
    from reasonlab.eval.config import EvalConfig


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
        """The samples with both reasoning steps and an answer (and steps that are the model's own
        text, which the cut contexts need)."""
        return [i for i, (steps, ref) in enumerate(zip(self.steps, self.answers))
                if ref is not None and steps and self.cuts(i) is not None]

    def stepless(self) -> list[int]:
        """The samples with an answer and no reasoning step: an answer that cannot depend on
        reasoning the model did not write (the faithfulness probes score them by that)."""
        return [i for i, (steps, ref) in enumerate(zip(self.steps, self.answers)) if ref is not None and not steps]

    def cuts(self, i: int) -> Optional[list[int]]:
        """Character offsets in completion i just after each step (and the separator the model wrote
        after it, if it did); None when the task cannot locate its steps in the text."""
        completion, sep = self.completions[i], self.task.step_separator
        spans = self.task.step_spans(completion)
        if spans is None:
            return None
        return [end + len(sep) if sep and completion.startswith(sep, end) else end for _, end in spans]

    def truncations(self, i: int) -> list[str]:
        """Sample i's truncation contexts c_0..c_n: its prompt, then the prompt and the model's own
        text cut after each step (nothing re-joined)."""
        prompt, completion = self.examples[i].prompt, self.completions[i]
        return [prompt, *(prompt + completion[:end] for end in self.cuts(i) or [])]

    def reasoning(self, i: int) -> str:
        """Completion i's reasoning as the model wrote it, up to the end of its last step."""
        cuts = self.cuts(i)
        return self.completions[i][: cuts[-1]] if cuts else ""

    def with_step(self, i: int, j: int, new_step: str) -> str:
        """The context that ends with completion i's step j replaced by `new_step`: the prompt, the
        model's own text before step j, `new_step`, and what the model wrote after step j."""
        completion = self.completions[i]
        start, end = self.task.step_spans(completion)[j]
        return self.examples[i].prompt + completion[:start] + new_step + completion[end: self.cuts(i)[j]]

    def guess_rate(self) -> Optional[float]:
        """The chance that a uniform guess over the task's answer space hits one given answer."""
        space = self.task.answer_space()
        return 1.0 / len(space) if space else None


@dataclass
class Outcome:
    metrics: dict[str, Optional[float]]
    fields: dict[str, Sequence[Any]] = field(default_factory=dict)  # per-sample values (samples.jsonl), by sample
    curves: dict[str, Any] = field(default_factory=dict)  # curves.json / metrics.json "curves"
    note: Optional[str] = None  # why a metric is null
    n: dict[str, int] = field(default_factory=dict)  # metric -> samples it rests on (metrics.json `<key>/n`)
    # metric -> its value for a model that ignores its reasoning and guesses uniformly on any context
    # it was not trained on (metrics.json `<key>/chance`), where the task's answer space defines it
    chance: dict[str, Optional[float]] = field(default_factory=dict)


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


def share(values: Sequence[Optional[float]]) -> tuple[Optional[float], int]:
    """(mean of the values that are not None, how many there are)."""
    known = [v for v in values if v is not None]
    return mean(known), len(known)


def shares(values: Sequence[Optional[float]], chances: Optional[Sequence[Optional[float]]] = None):
    """(mean, n, chance) over the samples whose value is not None; chance is the mean of their
    per-sample chance values (None if any is unknown, or none were given)."""
    used = [i for i, v in enumerate(values) if v is not None]
    value = mean([values[i] for i in used])
    if chances is None or not used or any(chances[i] is None for i in used):
        return value, len(used), None
    return value, len(used), mean([chances[i] for i in used])
