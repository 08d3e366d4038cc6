"""One answer span: `task.answer_span(completion)` is exactly the text the grader reads, for every
task, and calibration / the RLSF confidence reward measure confidence on those characters."""

import json
import random
import re
from fractions import Fraction

import pytest

from conftest import SHARED_DATA
from reasonlab.models import build_tiny
from reasonlab.models.scoring import completion_stats, stats_from_decoding
from reasonlab.rewards.confidence import ConfidenceReward
from reasonlab.tasks import load_task
from reasonlab.tasks.base import Example, Task
from reasonlab.tasks.grading import answer_value
from reasonlab.tasks.math_word import Gsm8kTask, MathWordTask
from reasonlab.tasks.safe_arith import parse_number
from reasonlab.tasks.variants import TARGETS, sft_completions

LABELLED = SHARED_DATA / "gsm8k" / "example_model_solutions.jsonl"


@pytest.fixture(scope="module")
def gsm8k():
    return Gsm8kTask(hub_id=None, ood_hub_id=None)  # GSM8K's grading and text format, no data needed


@pytest.fixture(scope="module")
def arith():
    return load_task("arith", train_size=50, test_size=10, ood_size=10)


def assert_span_is_graded(task, completion, span_text, graded):
    span = task.answer_span(completion)
    if span_text is None:
        assert span is None and task.extract_answer(completion) is None
        return
    assert span is not None, completion
    start, end = span
    assert 0 <= start < end <= len(completion)
    assert completion[start:end] == span_text
    assert task.extract_answer(completion) == graded
    assert task.normalize(completion[start:end]) == graded  # the span is what is graded


# (completion, text of the answer span, the answer the grader reads)
GSM8K_CASES = [
    ("She makes 9 * 2 = $18 a day.\n... The answer is 18.", "18", "18"),  # no `####`: graded, had no span
    ("#### 18\n\\boxed{20}", "20", "20"),  # the grader reads 20: the span is on 20, not 18
    ("\\boxed{20} so\n#### 18", "18", "18"),  # a marker after the box wins
    ("A: 18\nThe answer is 20", "20", "20"),  # the last marker wins
    ("so 9 * 2 = 18\n#### 72", "72", "72"),
    ("step\nA: 72", "72", "72"),
    ("Adding them, the answer is 72.", "72", "72"),
    ("The final answer is 72", "72", "72"),
    ("Final answer: 72", "72", "72"),
    ("Work it out.\nAnswer: 72", "72", "72"),
    ("The final answer is $\\boxed{72}$", "72", "72"),
    ("So she has \\boxed{\\frac{3}{4}} of a cup", "\\frac{3}{4}", "0.75"),
    ("The answer is 3/4 of a cup.", "3/4", "0.75"),
    ("#### $1,200.", "1,200", "1200"),
    ("Total: 600 + 600 = 1200\nThe answer is $1,200", "1,200", "1200"),
    ("\\boxed{1{,}200}", "1{,}200", "1200"),
    ("The answer is \\$5.", "5", "5"),
    ("#### 72.00", "72.00", "72"),
    ("A: 72 dollars", "72", "72"),
    ("The answer is: 0.50.", "0.50", "0.5"),
    ("#### -3", "-3", "-3"),
    ("The answer is 72.", "72", "72"),  # trailing period
    ("We get 5 + 4 = 9 apples.", "9", "9"),  # no marker: the last number (lenient)
    ("The answer is seven.", "seven", "seven"),  # no number: the stripped text, without the period
    ("no answer here", None, None),
    ("", None, None),
    ("So \\boxed{} it is", None, None),  # an empty box: no answer
    ("#### ", None, None),
]


@pytest.mark.parametrize("completion, span_text, graded", GSM8K_CASES)
def test_gsm8k_span_is_the_graded_answer(gsm8k, completion, span_text, graded):
    assert_span_is_graded(gsm8k, completion, span_text, graded)


