"""Backends answer a batch of requests (eval/requests.py) with a model.

    backend.answer([Sample(p), ForcedAnswer(ctx), ...]) -> [list[str], str | None, ...]

`LMBackend` answers with a causal LM and owns every speed-up, none of which shows in the
answers: equal requests are answered once; `Sample` and `Continue` requests share one decoding
loop (eval/generation.py: rows leave when they end, a prompt's samples share their prefix);
`ForcedAnswer` and `AnswerLogprob` requests that begin alike are packed into one row and scored
by one forward, forced answers read speculatively off it (eval/packing.py, eval/truncation.py);
`TokenStats` of a completion this backend decoded greedily come from the distributions recorded
while decoding it; with `keep_prefixes`, a `Continue` whose context begins like a greedy sample's
text starts from that sample's KV cache (eval/prefixes.py). eval/reference.py answers the same requests the plain way, one at a time; the
tests hold the two equal.
"""

from __future__ import annotations

from typing import Any, Optional, Protocol, Sequence

from reasonlab.eval.generation import Job, decode
from reasonlab.eval.packing import Group, Point
from reasonlab.eval.prefixes import PrefixStore
from reasonlab.eval.requests import KINDS, AnswerLogprob, Continue, ForcedAnswer, Request, Sample, TokenStats
from reasonlab.eval.truncation import analyze
from reasonlab.models.scoring import completion_stats, stats_from_decoding
from reasonlab.tasks.base import Task

SAMPLE_STREAMS = 2 * 1_000_003  # the k-th sampled prompt of a call draws from stream SAMPLE_STREAMS + k


class Backend(Protocol):
    def answer(self, requests: Sequence[Request], *, desc: Optional[str] = None) -> list[Any]: ...

    def num_tokens(self, text: str) -> int: ...


def unique(requests: Sequence[Request]) -> list[Request]:
    """The distinct requests, in the order they first appear; unknown kinds are refused."""
    for r in requests:
        if not isinstance(r, KINDS):
            raise TypeError(f"not a request: {r!r} (eval/requests.py lists the kinds)")
    return list(dict.fromkeys(requests))


def groups_of(requests: Sequence[Request]) -> tuple[list[Group], list[tuple[int, int]]]:
    """ForcedAnswer / AnswerLogprob requests as packed groups: a group is a context and every
    other that begins with it (in sorted order these are contiguous), in the order the requests
    first appear; its main text is the context most others are a prefix of. A forced answer and
    a log-prob of the same context share a point. Returns the groups and, per request,
    (group, point)."""
    by_context: dict[str, list[Point]] = {}
    at: list[Point] = []
    for r in requests:
        mine = by_context.setdefault(r.context, [])
        if isinstance(r, ForcedAnswer):
            p = next((q for q in mine if q.answer), None) or next((q for q in mine if not q.answer), None)
            if p is None or not p.answer:
                p = p or Point(r.context)
                p.answer, p.expect = True, r.expect
        else:
            p = next((q for q in mine if q.target == r.target), None) or next((q for q in mine if q.target is None), None)
            p = p or Point(r.context)
            p.target = r.target
        if not any(q is p for q in mine):
            mine.append(p)
        at.append(p)
    first = {c: i for i, c in enumerate(by_context)}  # the order contexts first appear
    runs: list[list[str]] = []
    for c in sorted(by_context):
        if runs and c.startswith(runs[-1][0]):
            runs[-1].append(c)
        else:
            runs.append([c])
    groups, where = [], {}
    for run in sorted(runs, key=lambda cs: min(first[c] for c in cs)):
        ordered = sorted(run, key=first.__getitem__)
        inside = {c: sum(1 for d in ordered if c.startswith(d)) for c in ordered}
        group = Group(max(ordered, key=inside.__getitem__), root=len(run[0]))  # ties: the first requested
        for c in ordered:
            for p in by_context[c]:
                where[id(p)] = (len(groups), len(group.points))
                group.points.append(p)
        groups.append(group)
    return groups, [where[id(p)] for p in at]


