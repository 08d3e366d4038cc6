"""The evaluator measures what it claims: known answers on hand-built models (a fake backend whose
answers are a function of the text), and the LM backend's answers equal the reference backend's
(every request answered the plain way, one at a time)."""

import re

import pytest

from reasonlab.eval.evaluator import evaluate
from reasonlab.eval.probes import Metric, Outcome, Probe
from reasonlab.eval.probes.calibration import ece
from reasonlab.eval.probes.early_answer import area_over_curve
from reasonlab.eval.probes.pass_at_k import pass_at_k
from reasonlab.eval.requests import AnswerLogprob, Continue, ForcedAnswer, Sample, TokenStats, Unsupported
from reasonlab.models.scoring import CompletionStats
from reasonlab.tasks import load_task

CFG = dict(num_samples=40, max_new_tokens=48, batch_size=16, progress=False, seed=0, answer_max_tokens=4,
           pass_at_k=dict(n=4, k=[1, 4], prompts=10, temperature=1.0), entropy_threshold=None,
           probes=["pass_at_k", "info_gain", "early_answer", "filler", "paraphrase", "mistake", "step_validity", "cot",
                   "calibration", "entropy"])
STEP = re.compile(r"([a-z]) ?= ?[a-z] ?[+\-*] ?\d+ ?= ?(\d+) ?([+\-*]) ?(\d+) ?= ?(\d+)")


class FakeBackend:
    """A 'model' whose answers are a known function of the text (arith task only): it either
    follows its last stated step or ignores its reasoning and knows the true answer."""

    def __init__(self, task, follows_steps: bool):
        self.task, self.follows, self.calls = task, follows_steps, 0

    def _program(self, text):
        prompt = text[: text.index("?") + 1]
        return self.task.program_values(prompt), text[len(prompt):]

    def forced(self, context):
        program, reasoning = self._program(context)
        if not self.follows:
            return str(list(program.values())[-1][3])  # the true answer, whatever the reasoning says
        stated = STEP.findall(reasoning)
        return stated[-1][4] if stated else str(list(program.values())[0][3])  # last stated result

    def complete(self, context):
        program, reasoning = self._program(context)
        names = list(program)
        if not self.follows:
            steps = [] if reasoning else [f"{v}={r}{op}{k}={program[r][3]}{op}{k}={val}"
                                          for v, (r, op, k, val) in list(program.items())[1:]]
            return ";".join([*steps, f"A:{list(program.values())[-1][3]}"])
        stated = STEP.findall(reasoning)
        var, value = (stated[-1][0], int(stated[-1][4])) if stated else (names[0], program[names[0]][3])
        out = []
        for name in names[names.index(var) + 1:]:
            ref, op, k, _ = program[name]
            new = {"+": value + k, "-": value - k, "*": value * k}[op] % self.task.modulus
            out.append(f"{name}={ref}{op}{k}={value}{op}{k}={new}")
            value = new
        return ";".join([*out, f"A:{value}"])

    def answer(self, requests, *, desc=None):
        self.calls += 1
        out = []
        for r in requests:
            if isinstance(r, Sample):
                out.append([self.complete(r.prompt)] * r.n)
            elif isinstance(r, Continue):
                out.append(self.complete(r.context))
            elif isinstance(r, ForcedAnswer):
                out.append(self.forced(r.context))
            elif isinstance(r, AnswerLogprob):
                out.append(0.0 if self.forced(r.context) == r.target else -2.0)
            else:
                out.append(CompletionStats([0.1] * len(r.completion), 0.9, 0.95, 1))
        return out

    def num_tokens(self, text):
        return len(text)


@pytest.fixture(scope="module")
def task():
    return load_task("arith", train_size=100, test_size=40, ood_size=10)


def test_answer_that_ignores_reasoning_scores_zero_faithfulness(task):
    m, _, _ = evaluate(None, None, task, CFG, backend=FakeBackend(task, follows_steps=False))
    assert m["accuracy"] == 1.0
    assert m["faithfulness/early_answer_aoc"] == 0.0
    assert m["faithfulness/filler_sensitivity"] == 0.0
    assert m["faithfulness/mistake_sensitivity"] == 0.0
    assert m["info_gain/total"] == 0.0  # the gold answer is as likely with no steps as with all
    assert m["reasoning/step_validity"] == 1.0 and m["reasoning/right_answer_wrong_steps"] == 0.0


def test_answer_that_follows_its_last_step_is_faithful(task):
    backend = FakeBackend(task, follows_steps=True)
    m, samples, curves = evaluate(None, None, task, CFG, backend=backend)
    assert backend.calls == 2  # the greedy splits, then every probe's requests at once
    assert m["accuracy"] == 1.0
    assert m["faithfulness/early_answer_aoc"] > 0.3
    assert m["faithfulness/filler_sensitivity"] > 0.5
    assert m["faithfulness/mistake_followed"] == 1.0
    # below 1 only where the program maps the wrong value to the same answer (e.g. x*5 mod 10)
    assert m["faithfulness/mistake_sensitivity"] > 0.5
    assert m["faithfulness/paraphrase_consistency"] == 1.0  # the fake reads reworded steps too
    assert m["info_gain/total"] > 0
    for n, curve in curves["early_answer"].items():
        assert curve["match_rate"][-1] == 1.0  # with all steps, the same answer
    rec = next(s for s in samples if s["split"] == "test")
    assert len(rec["info_gain/step_gains"]) == len(rec["steps"])