def test_strict_grading_has_no_span_for_a_bare_number():
    strict = MathWordTask(lenient=False)
    assert_span_is_graded(strict, "We get 5 + 4 = 9 apples.", None, None)
    assert_span_is_graded(strict, "We get 9 apples.\nThe answer is 9.", "9", "9")


@pytest.mark.parametrize("completion, span_text, graded", [
    ("b=a+5=7+5=2;A:2", "2", "2"),
    ("A:2", "2", "2"),
    ("A: 2", "2", "2"),
    ("A:1;A:2", "2", "2"),  # the last answer counts
    ("A:2;c=1", "2", "2"),  # up to the step separator
    ("A:-3", "-3", "-3"),
    ("A:12.5", "12.5", "12.5"),
    ("A:2x", "2", "2"),  # junk after the number: the span is the number only (it was "2x")
    ("A:x2", "2", "2"),
    ("A:2 3", "2", "2"),
    ("b=a+5=7+5=2;c=b*3=2*3=6", None, None),  # no answer prefix
    ("A:", None, None),  # prefix but no number
    ("A:;2", None, None),
])
def test_arith_span_is_the_graded_answer(arith, completion, span_text, graded):
    assert_span_is_graded(arith, completion, span_text, graded)


_OLD_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def old_base_extract(task, completion):
    """Task.extract_answer as it was before answer_span existed."""
    idx = completion.rfind(task.answer_prefix)
    if idx < 0:
        return None
    match = _OLD_NUMBER.search(completion[idx + len(task.answer_prefix):].split(task.step_separator)[0])
    return task.normalize(match.group(0)) if match else None


def old_answer_value(text):
    """tasks.grading.answer_value as it was before it also reported where the number is."""
    from reasonlab.tasks.grading import _FRACTION, _NUMBER

    text = text.replace("\\$", "$").replace("\\!", "").replace("{,}", ",")
    frac = re.search(r"\\d?frac\{(-?\d+)\}\{(\d+)\}", text)
    if frac and int(frac.group(2)):
        return Fraction(int(frac.group(1)), int(frac.group(2)))
    m = _FRACTION.search(text)
    first = _NUMBER.search(text)
    if m and first and m.start() <= first.start():
        return Fraction(int(m.group(1)), int(m.group(2))) if int(m.group(2)) else None
    if not first:
        return None
    return parse_number(first.group(0))


ARITH_PIECES = ["A:", "A: ", ";", "2", "13", "-", ".", "5", " ", "x", "\n", "b=a+5=7+5=2"]
MATH_PIECES = ["#### ", "A: ", "\nA: ", "The answer is ", "Final answer: ", "\nAnswer: ", "\\boxed{", "}", "{", "$",
               "\\$", "\\!", "{,}", "1,200", "72", "0", ".", ". ", " ", "\n", "3/4", "5/0", "/", "\\frac{3}{4}",
               "\\frac{1}{0}", "dollars", "-", "x", "seven"]


def random_texts(pieces, n, seed=0):
    rng = random.Random(seed)
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 8))) for _ in range(n)]


def test_base_extract_answer_is_unchanged_and_reads_the_span(arith):
    jsonl_like = Task()  # base defaults: prefix "A:", separator "\n"
    for task in (arith, jsonl_like):
        for text in random_texts(ARITH_PIECES, 3000):
            assert task.extract_answer(text) == old_base_extract(task, text), text
            span = task.answer_span(text)
            assert task.extract_answer(text) == (None if span is None else task.normalize(text[span[0]:span[1]]))


def test_math_grading_is_unchanged_and_the_span_is_graded():
    tasks = (MathWordTask(), MathWordTask(lenient=False))
    for text in random_texts(MATH_PIECES, 4000):
        assert answer_value(text) == old_answer_value(text), text
        for task in tasks:
            span, answer = task.answer_span(text), task.extract_answer(text)
            assert (span is None) == (answer is None), text
            if span is not None:
                assert task.normalize(text[span[0]:span[1]]) == answer, (text, span)


