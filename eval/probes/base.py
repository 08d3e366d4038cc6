"""The state every probe reads, and the probe base class."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Optional

from eval.backend import Backend
from eval.truncation import Chain, TruncationResult
from models.scoring import CompletionStats
from tasks.base import Example, Task


@dataclass
class EvalState:
    task: Task
    backend: Backend  # the evaluated model
    reader: Optional[Backend]  # a fixed reader model for information gain (None: the model itself)
    cfg: dict[str, Any]
    examples: list[Example]
    completions: list[str]
    answers: list[Optional[str]]
    correct: list[float]
    steps: list[list[str]]
    records: list[dict[str, Any]]
    notes: dict[str, str] = field(default_factory=dict)
    curves: dict[str, Any] = field(default_factory=dict)
    _memo: dict[str, TruncationResult] = field(default_factory=dict)
    _stats: Optional[list[CompletionStats]] = None

    def chains(self, with_target: bool = True) -> list[Chain]:
        return [Chain(ex.prompt, st, ex.answer if with_target else None) for ex, st in zip(self.examples, self.steps)]

    def truncations(self, who: str = "self") -> TruncationResult:
        """Log-probs of the gold answer and forced answers at every truncation point, computed once
        per backend and shared by the info-gain and early-answering probes."""
        if who not in self._memo:
            backend = self.backend if who == "self" else self.reader
            self._memo[who] = backend.truncations(self.chains(), logprobs=True, answers=(who == "self"))
        return self._memo[who]


    def stats(self) -> list[CompletionStats]:
        """Entropies and answer confidence of every completion, shared by probes: recorded while
        decoding where possible, else from one forward over prompt + completion."""
        if self._stats is None:
            self._stats = [None] * len(self.examples)
        missing = [i for i, st in enumerate(self._stats) if st is None]
        if missing:
            computed = self.backend.completion_stats([self.examples[i].prompt for i in missing],
                                                     [self.completions[i] for i in missing])
            for i, st in zip(missing, computed):
                self._stats[i] = st
        return self._stats


class Probe:
    name = "probe"
    higher_is_better: dict[str, bool] = {}

    def run(self, state: EvalState) -> dict[str, Optional[float]]:
        raise NotImplementedError

    def unsupported(self, state: EvalState, reason: str, keys: list[str]) -> dict[str, Optional[float]]:
        state.notes[self.name] = reason
        return {k: None for k in keys}


def mean(xs: list[float]) -> Optional[float]:
    return statistics.fmean(xs) if xs else None
