"""End-to-end runs on model=tiny: real TRL training for 2 steps, real evaluation, real files."""

import json

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from reasonlab.launch.train import train


def _weights(run_dir):
    return load_file(str(run_dir / "final" / "model.safetensors"))


def _initial_tiny(cfg):
    from reasonlab.launch.train import task_from_cfg
    from reasonlab.models import build_tiny

    model, _ = build_tiny(cfg.model, task_from_cfg(cfg), seed=cfg.seed)
    return model.state_dict()


def _changed(before, after):
    return sum(not torch.equal(before[k], after[k]) for k in after if k in before)


@pytest.mark.parametrize("trainer", ["sft", "grpo"])
def test_two_step_run_changes_weights_and_writes_metrics(run_cfg, base_run, trainer):
    # From a briefly trained base, so GRPO's sampled groups get different rewards (a random
    # model never writes an answer and every advantage would be zero).
    extra = ["trainer.num_generations=4", "budget.max_completion_length=48"] if trainer == "grpo" else []
    cfg = run_cfg(f"trainer={trainer}", f"model.init_from={base_run}", *extra)
    result = train(cfg)
    run_dir = Path(cfg.run_dir)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics == json.loads(json.dumps(result))
    for key in ("trainer", "task", "model", "seed", "accuracy", "ood_accuracy", "eval/num_samples", "train/seconds", "eval/seconds"):
        assert key in metrics, key
    assert metrics["trainer"] == trainer and metrics["train/steps"] == 2
    assert metrics["eval/num_samples"] == 8
    assert 0.0 <= metrics["accuracy"] <= 1.0
    assert _changed(_weights(base_run), _weights(run_dir)) > 0
    samples = [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 16 and {s["split"] for s in samples} == {"test", "ood"}


def test_fresh_tiny_run_changes_initial_weights(run_cfg, tmp_path):
    cfg = run_cfg()
    train(cfg)
    assert _changed(_initial_tiny(cfg), _weights(Path(cfg.run_dir))) > 0


def test_init_from_and_hf_round_trip(run_cfg, base_run, tmp_path):
    base_dir = base_run
    # model=hf loads the checkpoint directory with Auto* classes and nothing else
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(base_dir / "final")
    tok = AutoTokenizer.from_pretrained(base_dir / "final")
    assert tok.decode(tok("a=1;b=a+2;b?")["input_ids"]) == "a=1;b=a+2;b?"
    assert model.num_parameters() < 5_000_000

    cfg = run_cfg("trainer=sft", f"model.init_from={base_dir}", "run_name=child")
    result = train(cfg)
    assert result["init_from"] == str(base_dir)
    before, after = _weights(base_dir), _weights(tmp_path / "child")
    assert _changed(before, after) > 0

    hf_cfg = run_cfg("model=hf", f"model.name_or_path={base_dir / 'final'}", "run_name=hf")
    train(hf_cfg)
    assert _changed(before, _weights(tmp_path / "hf")) > 0


def test_lora_run_saves_merged_weights(run_cfg, tmp_path):
    cfg = run_cfg("peft=lora", "peft.r=4")
    train(cfg)
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tmp_path / "sft-arith-seed0" / "final")
    assert not any("lora" in name for name, _ in model.named_parameters())
    # the adapter alone, in PEFT's format; built on an in-process base, it names no base to load on
    adapter = tmp_path / "sft-arith-seed0" / "final" / "adapter"
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    from reasonlab.core import ConfigError
    from reasonlab.models import load_pretrained

    with pytest.raises(ConfigError, match="names no base model"):
        load_pretrained(str(adapter))


def test_lora_adapter_loads_on_its_base(run_cfg, base_run, tmp_path):
    """A LoRA run from a saved base: final/adapter loads on that base (PEFT) to the merged weights,
    and launch.evaluate's loader takes either directory."""
    import torch

    from reasonlab.models import load_pretrained

    cfg = run_cfg("peft=lora", "peft.r=4", f"model.init_from={base_run}", "run_name=lora", "eval.probes=[]")
    train(cfg)
    merged, _ = load_pretrained(str(tmp_path / "lora"))
    from_adapter, tok = load_pretrained(str(tmp_path / "lora" / "final" / "adapter"))
    base, _ = load_pretrained(str(base_run))
    a, b, c = merged.state_dict(), from_adapter.state_dict(), base.state_dict()
    assert a.keys() == b.keys()
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
    assert max((a[k] - c[k]).abs().max().item() for k in a) > 1e-4  # the adapter changed something
    assert tok.padding_side == "left" and tok.pad_token is not None


