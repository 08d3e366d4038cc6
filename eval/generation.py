"""Batched decoding with left padding: the engine behind `Sample` and `Continue` requests.

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
- Greedy and sampled jobs share one loop, so a GPU, whose decode step costs about the same for
  1 or 1,000 rows, makes one pass of sequential steps instead of one per kind of request.
- Each sampled prompt draws from a uniform stream of its own (`Job.stream`): which samples it
  gets does not depend on the batch size, the batch it lands in or the other jobs beside it.
- With a `PrefixStore` (eval/prefixes.py), greedy rows marked `Job.keep` leave their cache in it
  as they end, and a later prompt that begins like a kept one encodes only the tokens after
  those they share (the mistake probe's corrupted contexts).

A model whose cache cannot select rows is decoded with `model.generate` instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from tqdm.auto import tqdm

from reasonlab.eval.prefixes import PrefixStore, keepable, prefill
from reasonlab.eval.sampling import Layout, draw, token_stats, uniforms


@dataclass(frozen=True)
class Job:
    """`n` completions of `prompt`: greedy (`temperature=None`, n=1) or sampled from the uniform
    stream `stream`; a greedy job with `record` also keeps each token's
    [entropy, p(top-1), p(top-2), p(token)]."""

    prompt: str
    n: int = 1
    temperature: Optional[float] = None
    stream: int = 0
    record: bool = False
    keep: bool = False  # greedy: leave the row's cache in the decode's PrefixStore when it ends


@dataclass
class Decoded:
    texts: list[str]  # n completions
    ids: Optional[list[int]] = None  # with Job.record: the completion's token ids ...
    per_token: Optional[list[list[float]]] = None  # ... and their statistics (None: model.generate decoded it)


@torch.no_grad()
def decode(model, tokenizer, jobs: Sequence[Job], max_new_tokens: int, batch_size: int = 64,
           seed: Optional[int] = None, desc: Optional[str] = None, prefixes: Optional[PrefixStore] = None) -> list[Decoded]:
    """One `Decoded` per job. Prompts are sorted by length and cut into as few batches as
    `batch_size` allows (rows, counting n for a prompt sampled n times), of even size so that no
    small last batch runs a whole decoding loop alone; greedy and sampled rows side by side.
    `prefixes`: kept caches to start from, and where `Job.keep` rows leave theirs."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    if seed is not None:
        torch.manual_seed(seed)  # model.generate's sampling (the fallback)
    out: list[Optional[Decoded]] = [None] * len(jobs)
    for batch in tqdm(_batches(jobs, batch_size), desc=desc, disable=desc is None, leave=False):
        mine = [jobs[j] for j in batch]
        decoded = _decode(model, tokenizer, _start(model, tokenizer, mine, prefixes, device), max_new_tokens, mine,
                          uniforms(mine, max_new_tokens, seed, device), prefixes)
        if decoded is None:
            decoded = _generate_fallback(model, tokenizer, mine, max_new_tokens, device)
        else:
            flat = iter(tokenizer.batch_decode([ids for samples, _ in decoded for ids in samples],
                                               skip_special_tokens=True))
            decoded = [Decoded([next(flat) for _ in samples], samples[0] if job.record else None, stats)
                       for job, (samples, stats) in zip(mine, decoded)]
        for j, d in zip(batch, decoded):
            out[j] = d
    if was_training:
        model.train()
    return out


def generate(model, tokenizer, prompts: Sequence[str], max_new_tokens: int, batch_size: int = 64,
             do_sample: bool = False, temperature: float = 1.0, num_return_sequences: int = 1,
             seed: Optional[int] = None, desc: Optional[str] = None) -> list[str]:
    """Completions (decoded, special tokens removed) for each prompt, in order; with
    `num_return_sequences=n`, n completions per prompt, consecutively."""
    jobs = [Job(p, num_return_sequences, temperature if do_sample else None, stream=i) for i, p in enumerate(prompts)]
    return [t for d in decode(model, tokenizer, jobs, max_new_tokens, batch_size, seed, desc) for t in d.texts]


