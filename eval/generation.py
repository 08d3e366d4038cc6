"""Batched generation with left padding, shared by the evaluator and its probes."""

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
) -> list[str]:
    """Completions (decoded, special tokens removed) for each prompt, in order.

    With `num_return_sequences=n`, the result holds n completions per prompt, consecutively.
    Prompts are sorted by length inside the call so each batch pads little.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[list[str]] = [[] for _ in prompts]
    if seed is not None:
        torch.manual_seed(seed)
    batches = range(0, len(order), batch_size)
    for start in tqdm(batches, desc=desc, disable=desc is None, leave=False):
        idx = order[start : start + batch_size]
        enc = tokenizer(
            [prompts[i] for i in idx], return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
        ).to(device)
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
    return [t for group in out for t in group]
