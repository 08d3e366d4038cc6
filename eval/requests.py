"""What a probe can ask of a model: typed requests, each answered by a backend (eval/backend.py).

    Sample(prompt, n=8, temperature=1.0)  -> list[str]: n completions (greedy when temperature is None)
    Continue(context)                     -> str: the greedy continuation of `context`
    ForcedAnswer(context)                 -> str | None: the answer extracted from what the model writes
                                             right after `context` + the task's answer prefix
    AnswerLogprob(context, target)        -> float: mean log-probability of `target`'s tokens after
                                             `context` + the task's answer prefix
    TokenStats(prompt, completion)        -> models.scoring.CompletionStats: entropies over the
                                             reasoning, confidence over the answer span

Contexts are whole texts, prompt included. Requests are values: two equal requests (from two
probes, or one probe twice) are answered once. How they are answered is the backend's business
(prefix sharing, packing, speculation); the answer of a request never depends on which other
requests came with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union


@dataclass(frozen=True)
class Sample:
    prompt: str
    n: int = 1
    temperature: Optional[float] = None  # None: greedy (n must be 1)

    def __post_init__(self):
        if self.n < 1 or (self.temperature is None and self.n != 1):
            raise ValueError(f"Sample needs n >= 1, and n == 1 when greedy (got n={self.n}, temperature={self.temperature})")
        if self.temperature is not None and not self.temperature > 0:
            raise ValueError(f"Sample temperature must be > 0 or None (greedy), got {self.temperature}")


@dataclass(frozen=True)
class Continue:
    context: str


@dataclass(frozen=True)
class ForcedAnswer:
    context: str
    # a likely answer (the gold one) the backend may check first; never changes the result
    expect: Optional[str] = field(default=None, compare=False)


@dataclass(frozen=True)
class AnswerLogprob:
    context: str
    target: str
    reader: bool = False  # scored by the evaluation's fixed reader model (eval.scorer) instead


@dataclass(frozen=True)
class TokenStats:
    prompt: str
    completion: str


Request = Union[Sample, Continue, ForcedAnswer, AnswerLogprob, TokenStats]
KINDS = (Sample, Continue, ForcedAnswer, AnswerLogprob, TokenStats)


@dataclass(frozen=True)
class Unsupported:
    """Returned by `Probe.requests` when this task or run cannot support the probe: its metrics
    are reported as null, with `reason` in eval/notes."""

    reason: str
