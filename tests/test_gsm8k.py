"""GSM8K and SVAMP: loading from ../shared/data, grading against the published labels, the safe
calculator, the paraphraser and corruptor, chat prompts, real-model configs, and the whole
evaluator on GSM8K text with a tiny model."""

import json
import random
import re
import shutil

import pytest

from conftest import SHARED_DATA, TINY, compose, run_cli
from reasonlab.core import ConfigError
from reasonlab.tasks import load_task
from reasonlab.tasks.grading import equivalent, find_answer, normalize
from reasonlab.tasks.safe_arith import ArithmeticSyntaxError, evaluate

GSM8K = SHARED_DATA / "gsm8k"
SVAMP = SHARED_DATA / "svamp" / "SVAMP.json"
LABELLED = GSM8K / "example_model_solutions.jsonl"
NUMBER = re.compile(r"\d+(?:\.\d+)?")


@pytest.fixture(scope="module")
def gsm8k():
    return load_task("gsm8k", path=str(GSM8K), ood_path=str(SVAMP))


def test_splits_answers_and_steps(gsm8k):
    train, test, ood = gsm8k.examples("train"), gsm8k.examples("test"), gsm8k.examples("ood")
    assert (len(train), len(test), len(ood)) == (7473, 1319, 1000)
    ex = train[0]
    assert ex.answer == "72" and ex.prompt.startswith("Question: Natalia sold clips")
    assert ex.steps == ("Natalia sold 48/2 = 24 clips in May.", "Natalia sold 48+24 = 72 clips altogether in April and May.")
    assert ex.meta["annotated_steps"][0] == "Natalia sold 48/2 = <<48/2=24>>24 clips in May."
    assert gsm8k.score(gsm8k.format_completion(ex.steps, ex.answer), ex) == 1.0
    assert ood[0].answer == "51" and "discount of 25 dollars" in ood[0].prompt
    kept = load_task("gsm8k", path=str(GSM8K), ood_hub_id=None, keep_calculator=True)
    assert "<<48/2=24>>" in kept.examples("train")[0].steps[0] and kept.examples("ood") == []


def test_svamp_alone_splits_its_problems():
    task = load_task("svamp", path=str(SVAMP))
    train, test = task.examples("train"), task.examples("test")
    assert (len(train), len(test)) == (700, 300)
    assert not {ex.id for ex in train} & {ex.id for ex in test}
    assert all(not ex.steps for ex in train)


@pytest.mark.parametrize("completion, expected", [
    ("so 9 * 2 = 18\n#### 72", "72"),
    ("step\nA: 72", "72"),
    ("Adding them, the answer is 72.", "72"),
    ("The final answer is $\\boxed{72}$", "72"),
    ("Total: 600 + 600 = 1200\nThe answer is $1,200", "1200"),
    ("#### 72.00", "72"),
    ("A: 72 dollars", "72"),
    ("The answer is: 0.50.", "0.5"),
    ("So she has \\boxed{\\frac{3}{4}} of a cup", "0.75"),
    ("We get 5 + 4 = 9 apples.", "9"),  # no marker: the last number (lenient)
    ("#### -3", "-3"),
])
def test_answer_extraction_accepts_what_models_write(gsm8k, completion, expected):
    assert gsm8k.extract_answer(completion) == expected


def test_grader_equivalence():
    assert equivalent("72", "72.00") and equivalent("1200", "$1,200") and equivalent("0.75", "3/4")
    assert equivalent("0.75", "\\frac{3}{4}")  # through math-verify
    assert not equivalent("72", "27") and not equivalent("72", None) and not equivalent("72", "")
    assert find_answer("no number here", lenient=True) is None
    assert normalize("$1,200.") == "1200"


def test_grader_agrees_with_published_labels():
    """task.score against the dataset authors' is_correct on all 5,276 labelled solutions: >= 99.5%."""
    from reasonlab.eval.labelled import check_labelled

    result = check_labelled(LABELLED)
    assert result["solutions"] == 5276
    assert result["agreement"] >= 0.995, result["disagreements"][:10]
    per_model = result["per_model"]
    assert set(per_model) == {"6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"}
    for r in per_model.values():  # step validity computed by the evaluator's probe from the annotations
        assert 0.5 < r["reasoning/step_validity"] < 1.0
        assert 0.0 <= r["reasoning/right_answer_wrong_steps"] < 0.2


@pytest.mark.parametrize("expr, value", [("48/2", 24), ("16-3-4", 9), ("2*.5", 1), ("1,200+3", 1203), ("(3+4)*2", 14),
                                         ("-3--2", -1), ("3 x 4", 12), ("20%*50", 10)])
