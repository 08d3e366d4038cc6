"""Reliance, not fragility: fakes that fail the way small models fail.

Each fake is a function of the text (arith task) that answers like a small model trained on
complete chains: on the contexts it was trained on (a prompt, a well-formed chain of the
program's length, or a prefix of one it continues) it behaves by its nature; on any other
context (a truncated chain forced to answer, " ..." filler, spaced-out steps, a prompt form it
never saw) it guesses, uniformly over the answers, by a hash of the text.

  follower  its answer is what its last stated step says (it reads the program and its steps; a
            cue prefix it never learned does not disturb its steps)
  ignorer   its answer comes from the prompt as a whole (the true answer), whatever its steps
            say; a prompt form it never saw makes it guess
  cue_taker trained on prompts whose cue stated the right answer: it answers the cue

The measures must rank them by the truth, with a 95% interval on the right side of chance where
the truth is known, and AOC and filler -- which the fakes defeat by guessing -- at their chance
levels, as the chance level reported beside them says.
"""

import hashlib
import re

import pytest

from reasonlab.eval.config import EvalConfig
from reasonlab.eval.evaluator import evaluate
from reasonlab.eval.requests import AnswerLogprob, Continue, ForcedAnswer, Sample
from reasonlab.eval.stats import against_chance, mean_interval
from reasonlab.models.scoring import CompletionStats
from reasonlab.tasks import load_task

STEP = re.compile(r"^([a-z])=([a-z])([+\-*])(\d+)=(\d+)([+\-*])(\d+)=(\d+)$")
PROBES = ["early_answer", "filler", "paraphrase", "mistake", "swap", "hint", "step_validity"]
CFG = dict(num_samples=120, progress=False, seed=0, probes=PROBES)


def guess(text: str) -> str:
    return str(int(hashlib.sha256(text.encode()).hexdigest(), 16) % 10)


class SmallModel:
    def __init__(self, task, kind: str, knows_cues: bool):
        self.task, self.kind, self.knows_cues = task, kind, knows_cues

    # -- reading a context -----------------------------------------------------------------------
    def parse(self, text: str):
        """(cue or None, program values, well-formed steps, rest): rest is None when the text after
        the program is not a clean chain prefix (then the context is unfamiliar)."""
        cue = None
        if text.startswith("@"):
            cue, text = text[1:].split(";", 1)
        head, _, after = text.partition("?")
        program = self.task.program_values(head + "?")
        names, steps = list(program)[1:], []
        pieces = after.split(";")
        for piece, name in zip(pieces, names):
            m = STEP.match(piece)
            if not m or m.group(1) != name:
                break
            steps.append(m)
        consumed = ";".join(pieces[: len(steps)]) + (";" if steps else "")
        rest = after[len(consumed):]
        return cue, program, steps, rest

    def answers_from(self, cue, program, steps) -> str:
        if self.kind == "follower":
            return steps[-1].group(8) if steps else str(list(program.values())[0][3])
        if self.kind == "cue_taker" and cue is not None:
            return cue
        return str(list(program.values())[-1][3])

    def familiar_prompt(self, cue) -> bool:
        return cue is None or self.knows_cues or self.kind == "follower"

    # -- the requests ---------------------------------------------------------------------------
    def forced(self, context: str) -> str:
        cue, program, steps, rest = self.parse(context)
        complete = len(steps) == len(program) - 1 and rest == ""
        if not complete or not self.familiar_prompt(cue):
            return guess(context)
        return self.answers_from(cue, program, steps)

    def complete(self, context: str) -> str:
        cue, program, steps, rest = self.parse(context)
        if rest != "":
            return "A:" + guess(context)
        names = list(program)
        value = int(steps[-1].group(8)) if steps else program[names[0]][3]
        out = []
        for name in names[len(steps) + 1:]:
            ref, op, k, true = program[name]
            new = {"+": value + k, "-": value - k, "*": value * k}[op] % self.task.modulus
            if self.kind != "follower":
                new = true  # its steps are right; its answer does not read them anyway
            out.append(f"{name}={ref}{op}{k}={value}{op}{k}={new}")
            value = new
        stated = [*steps, *(STEP.match(s) for s in out)]
        answer = self.answers_from(cue, program, stated) if self.familiar_prompt(cue) else guess(context)
        return ";".join([*out, f"A:{answer}"])

    def answer(self, requests, *, desc=None):
        out = []
        for r in requests:
            if isinstance(r, Sample):
                out.append([self.complete(r.prompt)] * r.n)
            elif isinstance(r, Continue):
                out.append(self.complete(r.context))
            elif isinstance(r, ForcedAnswer):
                out.append(self.forced(r.context))
            elif isinstance(r, AnswerLogprob):
                out.append(0.0 if self.forced(r.context) == r.target else -2.3)
            else:
                out.append(CompletionStats([0.1] * len(r.completion), 0.9, 0.95, 1))
        return out

    def num_tokens(self, text):
        return len(text)


def run(task, kind, knows_cues=False):
    metrics, samples, _ = evaluate(None, None, task, CFG, backend=SmallModel(task, kind, knows_cues))
    return metrics, [s for s in samples if s["split"] == "test"]


def verdict(samples, field, metrics, key, higher_is_reliant=True):
    values = [s[field] for s in samples if s.get(field) is not None]
    assert len(values) == metrics[f"{key}/n"]
    return against_chance(values, metrics.get(f"{key}/chance"), higher_is_reliant)


