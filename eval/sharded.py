"""One evaluation over several processes: each rank answers its share of every batch of requests,
and every rank gets all the answers (eval/backend.py's protocol, unchanged for the probes).

Shares are chosen so that no speed-up of the LM backend is lost inside a rank and every answer is
the one a single process gives:
- `Sample`s are dealt to the rank with the fewest rows so far, and the `TokenStats` of a greedy
  sample's completion go to the rank that decoded it (which recorded them while decoding);
  sampled requests keep the stream numbers the whole call would give them, so pass@k's samples
  are the same draws as in one process; `Continue` and reader log-probs go by a checksum of their text;
- `ForcedAnswer` / `AnswerLogprob` requests go by packed group (a chain's truncation points and
  its branches stay together), groups dealt to the least loaded rank.
Answers agree with one process up to floating-point noise of other batch shapes (and exactly on
the deterministic parts).
"""

from __future__ import annotations

import zlib
from typing import Any, Optional, Sequence

from reasonlab.core import dist
from reasonlab.eval.backend import LMBackend, groups_of, unique
from reasonlab.eval.requests import AnswerLogprob, ForcedAnswer, Request, Sample, TokenStats


def _text(r: Request) -> str:
    return r.prompt if isinstance(r, (Sample, TokenStats)) else r.context


def owners(requests: Sequence[Request], world: int, sticky: Optional[dict[str, int]] = None) -> list[int]:
    """The rank that answers each of `requests` (distinct requests), the same on every rank.
    `Sample`s are dealt to the rank with the fewest rows so far (a prompt sampled n times counts
    n); the rank of each greedy prompt is remembered in `sticky`, so that the `TokenStats` of its
    completion go where it was decoded."""
    sticky = {} if sticky is None else sticky
    out = [sticky.get(r.prompt, zlib.crc32(r.prompt.encode("utf-8")) % world) if isinstance(r, TokenStats)
           else zlib.crc32(_text(r).encode("utf-8")) % world for r in requests]
    rows = [0] * world
    for i, r in enumerate(requests):
        if isinstance(r, Sample):
            out[i] = min(range(world), key=lambda k: (rows[k], k))
            rows[out[i]] += r.n
            if r.temperature is None:
                sticky[r.prompt] = out[i]
    packed = [i for i, r in enumerate(requests) if isinstance(r, (ForcedAnswer, AnswerLogprob)) and not getattr(r, "reader", False)]
    if packed:
        groups, where = groups_of([requests[i] for i in packed])
        load, rank_of = [0] * world, []
        for g in groups:  # in first-requested order: the least loaded rank takes the next group
            r = min(range(world), key=lambda k: (load[k], k))
            rank_of.append(r)
            load[r] += len(g.points)
        for i, (g, _) in zip(packed, where):
            out[i] = rank_of[g]
    return out


class ShardedBackend:
    """Answers like `inner` (an LMBackend), each rank computing its share."""

    def __init__(self, inner: LMBackend):
        self.inner = inner
        self.sticky: dict[str, int] = {}  # greedy prompt -> the rank that decoded it

    def num_tokens(self, text: str) -> int:
        return self.inner.num_tokens(text)

    def answer(self, requests: Sequence[Request], *, desc: Optional[str] = None) -> list[Any]:
        todo = unique(requests)
        me, world = dist.rank(), dist.world()
        who = owners(todo, world, self.sticky)
        sampled = [r for r in todo if isinstance(r, Sample) and r.temperature is not None]
        streams = {r: k for k, r in enumerate(sampled)}
        mine = [r for r, w in zip(todo, who) if w == me]
        answers = self.inner.answer(mine, desc=desc if me == 0 else None, streams=streams) if mine else []
        found: dict[Request, Any] = {}
        for share in dist.gather(list(zip(mine, answers))):
            found.update(share)
        return [found[r] for r in requests]


def shard(backend: LMBackend) -> Any:
    """`backend` sharded over the run's processes; itself in one process."""
    return ShardedBackend(backend) if dist.world() > 1 else backend