def _batches(jobs: Sequence[Job], batch_size: int) -> list[list[int]]:
    order = sorted(range(len(jobs)), key=lambda j: len(jobs[j].prompt))
    total = sum(job.n for job in jobs)
    per_batch = -(-total // max(1, -(-total // batch_size))) if total else batch_size  # even batches, none tiny
    batches, current, rows = [], [], 0
    for j in order:
        if current and rows + jobs[j].n > per_batch:
            batches.append(current)
            current, rows = [], 0
        current.append(j)
        rows += jobs[j].n
    return batches + ([current] if current else [])


def _encode(tokenizer, jobs: list[Job], device):
    return tokenizer([job.prompt for job in jobs], return_tensors="pt", padding=True, padding_side="left",
                     add_special_tokens=False).to(device)


def _start(model, tokenizer, jobs: list[Job], prefixes: Optional[PrefixStore], device):
    """The batch's first forward: (output, attention mask, last positions, each row's tokens).
    Prompts that begin like a kept cache's start from it (eval/prefixes.py) when that widens the
    batch by at most an eighth: the cache is [kept columns | the rest], so rows that start from no
    kept cache (or from a short one) carry the kept part's width as masked gaps, attended at every
    step; a batch of a few such prompts among fresh ones is encoded plainly."""
    if prefixes is not None and prefixes.by_prompt:
        ids = tokenizer([job.prompt for job in jobs], add_special_tokens=False)["input_ids"]
        found = [prefixes.find(job.prompt, x) for job, x in zip(jobs, ids)]
        reused = sum(k for _, k in found)
        kept, rest, plain = max(k for _, k in found), max(len(x) - k for x, (_, k) in zip(ids, found)), max(map(len, ids))
        if reused and 8 * (kept + rest) <= 9 * plain:
            prefixes.reused += reused
            return (*prefill(model, found, ids, tokenizer.pad_token_id, device), ids)
    enc = _encode(tokenizer, jobs, device)
    input_ids, mask = enc["input_ids"], enc["attention_mask"]
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=input_ids, attention_mask=mask, position_ids=pos, use_cache=True)
    return out, mask, pos[:, -1], [x[m.bool()].tolist() for x, m in zip(input_ids, mask)]


def stop_ids(model, tokenizer) -> frozenset:
    """The token ids that end a completion: the tokenizer's EOS and every id of the model's
    generation_config `eos_token_id` (Qwen-Instruct lists `<|im_end|>` and `<|endoftext|>`), as
    `model.generate` and TRL's GRPOTrainer stop."""
    config = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = set(config if isinstance(config, (list, tuple)) else [] if config is None else [config])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return frozenset(int(i) for i in ids)


def _generate_fallback(model, tokenizer, jobs: list[Job], max_new_tokens: int, device) -> list[Decoded]:
    """`model.generate`, one call per kind of job in the batch (no token statistics)."""
    enc = _encode(tokenizer, jobs, device)
    kinds: dict[tuple, list[int]] = {}
    for j, job in enumerate(jobs):
        kinds.setdefault((job.n, job.temperature), []).append(j)
    out: list[Optional[Decoded]] = [None] * len(jobs)
    for (n, temperature), rows in kinds.items():
        gen = model.generate(
            input_ids=enc["input_ids"][rows], attention_mask=enc["attention_mask"][rows],
            max_new_tokens=max_new_tokens, do_sample=temperature is not None, temperature=temperature, top_p=None,
            top_k=None, num_return_sequences=n, pad_token_id=tokenizer.pad_token_id,
            eos_token_id=sorted(stop_ids(model, tokenizer)),
        )
        stops = stop_ids(model, tokenizer)
        new = [row.tolist() for row in gen[:, enc["input_ids"].shape[1]:]]
        # generate keeps the stop token; a stop token that is not a special token would stay in the text
        texts = tokenizer.batch_decode([r[: next((k for k, t in enumerate(r) if t in stops), len(r))] for r in new],
                                       skip_special_tokens=True)
        for k, j in enumerate(rows):
            out[j] = Decoded(texts[k * n:(k + 1) * n])
    return out