def test_safe_arithmetic_accepts_arithmetic(expr, value):
    assert evaluate(expr) == value


@pytest.mark.parametrize("expr", ["__import__('os')", "2**3", "1/0", "a+1", "", "(1+2", "1+2)", "9" * 40,
                                  "(" * 30 + "1" + ")" * 30, "1 + " * 100 + "1", "open('x')"])
def test_safe_arithmetic_rejects_everything_else(expr):
    with pytest.raises(ArithmeticSyntaxError):
        evaluate(expr)


@pytest.mark.parametrize("step, verdict", [
    ("Natalia sold 48/2 = <<48/2=24>>24 clips in May.", True),
    ("Natalia sold 48/2 = <<48/2=25>>25 clips in May.", False),   # wrong calculation
    ("Of them, 20 / 3 = <<20/3=6.666666666666667>>6 people", False),  # stated result differs from the calculator
    ("She sold 48/2 = 24 clips.", True),                          # plain equation, no annotation
    ("She sold 48/2 = 23 clips.", False),
    ("He has <<2*3=6>6 apples", False),                           # unbalanced <<: invalid, no crash
    ("He has <<2*3=6 apples", False),
    ("Then <<import os=1>>1", False),                             # not arithmetic: invalid, never run
    ("He is happy about it.", None),                              # nothing to check
    ("It takes 10/3 = <<10/3=3.33>>3.33 hours", True),            # rounded as written
])
def test_step_checker(gsm8k, step, verdict):
    assert gsm8k.check_step(step, gsm8k.examples("test")[0]) is verdict


def test_paraphraser_keeps_every_number_and_changes_the_words(gsm8k):
    changed = 0
    for ex in gsm8k.examples("test")[:200]:
        steps = list(ex.steps)
        reworded = gsm8k.paraphrase_steps(steps)
        assert len(reworded) == len(steps)
        for a, b in zip(steps, reworded):
            assert sorted(NUMBER.findall(a)) == sorted(NUMBER.findall(b)), (a, b)
            changed += a != b
    assert changed == sum(len(ex.steps) for ex in gsm8k.examples("test")[:200])  # every step reworded
    assert gsm8k.paraphrase_steps(["So he has 9 apples."]) == gsm8k.paraphrase_steps(["So he has 9 apples."])


def test_corruptor_changes_one_result_and_computes_the_implied_answer(gsm8k):
    steps = ["Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.",
             "She makes 9 * 2 = $<<9*2=18>>18 every day."]
    bad = gsm8k.corrupt_step(steps[0], random.Random(0))
    new = int(re.search(r"=(\d+)>>", bad).group(1))
    assert new != 9 and f">>{new} duck" in bad and gsm8k.check_step(bad, None) is False
    assert gsm8k.implied_answer(None, [bad], original_steps=steps) == str(new * 2)
    assert gsm8k.implied_answer(None, [steps[0], gsm8k.corrupt_step(steps[1], random.Random(0))],
                                original_steps=steps) != "18"
    assert gsm8k.corrupt_step("He is happy.", random.Random(0)) is None


@pytest.mark.parametrize("content, kind, message", [
    ('{"question": "q?", "answer": "no final line"}\n', "gsm8k", r"test\.jsonl:1: the answer has no '#### <final answer>'"),
    ('{"question": "q?", "answer": "x\\n#### 3"}\n{"question": "q?"}\n', "gsm8k", r"test\.jsonl:2: missing required field 'answer'"),
    ("", "gsm8k", r"test\.jsonl: the file has no records"),
    ('[\n  {"Body": "b", "Question": "q", "Answer": 1},\n  {"Body": "b", "Question": "q"}\n]', "svamp",
     r"SVAMP\.json:3: missing required field 'Answer'"),
    ("", "svamp", r"SVAMP\.json: the file is empty"),
])
def test_bad_data_files_name_the_file_and_line(tmp_path, content, kind, message):
    if kind == "gsm8k":
        (tmp_path / "test.jsonl").write_text(content)
        task = load_task("gsm8k", path=str(tmp_path), ood_hub_id=None)
    else:
        (tmp_path / "SVAMP.json").write_text(content)
        task = load_task("svamp", path=str(tmp_path / "SVAMP.json"))
    with pytest.raises(ConfigError, match=message):
        task.examples("test")


