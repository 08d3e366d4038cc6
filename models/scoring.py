"""Token-level statistics of completions under a model: entropies and answer-span confidence.

Shared by the evaluator (calibration, entropy probes) and the RLSF reward, so the confidence a
method is trained on is computed by the same code that reports calibration. The answer tokens are
those inside `task.answer_span(completion)`: the characters the task's grader reads the answer
from, so confidence is measured on the number that is graded.
Confidence of a completion = mean over its answer tokens of p(top-1) - p(top-2)
(van Niekerk et al. 2025, RLSF).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import torch

from reasonlab.tasks.base import Task


@dataclass
class CompletionStats:
    reasoning_entropies: list[float] = field(default_factory=list)  # one per reasoning token
    answer_confidence: Optional[float] = None  # mean p(top1) - p(top2) over answer tokens
    answer_prob: Optional[float] = None  # mean p(token) over answer tokens
    answer_tokens: int = 0


@torch.no_grad()
def completion_stats(
    model, tokenizer, task: Task, prompts: Sequence[str], completions: Sequence[str], batch_size: int = 32
) -> list[CompletionStats]:
    """One teacher-forced forward over prompt + completion per sample (batched, left-padded)."""
    device = next(model.parameters()).device
    out: list[CompletionStats] = []
    for start in range(0, len(prompts), batch_size):
        texts, metas = [], []
        for prompt, completion in zip(prompts[start : start + batch_size], completions[start : start + batch_size]):
            texts.append(prompt + completion)
            span = task.answer_span(completion)
            reasoning_end = len(prompt) + len(task.reasoning_of(completion))
            metas.append((len(prompt), reasoning_end, None if span is None else (len(prompt) + span[0], len(prompt) + span[1])))
        enc = tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True, padding=True,
                        padding_side="left", return_tensors="pt")
        offsets = enc.pop("offset_mapping")
        enc = {k: v.to(device) for k, v in enc.items()}
        pos = (enc["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        logits = model(**enc, position_ids=pos).logits.float()  # (batch, seq, vocab)
        probs = torch.softmax(logits, dim=-1)
        entropy = -(probs * torch.log(probs.clamp_min(1e-12))).sum(-1)  # (batch, seq)
        top2 = probs.topk(2, dim=-1).values  # (batch, seq, 2)
        ids = enc["input_ids"]
        tok_prob = probs[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)  # (batch, seq-1): p of token t at t-1
        conf = (top2[:, :-1, 0] - top2[:, :-1, 1])  # (batch, seq-1)
        ent = entropy[:, :-1]
        starts, ends = offsets[:, 1:, 0].to(device), offsets[:, 1:, 1].to(device)  # token t's characters
        real = enc["attention_mask"][:, 1:].bool() & (ends > starts)
        for b, (p_end, r_end, span) in enumerate(metas):
            reasoning = real[b] & (starts[b] >= p_end) & (ends[b] <= r_end)
            stats = CompletionStats(reasoning_entropies=ent[b][reasoning].tolist())
            if span is not None:
                answer = real[b] & (starts[b] >= span[0]) & (ends[b] <= span[1])
                stats.answer_tokens = int(answer.sum())
                if stats.answer_tokens:
                    stats.answer_confidence = conf[b][answer].mean().item()
                    stats.answer_prob = tok_prob[b][answer].mean().item()
            out.append(stats)
    return out


def stats_from_decoding(tokenizer, task: Task, completion: str, ids: list[int], per_token: list[list[float]]) -> Optional[CompletionStats]:
    """The same statistics as `completion_stats`, from the distributions the tokens were chosen from
    during greedy decoding (no second forward). None when the completion does not re-tokenize to
    the generated ids (character spans would not line up): the caller runs the forward instead."""
    enc = tokenizer(completion, add_special_tokens=False, return_offsets_mapping=True)
    if enc["input_ids"] != list(ids) or len(per_token) != len(ids):
        return None
    reasoning_end = len(task.reasoning_of(completion))
    span = task.answer_span(completion)
    stats = CompletionStats()
    answer = []
    for (start, end), (entropy, p1, p2, p_tok) in zip(enc["offset_mapping"], per_token):
        if end <= start:
            continue
        if end <= reasoning_end:
            stats.reasoning_entropies.append(entropy)
        if span is not None and start >= span[0] and end <= span[1]:
            answer.append((p1 - p2, p_tok))
    if answer:
        stats.answer_tokens = len(answer)
        stats.answer_confidence = sum(a for a, _ in answer) / len(answer)
        stats.answer_prob = sum(b for _, b in answer) / len(answer)
    return stats
