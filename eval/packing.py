"""Packing several contexts that share a beginning into one sequence: the layout behind
`ForcedAnswer` and `AnswerLogprob` requests (eval/truncation.py runs it).

A group's contexts (a chain's truncation points `prompt + s1 sep ... si sep`, and other texts
after the same prompt: filler, reworded steps) all begin like its `main` text. The packed row is
the main text's tokens, then one short block per context: the context's own tokens after the
ones it shares with the main text, then the answer prefix and the scored target (or a guessed
answer). A 4D attention mask lets each block see only the main text's first `bound` tokens and
itself, with the positions it would have alone, so one forward scores every context of a group
and nothing is copied per context: the cost grows with the main text's length plus the number
of contexts, not their product (bench/eval_growth.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Optional, Sequence

import torch


@dataclass
class Point:
    """One context of a group: score `target` after it, and/or decode a forced answer."""

    context: str
    target: Optional[str] = None
    answer: bool = False
    expect: Optional[str] = None  # a guessed answer, checked first (speculation)


@dataclass
class Group:
    main: str  # every point sees the tokens it shares with this text
    points: list[Point] = field(default_factory=list)
    root: int = 0  # characters every context of the group shares (the prompt): a size estimate only

    def size(self) -> int:
        """Roughly how long the packed row is, in characters: the main text, a block per context
        that is a prefix of it, and the own text of the others."""
        target = next((p.target or p.expect for p in self.points if p.target or p.expect), "") or ""
        inside = sum(1 for p in self.points if self.main.startswith(p.context))
        return len(self.main) + inside * (8 + len(target)) + sum(
            len(p.context) - self.root for p in self.points if not self.main.startswith(p.context))


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the common prefix of two token lists."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def row_batches(groups: Sequence[Group], batch_size: int, max_rows: Optional[int]) -> list[list[int]]:
    """Groups sorted by packed length, then cut into batches of at most `batch_size` groups and
    `max_rows` contexts (rows of similar length pad little)."""
    batches, current, rows = [], [], 0
    for k in sorted(range(len(groups)), key=lambda k: groups[k].size()):
        points = len(groups[k].points)
        if current and (len(current) >= batch_size or (max_rows and rows + points > max_rows)):
            batches.append(current)
            current, rows = [], 0
        current.append(k)
        rows += points
    return batches + ([current] if current else [])


def suffix(tokenizer, answer_prefix: str, answer: str) -> tuple[list[int], list[int]]:
    """Token ids of answer_prefix + answer, and the indices of the answer's own tokens."""
    text = answer_prefix + answer
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    start = len(answer_prefix)
    answer_idx = [j for j, (s, e) in enumerate(enc["offset_mapping"]) if e > start and e > s]  # holds answer characters
    if not answer_idx or answer_idx[0] == 0:
        raise ValueError(f"cannot locate the answer tokens of {text!r}")
    return enc["input_ids"], answer_idx


class AnswerPoint(NamedTuple):
    """Where a forced answer is read in the packed row: its block starts at `block` and sees the
    main text's first `bound` tokens; the answer prefix starts at `prefix` (after the context's
    own tokens) and is `length` tokens long, followed by `guess` (a guessed answer's tokens, or
    nothing)."""

    block: int
    prefix: int
    length: int
    guess: list[int]
    bound: int


@dataclass
class Packed:
    ids: torch.Tensor  # (B, T)
    pos: torch.Tensor  # (B, T)
    mask: torch.Tensor  # (B, 1, T, T) bool
    score_blocks: list[list[tuple[int, int, list[int], list[int]]]]  # per group: (point, start, ids, answer idx)
    answer_points: list[list[tuple[int, AnswerPoint]]]  # per group: (point, where its answer is read)


class _Texts:
    """Token ids of a point's texts: the context + answer prefix (+ target / + guessed answer).

    `joint=False` (a character-level tokenizer, whose tokens never straddle the boundary): the
    context's own ids, then the answer prefix's and the answer's, tokenized apart and cached per
    answer. `joint=True` (BPE, SentencePiece, ...): each whole text tokenized from scratch, as the
    model would read it (a Metaspace tokenizer writes `#### 3` after a newline as `####` + `▁3`, alone as
    `▁####` + `▁3`); the answer's tokens are those holding any of its characters."""

    def __init__(self, tokenizer, answer_prefix: str, joint: bool):
        self.tok, self.prefix, self.joint = tokenizer, answer_prefix, joint
        self.prefix_ids = tokenizer(answer_prefix, add_special_tokens=False)["input_ids"]
        self.cache: dict[str, tuple[list[int], list[tuple[int, int]]]] = {}
        self.suffixes: dict[str, tuple[list[int], list[int]]] = {}
        self.guesses: dict[str, list[int]] = {}

    def prepare(self, texts: list[str]) -> None:
        todo = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if todo:  # one batched call
            enc = self.tok(todo, add_special_tokens=False, return_offsets_mapping=True)
            self.cache.update(zip(todo, zip(enc["input_ids"], enc["offset_mapping"])))

    def forced(self, context: str, ctx: list[int]) -> list[int]:
        return self.cache[context + self.prefix][0] if self.joint else ctx + self.prefix_ids

    def scored(self, context: str, ctx: list[int], target: str) -> tuple[list[int], list[int]]:
        """(ids of context + prefix + target, indices of the target's tokens among them)."""
        if not self.joint:
            if target not in self.suffixes:
                self.suffixes[target] = suffix(self.tok, self.prefix, target)
            sfx, idx = self.suffixes[target]
            return ctx + sfx, [len(ctx) + j for j in idx]
        ids, offsets = self.cache[context + self.prefix + target]
        start = len(context) + len(self.prefix)
        idx = [j for j, (a, b) in enumerate(offsets) if b > start and b > a and j > 0]
        if not idx:
            raise ValueError(f"cannot locate the answer tokens of {self.prefix + target!r}")
        return ids, idx

    def guess(self, context: str, ctx: list[int], expect: str) -> list[int]:
        """A guessed answer's tokens after `forced(...)`, or [] when they do not follow it."""
        if not self.joint:
            if expect not in self.guesses:
                g = self.tok(self.prefix + expect, add_special_tokens=False)["input_ids"]
                L = len(self.prefix_ids)
                self.guesses[expect] = g[L:] if g[:L] == self.prefix_ids else []
            return self.guesses[expect]
        f, g = self.forced(context, ctx), self.cache[context + self.prefix + expect][0]
        return g[len(f):] if g[:len(f)] == f else []

    def needed(self, point: Point) -> list[str]:
        if not self.joint:
            return []
        out = [point.context + self.prefix] if point.answer else []
        out += [point.context + self.prefix + a for a in (point.target, point.expect) if a is not None]
        return out


