"""Answer log-probabilities and forced answers at every truncation point of a chain, sharing prefixes.

For a chain (prompt, steps s1..sn) the truncation contexts are

    c_i = prompt + s1 + sep + ... + si + sep + answer_prefix        i = 0..n

and every c_i minus its answer prefix is a prefix of the one full text `prompt + s1 sep ... sn sep`.
So each chain is packed into one sequence: its full text, then one short block per truncation
point (answer_prefix + gold answer), and a 4D attention mask lets each block see only the chain's
first tokens up to its point, and itself. One forward per batch of chains scores every point.
The same forward gives most forced answers too: the greedy answer after c_i agrees with the gold
answer in the block as long as the argmax after each of its tokens is the next one, so a point
whose answer is the gold one (or departs from it and stops at once) needs no decoding step. Only
the points that decode on do, one step per token, several packed batches stacked into one loop
on their KV caches. Nothing is copied per point, so the cost grows with chain length plus the
number of points (bench/eval_growth.py).
A chain may also carry branches: other texts after the same prompt (the filler and paraphrase
probes' rewritten reasoning), each packed as one more block that sees the tokens it shares with
the chain and gets its forced answer with the points, so those probes re-encode no prompt and
add no pass of their own.
`answer_logprobs_naive` re-encodes every context from scratch, one at a time: the reference the
fast path is tested against, and the baseline of bench/eval_speed.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Optional, Sequence

import torch

from tasks.base import Task


@dataclass
class Chain:
    prompt: str
    steps: list[str]
    target: Optional[str]  # answer whose log-probability is scored (the gold answer); None: skip
    branches: list[str] = field(default_factory=list)  # other contexts after the prompt: a forced answer each


def prefixes(task: Task, chain: Chain) -> tuple[str, list[int]]:
    """The full text and the character length of each truncation prefix (i = 0..n)."""
    sep = task.step_separator
    text, ends = chain.prompt, [len(chain.prompt)]
    for step in chain.steps:
        text += step + sep
        ends.append(len(text))
    return text, ends


def _token_boundaries(tokenizer, text: str, char_ends: list[int]) -> tuple[list[int], list[int]]:
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    # tokens that end at or before each character boundary
    bounds = [sum(1 for (_, e) in offsets if e <= end) for end in char_ends]
    return ids, bounds


def _suffix(tokenizer, task: Task, answer: str) -> tuple[list[int], list[int]]:
    """Token ids of answer_prefix + answer, and the indices of the answer's own tokens."""
    text = task.answer_prefix + answer
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    start = len(task.answer_prefix)
    answer_idx = [j for j, (s, e) in enumerate(enc["offset_mapping"]) if s >= start and e > s]
    if not answer_idx or answer_idx[0] == 0:
        raise ValueError(f"cannot locate the answer tokens of {text!r}")
    return enc["input_ids"], answer_idx


def _device(model) -> torch.device:
    return next(model.parameters()).device


@dataclass
class TruncationResult:
    logprobs: list[list[float]]  # per chain, L_i for i = 0..n ([] when the chain has no target)
    answers: list[list[Optional[str]]]  # per chain, the forced answer after c_i for i = 0..n
    branch_answers: list[list[Optional[str]]] = field(default_factory=list)  # per chain, one per branch


def _packed_chars(chain: Chain) -> int:
    """Roughly how long a chain's packed row is (characters): its text, a block per point, its branches."""
    text = len(chain.prompt) + sum(len(s) + 1 for s in chain.steps)
    return text + (len(chain.steps) + 1) * (8 + len(chain.target or "")) + sum(len(b) - len(chain.prompt) for b in chain.branches)


def _row_batches(chains: Sequence[Chain], batch_size: int, max_rows: Optional[int]) -> list[list[int]]:
    """Chains sorted by packed length, then cut into batches (rows of similar length pad little)."""
    batches, current, rows = [], [], 0
    for k in sorted(range(len(chains)), key=lambda k: _packed_chars(chains[k])):
        chain = chains[k]
        points = len(chain.steps) + 1 + len(chain.branches)
        if current and (len(current) >= batch_size or (max_rows and rows + points > max_rows)):
            batches.append(current)
            current, rows = [], 0
        current.append(k)
        rows += points
    return batches + ([current] if current else [])


