"""Bad input: non-zero exit, one clear line naming what is wrong and what to do, no metrics.json."""

import json
import re

import pytest

from conftest import ARITH_SMALL, TINY, run_cli

pytestmark = pytest.mark.slow


def _check(proc, out_root, pattern):
    import re

    assert proc.returncode != 0, proc.stdout + proc.stderr
    err_lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert err_lines and err_lines[-1].startswith("error: "), proc.stderr
    assert re.search(pattern, err_lines[-1]), err_lines[-1]
    assert not list(out_root.rglob("metrics.json"))


@pytest.mark.parametrize(
    "args, pattern",
    [
        (["trainer=sftt"], r"unknown trainer 'sftt'\. Did you mean 'sft'\? Valid trainers: entropy_rlvr, grpo, rlag, rlsf, sft"),
        (["task=aritm"], r"unknown task 'aritm'.*Valid tasks: arith, gsm8k, jsonl, svamp"),
        (["model=tinyy"], r"unknown model 'tinyy'.*Valid models: hf, llama-3.2-1b-instruct, qwen2.5-0.5b-instruct, qwen2.5-1.5b-instruct, tiny"),
        (["budget.max_steps=abc"], r"budget\.max_steps.*could not be converted to Integer"),
        (["budget.max_step=3"], r"unknown config key 'budget\.max_step'\. Did you mean 'max_steps'\?"),
        (["budget.max_steps=0"], r"budget\.max_steps must be a positive integer"),
        (["task=jsonl", "task.path=/nonexistent/data.jsonl"], r"data file not found: /nonexistent/data\.jsonl"),
        (["task=jsonl"], r"task=jsonl needs a data file"),
        (["model.init_from=/tmp"], r"no checkpoint in /tmp"),
        (["model.init_from=/does/not/exist"], r"checkpoint path does not exist"),
        (["model=hf"], r"model=hf needs model\.name_or_path"),
        (["eval.scorer=/no/such/reader"], r"eval\.scorer path does not exist"),
        (["trainer.target=shuffled"], r"unknown sft target .shuffled.; valid targets"),
        (["trainer=grpo", "trainer.num_generations=3"], r"must be a multiple of trainer\.num_generations"),
        (["trainer=entropy_rlvr", "trainer.top_entropy_quantile=1.5"], r"top_entropy_quantile must be in \(0, 1\]"),
        (["trainer=entropy_rlvr", "trainer.top_entropy_quantile=0"], r"top_entropy_quantile must be in \(0, 1\]"),
        (["trainer=rlsf", "trainer.mode=ppo"], r"trainer\.mode must be grpo or dpo"),
        (["trainer=rlsf", "trainer.reward_weights=[1.0,0.5]"], r"label-free"),
        (["trainer=rlag", "trainer.objective=contrastive"], r"objective 'contrastive' is not implemented"),
        (["budget.eval_samples=-1"], r"budget\.eval_samples must be a positive integer"),
        (["budget.max_completion_length=0"], r"budget\.max_completion_length must be a positive integer"),
        (["trainer.batch_size=0"], r"trainer\.batch_size must be a positive integer"),
        (["trainer.learning_rate=-1"], r"trainer\.learning_rate must be positive"),
        (["seed=one"], r"seed.*could not be converted to Integer"),
        (["eval.probes=[info_gain,nonsense]"], r"unknown probe 'nonsense'.*Valid probes"),
        (["eval.pass_at_k.n=0"], r"eval\.pass_at_k needs n >= 1"),
        (["resume=sometimes"], r"resume must be auto or force_restart"),
        (["checkpoint.keep=0"], r"checkpoint\.keep >= 1"),
        (["model.vocab_size=5"], r"model\.vocab_size=5 is smaller than the tokenizer"),
        (["model.num_kv_heads=3"], r"model\.num_heads=4 must divide model\.hidden_size=128 and be a multiple of model\.num_kv_heads=3"),
        (["eval.truncation_rows=0"], r"eval\.truncation_rows must be a positive integer"),
        (["model.dtype=float8"], r"model\.dtype must be one of float32, bfloat16, float16"),
        (["peft=lorra"], r"unknown peft 'lorra'\. Did you mean 'lora'\?"),
        (["task.modulus=1"], r"task\.modulus must be >= 2"),
        (["output_root=/proc/reasonlab-cannot-write"], r"cannot write to the output directory"),
    ],
)
def test_bad_input_one_line(tmp_path, args, pattern):
    task = [] if "task=jsonl" in args else ARITH_SMALL
    proc = run_cli("reasonlab.train", *TINY, f"output_root={tmp_path}", *args, *task)
    _check(proc, tmp_path, pattern)


