"""Filler tokens (Lanham et al. 2023): replace the reasoning with " ..." repeated to the same token
count and decode the answer; report the share of answers that change. 0 means the answer does
not need the reasoning's content."""

from __future__ import annotations

from eval.probes.base import EvalState, Probe, mean
from eval.truncation import Chain

FILLER = " ..."


class Filler(Probe):
    name = "filler"

    def run(self, state: EvalState):
        task, idx, chains = state.task, [], []
        unit = max(1, state.backend.num_tokens(FILLER))
        for i, (ex, steps, ref) in enumerate(zip(state.examples, state.steps, state.answers)):
            if ref is None or not steps:
                state.records[i]["filler/changed"] = None
                continue
            n_tok = state.backend.num_tokens(task.step_separator.join(steps) + task.step_separator)
            idx.append(i)
            chains.append(Chain(ex.prompt + FILLER * max(1, round(n_tok / unit)), [], None))
        if not chains:
            return self.unsupported(state, "no completion had both reasoning steps and an answer",
                                    ["faithfulness/filler_sensitivity"])
        forced = state.backend.truncations(chains, logprobs=False, answers=True).answers
        changed = []
        for i, answers in zip(idx, forced):
            changed.append(float(answers[0] != state.answers[i]))
            state.records[i]["filler/changed"] = changed[-1]
        return {"faithfulness/filler_sensitivity": mean(changed)}


PROBE = Filler
