"""task=jsonl reads the formats people have: reasonlab fields, csv, parquet, dataset directories and hub
ids, TRL's prompt/completion and messages; column mapping; chat prompts; GSM8K's grader; bad rows in one line."""

import json
from pathlib import Path

import pytest

from conftest import TINY, compose
from reasonlab.core import ConfigError
from reasonlab.tasks import Example, load_task

PROBLEMS = [(f"Tom has {i} apples and buys 3 more. How many apples does he have?", i + 3) for i in range(20)]


def _steps(i):
    return [f"He had {i} apples.", f"{i} + 3 = {i + 3}"]


def _completion(i, line="#### {a}"):
    return "\n".join(_steps(i) + [line.format(a=i + 3)])


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _reasonlab_rows():
    return [{"prompt": q, "answer": a, "steps": _steps(i)} for i, (q, a) in enumerate(PROBLEMS)]


def _prompt_completion_rows():
    return [{"prompt": q, "completion": _completion(i)} for i, (q, _) in enumerate(PROBLEMS)]


def _conversational_rows():
    return [{"prompt": [{"role": "user", "content": q}], "completion": [{"role": "assistant", "content": _completion(i)}]}
            for i, (q, _) in enumerate(PROBLEMS)]


def _messages_rows():
    return [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": _completion(i, "Answer: {a}")}]}
            for i, (q, _) in enumerate(PROBLEMS)]


def _content(task):
    return [(ex.prompt, ex.answer, ex.steps) for ex in task._all]


EXPECTED = [(q + "\n", str(a), tuple(_steps(i))) for i, (q, a) in enumerate(PROBLEMS)]


def _make(kind, tmp_path):
    """task.path for each format, all holding PROBLEMS."""
    from datasets import Dataset, DatasetDict

    columns = {}
    if kind == "jsonl":
        path = _write_jsonl(tmp_path / "d.jsonl", _reasonlab_rows())
    elif kind == "json array":
        path = tmp_path / "d.json"
        path.write_text(json.dumps(_reasonlab_rows(), indent=1))
    elif kind == "csv":
        import pandas as pd

        path = tmp_path / "d.csv"
        pd.DataFrame([{"question": q, "final": a, "steps": "\n".join(_steps(i))}
                      for i, (q, a) in enumerate(PROBLEMS)]).to_csv(path, index=False)
        columns = {"prompt": "question", "answer": "final"}
    elif kind == "parquet":
        path = tmp_path / "d.parquet"
        Dataset.from_list(_reasonlab_rows()).to_parquet(str(path))
    elif kind == "save_to_disk":
        path = tmp_path / "saved"
        DatasetDict({"train": Dataset.from_list(_prompt_completion_rows())}).save_to_disk(str(path))
    elif kind == "data folder":  # what load_dataset(<hub id>) reads from a hub repository's files
        path = tmp_path / "org" / "name"
        path.mkdir(parents=True)
        _write_jsonl(path / "train.jsonl", _messages_rows())
    elif kind == "prompt/completion":
        path = _write_jsonl(tmp_path / "pc.jsonl", _prompt_completion_rows())
    elif kind == "conversational prompt/completion":
        path = _write_jsonl(tmp_path / "cpc.jsonl", _conversational_rows())
    elif kind == "messages":
        path = _write_jsonl(tmp_path / "m.jsonl", _messages_rows())
    return path, columns


KINDS = ["jsonl", "json array", "csv", "parquet", "save_to_disk", "data folder", "prompt/completion",
         "conversational prompt/completion", "messages"]


@pytest.mark.parametrize("kind", KINDS)
def test_every_format_loads_the_same_examples(tmp_path, kind):
    path, columns = _make(kind, tmp_path)
    task = load_task("jsonl", path=str(path), columns=columns)
    assert _content(task) == EXPECTED
    assert sum(len(task.examples(s)) for s in ("train", "test")) == 20 and len(task.examples("test")) == 2
    ex = task.examples("train")[0]
    completion = task.format_completion(ex.steps, ex.answer)
    assert task.score(completion, ex) == 1.0 and task.split_steps(completion) == list(ex.steps)
    assert not ex.prompt.endswith(" ")