@dataclass
class _Row:
    """One row of the decoding batch: a group of one job's samples that agree so far."""

    job: int  # index into the batch's jobs
    slots: list[int]  # the samples it stands for (every row of a batch has decoded `step` tokens)


def _decode(model, tokenizer, start, max_new_tokens: int, jobs: list[Job],
            uniforms: Optional[tuple], prefixes: Optional[PrefixStore]) -> Optional[list]:
    """Per job: (its n samples' new token ids, per-token stats of sample 0 or None); None when the
    model's cache cannot select rows (the caller uses model.generate). After each step a row is
    kept once per distinct token its samples drew (EOS ends those samples), so rows split where
    samples diverge and leave when they end; an ending `Job.keep` row leaves its cache in
    `prefixes`."""
    stops = stop_ids(model, tokenizer)
    out, mask, last, prompt_ids = start
    cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
    if cache is None or not hasattr(cache, "batch_select_indices") or max_new_tokens < 1:
        return None
    if prefixes is not None and not keepable(cache):
        prefixes = None
    device = mask.device
    logits = out.logits[:, -1]
    tokens = [[[] for _ in range(job.n)] for job in jobs]
    per_token = [[] if job.record else None for job in jobs]
    rows = [_Row(j, list(range(job.n))) for j, job in enumerate(jobs)]
    layout, step = None, 0  # which rows are sampled and recorded (the same until rows end or split); tokens decoded
    while True:
        greedy = logits.argmax(-1)
        layout = layout or Layout.of(rows, jobs, uniforms, device)
        draws = draw(logits, layout, uniforms, step)
        row_stats = token_stats(logits, greedy, layout)
        greedy = greedy.tolist()
        parents, next_tokens, next_rows, reshaped, kept = [], [], [], False, []
        for r, row in enumerate(rows):
            drawn = draws.get(r)
            if drawn is None or len(row.slots) == 1:  # one token for the whole row
                groups = {greedy[r] if drawn is None else drawn[0]: row.slots}
            else:
                groups = {}
                for s, tok in zip(row.slots, drawn):
                    groups.setdefault(tok, []).append(s)
                reshaped |= len(groups) > 1
            for tok, group in groups.items():
                ends = tok in stops or step + 1 >= max_new_tokens
                if ends and prefixes is not None and jobs[row.job].keep:  # the cache holds the prompt + `step` tokens
                    kept.append((r, row.job, prompt_ids[row.job] + tokens[row.job][0][:step]))
                if tok in stops:
                    reshaped = True
                    continue
                for s in group:
                    tokens[row.job][s].append(tok)
                if r in row_stats:
                    per_token[row.job].append(row_stats[r])
                if ends:
                    reshaped = True
                    continue
                parents.append(r)
                next_tokens.append(tok)
                next_rows.append(_Row(row.job, group))
        if kept:
            prefixes.keep([jobs[j].prompt for _, j, _ in kept], cache, [r for r, _, _ in kept], mask, [x for _, _, x in kept])
        if not parents:
            break
        if reshaped:  # rows ended or split
            sel = torch.tensor(parents, device=device)
            cache.batch_select_indices(sel)
            mask, last = mask[sel], last[sel]
            layout = None
        rows, step = next_rows, step + 1
        mask = torch.cat([mask, mask.new_ones(len(parents), 1)], dim=1)
        last = last + 1
        nxt = torch.tensor(next_tokens, device=device)
        out = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=last[:, None], cache=cache, use_cache=True)
        logits = out.logits[:, -1]
    return list(zip(tokens, per_token))
