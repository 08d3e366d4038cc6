"""Batched generation with left padding, shared by the evaluator and its probes.

Decoding is the evaluator's own loop over the model's forward with its KV cache: greedy or plain
temperature sampling (no top-k/top-p, no repetition penalty, whatever the model's
generation_config says, so every model is decoded alike). Rows that have emitted EOS leave the
batch (their cache rows are dropped), so a batch costs the sum of its completions' lengths rather
than rows x the longest one: with sampling, one rambling sample used to keep all others running
(pass@k went from 3.45 s to about 1 s on the study's base model, docs/benchmarks.md). The prompt
is encoded once and its cache repeated for the n samples of pass@k. A model whose cache cannot
drop rows is decoded with `model.generate` instead.
"""

from __future__ import annotations

from typing import Sequence

import torch
from tqdm.auto import tqdm


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
    token_stats: list | None = None,
) -> list[str]:
    """Completions (decoded, special tokens removed) for each prompt, in order.

    With `num_return_sequences=n`, the result holds n completions per prompt, consecutively.
    Prompts are sorted by length inside the call so each batch pads little. Given a list as
    `token_stats` (greedy, n=1), it is filled with one entry per completion: (generated token ids,
    per-token [entropy, p(top-1), p(top-2), p(token)] of the distribution each token was chosen
    from), or None where the model was decoded with `model.generate`.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[list[str]] = [[] for _ in prompts]
    stats_out: list = [None for _ in prompts]
    record = token_stats is not None and not do_sample and num_return_sequences == 1
    if seed is not None:
        torch.manual_seed(seed)
    generator = torch.Generator(device=device).manual_seed(seed if seed is not None else 0) if do_sample else None
    per_batch = max(1, batch_size // num_return_sequences)  # batch_size counts rows (prompts x samples)
    batches = range(0, len(order), per_batch)
    for start in tqdm(batches, desc=desc, disable=desc is None, leave=False):
        idx = order[start : start + per_batch]
        enc = tokenizer(
            [prompts[i] for i in idx], return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
        ).to(device)
        step_stats = [] if record else None
        rows = _decode(model, tokenizer, enc["input_ids"], enc["attention_mask"], max_new_tokens,
                       temperature if do_sample else None, num_return_sequences, generator, step_stats)
        if rows is not None:
            texts = tokenizer.batch_decode(rows, skip_special_tokens=True)
            if record:
                for j, i in enumerate(idx):
                    stats_out[i] = (rows[j], step_stats[j])
            for j, i in enumerate(idx):
                out[i] = texts[j * num_return_sequences : (j + 1) * num_return_sequences]
            continue
        gen = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            do_sample=do_sample,
            temperature=temperature if do_sample else None,
            top_p=None,
            top_k=None,
            num_return_sequences=num_return_sequences,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        texts = tokenizer.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        for j, i in enumerate(idx):
            out[i] = texts[j * num_return_sequences : (j + 1) * num_return_sequences]
    if was_training:
        model.train()
    if token_stats is not None:
        token_stats[:] = stats_out if record else [None] * len(prompts)
    return [t for group in out for t in group]


def _decode(model, tokenizer, input_ids, attention_mask, max_new_tokens: int, temperature: float | None, n: int,
            generator, step_stats: list | None = None) -> list[list[int]] | None:
    """New token ids per row (prompt-major, n per prompt), finished rows dropped from the batch as
    they end; None when the model's cache cannot drop rows (the caller uses model.generate).
    With `step_stats` (a list, filled per row), each kept token's [entropy, p1, p2, p(token)]."""
    eos = tokenizer.eos_token_id
    pos = (attention_mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=pos, use_cache=True)
    cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
    if cache is None or not hasattr(cache, "batch_select_indices") or max_new_tokens < 1:
        return None
    logits, mask, last = out.logits[:, -1], attention_mask, pos[:, -1]
    if n > 1:  # the prompt is encoded once; its cache is repeated for the n samples
        cache.batch_repeat_interleave(n)
        logits, mask, last = logits.repeat_interleave(n, 0), mask.repeat_interleave(n, 0), last.repeat_interleave(n, 0)
    active = list(range(logits.shape[0]))
    tokens: list[list[int]] = [[] for _ in active]
    if step_stats is not None:
        step_stats[:] = [[] for _ in active]
    for step in range(max_new_tokens):
        if temperature is None:
            nxt = logits.argmax(-1)
        else:
            probs = torch.softmax(logits.float() / temperature, dim=-1)
            nxt = torch.multinomial(probs, 1, generator=generator).squeeze(1)
        if step_stats is not None:
            p = torch.softmax(logits.float(), dim=-1)
            top2 = p.topk(2, dim=-1).values
            row_stats = torch.stack([-(p * torch.log(p.clamp_min(1e-12))).sum(-1), top2[:, 0], top2[:, 1],
                                     p.gather(-1, nxt[:, None]).squeeze(-1)], dim=-1).tolist()
        keep = []
        for j, tok in enumerate(nxt.tolist()):
            if tok != eos:
                tokens[active[j]].append(tok)
                if step_stats is not None:
                    step_stats[active[j]].append(row_stats[j])
                keep.append(j)
        if not keep or step == max_new_tokens - 1:
            break
        if len(keep) < len(active):  # rows that ended leave the batch
            sel = torch.tensor(keep, device=nxt.device)
            cache.batch_select_indices(sel)
            nxt, mask, last = nxt[sel], mask[sel], last[sel]
            active = [active[j] for j in keep]
        mask = torch.cat([mask, mask.new_ones(len(active), 1)], dim=1)
        last = last + 1
        out = model(input_ids=nxt[:, None], attention_mask=mask, position_ids=last[:, None], cache=cache, use_cache=True)
        logits = out.logits[:, -1]
    return tokens
