"""Answer log-probabilities and forced answers at every truncation point of a chain, sharing prefixes.

For a chain (prompt, steps s1..sn) the truncation contexts are

    c_i = prompt + s1 + sep + ... + si + sep + answer_prefix        i = 0..n

and every c_i minus its answer prefix is a prefix of the one full text `prompt + s1 sep ... sn sep`.
So each chain is packed into one sequence: its full text, then one short block per truncation
point (answer_prefix + gold answer to score, and/or answer_prefix to decode a forced answer
from), and a 4D attention mask lets each block see only the chain's first tokens up to its
point, and itself. One forward per batch of chains scores every point; forced answers then take
one step per answer token, all points at once, on that forward's KV cache. Nothing is copied per
point, so the cost grows with chain length plus the number of points (bench/eval_growth.py).
A chain may also carry branches: other texts after the same prompt (the filler and paraphrase
probes' rewritten reasoning), each packed as one more block that sees the tokens it shares with
the chain and decodes its forced answer with the points, so those probes re-encode no prompt and
add no pass of their own.
`answer_logprobs_naive` re-encodes every context from scratch, one at a time: the reference the
fast path is tested against, and the baseline of bench/eval_speed.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

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
    answer_ends: torch.Tensor  # (B, P) index of each point's last answer-prefix token (0 for padding points)
    answer_ctx: torch.Tensor  # (B, P, T) bool: what each point's forced answer may attend to
    answer_pos: torch.Tensor  # (B, P) position of each point's first generated token
    points: list[int]  # per chain, its truncation points with a forced answer; its branches follow them
    branches: list[int]  # per chain, its branches


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _pack(tokenizer, task, chains, batch, prefix_ids, logprobs, answers, device) -> _Packed:
    rows, scores = [], []
    for k in batch:
        text, ends = prefixes(task, chains[k])
        ids, bounds = _token_boundaries(tokenizer, text, ends)
        tokens, pos = list(ids), list(range(len(ids)))
        blocks = []  # (start, length, bound)
        score, answer_blocks = [], []
        if logprobs and chains[k].target is not None:
            sfx, a_idx = _suffix(tokenizer, task, chains[k].target)
            for b in bounds:
                score.append((len(tokens), sfx, a_idx))
                blocks.append((len(tokens), len(sfx), b))
                tokens += sfx
                pos += [b + j for j in range(len(sfx))]
        if answers:
            for b in bounds:
                answer_blocks.append((len(tokens), len(prefix_ids), b))
                blocks.append((len(tokens), len(prefix_ids), b))
                tokens += prefix_ids
                pos += [b + j for j in range(len(prefix_ids))]
        for branch in chains[k].branches:  # sees the tokens it shares with the chain, then its own
            branch_ids = tokenizer(branch, add_special_tokens=False)["input_ids"]
            b = _common_prefix(ids, branch_ids)
            own = branch_ids[b:] + prefix_ids
            answer_blocks.append((len(tokens), len(own), b))
            blocks.append((len(tokens), len(own), b))
            tokens += own
            pos += [b + j for j in range(len(own))]
        rows.append((ids, tokens, pos, blocks, answer_blocks, bounds))
        scores.append(score)
    T = max(len(r[1]) for r in rows)
    P = max(len(r[4]) for r in rows)
    B = len(rows)
    ids_t = torch.full((B, T), tokenizer.pad_token_id, dtype=torch.long)
    pos_t = torch.zeros((B, T), dtype=torch.long)
    mask = torch.zeros((B, T, T), dtype=torch.bool)
    answer_ends = torch.zeros((B, P), dtype=torch.long)
    answer_ctx = torch.zeros((B, P, T), dtype=torch.bool)
    answer_pos = torch.zeros((B, P), dtype=torch.long)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for r, (chain_ids, tokens, pos, blocks, answer_blocks, bounds) in enumerate(rows):
        n = len(tokens)
        ids_t[r, :n] = torch.tensor(tokens)
        pos_t[r, :n] = torch.tensor(pos)
        L = len(chain_ids)
        mask[r, :L, :L] = causal[:L, :L]
        for start, length, bound in blocks:
            mask[r, start:start + length, :bound] = True
            mask[r, start:start + length, start:start + length] = causal[:length, :length]
        idx = torch.arange(n, T)
        mask[r, idx, idx] = True  # padding attends to itself only (no empty rows, no NaN)
        for p, (start, length, bound) in enumerate(answer_blocks):
            answer_ends[r, p] = start + length - 1
            answer_ctx[r, p, :bound] = True
            answer_ctx[r, p, start:start + length] = True
            answer_pos[r, p] = bound + length
    return _Packed(ids_t.to(device), pos_t.to(device), mask[:, None].to(device), scores,
                   answer_ends.to(device), answer_ctx.to(device), answer_pos.to(device),
                   [len(chains[k].steps) + 1 if answers else 0 for k in batch], [len(chains[k].branches) for k in batch])


@torch.no_grad()
def analyze_truncations(
    model, tokenizer, task: Task, chains: Sequence[Chain], *, logprobs: bool = True, answers: bool = True,
    max_answer_tokens: int = 8, batch_size: int = 16, max_rows: Optional[int] = None,
) -> TruncationResult:
    """For every truncation point of every chain: the teacher-forced target's mean log-probability
    and/or a greedy forced answer, from one packed forward per batch of chains (plus one step per
    answer token).

    Batches hold at most `batch_size` chains and, with `max_rows`, at most that many truncation
    points (a chain with no steps is one point)."""
    out = TruncationResult([[] for _ in chains], [[] for _ in chains], [[] for _ in chains])
    device = _device(model)
    prefix_ids = tokenizer(task.answer_prefix, add_special_tokens=False)["input_ids"]
    stop = torch.tensor([tokenizer.eos_token_id, *_single_token(tokenizer, task.step_separator)], device=device)
    for batch in _row_batches(chains, batch_size, max_rows):
        packed = _pack(tokenizer, task, chains, batch, prefix_ids, logprobs, answers, device)
        decode = packed.answer_ctx.shape[1] > 0
        logits_at, cache = _packed_forward(model, packed, use_cache=decode)
        if logprobs:
            _score_blocks(logits_at, packed, batch, out.logprobs)
        if decode:
            _decode_answers(model, tokenizer, task, logits_at, cache, packed, batch, max_answer_tokens, stop, out)
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


def _decode_answers(model, tokenizer, task, logits_at, cache, packed, batch, max_tokens, stop, out: TruncationResult):
    B, P, T = packed.answer_ctx.shape
    device = packed.ids.device
    nxt = logits_at(torch.arange(B, device=device)[:, None].expand(B, P), packed.answer_ends).argmax(-1)  # (B, P)
    ctx = packed.answer_ctx  # (B, P, kv) grows by P columns per step
    pos = packed.answer_pos
    eye = torch.eye(P, dtype=torch.bool, device=device)[None].expand(B, P, P)
    generated = [nxt]
    done = torch.isin(nxt, stop)
    for _ in range(max_tokens - 1):
        if bool(done.all()):
            break
        ctx = torch.cat([ctx, eye], dim=2)  # each new token sees its point's context, its own tokens, itself
        step = model(input_ids=nxt, attention_mask=ctx[:, None], position_ids=pos, cache=cache, use_cache=True)
        cache = getattr(step, "cache", None) or getattr(step, "past_key_values", None)
        nxt = step.logits.argmax(-1).masked_fill(done, tokenizer.pad_token_id)  # points that ended stay ended
        generated.append(nxt)
        done |= torch.isin(nxt, stop)
        pos = pos + 1
    gen = torch.stack(generated, dim=-1)  # (B, P, steps)
    for r, k in enumerate(batch):
        n = packed.points[r] + packed.branches[r]
        found = [task.extract_answer(task.answer_prefix + t) for t in tokenizer.batch_decode(gen[r, :n], skip_special_tokens=True)]
        out.answers[k].extend(found[: packed.points[r]])
        out.branch_answers[k].extend(found[packed.points[r]:])


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
