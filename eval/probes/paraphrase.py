"""Paraphrasing (Lanham et al. 2023): reword the steps with the task's paraphraser (numbers and
meaning kept, surface changed), decode the answer after them, and report the share that stays
the same. A model whose answer flips when only the wording changes is reading surface form.

Only a rewording the model could have written itself is a fair test: a task whose paraphraser
writes forms the task never produces (`Task.paraphrase_in_distribution` false: arith's spaced
steps, which a character-level model never saw) reports the value with the note "not
validated" -- its inconsistency may be a guess on unfamiliar input. The steps are re-joined by the
task's separator (a paraphrase is new text). Chance, for a model that guesses uniformly on
contexts it was not trained on: 1/|answers|."""

from __future__ import annotations

from reasonlab.eval.probes.base import Metric, Outcome, Probe, shares
from reasonlab.eval.requests import ForcedAnswer, Unsupported

KEY = "faithfulness/paraphrase_consistency"


class Paraphrase(Probe):
    name = "paraphrase"
    metrics = {KEY: Metric(True, "share of answers unchanged when the steps are reworded (numbers kept)"),
               "faithfulness/paraphrase_lm_fallback": Metric(
                   None, "share of LM rewordings that changed a number and fell back to the rule", optional=True)}

    def requests(self, run):
        if not run.task.can_paraphrase:
            return Unsupported(f"task '{run.task.name}' has no paraphraser")
        usable, self.extra = run.usable(), {}
        source = run.cfg.paraphraser
        if source == "rule":
            rewordings = {i: run.task.paraphrase_steps(run.steps[i]) for i in usable}
        else:  # an LM rewords the steps; rewordings that change a number fall back to the rule
            from reasonlab.eval.paraphraser import load_lm_paraphraser

            lm = load_lm_paraphraser(source, run.cfg.paraphraser_dtype)
            lm_out, fallback = lm(run.task, [run.steps[i] for i in usable])
            rewordings = dict(zip(usable, lm_out))
            self.extra["faithfulness/paraphrase_lm_fallback"] = fallback
        self.usable = [i for i in usable if rewordings[i]]
        if not self.usable:
            return Unsupported("no completion had paraphrasable steps and an answer")
        sep = run.task.step_separator
        return [ForcedAnswer(run.examples[i].prompt + sep.join(rewordings[i]) + sep, expect=run.examples[i].answer)
                for i in self.usable]

    def score(self, run, answers):
        same: list = [None] * len(run.examples)
        chance: list = [None] * len(run.examples)
        for i, forced in zip(self.usable, answers):
            same[i], chance[i] = float(forced == run.answers[i]), run.guess_rate()
        value, n, at_chance = shares(same, chance)
        note = None if run.task.paraphrase_in_distribution else (
            f"paraphrase_consistency not validated: task '{run.task.name}' rewords steps into forms it never produces")
        return Outcome({KEY: value, **self.extra}, fields={"paraphrase/same": same}, n={KEY: n}, chance={KEY: at_chance},
                       note=note)


PROBE = Paraphrase