def character_level(tokenizer) -> bool:
    """Every ordinary token one character long (the tiny model's tokenizer)."""
    special = set(getattr(tokenizer, "all_special_tokens", []))
    return all(len(t) == 1 for t in tokenizer.get_vocab() if t not in special)


def pack(tokenizer, answer_prefix: str, groups: Sequence[Group], batch: list[int], device,
         joint: bool = True) -> Packed:
    """One row per group. A point with both a target and a forced answer reads its answer from
    its score block (answer prefix + target) when the guess is the target; forced answers are
    otherwise read from blocks of their own (answer prefix + guess). Every block is the point's
    tokens after the ones it shares with the main text (`_Texts`: tokenized whole with `joint`)."""
    tx = _Texts(tokenizer, answer_prefix, joint)
    rows, scores, answers = [], [], []
    ids_of = _context_ids(tokenizer, groups, batch, joint)
    tx.prepare([t for k in batch for p in groups[k].points for t in tx.needed(p)])
    for k in batch:
        group = groups[k]
        main = ids_of[group.main]
        tokens, pos, blocks, score, mine = list(main), list(range(len(main))), [], [], []

        def block(own: list[int], bound: int) -> int:
            start = len(tokens)
            blocks.append((start, len(own), bound))
            tokens.extend(own)
            pos.extend(bound + j for j in range(len(own)))
            return start

        for p, point in enumerate(group.points):
            ctx = ids_of[point.context]
            guess = tx.guess(point.context, ctx, point.expect) if point.expect is not None else []
            forced = tx.forced(point.context, ctx) if point.answer else None
            if point.target is not None:
                ids, idx = tx.scored(point.context, ctx, point.target)
                bound = min(common_prefix(main, ids), idx[0] - 1)  # the first scored token's logit is in the block
                start = block(ids[bound:], bound)
                score.append((p, start - bound, ids, idx))
                if forced is not None and guess and ids == forced + guess and bound < len(forced):
                    mine.append((p, AnswerPoint(start, start, len(forced) - bound, guess, bound)))
                    continue
            if forced is not None:
                bound = min(common_prefix(main, forced), len(forced) - 1)
                start = block(forced[bound:] + guess, bound)
                mine.append((p, AnswerPoint(start, start, len(forced) - bound, guess, bound)))
        rows.append((len(main), tokens, pos, blocks))
        scores.append(score)
        answers.append(mine)
    return _tensors(tokenizer, rows, scores, answers, device)


def _context_ids(tokenizer, groups: Sequence[Group], batch: list[int], joint: bool) -> dict[str, list[int]]:
    """Token ids of the batch's main texts and contexts, in one batched call. Character-level
    (`joint=False`, where ids(a + b) = ids(a) + ids(b) is already relied on): a context that
    begins the main text takes the main's first tokens, when the main has one token per character."""
    mains = list(dict.fromkeys(groups[k].main for k in batch))
    ids_of = dict(zip(mains, tokenizer(mains, add_special_tokens=False)["input_ids"]))
    rest = []
    for k in batch:
        main = groups[k].main
        whole = not joint and len(ids_of[main]) == len(main)
        for p in groups[k].points:
            if p.context in ids_of:
                continue
            if whole and main.startswith(p.context):
                ids_of[p.context] = ids_of[main][: len(p.context)]
            else:
                rest.append(p.context)
    rest = list(dict.fromkeys(rest))
    if rest:
        ids_of.update(zip(rest, tokenizer(rest, add_special_tokens=False)["input_ids"]))
    return ids_of


def _tensors(tokenizer, rows, scores, answers, device) -> Packed:
    T = max(len(r[1]) for r in rows)
    B = len(rows)
    ids_t = torch.full((B, T), tokenizer.pad_token_id, dtype=torch.long)
    pos_t = torch.zeros((B, T), dtype=torch.long)
    mask = torch.zeros((B, T, T), dtype=torch.bool)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for r, (n_main, tokens, pos, blocks) in enumerate(rows):
        n = len(tokens)
        ids_t[r, :n] = torch.tensor(tokens)
        pos_t[r, :n] = torch.tensor(pos)
        mask[r, :n_main, :n_main] = causal[:n_main, :n_main]
        for start, length, bound in blocks:
            mask[r, start:start + length, :bound] = True
            mask[r, start:start + length, start:start + length] = causal[:length, :length]
        idx = torch.arange(n, T)
        mask[r, idx, idx] = True  # padding attends to itself only (no empty rows, no NaN)
    return Packed(ids_t.to(device), pos_t.to(device), mask[:, None].to(device), scores, answers)