def _single_token(tokenizer, text: str) -> list[int]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids if len(ids) == 1 else []


@dataclass
class _Packed:
    """One row per chain: the chain's tokens, then a block per truncation point (its scoring
    suffix and/or its answer prefix), each block seeing only the chain's first `bound` tokens and
    itself, through a 4D attention mask. No cache is copied per point, so the cost grows with
    the chain's length plus the number of points, not their product."""

    ids: torch.Tensor  # (B, T)
    pos: torch.Tensor  # (B, T)
    mask: torch.Tensor  # (B, 1, T, T) bool
    score_blocks: list[list[tuple[int, list[int], list[int]]]]  # per chain: (start, ids, answer idx) per point
    answer_points: list[list["_AnswerPoint"]]  # per chain: its truncation points, then its branches
    points: list[int]  # per chain, its truncation points with a forced answer; its branches follow them


class _AnswerPoint(NamedTuple):
    """Where a forced answer is read in the packed row: its block starts at `block` and sees the
    chain's first `bound` tokens; the answer prefix starts at `prefix` (after a branch's own text)
    and is `length` tokens long, followed by `guess` (the gold answer's tokens, or nothing)."""

    block: int
    prefix: int
    length: int
    guess: list[int]
    bound: int


def common_prefix(a: list[int], b: list[int]) -> int:
    """Length of the common prefix of two token lists."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _pack(tokenizer, task, chains, batch, prefix_ids, logprobs, answers, device) -> _Packed:
    """Forced answers are decoded speculatively: where the gold answer is known, each answer block
    is the answer prefix followed by the gold answer's tokens (the score block itself, when the
    point is also scored), so one forward tells how far the greedy answer agrees with it; only
    the points whose answer departs from it decode on (`_speculate`, `_decode_unfinished`)."""
    rows, scores, answer_points = [], [], []
    L = len(prefix_ids)
    for k in batch:
        chain = chains[k]
        text, ends = prefixes(task, chain)
        ids, bounds = _token_boundaries(tokenizer, text, ends)
        tokens, pos = list(ids), list(range(len(ids)))
        blocks = []  # (start, length, bound)
        score, mine = [], []
        sfx, a_idx = _suffix(tokenizer, task, chain.target) if chain.target is not None else (None, None)
        guess = sfx[L:] if sfx is not None and sfx[:L] == prefix_ids else []  # the gold answer after the prefix

        def block(own: list[int], bound: int) -> int:
            start = len(tokens)
            blocks.append((start, len(own), bound))
            tokens.extend(own)
            pos.extend(bound + j for j in range(len(own)))
            return start

        if logprobs and sfx is not None:
            for b in bounds:
                start = block(sfx, b)
                score.append((start, sfx, a_idx))
                if answers and guess:  # the forced answer reads the score block
                    mine.append(_AnswerPoint(start, start, L, guess, b))
        if answers and not mine:
            for b in bounds:
                start = block(prefix_ids + guess, b)
                mine.append(_AnswerPoint(start, start, L, guess, b))
        n_points = len(mine) if answers else 0
        for branch in chain.branches:  # sees the tokens it shares with the chain, then its own
            branch_ids = tokenizer(branch, add_special_tokens=False)["input_ids"]
            b = common_prefix(ids, branch_ids)
            own = branch_ids[b:]
            start = block(own + prefix_ids + guess, b)
            mine.append(_AnswerPoint(start, start + len(own), L, guess, b))
        rows.append((ids, tokens, pos, blocks))
        scores.append(score)
        answer_points.append((mine, n_points))
    T = max(len(r[1]) for r in rows)
    B = len(rows)
    ids_t = torch.full((B, T), tokenizer.pad_token_id, dtype=torch.long)
    pos_t = torch.zeros((B, T), dtype=torch.long)
    mask = torch.zeros((B, T, T), dtype=torch.bool)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for r, (chain_ids, tokens, pos, blocks) in enumerate(rows):
        n = len(tokens)
        ids_t[r, :n] = torch.tensor(tokens)
        pos_t[r, :n] = torch.tensor(pos)
        L_chain = len(chain_ids)
        mask[r, :L_chain, :L_chain] = causal[:L_chain, :L_chain]
        for start, length, bound in blocks:
            mask[r, start:start + length, :bound] = True
            mask[r, start:start + length, start:start + length] = causal[:length, :length]
        idx = torch.arange(n, T)
        mask[r, idx, idx] = True  # padding attends to itself only (no empty rows, no NaN)
    return _Packed(ids_t.to(device), pos_t.to(device), mask[:, None].to(device), scores,
                   [m for m, _ in answer_points], [n for _, n in answer_points])


@torch.no_grad()
def analyze_truncations(
    model, tokenizer, task: Task, chains: Sequence[Chain], *, logprobs: bool = True, answers: bool = True,
    max_answer_tokens: int = 8, batch_size: int = 16, max_rows: Optional[int] = None,
) -> TruncationResult:
    """For every truncation point of every chain: the teacher-forced target's mean log-probability
    and/or a greedy forced answer, from one packed forward per batch of chains (plus one step per
    answer token for the answers that depart from the target, stacked across packed batches up
    to about `max_rows` such points).

    Batches hold at most `batch_size` chains and, with `max_rows`, at most that many truncation
    points (a chain with no steps is one point)."""
    out = TruncationResult([[] for _ in chains], [[] for _ in chains], [[] for _ in chains])
    device = _device(model)
    prefix_ids = tokenizer(task.answer_prefix, add_special_tokens=False)["input_ids"]
    stop = {tokenizer.eos_token_id, *_single_token(tokenizer, task.step_separator)}
    finished, waiting = [], []  # per batch (its points, answers); batches whose points decode on
    for batch in _row_batches(chains, batch_size, max_rows):
        packed = _pack(tokenizer, task, chains, batch, prefix_ids, logprobs, answers, device)
        decode = any(packed.answer_points)
        logits_at, cache = _packed_forward(model, packed, use_cache=decode)
        if logprobs:
            _score_blocks(logits_at, packed, batch, out.logprobs)
        if not decode:
            continue
        generated, pending = _speculate(logits_at, packed, max_answer_tokens, stop)
        finished.append((batch, list(zip(packed.answer_points, packed.points)), generated))
        if pending:
            waiting.append(_unfinished(cache, packed, pending, generated, device))
        del logits_at, cache, packed
        # decode what waits once it holds about a packed batch's worth of points (max_rows), so the
        # stacked caches stay near one packed batch's memory
        if waiting and (waiting[-1].cache is not None
                        or sum(len(row) for g in waiting for row in g.rows) >= (max_rows or batch_size)):
            _decode_unfinished(model, waiting, max_answer_tokens, stop, device)
            waiting = []
    if waiting:
        _decode_unfinished(model, waiting, max_answer_tokens, stop, device)
    for batch, packed_points, generated in finished:
        _answers(tokenizer, task, packed_points, generated, batch, out)
    return out


_SCALED_HEADS = ("final_logit_softcapping", "logit_scale", "logits_scaling")  # heads that are more than a linear layer


def _packed_forward(model, packed, use_cache: bool):
    """One forward over the packed batch: (a function from (row, position) index tensors to those
    positions' logits, the KV cache). Only the positions that are scored or decode from get the
    output head: the decoder runs alone and the head is applied to the gathered hidden states,
    never to the whole batch (B x T x vocab logits: for 140 rows of 900 tokens and a 151,936-token
    vocabulary, 140 x 900 x 151,936 x 2 bytes = 38 GB in bf16). A model whose head scales or caps its logits, or that exposes no
    decoder, runs whole."""
    kwargs = dict(input_ids=packed.ids, attention_mask=packed.mask, position_ids=packed.pos, use_cache=use_cache)
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    try:
        decoder = model.get_decoder()
    except (AttributeError, ValueError, NotImplementedError):
        decoder = None
    config = getattr(model, "config", None)
    plain = not any(getattr(config, name, None) not in (None, 1, 1.0) for name in _SCALED_HEADS)
    if head is not None and decoder is not None and decoder is not model and plain:
        out = decoder(**kwargs)
        hidden = out.last_hidden_state
        logits_at = lambda rows, cols: head(hidden[rows, cols])  # noqa: E731
    else:
        out = model(**kwargs)
        logits_at = lambda rows, cols: out.logits[rows, cols]  # noqa: E731
    return logits_at, getattr(out, "cache", None) or getattr(out, "past_key_values", None)


def _score_blocks(logits_at, packed, batch, results) -> None:
    """Each score block's mean target-token log-probability (token j is predicted at j-1), from the
    logits of the scored positions only, gathered at once."""
    rows, cols, toks, blocks = [], [], [], []  # blocks: (chain, first scored position, count)
    for r, k in enumerate(batch):
        for start, sfx, a_idx in packed.score_blocks[r]:
            blocks.append((k, len(rows), len(a_idx)))
            rows.extend([r] * len(a_idx))
            cols.extend(start + j - 1 for j in a_idx)
            toks.extend(sfx[j] for j in a_idx)
    if rows:
        device = packed.ids.device
        picked = logits_at(torch.tensor(rows, device=device), torch.tensor(cols, device=device)).float()
        tok = torch.tensor(toks, device=device)[:, None]
        lp = torch.log_softmax(picked, dim=-1).gather(-1, tok).squeeze(-1).tolist()
    for k, first, n in blocks:
        results[k].append(sum(lp[first : first + n]) / n if n else float("nan"))


def _speculate(logits_at, packed, max_tokens, stop: set) -> tuple[dict, list]:
    """Greedy forced answers as far as the packed forward tells them: each block holds the answer
    prefix and a guess (the gold answer), and the greedy answer agrees with the guess as long as
    the argmax after each guessed token is the next one. Returns the answer tokens so far by
    (row, point), and the points that must decode on: (row, point, tokens so far), those whose
    answer departs from the guess (or outruns it) before a stop token or `max_tokens`."""
    device = packed.ids.device
    where = [(r, p) for r, points in enumerate(packed.answer_points) for p in range(len(points))]
    rows, cols, firsts = [], [], []
    for r, p in where:  # the prefix's last token, then each guessed token, predict the next
        pt = packed.answer_points[r][p]
        firsts.append(len(rows))
        rows.extend([r] * (len(pt.guess) + 1))
        cols.extend(range(pt.prefix + pt.length - 1, pt.prefix + pt.length + len(pt.guess)))
    argmax = logits_at(torch.tensor(rows, device=device), torch.tensor(cols, device=device)).argmax(-1).tolist()
    generated, pending = {}, []
    for (r, p), first in zip(where, firsts):
        guess = packed.answer_points[r][p].guess
        gen = []
        for k in range(len(guess) + 1):
            tok = argmax[first + k]
            gen.append(tok)
            if tok in stop or len(gen) >= max_tokens:
                break
            if k == len(guess) or tok != guess[k]:
                pending.append((r, p, len(gen)))
                break
        generated[(r, p)] = gen
    return generated, pending


@dataclass
class _Unfinished:
    """The points of one packed batch that decode on, and the KV cache of their chains (one row
    each): the cache object itself, or its per-layer (keys, values) when it can be merged with
    other batches' (a plain DynamicCache)."""

    cache: object
    layers: Optional[list[tuple[torch.Tensor, torch.Tensor]]]
    rows: list[list[tuple[list[int], _AnswerPoint, int]]]  # per chain: (its answer tokens, point, tokens so far)


def _unfinished(cache, packed, pending, generated, device) -> _Unfinished:
    chains = sorted({r for r, _, _ in pending})
    row_of = {r: i for i, r in enumerate(chains)}
    rows: list[list] = [[] for _ in chains]
    for r, p, seen in pending:
        rows[row_of[r]].append((generated[(r, p)], packed.answer_points[r][p], seen))
    if len(chains) < packed.ids.shape[0]:
        cache.batch_select_indices(torch.tensor(chains, device=device))
    layers = [(layer.keys, layer.values) for layer in cache.layers] if _mergeable(cache) else None
    return _Unfinished(None if layers else cache, layers, rows)


def _mergeable(cache) -> bool:
    """A plain DynamicCache (full attention, one tensor per layer) can be padded and stacked with
    another batch's; any other cache decodes its batch on its own."""
    from transformers.cache_utils import DynamicCache, DynamicLayer

    return type(cache) is DynamicCache and all(type(layer) is DynamicLayer for layer in cache.layers)


def _decode_unfinished(model, groups: list[_Unfinished], max_tokens, stop: set, device) -> None:
    """Greedy decoding of the points that departed from their guess, for several packed batches at
    once (their caches padded to one length and stacked), so the decoding steps are paid once,
    not once per batch. Each chain's points sit side by side (P per row), each seeing the chain's
    first `bound` tokens, its block up to its last agreed token, and the tokens it has decoded
    since; tokens are appended to the answers in place."""
    from transformers.cache_utils import DynamicCache

    if len(groups) == 1 and groups[0].cache is not None:
        cache = groups[0].cache
        T = cache.get_seq_length()
    else:
        T = max(g.layers[0][0].shape[2] for g in groups)
        pad = lambda x: torch.nn.functional.pad(x, (0, 0, 0, T - x.shape[2]))  # noqa: E731  (B, H, T, D)
        cache = DynamicCache(ddp_cache_data=[
            (torch.cat([pad(g.layers[l][0]) for g in groups]), torch.cat([pad(g.layers[l][1]) for g in groups]))
            for l in range(len(groups[0].layers))])
    rows = [row for g in groups for row in g.rows]
    B, P = len(rows), max(len(row) for row in rows)
    bound, lo, hi, pos, nxt = (torch.zeros(B, P, dtype=torch.long) for _ in range(5))
    for i, row in enumerate(rows):
        for j, (gen, pt, seen) in enumerate(row):
            end = pt.prefix + pt.length + seen - 1  # its block up to the last agreed guess token
            bound[i, j], lo[i, j], hi[i, j] = pt.bound, pt.block, end
            pos[i, j] = pt.bound + end - pt.block
            nxt[i, j] = gen[-1]
    column = torch.arange(T)
    ctx = ((column < bound[..., None]) | ((column >= lo[..., None]) & (column < hi[..., None]))).to(device)  # (B, P, T)
    pos, nxt = pos.to(device), nxt.to(device)
    live = [(gen, i, j) for i, row in enumerate(rows) for j, (gen, _, _) in enumerate(row)]
    eye = torch.eye(P, dtype=torch.bool, device=device)
    while live:
        ctx = torch.cat([ctx, eye[None].expand(B, P, P)], dim=2)  # each new token sees its point's context, its own tokens, itself
        step = model(input_ids=nxt, attention_mask=ctx[:, None], position_ids=pos, cache=cache, use_cache=True)
        cache = getattr(step, "cache", None) or getattr(step, "past_key_values", None)
        nxt = step.logits.argmax(-1)
        toks = nxt.tolist()
        for gen, i, j in live:
            gen.append(toks[i][j])
        live = [(gen, i, j) for gen, i, j in live if gen[-1] not in stop and len(gen) < max_tokens]
        pos = pos + 1
        # most answers stop after a token or two: once a quarter of the slots are done, the
        # chains with no live point leave the cache and each chain's live points move to the
        # front (a short row repeats one of its points; nothing reads the copy)
        slots: dict[int, list[int]] = {}
        for _, i, j in live:
            slots.setdefault(i, []).append(j)
        width = max((len(v) for v in slots.values()), default=0)
        if live and len(slots) * width <= 0.75 * B * P:
            kept = sorted(slots)
            sel = torch.tensor(kept, device=device)
            idx = torch.tensor([[slots[i][min(k, len(slots[i]) - 1)] for k in range(width)] for i in kept], device=device)
            if len(kept) < B:
                cache.batch_select_indices(sel)
            ctx = ctx[sel].gather(1, idx[..., None].expand(-1, -1, ctx.shape[2]))
            pos, nxt = pos[sel].gather(1, idx), nxt[sel].gather(1, idx)
            row_of = {i: r for r, i in enumerate(kept)}
            live = [(gen, row_of[i], slots[i].index(j)) for gen, i, j in live]
            B, P = len(kept), width
            eye = eye[:P, :P]


def _answers(tokenizer, task, packed_points, generated, batch, out: TruncationResult) -> None:
    for r, k in enumerate(batch):
        points, n_points = packed_points[r]
        texts = tokenizer.batch_decode([generated[(r, p)] for p in range(len(points))], skip_special_tokens=True)
        found = [task.extract_answer(task.answer_prefix + t) for t in texts]
        out.answers[k].extend(found[:n_points])
        out.branch_answers[k].extend(found[n_points:])


def answer_logprobs(model, tokenizer, task: Task, chains: Sequence[Chain], batch_size: int = 16) -> list[list[float]]:
    """L_i for each chain and i = 0..n: mean log-prob of the target's tokens given context c_i."""
    return analyze_truncations(model, tokenizer, task, chains, answers=False, batch_size=batch_size).logprobs


def forced_answers(model, tokenizer, task: Task, chains: Sequence[Chain], max_tokens: int = 8, batch_size: int = 16) -> list[list[Optional[str]]]:
    """For each chain and i = 0..n: the answer the model gives (greedy) right after context c_i."""
    return analyze_truncations(model, tokenizer, task, chains, logprobs=False, max_answer_tokens=max_tokens, batch_size=batch_size).answers


@torch.no_grad()
def answer_logprobs_naive(model, tokenizer, task: Task, chains: Sequence[Chain]) -> list[list[float]]:
    """Same numbers as `answer_logprobs`, one truncated context at a time, no sharing."""
    device = _device(model)
    results: list[list[float]] = []
    for chain in chains:
        if chain.target is None:
            results.append([])
            continue
        text, ends = prefixes(task, chain)
        ids, bounds = _token_boundaries(tokenizer, text, ends)
        sfx, a_idx = _suffix(tokenizer, task, chain.target)
        row = []
        for b in bounds:
            x = torch.tensor([ids[:b] + sfx], device=device)
            logp = torch.log_softmax(model(input_ids=x).logits[0].float(), dim=-1)
            lp = [logp[b + j - 1, sfx[j]].item() for j in a_idx]
            row.append(sum(lp) / len(lp))
        results.append(row)
    return results


@torch.no_grad()
def forced_answers_naive(model, tokenizer, task: Task, chains: Sequence[Chain], max_tokens: int = 8) -> list[list[Optional[str]]]:
    """Same as `forced_answers`, one truncated context at a time with model.generate."""
    out = []
    for chain in chains:
        text, ends = prefixes(task, chain)
        row = []
        for end in ends:
            enc = tokenizer(text[:end] + task.answer_prefix, return_tensors="pt", add_special_tokens=False).to(_device(model))
            gen = model.generate(**enc, max_new_tokens=max_tokens, do_sample=False, pad_token_id=tokenizer.pad_token_id,
                                 eos_token_id=tokenizer.eos_token_id)
            row.append(task.extract_answer(task.answer_prefix + tokenizer.decode(gen[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)))
        out.append(row)
    return out
