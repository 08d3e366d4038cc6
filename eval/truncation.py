"""Answer log-probabilities and forced answers at every truncation point of a chain, sharing prefixes.

For a chain (prompt, steps s1..sn) the truncation contexts are

    c_i = prompt + s1 + sep + ... + si + sep + answer_prefix        i = 0..n

and every c_i minus its answer prefix is a prefix of the one full text `prompt + s1 sep ... sn sep`.
So one forward pass over the full text (batched over chains, left-padded) gives the key/value
cache for every truncation point; each point then only runs its short suffix
(answer_prefix + answer) against the cache cut at its boundary, through the attention mask.
`answer_logprobs_naive` re-encodes every context from scratch, one at a time: the reference the
fast path is tested against, and the baseline of bench/eval_speed.py.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from tasks.base import Task


@dataclass
class Chain:
    prompt: str
    steps: list[str]
    target: Optional[str]  # answer whose log-probability is scored (the gold answer); None: skip


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


@torch.no_grad()
def _encode_full(model, tokenizer, texts_ids: list[list[int]]):
    """Left-padded forward over full chains; returns (cache, logits, pad offsets, width)."""
    width = max(len(x) for x in texts_ids)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([[pad] * (width - len(x)) + x for x in texts_ids], device=_device(model))
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in texts_ids], device=ids.device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True)
    offsets = [width - len(x) for x in texts_ids]
    return out.cache, out.logits, offsets, width


def _rows_mask(offsets, bounds_rows, rows_chain, width, suffix_lens, device):
    """Attention mask (rows, width + S): cache positions of the chain's first `bound` tokens + own suffix."""
    s_max = max(suffix_lens)
    mask = torch.zeros(len(rows_chain), width + s_max, dtype=torch.long, device=device)
    for r, (c, b) in enumerate(zip(rows_chain, bounds_rows)):
        mask[r, offsets[c] : offsets[c] + b] = 1
        mask[r, width : width + suffix_lens[r]] = 1
    return mask


@dataclass
class TruncationResult:
    logprobs: list[list[float]]  # per chain, L_i for i = 0..n ([] when the chain has no target)
    answers: list[list[Optional[str]]]  # per chain, the forced answer after c_i for i = 0..n


def _select(cache, rows_chain, device):
    """A new cache holding the given rows (one copy); the shared cache stays intact for the next pass."""
    idx = torch.tensor(rows_chain, device=device)
    layers = getattr(cache, "layers", None)
    if layers and all(getattr(layer, "keys", None) is not None for layer in layers):
        from transformers import DynamicCache

        rows = DynamicCache()
        for i, layer in enumerate(layers):
            rows.update(layer.keys.index_select(0, idx), layer.values.index_select(0, idx), i)
        return rows
    rows = copy.deepcopy(cache)
    rows.batch_select_indices(idx)
    return rows


@torch.no_grad()
def analyze_truncations(
    model, tokenizer, task: Task, chains: Sequence[Chain], *, logprobs: bool = True, answers: bool = True,
    max_answer_tokens: int = 8, batch_size: int = 16, max_rows: Optional[int] = None,
) -> TruncationResult:
    """One forward per batch of full chains; then, for every truncation point at once:
    the teacher-forced target (log-probabilities) and/or a greedy forced answer.

    Batches hold at most `batch_size` chains and, with `max_rows`, at most that many truncation
    points (a chain with no steps is one point): on CPU a forward's fixed cost dominates small
    batches, and wide batches of many points pay for their attention masks."""
    out = TruncationResult([[] for _ in chains], [[] for _ in chains])
    device = _device(model)
    prefix_ids = tokenizer(task.answer_prefix, add_special_tokens=False)["input_ids"]
    for batch in _row_batches(chains, batch_size, max_rows):
        full_ids, bounds = [], []
        for k in batch:
            text, ends = prefixes(task, chains[k])
            ids, b = _token_boundaries(tokenizer, text, ends)
            full_ids.append(ids)
            bounds.append(b)
        cache, _, offsets, width = _encode_full(model, tokenizer, full_ids)
        if logprobs:
            _score_targets(model, tokenizer, task, chains, batch, bounds, cache, offsets, width, out.logprobs)
        if answers:
            _force_answers(model, tokenizer, task, batch, bounds, cache, offsets, width, prefix_ids, max_answer_tokens, out.answers)
    return out