def test_completion_without_answer_or_steps_is_recorded_not_crashed(task):
    class Mute(FakeBackend):
        def complete(self, context):
            return "???"

    m, samples, _ = evaluate(None, None, task, CFG, backend=Mute(task, follows_steps=True))
    assert m["accuracy"] == 0.0
    assert m["faithfulness/early_answer_aoc"] is None and "early_answer" in m["eval/notes"]
    assert m["faithfulness/mistake_followed"] is None and "mistake" in m["eval/notes"]
    assert all(s["answer"] is None for s in samples)


class CountsWords(Probe):
    """A probe written in a test file: the share of forced answers after the bare prompt that
    equal the answer given with reasoning."""

    name = "test_bare_prompt"
    metrics = {"test/bare_same": Metric(None, "share of answers unchanged with no reasoning")}

    def requests(self, run):
        return [ForcedAnswer(ex.prompt) for ex in run.examples]

    def score(self, run, answers):
        same = [float(a == ref) for a, ref in zip(answers, run.answers)]
        return Outcome({"test/bare_same": sum(same) / len(same)}, fields={"test/bare_same": same})


@pytest.fixture(scope="module")
def own_probe():
    from reasonlab.eval.probes import PROBES, register_probe

    if "test_bare_prompt" not in PROBES:
        register_probe(CountsWords)
    return CountsWords


def test_a_probe_of_ones_own_reaches_metrics_json(own_probe, run_cfg):
    """Registered from this file (no project file edited), selected by config, scored by a real
    run: its metric is in metrics.json and its per-sample field in samples.jsonl."""
    import json
    from pathlib import Path

    from reasonlab.launch.train import train

    cfg = run_cfg("eval.probes=[test_bare_prompt,cot]", "run_name=own_probe")
    result = train(cfg)
    written = json.loads((Path(cfg.run_dir) / "metrics.json").read_text())
    assert written["test/bare_same"] == result["test/bare_same"] and 0.0 <= written["test/bare_same"] <= 1.0
    assert "cot/steps_mean" in written and "faithfulness/early_answer_aoc" not in written
    rows = [json.loads(line) for line in open(Path(cfg.run_dir) / "samples.jsonl")]
    assert all("test/bare_same" in r for r in rows if r["split"] == "test")


def test_probe_contract_is_enforced(task, own_probe):
    from reasonlab.core import ConfigError
    from reasonlab.eval.probes import PROBES, register_probe

    class Undeclared(CountsWords):
        name = "test_undeclared"

        def score(self, run, answers):
            return {"test/other": 1.0}

    class Refuses(CountsWords):
        name = "test_refuses"

        def requests(self, run):
            return Unsupported("this task has no such thing")

    for cls in (Undeclared, Refuses):
        if cls.name not in PROBES:
            register_probe(cls)
    with pytest.raises(ValueError, match="does not declare"):
        evaluate(None, None, task, {**CFG, "probes": ["test_undeclared"]}, backend=FakeBackend(task, True))
    m, _, _ = evaluate(None, None, task, {**CFG, "probes": ["test_refuses"]}, backend=FakeBackend(task, True))
    assert m["test/bare_same"] is None and m["eval/notes"]["test_refuses"] == "this task has no such thing"
    with pytest.raises(ConfigError, match="unknown probe 'test_bare_prompts'.*Did you mean 'test_bare_prompt'"):
        evaluate(None, None, task, {**CFG, "probes": ["test_bare_prompts"]}, backend=FakeBackend(task, True))
    with pytest.raises(ConfigError, match="unknown evaluator setting 'batchsize'.*Did you mean 'batch_size'"):
        evaluate(None, None, task, {"batchsize": 3}, backend=FakeBackend(task, True))


def test_evaluate_from_python_with_the_defaults(task):
    """evaluate(model, tokenizer, task) needs no config: conf/eval/default.yaml's values."""
    from reasonlab.eval.config import EvalConfig

    cfg = EvalConfig.default()
    assert cfg.batch_size == 128 and cfg.max_new_tokens == 112 and cfg.num_samples == 200 and cfg.truncation_rows == 80
    assert EvalConfig.default("gpu").batch_size == 1024
    m, samples, _ = evaluate(None, None, task, backend=FakeBackend(task, True))
    assert m["eval/num_samples"] == len(task.examples("test")) and "faithfulness/mistake_followed" in m


@pytest.mark.parametrize("n, c, k, expected", [
    (8, 0, 1, 0.0), (8, 8, 1, 1.0), (8, 2, 1, 0.25), (8, 1, 8, 1.0),
    (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    (5, 2, 3, 0.9),  # 1 - C(3,3)/C(5,3) = 1 - 1/10
])
def test_pass_at_k_unbiased_estimator(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_ece_and_aoc_on_fixed_numbers():
    # two bins: [0.9, 0.9] with accuracy 0.5 -> gap 0.4; [0.25] with accuracy 1 -> gap 0.75
    assert ece([0.9, 0.9, 0.25], [1.0, 0.0, 1.0]) == pytest.approx(2 / 3 * 0.4 + 1 / 3 * 0.75)
    assert area_over_curve([1.0, 1.0, 1.0]) == 0.0
    assert area_over_curve([0.0, 0.0, 1.0]) == pytest.approx(0.75)


def test_requests_are_values(task):
    assert ForcedAnswer("x", expect="3") == ForcedAnswer("x") and hash(ForcedAnswer("x", "3")) == hash(ForcedAnswer("x"))
    assert AnswerLogprob("x", "3") != AnswerLogprob("x", "3", reader=True)
    with pytest.raises(ValueError, match="n == 1 when greedy"):
        Sample("x", n=2)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        Sample("x", n=2, temperature=0.0)
