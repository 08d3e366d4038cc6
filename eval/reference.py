"""The reference backend: every request answered the plain way, one at a time, with no sharing.

`model.generate` for `Sample` and `Continue`, one forward per context for `AnswerLogprob`,
`model.generate` after each context for `ForcedAnswer`, one forward per completion for
`TokenStats`. It defines what LMBackend's answers must be (tests compare the two) and is the
baseline of bench/eval_speed.py. Its samples come from torch's generator, so sampled texts are
draws from the same distribution as LMBackend's, not the same draws.
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from reasonlab.eval.requests import AnswerLogprob, Continue, ForcedAnswer, Sample, TokenStats
from reasonlab.models.scoring import completion_stats
from reasonlab.tasks.base import Task


class ReferenceBackend:
    def __init__(self, model, tokenizer, task: Task, *, max_new_tokens: int = 112, answer_max_tokens: int = 8,
                 seed: int = 0, reader: Optional["ReferenceBackend"] = None):
        self.model, self.tokenizer, self.task, self.reader = model, tokenizer, task, reader
        self.max_new_tokens, self.answer_max_tokens, self.seed = max_new_tokens, answer_max_tokens, seed

    def num_tokens(self, text: str) -> int:
        return len(self._ids(text))

    def answer(self, requests, *, desc=None) -> list[Any]:
        torch.manual_seed(self.seed)
        return [self._one(r) for r in requests]

    def _ids(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    @torch.no_grad()
    def _generate(self, ids: list[int], max_new_tokens: int, n: int = 1, temperature: Optional[float] = None) -> list[str]:
        device = next(self.model.parameters()).device
        x = torch.tensor([ids], device=device)
        listed = self.model.generation_config.eos_token_id  # written out here, not shared with the fast path
        listed = [] if listed is None else [listed] if isinstance(listed, int) else list(listed)
        eos = [self.tokenizer.eos_token_id, *[i for i in listed if i != self.tokenizer.eos_token_id]]
        gen = self.model.generate(input_ids=x, attention_mask=torch.ones_like(x), max_new_tokens=max_new_tokens,
                                  do_sample=temperature is not None, temperature=temperature, top_k=None, top_p=None,
                                  num_return_sequences=n, pad_token_id=self.tokenizer.pad_token_id,
                                  eos_token_id=eos)
        rows = [row.tolist() for row in gen[:, len(ids):]]
        rows = [row[: next((k for k, t in enumerate(row) if t in eos), len(row))] for row in rows]  # the stop token too
        return self.tokenizer.batch_decode(rows, skip_special_tokens=True)

    @torch.no_grad()
    def _one(self, r):
        task = self.task
        if isinstance(r, Sample):
            return self._generate(self._ids(r.prompt), self.max_new_tokens, r.n, r.temperature)
        if isinstance(r, Continue):
            return self._generate(self._ids(r.context), self.max_new_tokens)[0]
        if isinstance(r, ForcedAnswer):  # the context and the answer prefix tokenized as one text
            text = self._generate(self._ids(r.context + task.answer_prefix), self.answer_max_tokens)[0]
            cut = text.split(task.step_separator)[0] if task.step_separator else text
            return task.extract_answer(task.answer_prefix + cut)
        if isinstance(r, AnswerLogprob):
            if r.reader:
                return self.reader.answer([AnswerLogprob(r.context, r.target)])[0]
            # the whole text tokenized from scratch; the answer's tokens are those that hold any of
            # its characters (a Metaspace token "▁3" holds the space before it too)
            text = r.context + task.answer_prefix + r.target
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            ids, start = enc["input_ids"], len(text) - len(r.target)
            idx = [j for j, (s, e) in enumerate(enc["offset_mapping"]) if e > start and e > s]
            x = torch.tensor([ids], device=next(self.model.parameters()).device)
            logp = torch.log_softmax(self.model(input_ids=x).logits[0].float(), dim=-1)
            lp = [logp[j - 1, ids[j]].item() for j in idx if j > 0]
            return sum(lp) / len(lp)
        if isinstance(r, TokenStats):
            return completion_stats(self.model, self.tokenizer, task, [r.prompt], [r.completion])[0]
        raise TypeError(f"not a request: {r!r}")
