"""Answer log-probabilities and forced answers for groups of contexts, from packed forwards.

Runs the layout of eval/packing.py: one forward per batch of packed groups scores every
`AnswerLogprob` and gives most `ForcedAnswer`s too. A forced answer is decoded speculatively:
its block holds the answer prefix and a guess (the gold answer), and the greedy answer agrees
with the guess as long as the argmax after each guessed token is the next one, so a context
whose answer is the guessed one (or departs from it and stops at once) needs no decoding step.
Only the contexts that decode on do, one step per token, several packed batches stacked into
one loop on their KV caches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from reasonlab.eval.generation import stop_ids
from reasonlab.eval.packing import AnswerPoint, Group, character_level, pack, row_batches


@dataclass
class Scored:
    logprobs: list[dict[int, float]]  # per group: point -> mean log-prob of its target
    answers: list[dict[int, Optional[str]]]  # per group: point -> its forced answer


@torch.no_grad()
def analyze(model, tokenizer, task, groups: Sequence[Group], *,
            max_answer_tokens: int = 8, batch_size: int = 16, max_rows: Optional[int] = None) -> Scored:
    """Every point of every group: the teacher-forced target's mean log-probability and/or the
    greedy forced answer (the task's answer in `answer_prefix + decoded text`; decoding stops at
    the end token or the step separator), from one packed forward per
    batch of groups (plus one step per answer token for the answers that depart from their
    guess, stacked across packed batches up to about `max_rows` such points). Batches hold at
    most `batch_size` groups and, with `max_rows`, at most that many contexts."""
    out = Scored([{} for _ in groups], [{} for _ in groups])
    device = next(model.parameters()).device
    stop = {*stop_ids(model, tokenizer), *_single_token(tokenizer, task.step_separator)}
    joint = not character_level(tokenizer)  # BPE: each point's text tokenized whole (eval/packing.py)
    finished, waiting = [], []  # per batch (its points, answers); batches whose points decode on
    for batch in row_batches(groups, batch_size, max_rows):
        packed = pack(tokenizer, task.answer_prefix, groups, batch, device, joint=joint)
        decode = any(packed.answer_points)
        logits_at, cache = _packed_forward(model, packed, use_cache=decode)
        _score_blocks(logits_at, packed, batch, out.logprobs)
        if not decode:
            continue
        generated, pending = _speculate(logits_at, packed, max_answer_tokens, stop)
        finished.append((batch, packed.answer_points, generated))
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
    for batch, points, generated in finished:
        for r, k in enumerate(batch):
            texts = tokenizer.batch_decode([generated[(r, i)] for i in range(len(points[r]))], skip_special_tokens=True)
            for (p, _), text in zip(points[r], texts):
                out.answers[k][p] = task.extract_answer(task.answer_prefix + text)
    return out


def _single_token(tokenizer, text: str) -> list[int]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"] if text else []
    return ids if len(ids) == 1 else []


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


def _score_blocks(logits_at, packed, batch, logprobs) -> None:
    """Each score block's mean target-token log-probability (token j is predicted at j-1), from the
    logits of the scored positions only, gathered at once."""
    rows, cols, toks, blocks = [], [], [], []  # blocks: (group, point, first scored position, count)
    for r, k in enumerate(batch):
        for p, start, sfx, a_idx in packed.score_blocks[r]:
            blocks.append((k, p, len(rows), len(a_idx)))
            rows.extend([r] * len(a_idx))
            cols.extend(start + j - 1 for j in a_idx)
            toks.extend(sfx[j] for j in a_idx)
    if rows:
        device = packed.ids.device
        picked = logits_at(torch.tensor(rows, device=device), torch.tensor(cols, device=device)).float()
        tok = torch.tensor(toks, device=device)[:, None]
        lp = torch.log_softmax(picked, dim=-1).gather(-1, tok).squeeze(-1).tolist()
    for k, p, first, n in blocks:
        logprobs[k][p] = sum(lp[first : first + n]) / n if n else float("nan")


def _speculate(logits_at, packed, max_tokens, stop: set) -> tuple[dict, list]:
    """Greedy forced answers as far as the packed forward tells them: each block holds the answer
    prefix and a guess (the gold answer), and the greedy answer agrees with the guess as long as
    the argmax after each guessed token is the next one. Returns the answer tokens so far by
    (row, point), and the points that must decode on: (row, point, tokens so far), those whose
    answer departs from the guess (or outruns it) before a stop token or `max_tokens`."""
    device = packed.ids.device
    where = [(r, p) for r, points in enumerate(packed.answer_points) for p in range(len(points))]
    at = lambda r, p: packed.answer_points[r][p][1]  # noqa: E731
    rows, cols, firsts = [], [], []
    for r, p in where:  # the prefix's last token, then each guessed token, predict the next
        pt = at(r, p)
        firsts.append(len(rows))
        rows.extend([r] * (len(pt.guess) + 1))
        cols.extend(range(pt.prefix + pt.length - 1, pt.prefix + pt.length + len(pt.guess)))
    argmax = logits_at(torch.tensor(rows, device=device), torch.tensor(cols, device=device)).argmax(-1).tolist()
    generated, pending = {}, []
    for (r, p), first in zip(where, firsts):
        guess = at(r, p).guess
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
    rows: list[list[tuple[list[int], AnswerPoint, int]]]  # per chain: (its answer tokens, point, tokens so far)


def _unfinished(cache, packed, pending, generated, device) -> _Unfinished:
    chains = sorted({r for r, _, _ in pending})
    row_of = {r: i for i, r in enumerate(chains)}
    rows: list[list] = [[] for _ in chains]
    for r, p, seen in pending:
        rows[row_of[r]].append((generated[(r, p)], packed.answer_points[r][p][1], seen))
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


