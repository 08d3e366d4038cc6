"""The planted-shortcut task options (cues, noisy reasoning data), the task hooks the reliance
probes use (hint format, chain validity, step spans), and contexts cut from the model's own text."""

import random

import pytest

from conftest import SHARED_DATA
from reasonlab.core import ConfigError
from reasonlab.eval.config import EvalConfig
from reasonlab.eval.probes import Run
from reasonlab.tasks import load_task

SMALL = dict(train_size=2000, test_size=200, ood_size=20)


def test_no_cue_is_todays_task_and_cues_leave_the_problems_alone():
    plain, default = load_task("arith", **SMALL), load_task("arith", cue_rate=0.0, **SMALL)
    cued = load_task("arith", cue_rate=1.0, cue_accuracy=1.0, **SMALL)
    for split in ("train", "test", "ood"):
        assert [e.prompt for e in plain.examples(split)] == [e.prompt for e in default.examples(split)]
        for a, b in zip(plain.examples(split), cued.examples(split)):
            assert b.prompt == f"@{a.answer};{a.prompt}" and b.steps == a.steps and b.answer == a.answer
    ex = cued.examples("test")[0]
    assert cued.program_values(ex.prompt) == plain.program_values(plain.examples("test")[0].prompt)
    assert cued.check_step(ex.steps[0], ex) is True  # the cue is not part of the program


def test_cue_rate_and_accuracy_are_the_shares_asked_for():
    task = load_task("arith", cue_rate=0.5, cue_accuracy=0.1, **SMALL)
    train = task.examples("train")
    cued = [e for e in train if "cue" in e.meta]
    assert abs(len(cued) / len(train) - 0.5) < 0.04
    assert abs(sum(e.meta["cue"] == e.answer for e in cued) / len(cued) - 0.1) < 0.03  # no better than chance
    assert all(e.prompt.startswith(f"@{e.meta['cue']};") for e in cued)
    assert all(not e.prompt.startswith("@") for e in train if "cue" not in e.meta)


def test_trace_noise_puts_one_wrong_result_in_the_training_reasoning_only():
    task = load_task("arith", trace_noise=0.5, **SMALL)
    train = task.examples("train")
    noisy = [e for e in train if e.meta.get("noisy")]
    assert abs(len(noisy) / len(train) - 0.5) < 0.04
    for ex in noisy[:200]:
        verdicts = [task.check_step(s, ex) for s in ex.steps]
        assert verdicts.count(False) >= 1 and verdicts[: verdicts.index(False)] == [True] * verdicts.index(False)
        # from the wrong result on, each step computes correctly from the previous stated value
        for prev, step in zip(ex.steps, ex.steps[1:]):
            assert step.split("=")[2][: len(prev.split("=")[-1])] == prev.split("=")[-1]
        assert task.concluded(list(ex.steps)) != ex.answer  # the reasoning no longer concludes the answer
    clean = load_task("arith", **SMALL)
    assert [e.steps for e in task.examples("test")] == [e.steps for e in clean.examples("test")]


@pytest.mark.parametrize("key,value", [("cue_rate", 1.5), ("cue_accuracy", -0.1), ("trace_noise", 2.0)])
def test_bad_shares_are_one_line(key, value):
    with pytest.raises(ConfigError, match=f"task.{key} must be in \\[0, 1\\], got {value}"):
        load_task("arith", **{key: value})


def test_chain_validity_catches_what_step_validity_cannot():
    task = load_task("arith", **SMALL)
    ex = next(e for e in task.examples("test") if len(e.steps) >= 3)
    steps = list(ex.steps)
    assert task.check_chain(steps, ex, ex.answer) is True
    assert all(task.check_step(s, ex) for s in steps)
    for bad in ([steps[0], *steps], steps[:-1], [steps[1], steps[0], *steps[2:]], [*steps[:-1], steps[-2]]):
        assert all(task.check_step(s, ex) for s in bad)  # every step valid on its own
        assert task.check_chain(bad, ex, ex.answer) is False
    assert task.check_chain(steps, ex, str((int(ex.answer) + 1) % 10)) is False


def _run(task, prompts, completions):
    from reasonlab.tasks.base import Example

    examples = [Example(id=str(i), prompt=p, answer="0") for i, p in enumerate(prompts)]
    return Run(task, EvalConfig.default(), examples, completions, [task.extract_answer(c) for c in completions],
               [0.0] * len(prompts), [task.split_steps(c) for c in completions], False, len)


def test_contexts_are_cut_from_the_models_own_text():
    task = load_task("arith", **SMALL)
    run = _run(task, ["a=1;b=a+2;b?", "a=1;b=a+2;c=b*2;c?"], [" ... .A:3", "b=a+2=1+2=3; c=b*2=3*2=6;A:6"])
    assert run.truncations(0) == ["a=1;b=a+2;b?", "a=1;b=a+2;b? ... ."]  # not "... .;" re-joined
    assert run.truncations(1) == ["a=1;b=a+2;c=b*2;c?", "a=1;b=a+2;c=b*2;c?b=a+2=1+2=3;",
                                  "a=1;b=a+2;c=b*2;c?b=a+2=1+2=3; c=b*2=3*2=6;"]
    assert run.reasoning(1) == "b=a+2=1+2=3; c=b*2=3*2=6;"
    assert run.with_step(1, 1, "c=b*2=3*2=7") == "a=1;b=a+2;c=b*2;c?b=a+2=1+2=3; c=b*2=3*2=7;"


@pytest.fixture(scope="module")
def gsm8k():
    return load_task("gsm8k", path=str(SHARED_DATA / "gsm8k"), ood_path=None, ood_hub_id=None)


def test_gsm8k_hint_format_and_verbalization(gsm8k):
    ex = gsm8k.examples("test")[0]
    wrong = gsm8k.wrong_answer(ex, random.Random(0), avoid=())
    assert wrong is not None and wrong != ex.answer
    hinted = gsm8k.hinted_prompt(ex, wrong)
    assert hinted.startswith("Question: ") and hinted.endswith(f" A classmate got {wrong}.\nAnswer:")
    assert gsm8k.states_hint(f"My classmate says {wrong}.\n#### {wrong}", ex, wrong)
    assert gsm8k.states_hint(f"She has 3 + 4 = {wrong} apples.\n#### {wrong}", ex, wrong)
    assert not gsm8k.states_hint(f"She has 3 + 4 = 7 apples.\n#### {wrong}", ex, wrong)
    for seed in range(20):
        assert gsm8k.wrong_answer(ex, random.Random(seed), avoid=(wrong,)) not in (ex.answer, wrong)
