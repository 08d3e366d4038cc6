"""The state every probe reads, and the probe base class."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from eval.backend import Backend
from eval.generation import Request
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
    generated: dict[str, list[str]] = field(default_factory=dict)  # "<probe>/<key>": texts of Probe.requests
    branches: dict[str, dict[int, str]] = field(default_factory=dict)  # probe name: {sample: context} (Probe.branches)
    _memo: dict[str, TruncationResult] = field(default_factory=dict)
    _packed_branches: list[str] = field(default_factory=list)  # probes whose branches the shared pass holds
    _stats: Optional[list[CompletionStats]] = None

    def chains(self, with_target: bool = True, with_branches: bool = False) -> list[Chain]:
        points = {"info_gain", "early_answer"} & set(self.cfg.get("probes", ["info_gain"]))
        return [Chain(ex.prompt, st if points else [], ex.answer if with_target and points else None,
                      [b[i] for b in self.branches.values() if i in b] if with_branches else [])
                for i, (ex, st) in enumerate(zip(self.examples, self.steps))]

    def truncations(self, who: str = "self") -> TruncationResult:
        """Log-probs of the gold answer and forced answers at every truncation point, and the
        forced answers of every probe's branches: one pass per backend, shared by the
        info-gain, early-answering, filler and paraphrase probes."""
        if who not in self._memo:
            backend = self.backend if who == "self" else self.reader
            self._memo[who] = backend.truncations(self.chains(with_branches=who == "self"), logprobs=True,
                                                  answers=(who == "self"))
            if who == "self":
                self._packed_branches = list(self.branches)
        return self._memo[who]

    def branch_answers(self, probe: str) -> dict[int, Optional[str]]:
        """The forced answer after each of `probe`'s branches, by sample."""
        mine = self.branches.get(probe, {})
        if not mine:
            return {}
        if "self" in self._memo and probe not in self._packed_branches:  # added after the shared pass ran
            idx = sorted(mine)
            alone = self.backend.truncations([Chain(self.examples[i].prompt, [], None, [mine[i]]) for i in idx],
                                             logprobs=False, answers=False)
            return {i: row[0] for i, row in zip(idx, alone.branch_answers)}
        res, out = self.truncations("self"), {}
        earlier = list(self.branches.values())[: list(self.branches).index(probe)]
        for i in sorted(mine):
            out[i] = res.branch_answers[i][sum(1 for b in earlier if i in b)]
        return out


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

    def branches(self, state: EvalState) -> dict[int, str]:
        """Contexts (a sample's prompt + other text in place of its reasoning) whose forced answers
        the probe needs, by sample; they are packed with the truncation points of the same chain
        (eval/truncation.py) and read back in `run` with `self.branch_answers(state)`."""
        return {}

    def branch_answers(self, state: EvalState) -> dict[int, Optional[str]]:
        """This probe's forced answers, by sample; its branches are made here when the evaluator's
        branch phase did not run (a probe run on its own)."""
        if self.name not in state.branches:
            state.branches[self.name] = self.branches(state)
        return state.branch_answers(self.name)

    def requests(self, cfg: dict[str, Any], examples: list[Example]) -> dict[str, Request]:
        """Generations that need only the prompts, decoded with the greedy splits in one loop; their
        texts reach `run` as `state.generated["<probe name>/<key>"]` (absent when the backend
        cannot decode several requests at once: the probe then generates them itself)."""
        return {}

    def follow(self, task: Task, cfg: dict[str, Any], examples: list[Example]) -> Optional[Callable[[int, str], Optional[str]]]:
        """A function from (test sample index, its greedy completion) to a context whose greedy
        continuation the probe needs (the whole text, prompt included; None: none for that sample),
        decoded in the same loop right after that completion ends, from the cache of the tokens
        they share. The continuation reaches `run` as `state.generated["<probe name>/follow"][i]`
        (absent when the backend cannot decode several requests at once: the probe then
        generates it itself)."""
        return None

    def run(self, state: EvalState) -> dict[str, Optional[float]]:
        raise NotImplementedError

    def unsupported(self, state: EvalState, reason: str, keys: list[str]) -> dict[str, Optional[float]]:
        state.notes[self.name] = reason
        return {k: None for k in keys}


def mean(xs: list[float]) -> Optional[float]:
    return statistics.fmean(xs) if xs else None
