"""What the probes ask of a model, behind one small interface.

`LMBackend` answers with a real causal LM (batched, prefix-sharing); tests substitute a backend
whose answers are a known function of the text, so each probe can be checked on cases where the
right value is known.
"""

from __future__ import annotations

from typing import Optional, Protocol, Sequence

from eval.generation import Request, Result, generate, generate_many
from eval.truncation import Chain, TruncationResult, analyze_truncations
from models.scoring import CompletionStats, completion_stats, stats_from_decoding
from tasks.base import Task


class Backend(Protocol):
    """What probes call. A backend may also offer `generate_many(requests, max_new_tokens, *, seed,
    desc)` (several requests in one decoding loop); without it the evaluator decodes the greedy
    splits one by one and each probe makes its own generations."""

    def generate(self, prompts: Sequence[str], max_new_tokens: int, *, do_sample: bool = False,
                 temperature: float = 1.0, n: int = 1, seed: Optional[int] = None, desc: Optional[str] = None) -> list[str]: ...

    def truncations(self, chains: Sequence[Chain], *, logprobs: bool, answers: bool) -> TruncationResult: ...

    def completion_stats(self, prompts: Sequence[str], completions: Sequence[str]) -> list[CompletionStats]: ...

    def num_tokens(self, text: str) -> int: ...


class LMBackend:
    def __init__(self, model, tokenizer, task: Task, batch_size: int = 64, answer_max_tokens: int = 8,
                 truncation_rows: int = 80):
        self.model, self.tokenizer, self.task = model, tokenizer, task
        self.batch_size, self.answer_max_tokens = batch_size, answer_max_tokens
        self.truncation_rows = truncation_rows  # points per packed batch (eval.truncation_rows)

    def generate(self, prompts, max_new_tokens, *, do_sample=False, temperature=1.0, n=1, seed=None, desc=None):
        return generate(self.model, self.tokenizer, prompts, max_new_tokens, batch_size=self.batch_size,
                        do_sample=do_sample, temperature=temperature, num_return_sequences=n, seed=seed, desc=desc)

    def truncations(self, chains, *, logprobs, answers):
        return analyze_truncations(self.model, self.tokenizer, self.task, chains, logprobs=logprobs, answers=answers,
                                   max_answer_tokens=self.answer_max_tokens, batch_size=self.batch_size,
                                   max_rows=self.truncation_rows)

    def generate_many(self, requests: Sequence[Request], max_new_tokens: int, *, seed=None, desc=None) -> list[Result]:
        """Several requests decoded in one loop (eval/generation.py). A request with `stats` gets,
        where they line up, each completion's token statistics from the decoding itself (None
        where the evaluator must run `completion_stats`)."""
        results = generate_many(self.model, self.tokenizer, requests, max_new_tokens, batch_size=self.batch_size,
                                seed=seed, desc=desc)
        for res in results:
            if res.stats is not None:
                res.stats = [None if r is None else stats_from_decoding(self.tokenizer, self.task, t, r[0], r[1])
                             for t, r in zip(res.texts, res.stats)]
        return results

    def completion_stats(self, prompts, completions):
        return completion_stats(self.model, self.tokenizer, self.task, prompts, completions, batch_size=self.batch_size)

    def num_tokens(self, text):
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
