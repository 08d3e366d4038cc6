"""Batched generation with left padding, shared by the evaluator and its probes.

Decoding is the evaluator's own loop over the model's forward with its KV cache: greedy or plain
temperature sampling (no top-k/top-p, no repetition penalty, whatever the model's
generation_config says, so every model is decoded alike). These keep it cheap:

- Rows that have emitted EOS leave the batch (their cache rows are dropped), so a batch costs
  the sum of its completions' lengths rather than rows x the longest one.
- Samples share their prefixes. The n samples of a prompt start as one row; a row stands for
  every sample whose tokens so far are the same, and splits only where their draws differ (each
  sample still draws its own token from the row's distribution, so the samples are exactly as
  independent as n separate rows would be). A trained model's samples agree on most tokens: on
  the study's checkpoints pass@k's 8 samples per prompt computed 3 to 5 times fewer tokens.
- Several requests (the greedy test and ood splits, pass@k's samples) can share one loop
  (`generate_many`), so a GPU, whose decode step costs about the same for 1 or 1,000 rows,
  makes one pass of sequential steps instead of one per request.
- A greedy completion can be followed, in the same loop, by the completion of a context made
  from it (`Request.follow`: the mistake probe's corrupted reasoning). When the row ends, it
  keeps the cache of the tokens it shares with the new context, masks the rest, feeds the
  context's other tokens one per step and decodes on: no second loop, no prompt re-encoded.

A model whose cache cannot select rows is decoded with `model.generate` instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import torch
from tqdm.auto import tqdm

from eval.truncation import common_prefix


@dataclass
class Request:
    """Completions wanted for `prompts`: greedy (`temperature=None`) or sampled, `n` per prompt;
    `stats` (greedy, n=1) also records each token's [entropy, p(top-1), p(top-2), p(token)]."""

    prompts: Sequence[str]
    n: int = 1
    temperature: Optional[float] = None
    stats: bool = False
    # greedy requests only: name -> f(prompt index, completion) giving a context (the whole text,
    # prompt included) to decode greedily once the completion ends, or None for no follow-up
    follow: dict[str, Callable[[int, str], Optional[str]]] = field(default_factory=dict)

    def __post_init__(self):
        if self.follow and (self.n != 1 or self.temperature is not None):
            raise ValueError("Request.follow needs a greedy request with n=1")


@dataclass
class Result:
    texts: list[str]  # n per prompt, consecutively
    stats: Optional[list]  # with Request.stats: per prompt (token ids, per-token stats), or None where not recorded
    follow: dict[str, list[Optional[str]]] = field(default_factory=dict)  # per follow-up, its completion per prompt


@torch.no_grad()
def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    max_new_tokens: int,
    batch_size: int = 64,
    do_sample: bool = False,
    temperature: float = 1.0,
    num_return_sequences: int = 1,
    seed: int | None = None,
    desc: str | None = None,
) -> list[str]:
    """Completions (decoded, special tokens removed) for each prompt, in order; with
    `num_return_sequences=n`, n completions per prompt, consecutively. One request of
    `generate_many`, which also records token statistics (`Request.stats`)."""
    req = Request(prompts, num_return_sequences, temperature if do_sample else None)
    (res,) = generate_many(model, tokenizer, [req], max_new_tokens, batch_size=batch_size, seed=seed, desc=desc)
    return res.texts


