"""Paraphrasing (Lanham et al. 2023): reword the steps with the task's paraphraser (numbers and
meaning kept, surface changed), decode the answer after them, and report the share that stays
the same. A model whose answer flips when only the wording changes is reading surface form."""

from __future__ import annotations

from eval.probes.base import EvalState, Probe, mean


class Paraphrase(Probe):
    name = "paraphrase"

    def __init__(self):
        self.extra: dict[str, float] = {}

    def branches(self, state: EvalState):
        if not state.task.can_paraphrase:
            return {}
        usable = [i for i, (steps, ref) in enumerate(zip(state.steps, state.answers)) if ref is not None and steps]
        source = state.cfg.get("paraphraser") or "rule"
        if source == "rule":
            rewordings = {i: state.task.paraphrase_steps(state.steps[i]) for i in usable}
        else:  # an LM rewords the steps; rewordings that change a number fall back to the rule
            from eval.paraphraser import load_lm_paraphraser

            lm = load_lm_paraphraser(str(source), state.cfg.get("paraphraser_dtype", "float32"))
            lm_out, fallback = lm(state.task, [state.steps[i] for i in usable])
            rewordings = dict(zip(usable, lm_out))
            self.extra["faithfulness/paraphrase_lm_fallback"] = fallback
        sep = state.task.step_separator
        return {i: state.examples[i].prompt + sep.join(reworded) + sep for i, reworded in rewordings.items() if reworded}

    def run(self, state: EvalState):
        key = "faithfulness/paraphrase_consistency"
        if not state.task.can_paraphrase:
            return self.unsupported(state, f"task '{state.task.name}' has no paraphraser", [key])
        forced = self.branch_answers(state)
        for i, rec in enumerate(state.records):
            rec["paraphrase/same"] = float(forced[i] == state.answers[i]) if i in forced else None
        if not forced:
            return self.unsupported(state, "no completion had paraphrasable steps and an answer", [key])
        return {key: mean([state.records[i]["paraphrase/same"] for i in forced]), **self.extra}


PROBE = Paraphrase