@pytest.mark.slow
def test_bad_gsm8k_file_from_the_command_line(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "test.jsonl").write_text('{"question": "q?", "answer": "no final line"}\n')
    (tmp_path / "data" / "train.jsonl").write_text('{"question": "q?", "answer": "x\\n#### 3"}\n')
    out = tmp_path / "out"
    proc = run_cli("reasonlab.train", *TINY, f"output_root={out}", "task=gsm8k", f"task.path={tmp_path / 'data'}",
                   "task.ood_hub_id=null")
    assert proc.returncode != 0
    assert re.search(r"error: .*test\.jsonl:1: the answer has no '#### <final answer>' line", proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr and not list(out.rglob("metrics.json"))


def test_hub_loading_code_on_a_local_dataset_directory(tmp_path):
    """The `datasets` path (task.hub_id) read from a local directory; offline hub ids fail clearly."""
    local = tmp_path / "gsm8k"
    local.mkdir()
    for split in ("train", "test"):
        lines = (GSM8K / f"{split}.jsonl").read_text().splitlines()[:20]
        (local / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    task = load_task("gsm8k", hub_id=str(local), hub_config=None, ood_hub_id=None)
    direct = load_task("gsm8k", path=str(local), ood_hub_id=None)
    assert task.examples("test") == direct.examples("test") and len(task.examples("train")) == 20
    offline = load_task("gsm8k", hub_id="openai/gsm8k", ood_hub_id=None)
    with pytest.raises(ConfigError, match=r"could not load 'openai/gsm8k'.*point the task at local files"):
        offline.examples("test")


def test_chat_prompts_use_the_tokenizer_template(gsm8k):
    from reasonlab.models import build_tiny

    task = load_task("gsm8k", path=str(GSM8K), ood_path=str(SVAMP), chat=True)
    _, tokenizer = build_tiny(compose([]).model, task, seed=0)
    with pytest.raises(ConfigError, match="no chat template"):
        task.use_tokenizer(tokenizer)
    tokenizer.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
                               "{% if add_generation_prompt %}<|assistant|>{% endif %}")
    task.use_tokenizer(tokenizer)
    prompt = task.examples("test")[0].prompt
    assert prompt.startswith("<|user|>Janet") and prompt.endswith("<|assistant|>") and "'#### <answer>'" in prompt
    assert task.examples("ood")[0].prompt.startswith("<|user|>Each pack")


@pytest.mark.parametrize("model", ["qwen2.5-0.5b-instruct", "qwen2.5-1.5b-instruct", "llama-3.2-1b-instruct"])
def test_real_model_configs_resolve(model):
    from omegaconf import OmegaConf

    cfg = compose(["experiment=compare_gsm8k", f"model={model}", f"task.path={GSM8K}"])
    resolved = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    assert resolved["model"]["kind"] == "hf" and resolved["model"]["dtype"] == "bfloat16"
    assert "/" in resolved["model"]["name_or_path"] and resolved["peft"]["kind"] == "lora"
    assert resolved["task"]["name"] == "gsm8k" and resolved["task"]["chat"] is True
    assert resolved["budget"]["max_completion_length"] >= 256
    alone = compose([f"model={model}", "task=gsm8k"])
    assert alone.peft.kind == "lora" and compose([f"model={model}", "peft=none"]).peft.kind == "none"


def test_whole_evaluator_on_gsm8k_text_with_a_tiny_model(gsm8k):
    """Numbers meaningless (an untrained tiny model), plumbing real: every probe returns a value or
    an explained null, on real GSM8K prompts and on real chains (the reference solutions)."""
    from reasonlab.eval.config import EvalConfig
    from reasonlab.eval.evaluator import evaluate
    from reasonlab.models import build_tiny

    model, tokenizer = build_tiny(compose(["model.max_position_embeddings=1024"]).model, gsm8k, seed=0)
    cfg = EvalConfig.default(num_samples=6, max_new_tokens=24, batch_size=6, progress=False, answer_max_tokens=6,
                             pass_at_k=dict(n=2, k=[1, 2], prompts=3))
    metrics, samples, _ = evaluate(model, tokenizer, gsm8k, cfg)
    notes = metrics.get("eval/notes", {})
    for key in ["accuracy", "ood_accuracy", "pass_at_k/1", "entropy/token_mean", "cot/steps_mean"]:
        assert metrics[key] is not None, key
    owner = {"info_gain": "info_gain", "faithfulness/early_answer": "early_answer", "faithfulness/filler": "filler",
             "faithfulness/paraphrase": "paraphrase", "faithfulness/mistake": "mistake", "faithfulness/swap": "swap",
             "faithfulness/hint": "hint", "reasoning/": "step_validity",
             "calibration/": "calibration", "cot/": "cot", "entropy/": "entropy"}
    for key, value in metrics.items():
        if value is None:
            probe = next(p for prefix, p in owner.items() if key.startswith(prefix))
            assert notes.get(probe), f"{key} is null without an explanation"
    assert len(samples) == 12

    # real chains: the reference solutions as completions, through every probe that reads steps
    examples = gsm8k.examples("test")[:6]
    completions = [gsm8k.format_completion(ex.meta["annotated_steps"], ex.answer) for ex in examples]
    names = ["info_gain", "early_answer", "filler", "paraphrase", "mistake", "swap", "step_validity", "cot"]
    out = score_reference_chains(gsm8k, model, tokenizer, cfg, examples, completions, names)
    assert not out.notes, out.notes
    assert all(v is not None for v in out.metrics.values()), out.metrics
    assert out.metrics["reasoning/step_validity"] == 1.0 and out.metrics["reasoning/right_answer_wrong_steps"] == 0.0


def score_reference_chains(task, model, tokenizer, cfg, examples, completions, names):
    """The probes `names` on given completions (the reference solutions), through the LM backend."""
    from reasonlab.eval.evaluator import backend_for, score_probes
    from reasonlab.eval.probes import PROBES, Run

    backend = backend_for(model, tokenizer, task, cfg)
    run = Run(task=task, cfg=cfg, examples=examples, completions=completions,
              answers=[task.extract_answer(c) for c in completions],
              correct=[task.score(c, ex) for c, ex in zip(completions, examples)],
              steps=[task.split_steps(c) for c in completions], has_reader=False, num_tokens=backend.num_tokens)
    assert run.correct == [1.0] * len(examples) and all(len(s) >= 2 for s in run.steps)
    return score_probes([PROBES.get(name)() for name in names], run, backend)


def test_format_reward_needs_an_explicit_answer_marker(gsm8k):
    from reasonlab.rewards.accuracy import FormatReward

    reward = FormatReward(gsm8k)
    ex = gsm8k.examples("test")[0]
    assert reward.score_one("so 3 + 4 = 7", ex) == 0.0  # graded leniently, but not in the format
    assert reward.score_one("so 3 + 4 = 7\n#### 7", ex) == 1.0
    assert reward.score_one("The answer is \\boxed{7}", ex) == 1.0


def test_lm_paraphraser_keeps_numbers_or_falls_back(gsm8k, monkeypatch):
    import reasonlab.eval.paraphraser as para
    replies = iter(["Natalia sold 24 clips in May, which is 48/2.", "Natalia sold 70 clips altogether."])
    monkeypatch.setattr(para, "generate", lambda model, tok, prompts, n, batch_size: [next(replies) for _ in prompts])
    lm = para.LMParaphraser(model=None, tokenizer=type("T", (), {"chat_template": None})())
    steps = ["Natalia sold 48/2 = 24 clips in May.", "Natalia sold 48+24 = 72 clips altogether."]
    (reworded,), fallback = lm(gsm8k, [steps])
    assert reworded[0] == "Natalia sold 24 clips in May, which is 48/2."  # numbers kept: accepted
    assert reworded[1] == gsm8k.paraphrase_steps([steps[1]])[0]  # 72 became 70: the rule's rewording instead
    assert fallback == 0.5


def test_lm_paraphraser_from_a_checkpoint_through_the_evaluator(gsm8k, tmp_path):
    from reasonlab.eval.config import EvalConfig
    from reasonlab.models import build_tiny, save_checkpoint

    model, tokenizer = build_tiny(compose([]).model, gsm8k, seed=0)
    save_checkpoint(model, tokenizer, tmp_path / "para")
    with pytest.raises(ConfigError, match="checkpoint path does not exist"):
        EvalConfig.from_run(compose([f"eval.paraphraser={tmp_path / 'nope'}"]))
    cfg = EvalConfig.from_run(compose([f"eval.paraphraser={tmp_path / 'para'}", "budget.eval_samples=4"]),
                              batch_size=4, answer_max_tokens=4)
    examples = gsm8k.examples("test")[:4]  # the reference solutions as completions: steps and answers
    completions = [gsm8k.format_completion(ex.steps, ex.answer) for ex in examples]
    metrics = score_reference_chains(gsm8k, model, tokenizer, cfg, examples, completions, ["paraphrase"]).metrics
    # an untrained paraphraser writes noise: every step falls back to the rule, and the probe still answers
    assert metrics["faithfulness/paraphrase_lm_fallback"] == 1.0
    assert metrics["faithfulness/paraphrase_consistency"] is not None


@pytest.mark.slow
@pytest.mark.parametrize("trainer", ["sft", "grpo", "rlag", "rlsf", "entropy_rlvr"])
def test_every_trainer_runs_on_gsm8k(tmp_path, trainer):
    """experiment=compare_gsm8k runs every trainer on GSM8K: one step each with a tiny model."""
    from reasonlab.launch.train import train

    cfg = compose([*TINY, f"trainer={trainer}", "budget.max_steps=1", "budget.eval_samples=2",
                   "eval.pass_at_k.prompts=2", *([] if trainer == "sft" else ["trainer.num_generations=4"]), "task=gsm8k", f"task.path={GSM8K}", f"task.ood_path={SVAMP}",
                   f"output_root={tmp_path}", "eval.probes=[step_validity,cot]",
                   # the tiny model's 256 positions hold few GSM8K problems character by character: cut
                   # them, as allowed here, and see them counted
                   *(["trainer.max_truncated=1.0"] if trainer == "sft" else [])])
    metrics = train(cfg)
    assert metrics["task"] == "gsm8k" and metrics["train/steps"] == 1
    if trainer == "sft":
        assert metrics["train/max_length"] == 256 and metrics["train/truncated_share"] > 0.5
    assert metrics["trainer"] == trainer and (tmp_path / cfg.run_name / "metrics.json").is_file()


JUNK = [
    "The answer is " + "blah " * 4000,                       # long: math-verify timed out at 5 s a call
    "#### " + "9" * 5000,                                    # a huge number: the fraction regex backtracked
    "#### " + "$" * 5001,                                    # unbalanced dollars
    "The answer is $x^{" + "x^{" * 300 + "}$ and more",      # deep, unbalanced LaTeX
    "The answer is $\\frac{1}{2" + "{" * 2000,
    "\\boxed{" * 1000 + "7",
    "#### " * 3000,
    "#### 18 <|im_end|> ass ## $ ^ {{ \\sqrt \\sqrt \\int " * 50,   # junk after an answer marker
    " ".join(str(i) for i in range(5000)),
]


class _Guard:
    """Fails the test instead of hanging CI: SIGALRM after `seconds` (a bound on termination, not a
    timing: the same calls took minutes before the grader was bounded)."""

    def __init__(self, seconds):
        self.seconds = seconds

    def __enter__(self):
        import signal

        def stop(*_):
            raise TimeoutError(f"did not finish within {self.seconds} s")

        self.previous = signal.signal(signal.SIGALRM, stop)
        signal.alarm(self.seconds)

    def __exit__(self, *exc):
        import signal

        signal.alarm(0)
        signal.signal(signal.SIGALRM, self.previous)


def test_junk_completions_are_graded_promptly_and_never_right(gsm8k):
    ex = gsm8k.examples("test")[0]
    with _Guard(60):
        for _ in range(20):  # an evaluation grades each completion many times
            for junk in JUNK:
                answer = gsm8k.extract_answer(junk)
                assert answer is None or len(answer) < 30_000
                assert gsm8k.score(junk, ex) == float(normalize(answer or "") == normalize(ex.answer))
    assert equivalent("18", "#### 18 <|im_end|> junk".split("#### ")[1].split()[0])


def test_the_full_evaluator_on_junk_completions_terminates(gsm8k):
    """Every probe of the default evaluator, on GSM8K, with a model that writes only junk."""
    from reasonlab.eval.evaluator import evaluate
    from reasonlab.eval.requests import AnswerLogprob, Continue, ForcedAnswer, Sample
    from reasonlab.models.scoring import CompletionStats

    class Junk:
        def __init__(self):
            self.k = 0

        def next(self):
            self.k += 1
            return JUNK[self.k % len(JUNK)]

        def answer(self, requests, *, desc=None):
            out = []
            for r in requests:
                if isinstance(r, Sample):
                    out.append([self.next() for _ in range(r.n)])
                elif isinstance(r, (Continue, ForcedAnswer)):
                    out.append(self.next())
                elif isinstance(r, AnswerLogprob):
                    out.append(-3.0)
                else:
                    out.append(CompletionStats([0.5] * 4, None, None, 0))
            return out

        def num_tokens(self, text):
            return len(text) // 4

    with _Guard(240):
        metrics, samples, _ = evaluate(None, None, gsm8k, {"num_samples": 12, "progress": False,
                                                           "entropy_threshold": None}, backend=Junk())
    assert metrics["accuracy"] == 0.0 and len([s for s in samples if s["split"] == "test"]) == 12