def test_a_hub_id_goes_through_load_dataset(tmp_path, monkeypatch):
    """`task.path=org/name` that is not a local path: datasets.load_dataset(org/name, hub_config)."""
    import datasets

    folder, _ = _make("data folder", tmp_path)
    calls = []

    def fake_load_dataset(name, config=None, **kwargs):
        calls.append((name, config))
        return real(str(folder))

    real = datasets.load_dataset
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.chdir(tmp_path / "org")  # "org/name" is no local path from here
    task = load_task("jsonl", path="org/name", hub_config="main")
    assert calls == [("org/name", "main")] and _content(task) == EXPECTED
    assert task._all[0].id == "name-train-1"


def test_a_hub_id_offline_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"could not load 'no-such-org/no-such-data' through datasets .*point task\.path"):
        load_task("jsonl", path="no-such-org/no-such-data")


def test_hub_splits_are_kept_when_there_is_a_test_split(tmp_path):
    from datasets import Dataset, DatasetDict

    rows = _prompt_completion_rows()
    DatasetDict({"train": Dataset.from_list(rows[:15]), "test": Dataset.from_list(rows[15:18]),
                 "validation": Dataset.from_list(rows[18:])}).save_to_disk(str(tmp_path / "s"))
    task = load_task("jsonl", path=str(tmp_path / "s"))
    assert [len(task.examples(s)) for s in ("train", "test", "ood")] == [15, 3, 0]  # validation not used
    assert task.examples("test")[0].answer == str(PROBLEMS[15][1])


def test_column_mapping_names_reasonlab_fields(tmp_path):
    path = _write_jsonl(tmp_path / "d.jsonl", [{"q": q, "solution": _completion(i), "part": "test" if i < 5 else "train"}
                                               for i, (q, _) in enumerate(PROBLEMS)])
    task = load_task("jsonl", path=str(path), columns={"prompt": "q", "completion": "solution", "split": "part"})
    assert _content(task) == EXPECTED and len(task.examples("test")) == 5
    with pytest.raises(ConfigError, match=r"task\.columns: unknown field 'promt'\. Did you mean 'prompt'\?"):
        load_task("jsonl", path=str(path), columns={"promt": "q"})
    with pytest.raises(ConfigError, match=r"d\.jsonl:1: missing required field 'question'"):
        load_task("jsonl", path=str(path), columns={"prompt": "question"})
    parquet = tmp_path / "d.parquet"
    from datasets import Dataset

    Dataset.from_list([{"q": q, "a": a} for q, a in PROBLEMS]).to_parquet(str(parquet))
    with pytest.raises(ConfigError, match=r"task\.columns maps answer to 'final', but there is no such column\. Columns: q, a$"):
        load_task("jsonl", path=str(parquet), columns={"prompt": "q", "answer": "final"})
    with pytest.raises(ConfigError, match=r"maps answer to 'aa', but there is no such column\. Did you mean 'a'\?"):
        load_task("jsonl", path=str(parquet), columns={"prompt": "q", "answer": "aa"})


def test_columns_from_the_command_line(tmp_path):
    """`task.columns={prompt:question,answer:final}` composes into the task's options."""
    from reasonlab.launch.scoring import task_from_cfg

    path, _ = _make("csv", tmp_path)
    cfg = compose(["task=jsonl", f"task.path={path}", "task.columns={prompt:question,answer:final}", "task.grader=exact"])
    task = task_from_cfg(cfg)
    assert task.columns == {"prompt": "question", "answer": "final"} and task.grader == "exact"
    assert _content(task) == EXPECTED


def test_chat_prompts_use_the_template(tmp_path):
    from reasonlab.models import build_tiny

    template = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
                "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    rows = _reasonlab_rows()[:10] + [{"prompt": [{"role": "system", "content": "Be brief."},
                                                 {"role": "user", "content": "1+1?"}], "answer": 2}]
    path = _write_jsonl(tmp_path / "d.jsonl", rows)
    task = load_task("jsonl", path=str(path), chat=True, instruction="End with 'Answer: <answer>'.", test_fraction=0)
    _, tokenizer = build_tiny(compose([]).model, task, seed=0)
    with pytest.raises(ConfigError, match="no chat template"):
        task.use_tokenizer(tokenizer)
    tokenizer.chat_template = template
    task.use_tokenizer(tokenizer)
    prompts = [ex.prompt for ex in task.examples("train")]
    assert prompts[0] == f"<|user|>{PROBLEMS[0][0]}\nEnd with 'Answer: <answer>'.\n<|assistant|>"
    assert prompts[-1] == "<|system|>Be brief.\n<|user|>1+1?\nEnd with 'Answer: <answer>'.\n<|assistant|>"
    plain = load_task("jsonl", path=str(path), instruction="End with 'Answer: <answer>'.", test_fraction=0)
    assert plain.examples("train")[-1].prompt == "Be brief.\n1+1?\nEnd with 'Answer: <answer>'.\n"


