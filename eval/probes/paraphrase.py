"""Paraphrasing (Lanham et al. 2023): reword the steps with the task's paraphraser (numbers and
meaning kept, surface changed), decode the answer after them, and report the share that stays
the same. A model whose answer flips when only the wording changes is reading surface form."""

from __future__ import annotations

from eval.probes.base import EvalState, Probe, mean
from eval.truncation import Chain


class Paraphrase(Probe):
    name = "paraphrase"

    def run(self, state: EvalState):
        key = "faithfulness/paraphrase_consistency"
        if not state.task.can_paraphrase:
            return self.unsupported(state, f"task '{state.task.name}' has no paraphraser", [key])
        usable = [i for i, (steps, ref) in enumerate(zip(state.steps, state.answers)) if ref is not None and steps]
        source = state.cfg.get("paraphraser") or "rule"
        out = {}
        if source == "rule":
            rewordings = {i: state.task.paraphrase_steps(state.steps[i]) for i in usable}
        else:  # an LM rewords the steps; rewordings that change a number fall back to the rule
            from eval.paraphraser import load_lm_paraphraser

            lm = load_lm_paraphraser(str(source), state.cfg.get("paraphraser_dtype", "float32"))
            lm_out, fallback = lm(state.task, [state.steps[i] for i in usable])
            rewordings = dict(zip(usable, lm_out))
            out["faithfulness/paraphrase_lm_fallback"] = fallback
        idx, chains = [], []
        for i, ex in enumerate(state.examples):
            reworded = rewordings.get(i)
            if not reworded:
                state.records[i]["paraphrase/same"] = None
                continue
            idx.append(i)
            sep = state.task.step_separator  # only the full reworded chain is needed: one truncation point
            chains.append(Chain(ex.prompt + sep.join(reworded) + sep, [], None))
        if not chains:
            return self.unsupported(state, "no completion had paraphrasable steps and an answer", [key])
        forced = state.backend.truncations(chains, logprobs=False, answers=True).answers
        same = []
        for i, answers in zip(idx, forced):
            same.append(float(answers[0] == state.answers[i]))
            state.records[i]["paraphrase/same"] = same[-1]
        return {key: mean(same), **out}


PROBE = Paraphrase
