"""Kept KV caches: a context that begins like a text decoded earlier starts from that text's cache.

The mistake probe asks `Continue(prompt + corrupted steps + separator)`, a context that shares most
of its tokens with a greedy completion the backend decoded moments before. When a probe says so
(`Probe.continues_completions`), the decoding loop keeps each greedy row's cache as the row ends;
a later job whose prompt begins with a kept prompt starts from that row's cache for the tokens the
two share, and only the rest of its context is encoded (automatic prefix caching). Only tokens
that are equal at equal positions are reused, so what is decoded is what a fresh encoding gives,
up to float rounding. Caches whose layers are not plain `DynamicLayer`s (sliding windows,
offloading) are neither kept nor built.

Memory: one kept row holds its prompt and completion's keys and values for every layer (about
12 KB per token for a Qwen2.5-0.5B in bf16, so 400 completions of 300 tokens are 1.5 GB), for the
length of one evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch
from transformers.cache_utils import DynamicCache, DynamicLayer

from reasonlab.eval.packing import common_prefix


@dataclass(eq=False)
class Prefix:
    """A kept row: row `row` of per-layer (keys, values) batches gathered as rows ended together,
    its tokens in columns `cols`."""

    ids: list[int]  # the tokens the cache holds
    layers: list[tuple[torch.Tensor, torch.Tensor]]  # per layer (keys, values), each (rows, heads, width, dim)
    row: int
    cols: torch.Tensor


@dataclass
class PrefixStore:
    by_prompt: dict[str, Prefix] = field(default_factory=dict)
    reused: int = 0  # context tokens served from kept caches instead of encoded (benchmarks, tests)

    def keep(self, prompts: Sequence[str], cache, rows: Sequence[int], mask, ids: Sequence[list[int]]) -> None:
        """Keep rows `rows` of `cache` (row r's unmasked columns hold ids[r]) as the caches of
        `prompts`' texts: one gather per layer for all of them."""
        at = torch.tensor(rows, device=mask.device)
        layers = [(layer.keys[at], layer.values[at]) for layer in cache.layers]
        for k, (prompt, r, x) in enumerate(zip(prompts, rows, ids)):
            self.by_prompt[prompt] = Prefix(x, layers, k, mask[r].nonzero().squeeze(-1))

    def find(self, text: str, ids: list[int]) -> tuple[Optional[Prefix], int]:
        """The kept prefix sharing the most leading tokens with `ids` (the tokens of `text`) among
        those whose prompt `text` begins with, and how many of its tokens to reuse (never all of
        `ids`: the last token is fed, its logits start decoding); (None, 0) when none."""
        best, keep = None, 0
        for prompt, prefix in self.by_prompt.items():
            if text.startswith(prompt):
                n = min(common_prefix(prefix.ids, ids), len(ids) - 1)
                if n > keep:
                    best, keep = prefix, n
        return best, keep


def keepable(cache) -> bool:
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers) and not getattr(cache, "offloading", False)


def prefill(model, found: Sequence[tuple[Optional[Prefix], int]], ids: Sequence[list[int]], pad_id: int, device):
    """One forward over a batch of contexts (`ids`), each starting from its kept prefix's first
    `keep` tokens (`found`: (prefix or None, keep) per context) and encoding the rest: the model's
    output, the attention mask and each row's last position. The cache is [kept columns, left
    padded | the rest, left padded]; masked columns are the gaps."""
    width, rest = max(k for _, k in found), max(len(x) - k for x, (_, k) in zip(ids, found))
    n = len(ids)
    # rows kept together are gathered together: per batch of kept rows, each row's source row and
    # source column for each of the `width` columns (the leading ones, masked, repeat its first)
    sources: dict[int, tuple[list, list[int], list[int], list[torch.Tensor]]] = {}
    for b, (p, k) in enumerate(found):
        if k:
            layers_of, rows, src, cols = sources.setdefault(id(p.layers), (p.layers, [], [], []))
            rows.append(b)
            src.append(p.row)
            cols.append(torch.cat([p.cols[:1].expand(width - k), p.cols[:k]]))
    gathers = [(layers_of, torch.tensor(rows, device=device), torch.tensor(src, device=device)[:, None],
                torch.stack(cols).to(device)) for layers_of, rows, src, cols in sources.values()]
    layers = []
    for li, (k0, _) in enumerate(gathers[0][0]):
        keys = k0.new_zeros(n, k0.shape[1], width, k0.shape[-1])
        values = torch.zeros_like(keys)
        for layers_of, rows, src, cols in gathers:
            kept_keys, kept_values = layers_of[li]  # (rows, heads, columns, dim); [src, :, cols] -> (g, width, heads, dim)
            keys[rows] = kept_keys[src, :, cols].transpose(1, 2)
            values[rows] = kept_values[src, :, cols].transpose(1, 2)
        layers.append((keys, values))
    mask = torch.zeros(n, width + rest, dtype=torch.long)
    input_ids = torch.full((n, rest), pad_id, dtype=torch.long)
    pos = torch.zeros(n, rest, dtype=torch.long)
    for b, (x, (_, k)) in enumerate(zip(ids, found)):
        tail = x[k:]
        mask[b, width - k: width] = 1
        mask[b, width + rest - len(tail):] = 1
        input_ids[b, rest - len(tail):] = torch.tensor(tail)
        pos[b, rest - len(tail):] = torch.arange(k, k + len(tail))
    mask, input_ids, pos = mask.to(device), input_ids.to(device), pos.to(device)
    out = model(input_ids=input_ids, attention_mask=mask, position_ids=pos,
                cache=DynamicCache(ddp_cache_data=layers), use_cache=True)
    return out, mask, pos[:, -1]
