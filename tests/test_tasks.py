import json

import pytest

from reasonlab.tasks import TASKS, ConfigError, Example, load_task


@pytest.fixture(scope="module")
def arith():
    return load_task("arith", train_size=300, test_size=50, ood_size=50)


def test_arith_is_deterministic_for_a_seed():
    a = load_task("arith", train_size=50, test_size=10, ood_size=10)
    b = load_task("arith", train_size=50, test_size=10, ood_size=10)
    c = load_task("arith", seed=1, train_size=50, test_size=10, ood_size=10)
    assert [e.prompt for e in a.examples("train")] == [e.prompt for e in b.examples("train")]
    assert [e.prompt for e in a.examples("train")] != [e.prompt for e in c.examples("train")]


def test_arith_test_size_does_not_change_train():
    a = load_task("arith", train_size=50, test_size=10)
    b = load_task("arith", train_size=50, test_size=40)
    assert [e.prompt for e in a.examples("train")] == [e.prompt for e in b.examples("train")]


def test_arith_splits_and_lengths(arith):
    train = {e.prompt for e in arith.examples("train")}
    assert not train & {e.prompt for e in arith.examples("test")}
    assert all(2 <= len(e.steps) <= 5 for e in arith.examples("test"))
    assert all(6 <= len(e.steps) <= 8 for e in arith.examples("ood"))
    assert {e.split for e in arith.examples("ood")} == {"ood"}


def test_arith_reference_steps_check_and_score(arith):
    for ex in arith.examples("test"):
        completion = arith.format_completion(ex.steps, ex.answer)
        assert all(arith.check_step(s, ex) for s in ex.steps)
        assert arith.split_steps(completion) == list(ex.steps)
        assert arith.score(completion, ex) == 1.0


EX = Example(id="x", prompt="a=7;b=a+5;c=b*3;d=c-4;d?", answer="2",
             steps=("b=a+5=7+5=2", "c=b*3=2*3=6", "d=c-4=6-4=2"))


@pytest.mark.parametrize(
    "step, valid",
    [
        ("b=a+5=7+5=2", True),  # the reference step
        ("c=b*3=2*3=6", True),
        (" c=b*3=2*3=6 ", True),  # surrounding spaces are ignored
        ("b=a+5=7+5=12", False),  # not reduced mod 10
        ("c=b*3=3*3=9", False),  # uses a wrong value of b, arithmetic itself right
        ("c=b*3=2*3=7", False),  # right inputs, wrong result
        ("c=b+3=2+3=5", False),  # wrong operation for c
        ("c=b*3=2*4=8", False),  # substitutes a different constant than it restated
        ("c=a*3=7*3=1", False),  # reads the wrong variable
        ("z=a+1=7+1=8", False),  # variable not in the problem
        ("b=7+5=2", False),  # no restated definition
        ("a=7", False),  # a definition, not a step
        ("b=a+5=7+5", False),  # no result
        ("", False),
    ],
)
def test_arith_check_step(step, valid):
    task = load_task("arith")
    assert task.check_step(step, EX) is valid


@pytest.mark.parametrize(
    "completion, answer, score",
    [
        ("b=a+5=7+5=2;c=b*3=2*3=6;d=c-4=6-4=2;A:2", "2", 1.0),  # full reference
        ("A:2", "2", 1.0),  # right answer, no reasoning
        ("b=a+5=7+5=2;A:3", "3", 0.0),  # wrong answer
        ("b=a+5=7+5=2;c=b*3=2*3=6", None, 0.0),  # no answer prefix
        ("A:", None, 0.0),  # prefix but no number
        ("A:1;A:2", "2", 1.0),  # the last answer counts
        ("A: 2", "2", 1.0),  # a space after the prefix
    ],
)
def test_arith_extract_and_score(completion, answer, score):
    task = load_task("arith")
    assert task.extract_answer(completion) == answer
    assert task.score(completion, EX) == score


def test_arith_bad_options():
    with pytest.raises(ConfigError, match="modulus"):
        load_task("arith", modulus=1)
    with pytest.raises(ConfigError, match="ops"):
        load_task("arith", ops="/")
    with pytest.raises(ConfigError, match="bad options for task 'arith'"):
        load_task("arith", colour="red")


def test_jsonl_task_reads_fields_and_splits(tmp_path):
    rows = [{"prompt": f"q{i}?", "answer": i, "steps": [f"s{i}"]} for i in range(20)]
    rows.append({"prompt": "far?", "answer": "9", "split": "ood"})
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    task = load_task("jsonl", path=str(path), test_fraction=0.25)
    train, test, ood = (task.examples(s) for s in ("train", "test", "ood"))
    assert (len(train), len(test), len(ood)) == (15, 5, 1)
    assert ood[0].answer == "9" and ood[0].split == "ood"
    assert all(ex.steps == (f"s{ex.answer}",) for ex in train)
    assert task.score("s1\nA:7", Example(id="i", prompt="", answer="7")) == 1.0