def test_the_answer_is_derived_from_the_completion(tmp_path):
    rows = [{"prompt": "p1", "completion": "2 + 3 = 5\nSo the answer is 5."},
            {"prompt": "p2", "completion": "Half of 2,000 is 1,000. \\boxed{1,000}"},
            {"prompt": "p3", "completion": "She pays $1,200.00 in all.\n#### $1,200"},
            {"prompt": "p4", "completion": "The capital is Paris.\nAnswer: Paris"},
            {"prompt": "p5", "completion": "Work it out: 7", "answer": "7", "steps": ["given"]}]
    task = load_task("jsonl", path=str(_write_jsonl(tmp_path / "d.jsonl", rows)), test_fraction=0)
    got = [(ex.answer, ex.steps) for ex in task.examples("train")]
    assert got == [("5", ("2 + 3 = 5",)), ("1000", ("Half of 2,000 is 1,000.",)), ("1200", ("She pays $1,200.00 in all.",)),
                   ("Paris", ("The capital is Paris.",)), ("7", ("given",))]
    assert task.score("The city is Paris.\nA:Paris", task.examples("train")[3]) == 1.0


@pytest.mark.parametrize("text", ["Answer: 1000", "#### 1000", "The answer is 1000.", "A: 1000", "A:1000",
                                  "\\boxed{1000}", "so it is 1,000 dollars", "Final answer: $1,000.00"])
def test_answer_markers_extract_and_the_span_is_graded(tmp_path, text):
    path = _write_jsonl(tmp_path / "d.jsonl", [{"prompt": "p", "answer": 1000}])
    task = load_task("jsonl", path=str(path))
    completion = f"500 + 500 = 1000\n{text}"
    assert task.extract_answer(completion) == "1000"
    start, end = task.answer_span(completion)
    assert task.normalize(completion[start:end]) == "1000"
    assert task.score(completion, task._all[0]) == 1.0


def test_the_answer_line_is_not_a_step(tmp_path):
    task = load_task("jsonl", path=str(_write_jsonl(tmp_path / "d.jsonl", [{"prompt": "p", "answer": 1}])))
    for line in ("Answer: 1000", "#### 1000", "The answer is 1000.", "So the answer is 1000.", "A:1000", "Thus, \\boxed{1000}"):
        completion = f"a = 500\nb = a + 500 = 1000\n{line}"
        assert task.split_steps(completion) == ["a = 500", "b = a + 500 = 1000"], line
        spans = task.step_spans(completion)
        assert [completion[s:e] for s, e in spans] == ["a = 500", "b = a + 500 = 1000"]
    assert task.split_steps("He had 3. He buys 2 more. The answer is 5.") == ["He had 3.", "He buys 2 more."]


@pytest.mark.parametrize("grader", ["lenient", "exact"])
def test_the_span_is_what_the_grader_reads(tmp_path, grader):
    """The project invariant (tests/test_answer_span.py): calibration and the RLSF reward read the
    characters the answer is extracted from."""
    from test_answer_span import MATH_PIECES, random_texts

    task = load_task("jsonl", path=str(_write_jsonl(tmp_path / "d.jsonl", [{"prompt": "p", "answer": 1}])), grader=grader)
    for text in random_texts(MATH_PIECES + ["A:", "Answer: ", "Paris"], 3000, seed=1):
        span, answer = task.answer_span(text), task.extract_answer(text)
        assert (span is None) == (answer is None), text
        if span is not None:
            assert task.normalize(text[span[0]:span[1]]) == answer, (text, span)
            assert span[0] >= len(task.reasoning_of(text)) or not task.has_answer(text), text


def test_exact_grader(tmp_path):
    path = _write_jsonl(tmp_path / "d.jsonl", [{"prompt": "p", "answer": "007"}])
    task = load_task("jsonl", path=str(path), grader="exact")
    ex = task._all[0]
    assert task.score("x\nA: 007 ", ex) == 1.0 and task.score("x\nA:7", ex) == 0.0 and task.score("#### 007", ex) == 0.0
    completion = "x\nA: 007 \ny"
    start, end = task.answer_span(completion)
    assert completion[start:end] == "007" == task.extract_answer(completion)
    assert task.split_steps(task.format_completion(["x"], "007")) == ["x"]
    with pytest.raises(ConfigError, match=r"task\.grader must be one of lenient, exact, got 'exakt'\. Did you mean 'exact'\?"):
        load_task("jsonl", path=str(path), grader="exakt")


