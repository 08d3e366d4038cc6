"""Bad input: non-zero exit, one clear line naming what is wrong and what to do, no metrics.json."""

import json

import pytest

from conftest import ARITH_SMALL, TINY, run_cli


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
        (["task=aritm"], r"unknown task 'aritm'.*Valid tasks: arith, jsonl"),
        (["model=tinyy"], r"unknown model 'tinyy'.*Valid models: hf, tiny"),
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
    ],
)
def test_bad_input_one_line(tmp_path, args, pattern):
    task = [] if "task=jsonl" in args else ARITH_SMALL
    proc = run_cli("launch.train", *TINY, f"output_root={tmp_path}", *args, *task)
    _check(proc, tmp_path, pattern)


def test_malformed_jsonl_line(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_text(json.dumps({"prompt": "1+1?", "answer": "2"}) + "\n" + '{"prompt": "2+2?", "answer": }\n')
    out = tmp_path / "out"
    proc = run_cli("launch.train", *TINY, f"output_root={out}", "task=jsonl", f"task.path={data}")
    _check(proc, out, r"data\.jsonl:2: not valid JSON")
