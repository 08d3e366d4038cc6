"""Per-step token choices of the decoding loop (eval/generation.py): sampled draws and the
recorded greedy rows' statistics.

The rows of a batch change only when some end or split, so which rows are sampled, their
temperatures, where their samples' uniforms lie and which rows are recorded are worked out
then (`Layout`), not at every step: a step costs a few tensor operations, however many rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch


def uniforms(jobs, max_new_tokens: int, seed: Optional[int], device) -> Optional[tuple[torch.Tensor, list[int], int]]:
    """Uniform draws for the sampled jobs of a batch: (draws (max_new_tokens, sampled jobs x most
    samples), each job's index into them or -1 for a greedy one, most samples), or None when none
    is sampled. A job's draws come from a generator seeded by (seed, its stream): sample s takes
    its token at step t by inverting the distribution's CDF at its u[t, s]. (The model.generate
    fallback samples with torch's global generator instead, batch by batch.)"""
    sampled = [j for j, job in enumerate(jobs) if job.temperature is not None]
    if not sampled:
        return None
    most = max(jobs[j].n for j in sampled)
    u = torch.empty(len(sampled), most, max_new_tokens)
    where = [-1] * len(jobs)
    for k, j in enumerate(sampled):
        g = torch.Generator().manual_seed((seed or 0) * 1_000_003 ** 2 + jobs[j].stream)
        u[k, : jobs[j].n] = torch.rand(jobs[j].n, max_new_tokens, generator=g)
        where[j] = k
    return u.reshape(-1, max_new_tokens).T.contiguous().to(device), where, most


@dataclass
class Layout:
    """What the rows of the batch are, for as long as none ends or splits."""

    sampled: list[int]  # rows whose job is sampled
    rows_t: Optional[torch.Tensor]  # ... as a tensor
    temp: Optional[torch.Tensor]  # their temperatures, (rows, 1)
    at: Optional[torch.Tensor]  # (rows, most samples of a row): each sample's column in the draws
    slots: list[int]  # samples per sampled row
    recorded: list[int]  # greedy rows that keep token statistics
    recorded_t: Optional[torch.Tensor]  # ... as a tensor, or None when every row is recorded

    @classmethod
    def of(cls, rows: Sequence, jobs: Sequence, uniforms, device) -> "Layout":
        """`rows`: each with `.job` (its index into `jobs`) and `.slots` (the samples it stands for)."""
        sampled = [r for r, row in enumerate(rows) if jobs[row.job].temperature is not None]
        recorded = [r for r, row in enumerate(rows) if jobs[row.job].record]
        every = len(recorded) == len(rows)
        recorded_t = None if every or not recorded else torch.tensor(recorded, device=device)
        if not sampled:
            return cls(sampled, None, None, None, [], recorded, recorded_t)
        _, where, per_job = uniforms
        most = max(len(rows[r].slots) for r in sampled)
        at = [where[rows[r].job] * per_job + rows[r].slots[min(m, len(rows[r].slots) - 1)]
              for r in sampled for m in range(most)]  # a row with fewer samples repeats its last (not read)
        return cls(sampled, torch.tensor(sampled, device=device),
                   torch.tensor([jobs[rows[r].job].temperature for r in sampled], device=device)[:, None],
                   torch.tensor(at, device=device).view(len(sampled), most),
                   [len(rows[r].slots) for r in sampled], recorded, recorded_t)


def draw(logits, layout: Layout, uniforms, step: int) -> dict[int, list[int]]:
    """Each sampled row's tokens at `step`, one per sample it stands for: its sample's uniform
    draw for this step, through the CDF of softmax(logits / T)."""
    if not layout.sampled:
        return {}
    cdf = torch.softmax(logits[layout.rows_t].float() / layout.temp, dim=-1).cumsum(-1)
    u = uniforms[0][step][layout.at] * cdf[:, -1:]
    drawn = torch.searchsorted(cdf, u, right=True).clamp_(max=cdf.shape[-1] - 1).tolist()
    return {r: d[:n] for r, d, n in zip(layout.sampled, drawn, layout.slots)}


def token_stats(logits, greedy, layout: Layout) -> dict[int, list[float]]:
    """[entropy, p(top-1), p(top-2), p(chosen)] of the recorded (greedy) rows' distributions."""
    if not layout.recorded:
        return {}
    rows_t = layout.recorded_t
    p = torch.softmax((logits if rows_t is None else logits[rows_t]).float(), dim=-1)
    top2 = p.topk(2, dim=-1).values
    chosen = p.gather(-1, (greedy if rows_t is None else greedy[rows_t])[:, None]).squeeze(-1)
    values = torch.stack([-(p * torch.log(p.clamp_min(1e-12))).sum(-1), top2[:, 0], top2[:, 1], chosen], -1)
    return dict(zip(layout.recorded, values.tolist()))