# More bad settings, each with what it guards: (arguments, the error line, why the row exists).
SETTINGS = [
    (["trainer.learning_rate=abc"], r"trainer\.learning_rate must be a number, got 'abc'", "untyped trainer group"),
    (["trainer.batch_size=abc"], r"trainer\.batch_size must be an integer, got 'abc'", "untyped trainer group"),
    (["trainer.batch_size=2.5"], r"trainer\.batch_size must be an integer, got 2\.5", "no silent truncation"),
    (["task.train_size=lots"], r"task\.train_size must be an integer, got 'lots'", "untyped task group"),
    (["seed=-1"], r"seed must be >= 0, got -1", "numpy/torch seeding traceback"),
    (["logging_steps=0"], r"logging_steps must be a positive integer", "TrainingArguments traceback"),
    (["trainer.learning_rate=nan"], r"trainer\.learning_rate must be a finite number, got nan", "nan <= 0 is false"),
    (["trainer.learning_rate=inf"], r"trainer\.learning_rate must be a finite number, got inf", "a run of NaN weights"),
    (["budget.max_steps=2", "trainer=grpo", "trainer.num_generations=1"], r"num_generations must be >= 2",
     "GRPO advantages of one completion"),
    (["trainer=grpo", "trainer.temperature=0"], r"trainer\.temperature must be > 0", "sampling at T=0"),
    (["peft=lora", "peft.target_modules=[no_such_proj]"], r"peft\.target_modules=\['no_such_proj'\] does not fit "
     r"this model.*its linear layers: .*q_proj", "PEFT traceback after loading"),
    (["run_name=../escaped"], r"run_name '\.\./escaped' puts the run outside output_root", "writes outside the root"),
    (["run_name=."], r"puts the run outside output_root", "a run in the root itself"),
    (["eval.pass_at_k.temperature=nan"], r"eval\.pass_at_k\.temperature must be a finite number", "nested NaN"),
]


@pytest.mark.parametrize("args, pattern, guards", SETTINGS, ids=[" ".join(r[0]) for r in SETTINGS])
def test_more_bad_settings_one_line(tmp_path, args, pattern, guards):
    out = tmp_path / "out"
    proc = run_cli("reasonlab.train", *TINY, *ARITH_SMALL, f"output_root={out}", *args)
    _check(proc, out, pattern)
    assert not (tmp_path / "escaped").exists()


def _rows(n, **extra):
    return "".join(json.dumps({"prompt": f"{i}+1?", "answer": str(i + 1), **extra}) + "\n" for i in range(n))


# Bad data files: (file content, arguments, the error line, why the row exists).
DATA = [
    (b'{"prompt": "1+1?", "answer": "2"}\n{"prompt": "caf\xe9", "answer": "2"}\n', [], r"data\.jsonl:2: not valid UTF-8",
     "UnicodeDecodeError naming no line"),
    (b'{"prompt": "1+1?", "answer": ""}\n', [], r"data\.jsonl:1: the answer '' can never be matched", "empty gold"),
    (b'{"prompt": "1+1?", "answer": NaN}\n', [], r"data\.jsonl:1: the answer 'nan' can never be matched", "NaN gold"),
    (('{"prompt": "1+1?", "answer": "' + "9" * 5000 + '"}\n').encode(), [], r"data\.jsonl:1: the answer '9{20}'\.\.\. "
     r"can never be matched", "int() over 4,300 digits"),
    (_rows(4).encode(), ["trainer.target=answer_only"], r"has no test problems", "round(4 x 0.1) = 0 test rows"),
    (_rows(20, split="train").encode(), ["trainer.target=answer_only"], r"has no test problems", "no test split"),
]


@pytest.mark.parametrize("content, args, pattern, guards", DATA, ids=[r[3] for r in DATA])
def test_more_bad_data_files(tmp_path, content, args, pattern, guards):
    data = tmp_path / "data.jsonl"
    data.write_bytes(content)
    out = tmp_path / "out"
    proc = run_cli("reasonlab.train", *TINY, f"output_root={out}", "task=jsonl", f"task.path={data}", *args)
    _check(proc, out, pattern)