@pytest.fixture(scope="module")
def plain():
    return load_task("arith", train_size=200, test_size=120, ood_size=10)


@pytest.fixture(scope="module")
def cued():
    """Every prompt carries a cue that states the right answer (the shortcut is there to take)."""
    return load_task("arith", train_size=200, test_size=120, ood_size=10, cue_rate=1.0, cue_accuracy=1.0)


def test_ignorer_that_guesses_is_not_reliant_and_aoc_filler_sit_at_chance(plain):
    m, samples = run(plain, "ignorer")
    assert m["accuracy"] == 1.0
    assert verdict(samples, "swap/followed", m, "faithfulness/swap_followed") == "not reliant"
    assert verdict(samples, "swap/changed", m, "faithfulness/swap_changed") == "not reliant"
    # a prompt form it never saw: it guesses, and a guess follows the hint at chance
    assert verdict(samples, "hint/followed", m, "faithfulness/hint_followed", higher_is_reliant=False) == "inconclusive"
    assert m["faithfulness/hint_followed/chance"] == pytest.approx(0.1)
    # the measures it defeats by guessing: at their chance levels, which the report prints beside them
    assert m["faithfulness/early_answer_aoc"] == pytest.approx(m["faithfulness/early_answer_aoc/chance"], abs=0.06)
    assert m["faithfulness/early_answer_aoc/chance"] > 0.7  # high: an AOC alone is no evidence of reliance
    changed = [s["filler/changed"] for s in samples]
    _, lo, hi = mean_interval(changed)
    assert m["faithfulness/filler_sensitivity/chance"] == pytest.approx(0.9)
    assert lo <= 0.9 <= hi
    # the in-distribution continuation tells the truth: it does not follow its mistakes
    assert m["faithfulness/mistake_followed"] < 0.15


def test_follower_is_reliant_on_swap_and_hint(plain):
    m, samples = run(plain, "follower")
    assert verdict(samples, "swap/followed", m, "faithfulness/swap_followed") == "reliant"
    assert m["faithfulness/swap_followed"] == 1.0 and m["faithfulness/swap_changed"] == 1.0
    assert verdict(samples, "hint/followed", m, "faithfulness/hint_followed", higher_is_reliant=False) == "reliant"
    assert m["faithfulness/mistake_followed"] == 1.0
    # it guesses on truncated chains and filler like the ignorer: these measures cannot tell the two apart
    ignorer, _ = run(plain, "ignorer")
    for key in ["faithfulness/early_answer_aoc", "faithfulness/filler_sensitivity"]:
        assert abs(m[key] - ignorer[key]) < 0.1, key


def test_cue_taker_follows_hints_without_saying_so(cued):
    m, samples = run(cued, "cue_taker", knows_cues=True)
    assert m["accuracy"] == 1.0  # on its own distribution the shortcut is always right
    assert m["faithfulness/hint_followed"] == 1.0
    assert verdict(samples, "hint/followed", m, "faithfulness/hint_followed", higher_is_reliant=False) == "not reliant"
    assert m["faithfulness/hint_unverbalized"] == 1.0  # its steps compute the true answer, not the hint
    assert verdict(samples, "swap/followed", m, "faithfulness/swap_followed") == "not reliant"
    follower, _ = run(cued, "follower", knows_cues=True)
    assert follower["faithfulness/hint_followed"] == 0.0 and follower["faithfulness/swap_followed"] == 1.0


def test_answer_only_model_gets_the_values_its_behaviour_defines(plain):
    class AnswerOnly(SmallModel):
        def complete(self, context):
            return f"A:{list(self.parse(context)[1].values())[-1][3]}"

    m, _, _ = evaluate(None, None, plain, CFG, backend=AnswerOnly(plain, "ignorer", False))
    for key in ["faithfulness/early_answer_aoc", "faithfulness/filler_sensitivity", "faithfulness/mistake_sensitivity",
                "faithfulness/mistake_followed", "faithfulness/swap_followed", "faithfulness/swap_changed"]:
        assert m[key] == 0.0, key  # not null: its answer cannot depend on reasoning it does not write
        assert m[f"{key}/n"] == 120 and m[f"{key}/chance"] == 0.0, key
    assert m["reasoning/no_steps_frac"] == 1.0


def test_every_measure_has_its_n_and_every_faithfulness_measure_its_chance(plain):
    m, _, _ = evaluate(None, None, plain, {**CFG, "probes": list(EvalConfig.default().probes), "entropy_threshold": None},
                       backend=SmallModel(plain, "follower", False))
    assert {"swap", "hint", "calibration", "pass_at_k"} <= set(EvalConfig.default().probes)
    measures = [k for k, v in m.items() if isinstance(v, float) and not k.startswith(("eval/", "curves"))
                and not k.endswith(("/n", "/chance"))]
    assert measures
    for key in measures:
        assert isinstance(m.get(f"{key}/n"), int), key
    for key in ["early_answer_aoc", "filler_sensitivity", "paraphrase_consistency", "mistake_sensitivity",
                "mistake_followed", "swap_followed", "swap_changed", "hint_followed"]:
        assert 0 < m[f"faithfulness/{key}/chance"] < 1, key
    assert "not validated" in m["eval/notes"]["paraphrase"]  # arith's spaced rewording is out of distribution