@pytest.mark.skipif(not LABELLED.is_file(), reason="needs ../shared/data/gsm8k")
def test_span_is_graded_on_real_solutions(gsm8k):
    """Every GSM8K reference and model solution in the labelled file: the span gives the graded answer."""
    n = 0
    with LABELLED.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            for text in [row["ground_truth"]] + [v["solution"] for v in row.values() if isinstance(v, dict)]:
                span, answer = gsm8k.answer_span(text), gsm8k.extract_answer(text)
                assert (span is None) == (answer is None)
                if span is not None:
                    assert gsm8k.normalize(text[span[0]:span[1]]) == answer
                    assert span[0] >= len(gsm8k.reasoning_of(text)) or not gsm8k.has_answer(text)
                n += 1
    assert n == 1319 * 5


def test_jsonl_task_span_is_its_graders(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"prompt": "p", "answer": 42}) + "\n", encoding="utf-8")
    task = load_task("jsonl", path=str(path))
    assert_span_is_graded(task, "reason\nA: 42 apples\nmore", "42", "42")


@pytest.mark.parametrize("target", TARGETS)
def test_sft_targets_put_the_span_on_the_gold(arith, gsm8k, target):
    math = [Example(id=str(i), prompt="q", answer=str(a), steps=(f"{a} - 1 + 1 = {a}",)) for i, a in enumerate((72, 5, 1200))]
    for task, examples in ((arith, arith.examples("train")[:20]), (gsm8k, math)):
        for ex, completion in zip(examples, sft_completions(task, examples, target)):
            start, end = task.answer_span(completion)
            assert task.normalize(completion[start:end]) == task.normalize(ex.answer)


# -- calibration statistics read the same span ---------------------------------------------------
TINY_MODEL = {"hidden_size": 16, "intermediate_size": 32, "num_layers": 1, "num_heads": 2, "max_position_embeddings": 128}


@pytest.fixture(scope="module")
def tiny(gsm8k):
    model, tokenizer = build_tiny(TINY_MODEL, gsm8k, seed=0)
    return model.eval(), tokenizer


def test_calibration_exists_for_the_answer_is(gsm8k, tiny):
    model, tokenizer = tiny
    completion = "She makes 9 * 2 = $18.\nThe answer is 18."
    assert gsm8k.score(completion, Example(id="x", prompt="q", answer="18")) == 1.0
    stats = completion_stats(model, tokenizer, gsm8k, ["Question: q\nAnswer: "], [completion])[0]
    assert stats.answer_confidence is not None and stats.answer_tokens == 2  # "1", "8" (character tokens)
    # the same from the distributions of decoding: confidence on exactly the span's tokens
    ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    start, end = gsm8k.answer_span(completion)
    per_token = [[0.5, 0.9, 0.1, 0.9] if start <= i < end else [0.5, 0.3, 0.2, 0.3] for i in range(len(ids))]
    decoded = stats_from_decoding(tokenizer, gsm8k, completion, ids, per_token)
    assert decoded.answer_tokens == 2 and decoded.answer_confidence == pytest.approx(0.8)
    # the RLSF reward is the same number, not 0
    reward = ConfidenceReward(gsm8k)
    reward.bind(model, tokenizer)
    assert reward(["Question: q\nAnswer: "], [completion]) == [pytest.approx(stats.answer_confidence)]


def test_confidence_is_measured_on_the_graded_number(gsm8k, tiny):
    _, tokenizer = tiny
    completion = "#### 18\n\\boxed{20}"
    ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    graded = completion.index("20")
    per_token = [[0.5, 0.9, 0.1, 0.9] if graded <= i < graded + 2 else [0.5, 0.3, 0.2, 0.3] for i in range(len(ids))]
    stats = stats_from_decoding(tokenizer, gsm8k, completion, ids, per_token)
    assert stats.answer_tokens == 2 and stats.answer_confidence == pytest.approx(0.8)  # on 20, not 18