@pytest.mark.slow
def test_evaluate_cli_scores_a_checkpoint(base_run, tmp_path):
    from conftest import run_cli

    out = tmp_path / "ev"
    proc = run_cli(
        "reasonlab.evaluate", f"model.name_or_path={base_run}", "task=arith", "budget.eval_samples=5",
        "task.train_size=64", "eval.progress=false", f"output_dir={out}",
    )
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["eval/num_samples"] == 5 and 0.0 <= metrics["accuracy"] <= 1.0


def test_periodic_evaluation_during_training(run_cfg, base_run):
    cfg = run_cfg("budget.max_steps=4", "eval.every_steps=2", "eval.during_train_samples=4",
                  f"model.init_from={base_run}", "eval.probes=[info_gain,early_answer,step_validity]")
    result = train(cfg)
    rows = [json.loads(x) for x in (Path(cfg.run_dir) / "eval_history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2]  # step 4 is the final evaluation, in metrics.json
    assert rows[0]["eval/num_samples"] == 4
    assert "info_gain/total" in rows[0] and "reasoning/step_validity" in rows[0]
    assert "info_gain/total" in result


def test_wandb_offline_without_credentials(run_cfg, base_run, monkeypatch, tmp_path):
    """No key, no WANDB_MODE: the run logs offline and completes; the summary holds the evaluator's metrics."""
    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = run_cfg("logger=wandb", f"model.init_from={base_run}", "eval.probes=[info_gain,step_validity]")
    result = train(cfg)
    from wandb_records import summary as read_summary

    logs = list((Path(cfg.run_dir) / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(logs) == 1
    summary = read_summary(logs[0])
    assert summary["eval/accuracy"] == result["accuracy"]
    assert "accuracy" not in summary and "info_gain/total" not in summary  # each metric once, as eval/<metric>
    assert summary["train/seconds"] == result["train/seconds"]
    assert summary["eval/info_gain/total"] == pytest.approx(result["info_gain/total"])
    assert summary["eval/reasoning/step_validity"] == pytest.approx(result["reasoning/step_validity"])
    assert "train/loss" in summary  # TRL's training metrics arrived too
    from wandb_records import run_record

    run = run_record(logs[0])
    assert (run.project, run.run_group, run.job_type) == ("reasonlab", tmp_path.name, "sft")
    assert "trainer:sft" in list(run.tags) and "seed:0" in list(run.tags)


def test_wandb_evaluations_at_the_step_they_were_measured(run_cfg, base_run, monkeypatch, tmp_path):
    """eval.every_steps=3 with logging_steps=4: the evaluations are at steps 3, 6, 9 (and the final one
    at 10) in the offline record, not at the trainer's last logged step; the samples table carries
    each probe's per-sample outcome."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    cfg = run_cfg("logger=wandb", f"model.init_from={base_run}", "eval.probes=[hint,step_validity]",
                  "eval.every_steps=3", "logging_steps=4", "budget.max_steps=10", "eval.during_train_samples=4")
    train(cfg)
    from wandb_records import records

    log = next((Path(cfg.run_dir) / "wandb").glob("offline-run-*/run-*.wandb"))
    steps = []
    for rec in records(log):
        if rec.WhichOneof("record_type") == "history":
            row = {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in rec.history.item}
            if "eval/accuracy" in row:
                steps.append(row["eval/step"])
    assert steps == [3, 6, 9, 10]
    table = next((Path(cfg.run_dir) / "wandb").glob("offline-run-*/files/media/table/eval/samples_*.table.json"))
    columns = json.loads(table.read_text())["columns"]
    assert {"hint/value", "hint/followed", "steps_valid", "chain_valid"} <= set(columns)


@pytest.mark.slow
def test_hydra_multirun_sweep(tmp_path):
    """`-m trainer=sft,grpo` runs both through Hydra's multirun; run dirs are named by options."""
    from conftest import ARITH_SMALL, TINY, run_cli

    args = [a for a in TINY if not a.startswith("budget.max_steps")]
    proc = run_cli("reasonlab.train", "-m", "trainer=sft,grpo", "budget.max_steps=1",
                   "eval.probes=[cot]", *args, *ARITH_SMALL, f"output_root={tmp_path}", timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for name in ("sft-arith-seed0", "grpo-arith-seed0"):
        metrics = json.loads((tmp_path / name / "metrics.json").read_text())
        assert metrics["train/steps"] == 1
        assert (tmp_path / name / ".hydra" / "config.yaml").is_file()


@pytest.mark.slow
def test_study_runs_every_method_and_lists_a_failed_one(tmp_path, capsys):
    """A small study: base -> two methods (one broken) -> table; the broken one is listed, not fatal."""
    from conftest import ARITH_SMALL, TINY
    from reasonlab.launch.study import main

    common = json.dumps([*TINY, *ARITH_SMALL, "eval.probes=[step_validity,cot]"])
    methods = json.dumps({"sft": ["trainer=sft"], "broken": ["trainer=sft", "trainer.target=nonsense"]})
    argv = [f"output_root={tmp_path}", f"common={common}", "base=[trainer=sft,budget.max_steps=3]", f"methods={methods}",
            "seeds=[0,1]"]
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 1
    out = capsys.readouterr().out
    assert "| metric" in out and "base" in out and "sft" in out
    assert "FAILED broken-seed0: unknown sft target 'nonsense'" in out
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert set(summary["runs"]) == {"base-seed0", "base-seed1", "sft-seed0", "sft-seed1"}  # a base per seed
    assert summary["seeds"] == [0, 1] and summary["wall_seconds"] > 0 and summary["peak_memory_mb"] > 100
    sft1 = (tmp_path / "sft-seed1" / ".hydra" / "config.yaml").read_text()
    assert f"init_from: {tmp_path / 'base-seed1'}" in sft1  # seed 1 starts from base seed 1
    assert set(summary["failed"]) == {"broken-seed0", "broken-seed1"}
    assert (tmp_path / "table.md").read_text().startswith("| metric")
    assert "n=8×2" in (tmp_path / "report.md").read_text()  # 8 problems x two seeds


@pytest.mark.slow
def test_one_failing_run_does_not_stop_a_sweep(tmp_path):
    from conftest import ARITH_SMALL, TINY, run_cli

    # grpo cannot group 12 completions by 8 generations; sft is fine
    proc = run_cli("reasonlab.train", "-m", "trainer=grpo,sft", "eval.probes=[cot]", *TINY, *ARITH_SMALL,
                   "trainer.batch_size=12", f"output_root={tmp_path}", timeout=600)
    assert proc.returncode == 1
    assert (tmp_path / "sft-arith-seed0" / "metrics.json").is_file()
    assert not (tmp_path / "grpo-arith-seed0" / "metrics.json").exists()
    assert "1 run(s) of the sweep failed:\n  grpo-arith-seed0: trainer.batch_size (12) must be a multiple" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_evaluations_during_training_keep_one_entropy_threshold(run_cfg, tmp_path, monkeypatch):
    """Without eval.entropy_threshold, the first evaluation's 80th percentile becomes the threshold
    of every later one, so entropy/high_frac can move (each evaluation's own percentile would read
    0.20 by construction); a given threshold is kept as it is."""
    from types import SimpleNamespace

    import reasonlab.eval.evaluator as evaluator_module
    from reasonlab.eval.config import EvalConfig
    from reasonlab.launch.callbacks import PeriodicEval

    seen = []

    def fake_evaluate(model, tokenizer, task, cfg, reader=None):
        seen.append(cfg.entropy_threshold)
        return {"accuracy": 0.5, "entropy/p80": 0.3 + len(seen)}, [], {}

    monkeypatch.setattr(evaluator_module, "evaluate", fake_evaluate)
    cfg = run_cfg("eval.every_steps=2")
    for given, expected in [(None, [None, 1.3, 1.3]), (0.7, [0.7, 0.7, 0.7])]:
        seen.clear()
        callback = PeriodicEval(cfg, EvalConfig.default(entropy_threshold=given), None, None, tmp_path)
        for step in (2, 4, 6):
            callback.on_step_end(None, SimpleNamespace(global_step=step, max_steps=10, log_history=[]), None)
        assert seen == expected


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_output_files_are_readable_as_the_umask_allows(run_cfg, umask, mode):
    """metrics.json, samples.jsonl, the weights and every checkpoint file get 0666 minus the umask
    (they were 0600: collaborators on a shared filesystem could not read results)."""
    import os
    import stat

    previous = os.umask(umask)
    try:
        cfg = run_cfg("checkpoint.every_steps=1", "eval.probes=[cot]")
        train(cfg)
    finally:
        os.umask(previous)
    run_dir = Path(cfg.run_dir)
    files = [p for p in run_dir.rglob("*") if p.is_file() and p.name != ".lock" and "wandb" not in p.parts]
    names = {p.name for p in files}
    assert {"metrics.json", "samples.jsonl", "run.json", "model.safetensors"} <= names
    wrong = {str(p.relative_to(run_dir)): oct(stat.S_IMODE(p.stat().st_mode)) for p in files
             if stat.S_IMODE(p.stat().st_mode) != mode}
    assert not wrong