class LMBackend:
    def __init__(self, model, tokenizer, task: Task, *, batch_size: int = 64, max_new_tokens: int = 112,
                 answer_max_tokens: int = 8, truncation_rows: int = 80, seed: int = 0,
                 reader: Optional["LMBackend"] = None, keep_stats: bool = True, keep_prefixes: bool = False):
        self.model, self.tokenizer, self.task, self.reader = model, tokenizer, task, reader
        self.keep_stats = keep_stats  # keep greedy samples' token statistics while decoding (for TokenStats)
        self.batch_size, self.max_new_tokens, self.seed = batch_size, max_new_tokens, seed
        self.answer_max_tokens, self.truncation_rows = answer_max_tokens, truncation_rows
        self._recorded: dict[tuple[str, str], tuple[list[int], list]] = {}  # greedy (prompt, text) -> ids, stats
        # greedy samples' KV caches, kept for the Continue requests that begin like them (eval/prefixes.py)
        self.prefixes = PrefixStore() if keep_prefixes else None

    def answer(self, requests, *, desc=None, streams: Optional[dict[Request, int]] = None):
        """`streams`: the sample stream of each sampled request (eval/sharded.py gives each rank's
        share the numbers the whole call would have); by default the k-th sampled request of the call."""
        todo = unique(requests)
        out: dict[Request, Any] = {}
        out.update(self._decode([r for r in todo if isinstance(r, (Sample, Continue))], desc, streams))
        out.update(self._packed([r for r in todo if isinstance(r, (ForcedAnswer, AnswerLogprob)) and not getattr(r, "reader", False)]))
        read = [r for r in todo if isinstance(r, AnswerLogprob) and r.reader]
        if read:
            if self.reader is None:
                raise ValueError("AnswerLogprob(reader=True) needs a reader model (eval.scorer)")
            scored = self.reader.answer([AnswerLogprob(r.context, r.target) for r in read])
            out.update(zip(read, scored))
        out.update(self._stats([r for r in todo if isinstance(r, TokenStats)]))
        return [out[r] for r in requests]

    def num_tokens(self, text):
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _decode(self, requests, desc, streams=None):
        jobs, k = [], 0
        for r in requests:
            if isinstance(r, Sample) and r.temperature is not None:
                jobs.append(Job(r.prompt, r.n, r.temperature, stream=SAMPLE_STREAMS + (k if streams is None else streams[r])))
                k += 1
            elif isinstance(r, Sample):  # greedy: its token statistics (for TokenStats) and cache (for Continue) are kept
                jobs.append(Job(r.prompt, record=self.keep_stats, keep=self.prefixes is not None))
            else:
                jobs.append(Job(r.context))
        done = decode(self.model, self.tokenizer, jobs, self.max_new_tokens, self.batch_size, self.seed, desc,
                      prefixes=self.prefixes)
        for job, d in zip(jobs, done):
            if job.record and d.per_token is not None:
                self._recorded[(job.prompt, d.texts[0])] = (d.ids, d.per_token)
        return {r: d.texts if isinstance(r, Sample) else d.texts[0] for r, d in zip(requests, done)}

    def _packed(self, requests):
        if not requests:
            return {}
        groups, where = groups_of(requests)
        res = analyze(self.model, self.tokenizer, self.task, groups, max_answer_tokens=self.answer_max_tokens,
                      batch_size=self.batch_size, max_rows=self.truncation_rows)
        return {r: (res.answers if isinstance(r, ForcedAnswer) else res.logprobs)[g][p] for r, (g, p) in zip(requests, where)}

    def _stats(self, requests):
        out = {}
        for r in requests:
            rec = self._recorded.get((r.prompt, r.completion))
            out[r] = None if rec is None else stats_from_decoding(self.tokenizer, self.task, r.completion, *rec)
        missing = [r for r in requests if out[r] is None]
        if missing:
            computed = completion_stats(self.model, self.tokenizer, self.task, [r.prompt for r in missing],
                                        [r.completion for r in missing], batch_size=self.batch_size)
            out.update(zip(missing, computed))
        return out