def _corrupt(base_run, where, how):
    import shutil

    shutil.copytree(base_run / "final", where)
    if how == "truncated weights":
        data = (where / "model.safetensors").read_bytes()
        (where / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif how == "empty weights":
        (where / "model.safetensors").write_bytes(b"")
    elif how == "unknown model_type":
        cfg = json.loads((where / "config.json").read_text())
        (where / "config.json").write_text(json.dumps({**cfg, "model_type": "no_such_model"}))
    elif how == "tokenizer.json not JSON":
        (where / "tokenizer.json").write_text("{not json")


@pytest.mark.parametrize("how", ["truncated weights", "empty weights", "unknown model_type", "tokenizer.json not JSON"])
def test_a_broken_model_directory_one_line(tmp_path, base_run, how):
    """load_pretrained caught only OSError: every other way a directory can be broken was a traceback."""
    broken = tmp_path / "broken"
    _corrupt(base_run, broken, how)
    out = tmp_path / "out"
    proc = run_cli("reasonlab.train", *TINY, *ARITH_SMALL, f"output_root={out}", f"model.init_from={broken}")
    _check(proc, out, r"could not load model .*broken")


@pytest.mark.parametrize("state, pattern", [
    ("truncated metrics.json", r"metrics\.json is unreadable \(truncated\?\); resume=force_restart retrains"),
    ("metrics.json is a directory", r"metrics\.json is a directory, where the run writes a file"),
    ("unreadable run.json", r"run\.json is not a run record"),
])
def test_a_broken_run_directory_one_line(tmp_path, state, pattern):
    """What a killed or hand-edited run directory can hold; found before training, not after."""
    run = tmp_path / "sft-arith-seed0"
    run.mkdir()
    if state == "truncated metrics.json":
        (run / "metrics.json").write_text('{"accuracy": 0.')
    elif state == "metrics.json is a directory":
        (run / "metrics.json").mkdir()
    else:
        (run / "run.json").write_text("{")
    proc = run_cli("reasonlab.train", *TINY, *ARITH_SMALL, f"output_root={tmp_path}")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert re.search(pattern, proc.stderr.strip().splitlines()[-1]), proc.stderr
    assert not (run / "final").exists() and not (run / "checkpoints").exists()


def test_evaluate_a_checkpoint_that_does_not_exist(tmp_path):
    typo = tmp_path / "outputs" / "sft-aritm"
    proc = run_cli("reasonlab.evaluate", f"model.name_or_path={typo}", *ARITH_SMALL)
    _check(proc, tmp_path, r"model\.name_or_path: no such directory .*sft-aritm")
    assert not typo.exists()  # no <typo>/eval-arith/ left behind




@pytest.mark.parametrize(
    "content, args, pattern",
    [
        ("", [], r"has no examples"),
        ('{"prompt": "1+1?"}\n', [], r"data\.jsonl:1: missing required field 'answer'"),
        ('{"prompt": 7, "answer": "2"}\n', [], r"data\.jsonl:1: field 'prompt' must be a non-empty string"),
        ('{"prompt": "1+1?", "answer": "2"}\n' * 20, ["trainer=sft"], r"needs reference steps.*trainer\.target=answer_only"),
        ('{"prompt": "1+1?", "answer": "2"}\n' * 20, ["trainer=rlag"], r"trainer=rlag needs knowledge context"),
    ],
)
def test_bad_data_files(tmp_path, content, args, pattern):
    data = tmp_path / "data.jsonl"
    data.write_text(content)
    out = tmp_path / "out"
    proc = run_cli("reasonlab.train", *TINY, f"output_root={out}", "task=jsonl", f"task.path={data}", *args)
    _check(proc, out, pattern)


def test_sweep_over_an_unknown_trainer(tmp_path):
    proc = run_cli("reasonlab.train", "-m", "trainer=sft,gpro", *TINY, f"output_root={tmp_path}")
    _check(proc, tmp_path, r"unknown trainer 'gpro'\. Did you mean 'grpo'\?")


def test_checkpoint_without_weights_or_with_a_foreign_tokenizer(tmp_path, base_run):
    import shutil

    empty = tmp_path / "empty"
    (empty / "final").mkdir(parents=True)
    (empty / "final" / "config.json").write_text("{}")
    proc = run_cli("reasonlab.train", *TINY, *ARITH_SMALL, f"output_root={tmp_path / 'o1'}", f"model.init_from={empty}")
    _check(proc, tmp_path / "o1", r"no checkpoint in .*empty")
    # a tokenizer with more tokens than the model's vocabulary: not this model's tokenizer
    mixed = tmp_path / "mixed"
    shutil.copytree(base_run / "final", mixed)
    from reasonlab.models.tokenizer import build_char_tokenizer

    build_char_tokenizer("".join(chr(c) for c in range(32, 400))).save_pretrained(mixed)
    proc = run_cli("reasonlab.train", *TINY, *ARITH_SMALL, f"output_root={tmp_path / 'o2'}", f"model.init_from={mixed}")
    _check(proc, tmp_path / "o2", r"the tokenizer does not belong to this model")


def test_malformed_jsonl_line(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"prompt": "1+1?", "answer": "2"}) + "\n" + '{"prompt": "2+2?", "answer": }\n')
    out = tmp_path / "out"
    proc = run_cli("reasonlab.train", *TINY, f"output_root={out}", "task=jsonl", f"task.path={data}")
    _check(proc, out, r"data\.jsonl:2: not valid JSON")