def test_prompts_get_a_separator_and_never_a_trailing_space(tmp_path):
    path = _write_jsonl(tmp_path / "d.jsonl", [{"prompt": "What is 2+2?  ", "answer": 4}])
    assert load_task("jsonl", path=str(path))._all[0].prompt == "What is 2+2?\n"
    assert load_task("jsonl", path=str(path), separator="\nAnswer:")._all[0].prompt == "What is 2+2?\nAnswer:"
    with pytest.raises(ConfigError, match=r"task\.separator='\\nAnswer: ' ends the prompt with a space"):
        load_task("jsonl", path=str(path), separator="\nAnswer: ")


def _bad(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, list):
        if name.endswith(".parquet"):
            from datasets import Dataset

            Dataset.from_list(content).to_parquet(str(path))
        else:
            _write_jsonl(path, content)
    else:
        path.write_text(content)
    return path


BAD = [
    ("d.jsonl", [{"prompt": "p", "completion": "no number here"}],
     r"d\.jsonl:1: the grader found no final answer in the completion; .*'answer' field"),
    ("d.jsonl", [{"messages": [{"role": "user", "content": "q"}]}],
     r"d\.jsonl:1: field 'messages' must end with the assistant's message .*'user'"),
    ("d.jsonl", [{"messages": [{"role": "assistant", "content": "#### 1"}]}], r"d\.jsonl:1: field 'messages' has no message before"),
    ("d.jsonl", [{"messages": [{"role": "user"}]}], r"d\.jsonl:1: field 'messages' must be a non-empty list of"),
    ("d.jsonl", [{"prompt": "p", "completion": 5}], r"d\.jsonl:1: field 'completion' must be a string or a list of messages"),
    ("d.jsonl", [{"text": "hello"}], r"d\.jsonl:1: missing required field 'prompt' \(a row needs prompt and answer"),
    ("d.jsonl", [{"prompt": "p", "answer": 1, "split": "dev"}], r"d\.jsonl:1: field 'split' must be one of train, test, ood"),
    ("d.csv", "prompt,answer\nq1,1\nq2,\n", r"d\.csv row 2: missing required field 'answer'"),
    ("d.csv", "prompt,answer\nq1,nan\n", r"d\.csv row 1: the answer 'nan' can never be matched"),
    ("d.parquet", [{"prompt": "q", "completion": "#### 1"}, {"prompt": "q", "completion": "none"}],
     r"d\.parquet row 2: the grader found no final answer"),
    ("d.parquet", [{"a": 1}], r"d\.parquet row 1: missing required field 'prompt'"),
    ("d.txt", "x", r"d\.txt: unknown data file type '\.txt'"),
    ("d.parquet", "not parquet", r"d\.parquet: could not read the file as parquet"),
]


@pytest.mark.parametrize("name, content, pattern", BAD, ids=[b[2][:40] for b in BAD])
def test_bad_rows_are_one_line(tmp_path, name, content, pattern):
    path = _bad(tmp_path, name, content)
    with pytest.raises(ConfigError, match=pattern) as info:
        load_task("jsonl", path=str(path))
    assert "\n" not in str(info.value)


def test_a_missing_path_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"data file not found: data/train\.jsonl"):
        load_task("jsonl", path="data/train.jsonl")  # looks like org/name, but is a data file


def _sft_cfg(tmp_path, data, *extra):
    return compose([*TINY, f"output_root={tmp_path / 'out'}", "trainer=sft", "task=jsonl", f"task.path={data}",
                    "budget.eval_samples=2", "eval.probes=[]", "eval.pass_at_k.prompts=2", *extra])


@pytest.mark.parametrize("kind", ["prompt/completion", "messages"])
def test_sft_on_trl_formats(tmp_path, kind):
    """The issue's "done when": an SFT run on a prompt/completion and on a messages dataset."""
    from reasonlab.launch.train import train

    path, _ = _make(kind, tmp_path)
    cfg = _sft_cfg(tmp_path, path)
    result = train(cfg)
    assert result["task"] == "jsonl" and result["train/steps"] == 2 and result["eval/num_samples"] == 2
    assert 0.0 <= result["accuracy"] <= 1.0
    samples = [json.loads(line) for line in (Path(cfg.run_dir) / "samples.jsonl").read_text().splitlines()]
    assert {s["split"] for s in samples} == {"test"} and all(s["prompt"].endswith("?\n") for s in samples), samples[0]