def _row_batches(chains: Sequence[Chain], batch_size: int, max_rows: Optional[int]) -> list[list[int]]:
    batches, current, rows = [], [], 0
    for k, chain in enumerate(chains):
        points = len(chain.steps) + 1
        if current and (len(current) >= batch_size or (max_rows and rows + points > max_rows)):
            batches.append(current)
            current, rows = [], 0
        current.append(k)
        rows += points
    return batches + ([current] if current else [])


def _score_targets(model, tokenizer, task, chains, batch, bounds, cache, offsets, width, results):
    device = _device(model)
    rows_chain, rows_bound, suffixes, answer_idx = [], [], [], []
    for c, k in enumerate(batch):
        if chains[k].target is None:
            continue
        sfx, a_idx = _suffix(tokenizer, task, chains[k].target)
        for b in bounds[c]:
            rows_chain.append(c)
            rows_bound.append(b)
            suffixes.append(sfx)
            answer_idx.append(a_idx)
    if not rows_chain:
        return
    lens = [len(s) for s in suffixes]
    s_max = max(lens)
    sfx_ids = torch.tensor([s + [tokenizer.pad_token_id] * (s_max - len(s)) for s in suffixes], device=device)
    pos = torch.tensor([[b + j for j in range(s_max)] for b in rows_bound], device=device)
    mask = _rows_mask(offsets, rows_bound, rows_chain, width, lens, device)
    logits = model(input_ids=sfx_ids, attention_mask=mask, position_ids=pos, cache=_select(cache, rows_chain, device)).logits
    logp = torch.log_softmax(logits.float(), dim=-1)  # (rows, S, vocab)
    for r, c in enumerate(rows_chain):
        idx = torch.tensor(answer_idx[r], device=device)
        lp = logp[r, idx - 1].gather(-1, sfx_ids[r, idx][:, None]).squeeze(-1)  # token j is predicted at j-1
        results[batch[c]].append(lp.mean().item())


def _single_token(tokenizer, text: str) -> list[int]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return ids if len(ids) == 1 else []


def _force_answers(model, tokenizer, task, batch, bounds, cache, offsets, width, prefix_ids, max_tokens, results):
    device = _device(model)
    rows_chain = [c for c in range(len(batch)) for _ in bounds[c]]
    rows_bound = [b for c in range(len(batch)) for b in bounds[c]]
    n_rows, p = len(rows_chain), len(prefix_ids)
    mask = _rows_mask(offsets, rows_bound, rows_chain, width, [p] * n_rows, device)
    rows_cache = _select(cache, rows_chain, device)
    x = torch.tensor([prefix_ids] * n_rows, device=device)
    pos = torch.tensor([[b + j for j in range(p)] for b in rows_bound], device=device)
    generated = torch.empty(n_rows, 0, dtype=torch.long, device=device)
    done = torch.zeros(n_rows, 1, dtype=torch.bool, device=device)
    # the answer ends at EOS or at the step separator (extract_answer reads no further)
    stop = torch.tensor([tokenizer.eos_token_id, *_single_token(tokenizer, task.step_separator)], device=device)
    for _ in range(max_tokens):
        logits = model(input_ids=x, attention_mask=mask, position_ids=pos, cache=rows_cache).logits
        nxt = logits[:, -1].argmax(-1, keepdim=True)  # (rows, 1)
        nxt = nxt.masked_fill(done, tokenizer.pad_token_id)  # rows that ended stay ended
        generated = torch.cat([generated, nxt], dim=1)
        done |= torch.isin(nxt, stop)
        if bool(done.all()):
            break
        x = nxt
        pos = pos[:, -1:] + 1
        mask = torch.cat([mask, torch.ones(n_rows, 1, dtype=mask.dtype, device=device)], dim=1)
    texts = tokenizer.batch_decode(generated, skip_special_tokens=True)
    for r, c in enumerate(rows_chain):
        results[batch[c]].append(task.extract_answer(task.answer_prefix + texts[r]))


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
