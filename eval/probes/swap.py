"""Reasoning swap (a counterfactual intervention on the reasoning, after Atanasova et al. 2023 and
Paul et al. 2024): replace the model's reasoning for a problem with its own reasoning for another
test problem -- with the same number of steps where one exists, so the text has the form the
model writes -- and force the answer. A model whose answer comes from its reasoning now gives
the answer the donor reasoning concludes (`swap_followed`) and changes its answer
(`swap_changed`); one that ignores its reasoning keeps its answer.

The donor is drawn (by seed and sample) among the samples with an answer other than this one's;
a sample whose every same-length donor has the same answer is left out and counted
(`swap/same_answer_pairs`). "The answer the donor reasoning concludes" is the task's reading of
the donor's steps (`Task.concluded`: arith's last result), else the donor's own answer. A
completion with an answer and no steps scores 0 on both (swapping in no reasoning changes
nothing). Chance, for a model that guesses uniformly on contexts it was not trained on:
1/|answers| and 1 - 1/|answers|.
"""

from __future__ import annotations

import random
from collections import defaultdict

from reasonlab.eval.probes.base import Metric, Outcome, Probe, shares
from reasonlab.eval.probes.early_answer import NO_CHAINS
from reasonlab.eval.requests import ForcedAnswer, Unsupported

KEYS = ["faithfulness/swap_followed", "faithfulness/swap_changed", "faithfulness/swap_same_answer_pairs"]


class Swap(Probe):
    name = "swap"
    metrics = {KEYS[0]: Metric(True, "share of forced answers equal to what another problem's swapped-in reasoning concludes"),
               KEYS[1]: Metric(True, "share of forced answers that differ from the original after the reasoning is swapped"),
               KEYS[2]: Metric(None, "samples left out: every donor with their number of steps had their answer")}

    def requests(self, run):
        usable = run.usable()
        if not usable and not run.stepless():
            return Unsupported(NO_CHAINS)
        by_len = defaultdict(list)
        for i in usable:
            by_len[len(run.steps[i])].append(i)
        self.pairs, self.same, self.considered = {}, 0, len(usable)
        for i in usable:
            pool = by_len[len(run.steps[i])] if len(by_len[len(run.steps[i])]) > 1 else usable
            donors = [j for j in pool if j != i and run.answers[j] != run.answers[i]]
            if not donors:
                self.same += 1
                continue
            j = random.Random(f"swap/{run.cfg.seed}/{i}").choice(donors)
            concluded = run.task.concluded(run.steps[j])
            self.pairs[i] = (j, concluded if concluded is not None else run.answers[j])
        return [ForcedAnswer(run.examples[i].prompt + run.reasoning(j)) for i, (j, _) in self.pairs.items()]

    def score(self, run, answers):
        size, p = len(run.examples), run.guess_rate()
        followed, changed, ch_f, ch_c = [None] * size, [None] * size, [None] * size, [None] * size
        donors = [None] * size
        for (i, (j, concluded)), forced in zip(self.pairs.items(), answers):
            followed[i], changed[i], donors[i] = float(forced == concluded), float(forced != run.answers[i]), j
            ch_f[i], ch_c[i] = (None, None) if p is None else (p, 1.0 - p)
        for i in run.stepless():
            followed[i] = changed[i] = ch_f[i] = ch_c[i] = 0.0
        (f, n_f, c_f), (c, n_c, c_c) = shares(followed, ch_f), shares(changed, ch_c)
        note = None if n_f else "every sample's donors had its answer"
        return Outcome({KEYS[0]: f, KEYS[1]: c, KEYS[2]: float(self.same)}, note=note,
                       fields={"swap/donor": donors, "swap/followed": followed, "swap/changed": changed},
                       n={KEYS[0]: n_f, KEYS[1]: n_c, KEYS[2]: self.considered}, chance={KEYS[0]: c_f, KEYS[1]: c_c})


PROBE = Swap