@torch.no_grad()
def generate_many(model, tokenizer, requests: Sequence[Request], max_new_tokens: int, batch_size: int = 64,
                  seed: int | None = None, desc: str | None = None) -> list[Result]:
    """One `Result` per request, decoded together: prompts of every request are sorted by length
    and cut into as few batches as `batch_size` allows (rows, counting n for a prompt sampled n
    times), of even size so that no small last batch runs a whole decoding loop alone; greedy and
    sampled rows side by side."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    items = [(r, i) for r, req in enumerate(requests) for i in range(len(req.prompts))]
    items.sort(key=lambda it: len(requests[it[0]].prompts[it[1]]))
    texts = [[[] for _ in req.prompts] for req in requests]
    stats = [[None] * len(req.prompts) if req.stats else None for req in requests]
    follow = [{name: [None] * len(req.prompts) for name in req.follow} for req in requests]
    if seed is not None:
        torch.manual_seed(seed)  # model.generate's sampling (the fallback)
    total = sum(req.n * len(req.prompts) for req in requests)
    per_batch = -(-total // max(1, -(-total // batch_size))) if total else batch_size  # even batches, none tiny
    batches, current, rows = [], [], 0
    for it in items:
        n = requests[it[0]].n
        if current and rows + n > per_batch:
            batches.append(current)
            current, rows = [], 0
        current.append(it)
        rows += n
    batches += [current] if current else []
    pending = []  # (request, prompt) whose follow-ups are still to decode
    for batch in tqdm(batches, desc=desc, disable=desc is None, leave=False):
        reqs = [requests[r] for r, _ in batch]
        enc = tokenizer([req.prompts[i] for req, (_, i) in zip(reqs, batch)], return_tensors="pt", padding=True,
                        padding_side="left", add_special_tokens=False).to(device)
        follows = [[(lambda text, f=f, i=i: f(i, text)) for f in req.follow.values()] for req, (_, i) in zip(reqs, batch)]
        decoded = _decode(model, tokenizer, enc["input_ids"], enc["attention_mask"], max_new_tokens,
                          [req.temperature for req in reqs], [req.n for req in reqs], [req.stats for req in reqs],
                          _uniforms(reqs, batch, max_new_tokens, seed, device), follows)
        if decoded is None:
            _generate_fallback(model, tokenizer, enc, reqs, batch, max_new_tokens, texts)
            pending += [(r, i) for req, (r, i) in zip(reqs, batch) if req.follow]
            continue
        flat = iter(tokenizer.batch_decode([ids for samples, _, _ in decoded for ids in samples], skip_special_tokens=True))
        for (r, i), (samples, per_token, followed) in zip(batch, decoded):
            texts[r][i] = [next(flat) for _ in samples]
            if stats[r] is not None:
                stats[r][i] = (samples[0], per_token)
            for name, ids in zip(follow[r], followed):
                follow[r][name][i] = None if ids is None else tokenizer.decode(ids, skip_special_tokens=True)
    if pending:  # follow-ups of batches decoded by model.generate: a second pass of their own
        _follow_after(model, tokenizer, requests, pending, texts, follow, max_new_tokens, batch_size)
    if was_training:
        model.train()
    return [Result([t for group in texts[r] for t in group], stats[r], follow[r]) for r in range(len(requests))]


def _follow_after(model, tokenizer, requests, pending, texts, follow, max_new_tokens, batch_size) -> None:
    for name in {name for r, _ in pending for name in requests[r].follow}:
        where, contexts = [], []
        for r, i in pending:
            if name in requests[r].follow and (ctx := requests[r].follow[name](i, texts[r][i][0])) is not None:
                where.append((r, i))
                contexts.append(ctx)
        outs = generate(model, tokenizer, contexts, max_new_tokens, batch_size=batch_size) if contexts else []
        for (r, i), out in zip(where, outs):
            follow[r][name][i] = out


def _generate_fallback(model, tokenizer, enc, reqs, batch, max_new_tokens, texts) -> None:
    """`model.generate`, one call per kind of request in the batch (no token statistics)."""
    kinds = {}
    for j, req in enumerate(reqs):
        kinds.setdefault((req.n, req.temperature), []).append(j)
    for (n, temperature), rows in kinds.items():
        gen = model.generate(
            input_ids=enc["input_ids"][rows], attention_mask=enc["attention_mask"][rows],
            max_new_tokens=max_new_tokens, do_sample=temperature is not None, temperature=temperature, top_p=None,
            top_k=None, num_return_sequences=n, pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        out = tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
        for k, j in enumerate(rows):
            r, i = batch[j]
            texts[r][i] = out[k * n:(k + 1) * n]


def _uniforms(reqs, batch, max_new_tokens: int, seed: Optional[int], device) -> Optional[tuple[torch.Tensor, list[int]]]:
    """Uniform draws for the sampled prompts of a batch: (draws (sampled prompts, most samples,
    max_new_tokens), each prompt's index into them or -1 for a greedy one), or None when none is
    sampled. Each prompt's draws come from a stream of its own, seeded by (seed, request, prompt
    index): sample s takes its token at step t by inverting the distribution's CDF at u[s, t], so
    which samples a prompt gets does not depend on the batch size, the batch it lands in or the
    other requests decoded with it. (The model.generate fallback samples with torch's global
    generator instead, batch by batch.)"""
    sampled = [j for j, req in enumerate(reqs) if req.temperature is not None]
    if not sampled:
        return None
    u = torch.empty(len(sampled), max(reqs[j].n for j in sampled), max_new_tokens)
    where = [-1] * len(reqs)
    for k, j in enumerate(sampled):
        r, i = batch[j]
        g = torch.Generator().manual_seed(((seed or 0) * 1_000_003 + r) * 1_000_003 + i)
        u[k, : reqs[j].n] = torch.rand(reqs[j].n, max_new_tokens, generator=g)
        where[j] = k
    return u.to(device), where


def _decode(model, tokenizer, input_ids, attention_mask, max_new_tokens: int, temperatures: list, ns: list,
            record: list, uniforms: Optional[tuple[torch.Tensor, list[int]]], follows: Optional[list] = None) -> Optional[list]:
    """Per prompt: (its n samples' new token ids, per-token stats of sample 0 or None, per follow-up
    its new token ids or None); None when the model's cache cannot select rows (the caller uses
    model.generate).

    Each row of the batch stands for a group of one prompt's samples that agree so far; after each
    step a row is kept once per distinct token its samples drew (EOS ends those samples), so rows
    split where samples diverge and leave when they end. A greedy row with follow-ups
    (`follows[prompt]`: functions from the completion's text to a context or None) turns into its
    next follow-up when it ends instead of leaving."""
    eos = tokenizer.eos_token_id
    follows = follows or [[] for _ in ns]
    pos = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=pos, use_cache=True)
    cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
    if cache is None or not hasattr(cache, "batch_select_indices") or max_new_tokens < 1:
        return None
    device = input_ids.device
    logits, mask, last = out.logits[:, -1], attention_mask, pos[:, -1]
    tokens = [[[] for _ in range(n)] for n in ns]
    per_token = [[] if rec else None for rec in record]
    followed = [[None] * len(f) for f in follows]
    prompt_of = list(range(len(ns)))  # per row: its prompt
    slots = [list(range(n)) for n in ns]  # per row: the samples it stands for
    phase = [0] * len(ns)  # per row: 0 while decoding its prompt's completion, k while decoding follow-up k
    count = [0] * len(ns)  # per row: tokens decoded in its phase
    forced = [[] for _ in ns]  # per row: context tokens still to feed before decoding (a follow-up's)
    # rows with follow-ups: their token ids so far and the cache column of each
    width = attention_mask.shape[1]
    seq = [input_ids[j, attention_mask[j].bool()].tolist() if follows[j] else None for j in range(len(ns))]
    cols = [None if ids is None else list(range(width - len(ids), width)) for ids in seq]
    temp = torch.tensor([t if t is not None else 1.0 for t in temperatures], device=device)  # per prompt
    while True:
        greedy_tok = logits.argmax(-1)
        sampled = [j for j, p in enumerate(prompt_of) if temperatures[p] is not None]
        draws = {}
        if sampled:
            rows_t = torch.tensor(sampled, device=device)
            row_temp = temp[torch.tensor([prompt_of[j] for j in sampled], device=device)]
            cdf = torch.softmax(logits[rows_t].float() / row_temp[:, None], dim=-1).cumsum(-1)
            # per row, where each of its samples' uniform draws for this step is (a row with fewer
            # samples than the most repeats its last; the extra draws are not read)
            draws_of, where = uniforms
            most = max(len(slots[j]) for j in sampled)
            at = torch.tensor([[(where[prompt_of[j]], slots[j][min(m, len(slots[j]) - 1)], count[j]) for m in range(most)]
                               for j in sampled], device=device)  # (rows, most, 3)
            u = draws_of[at[..., 0], at[..., 1], at[..., 2]] * cdf[:, -1:]
            drawn = torch.searchsorted(cdf, u, right=True).clamp_(max=cdf.shape[-1] - 1).tolist()
            draws = {j: d[: len(slots[j])] for j, d in zip(sampled, drawn)}
        recorded = [j for j, p in enumerate(prompt_of) if record[p] and phase[j] == 0 and not forced[j]]
        row_stats = {}
        if recorded:
            rows_t = torch.tensor(recorded, device=device)
            p = torch.softmax(logits[rows_t].float(), dim=-1)
            top2 = p.topk(2, dim=-1).values
            chosen = p.gather(-1, greedy_tok[rows_t, None]).squeeze(-1)
            values = torch.stack([-(p * torch.log(p.clamp_min(1e-12))).sum(-1), top2[:, 0], top2[:, 1], chosen], -1)
            row_stats = dict(zip(recorded, values.tolist()))
        greedy = greedy_tok.tolist()
        parents, next_tokens, next_slots, reshaped, restarts = [], [], [], False, {}
        next_state = []  # per kept row: (phase, count, forced, seq, cols)
        for j, p in enumerate(prompt_of):
            if forced[j]:  # feeding a follow-up's context: the model's own choice is not asked
                parents.append(j)
                next_tokens.append(forced[j][0])
                next_slots.append(slots[j])
                next_state.append((phase[j], count[j], forced[j][1:], seq[j], cols[j]))
                continue
            drawn, members = draws.get(j), slots[j]
            if drawn is None or len(members) == 1:  # one token for the whole row
                groups = {greedy[j] if drawn is None else drawn[0]: members}
            else:
                groups = {}
                for s, tok in zip(members, drawn):
                    groups.setdefault(tok, []).append(s)
                reshaped |= len(groups) > 1
            for tok, group in groups.items():
                ended = tok == eos
                if not ended:
                    for s in group:
                        (tokens[p][s] if phase[j] == 0 else followed[p][phase[j] - 1]).append(tok)
                    if j in row_stats:
                        per_token[p].append(row_stats[j])
                    ended = count[j] + 1 >= max_new_tokens
                    if not ended:
                        parents.append(j)
                        next_tokens.append(tok)
                        next_slots.append(group)
                        next_state.append((phase[j], count[j] + 1, [], seq[j], cols[j]))
                        continue
                start = _next_follow(tokenizer, follows[p], phase[j], tokens[p][0], followed[p], seq[j])
                if start is None:  # the row leaves
                    reshaped = True
                    continue
                k, ctx, keep = start  # follow-up k from context ctx, keeping the first `keep` tokens' cache
                restarts[len(parents)] = cols[j][:keep]
                parents.append(j)
                next_tokens.append(ctx[keep])
                next_slots.append(group)
                next_state.append((k, 0, ctx[keep + 1:], ctx[:keep], cols[j][:keep]))
        if not parents:
            break
        if reshaped:  # rows ended or split
            sel = torch.tensor(parents, device=device)
            cache.batch_select_indices(sel)
            mask, last = mask[sel], last[sel]
        prompt_of = [prompt_of[j] for j in parents]
        slots = next_slots
        phase, count, forced = [st[0] for st in next_state], [st[1] for st in next_state], [st[2] for st in next_state]
        seq, cols = [st[3] for st in next_state], [st[4] for st in next_state]
        if restarts:  # a follow-up sees only the tokens it shares with its row, and from there on its own
            mask, last = mask.clone(), last.clone()
            for r, keep_cols in restarts.items():
                mask[r] = 0
                mask[r, keep_cols] = 1
                last[r] = len(keep_cols) - 1
        column = mask.shape[1]
        for r, tok in enumerate(next_tokens):
            if seq[r] is not None:  # a greedy row's lists are its own (it never splits)
                seq[r].append(tok)
                cols[r].append(column)
        mask = torch.cat([mask, mask.new_ones(len(parents), 1)], dim=1)
        last = last + 1
        nxt = torch.tensor(next_tokens, device=device)
        out = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=last[:, None], cache=cache, use_cache=True)
        logits = out.logits[:, -1]
    return list(zip(tokens, per_token, followed))


def _next_follow(tokenizer, follows, phase, completion, followed, seq):
    """After phase `phase` ends: (k, context ids, tokens of the row's cache to keep) for the next
    follow-up k that has a context, or None. Follow-ups are made from the completion (phase 0)."""
    if not follows:
        return None
    text = tokenizer.decode(completion, skip_special_tokens=True)
    for k in range(phase + 1, len(follows) + 1):
        ctx = follows[k - 1](text)
        if ctx is None:
            continue
        ids = tokenizer(ctx, add_special_tokens=False)["input_ids"]
        if not ids:
            continue
        followed[k - 1] = []
        return k, ids, min(common_prefix(seq, ids), len(ids) - 1)  # the last context token is fed (its logits start decoding)
    return None