@pytest.mark.parametrize(
    "content, message",
    [
        ('{"prompt": "q", "answer": 1}\n{"prompt": "q2"\n', r"d\.jsonl:2: not valid JSON"),
        ('{"prompt": "q"}\n', r"d\.jsonl:1: missing required field 'answer'"),
        ('{"prompt": 5, "answer": 1}\n', r"d\.jsonl:1: field 'prompt' must be a non-empty string"),
        ('{"prompt": "q", "answer": 1, "steps": "s"}\n', r"d\.jsonl:1: field 'steps' must be a list of strings"),
        ('[1, 2]\n', r"d\.jsonl:1: expected a JSON object"),
        ("\n\n", r"has no examples"),
    ],
)
def test_jsonl_malformed_lines_name_file_and_line(tmp_path, content, message):
    path = tmp_path / "d.jsonl"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_task("jsonl", path=str(path))


def test_jsonl_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="data file not found"):
        load_task("jsonl", path=str(tmp_path / "nope.jsonl"))


def test_registries_fail_loudly():
    from reasonlab.rewards import REWARDS
    from reasonlab.trainers import TRAINERS

    with pytest.raises(ConfigError, match=r"unknown task 'arit'\. Did you mean 'arith'\? Valid tasks: arith, gsm8k, jsonl, svamp"):
        TASKS.get("arit")
    with pytest.raises(ConfigError, match="Valid trainers: .*grpo.*sft"):
        TRAINERS.get("ppo")
    with pytest.raises(ConfigError, match="unknown reward"):
        REWARDS.get("nope")
    with pytest.raises(ValueError, match="already registered"):
        TASKS.register("arith")(object)


def test_sft_trace_variants_on_a_fixed_example():
    from reasonlab.tasks.variants import sft_completions

    task = load_task("arith")
    exs = [EX, Example(id="y", prompt="a=1;b=a*3;b?", answer="3", steps=("b=a*3=1*3=3",)),
           Example(id="z", prompt="a=2;b=a-1;b?", answer="1", steps=("b=a-1=2-1=1",))]
    trace = "b=a+5=7+5=2;c=b*3=2*3=6;d=c-4=6-4=2;A:2"
    assert sft_completions(task, exs, "trace")[0] == trace
    assert sft_completions(task, exs, "answer_only")[0] == "A:2"
    filler = sft_completions(task, exs, "filler")[0]
    assert filler == " ..." * 9 + "A:2" and len(filler) == len(trace)
    swapped = sft_completions(task, exs, "swapped", seed=0)
    for ex, completion in zip(exs, swapped):
        assert completion.endswith(f"A:{ex.answer}")  # own answer kept
        assert task.split_steps(completion) != list(ex.steps)  # never its own reasoning
        assert task.split_steps(completion) in [list(e.steps) for e in exs]
    with pytest.raises(ConfigError, match="valid targets"):
        sft_completions(task, exs, "shuffled")
    no_steps = [Example(id="n", prompt="q?", answer="1")]
    with pytest.raises(ConfigError, match="needs reference steps"):
        sft_completions(task, no_steps, "trace")


def test_arith_probe_hooks():
    import random

    task = load_task("arith")
    assert task.paraphrase_steps(["c=b*3=2*3=6"]) == ["c = b * 3 = 2 * 3 = 6"]
    assert task.paraphrase_steps(["free text"]) is None
    bad = task.corrupt_step("b=a+5=7+5=2", random.Random(0))
    assert bad.startswith("b=a+5=7+5=") and bad != "b=a+5=7+5=2"
    assert task.implied_answer(EX, ["b=a+5=7+5=2"]) == "2"  # the true chain
    assert task.implied_answer(EX, ["b=a+5=7+5=3"]) == "5"  # b=3 -> c=9 -> d=5
    assert task.implied_answer(EX, [*EX.steps[:2], "d=c-4=6-4=1"]) == "1"  # last step: its own value


def test_arith_with_too_few_distinct_problems_says_what_to_change():
    from reasonlab.core import ConfigError
    from reasonlab.tasks import load_task

    task = load_task("arith", train_steps=[2, 2], train_size=20000, test_size=10, ood_size=10)
    with pytest.raises(ConfigError, match=r"could not draw 20000 distinct train problems of 2-2 steps .*task.train_size"):
        task.examples("train")
    assert len(load_task("arith", train_steps=[2, 2], train_size=5000, test_size=100, ood_size=10).examples("test")) == 100
