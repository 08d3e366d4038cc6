"""Resume after SIGKILL gives the same result as an uninterrupted run; reruns are identical."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conftest import ARITH_SMALL, ROOT, TINY

TIMING = ("seconds", "step_time", "train_runtime", "per_second")
# TRL's SFT `num_tokens` log counts tokens seen by this process, so a resumed run restarts it:
# a logging counter, not training state (the weights and every metric are compared exactly).
PROCESS_COUNTERS = ("num_tokens",)


def _comparable(metrics):
    """metrics.json without wall-clock timings and paths."""
    def keep(k):
        return not any(t in k for t in TIMING) and k not in ("checkpoint", "git_commit", "git_dirty", "curves")
    out = {k: v for k, v in metrics.items() if keep(k)}
    out["train/last_log"] = {k: v for k, v in metrics["train/last_log"].items() if keep(k) and k not in PROCESS_COUNTERS}
    return out


def _args(trainer, out, base_run):
    args = [a for a in TINY if not a.startswith("budget.max_steps")]
    extra = ["trainer.num_generations=4", "budget.max_completion_length=48"] if trainer == "grpo" else []
    return [f"trainer={trainer}", "budget.max_steps=6", "checkpoint.every_steps=2", "checkpoint.keep=3",
            f"model.init_from={base_run}", "eval.probes=[step_validity,cot]", *args, *ARITH_SMALL, *extra,
            f"output_root={out}", "run_name=run"]


def _run(args, kill_after_checkpoint=None):
    cmd = [sys.executable, "-m", "launch.train", *args]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if kill_after_checkpoint is None:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (kill_after_checkpoint / "trainer_state.json").is_file():
        assert proc.poll() is None, "the run ended before its first checkpoint"
        assert time.time() < deadline, "no checkpoint after 300 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.mark.parametrize("trainer", ["sft", "grpo"])
def test_kill_and_resume_equals_uninterrupted(tmp_path, base_run, trainer):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    _run(_args(trainer, clean, base_run))
    _run(_args(trainer, killed, base_run), kill_after_checkpoint=killed / "run" / "checkpoints" / "checkpoint-2")
    assert not (killed / "run" / "metrics.json").exists()  # killed mid-training: nothing half-written
    _run(_args(trainer, killed, base_run))  # the same command again: resumes from checkpoint-2 (or later)
    a = json.loads((clean / "run" / "metrics.json").read_text())
    b = json.loads((killed / "run" / "metrics.json").read_text())
    assert _comparable(a) == _comparable(b)
    wa, wb = (load_file(str(d / "run" / "final" / "model.safetensors")) for d in (clean, killed))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)  # exactly the same weights


def test_rerun_of_a_complete_run_is_skipped(tmp_path, base_run, run_cfg):
    from launch.train import train

    cfg = run_cfg(f"model.init_from={base_run}", "eval.probes=[cot]")
    first = train(cfg)
    stamp = (Path(cfg.run_dir) / "metrics.json").stat().st_mtime_ns
    assert train(cfg) == json.loads(json.dumps(first))  # read back, not retrained
    assert (Path(cfg.run_dir) / "metrics.json").stat().st_mtime_ns == stamp
    again = train(run_cfg(f"model.init_from={base_run}", "eval.probes=[cot]", "resume=force_restart"))
    assert (Path(cfg.run_dir) / "metrics.json").stat().st_mtime_ns != stamp
    assert _comparable(again) == _comparable(json.loads(json.dumps(first)))  # same seed, same numbers


@pytest.mark.parametrize("trainer", ["sft", "grpo", "rlag", "rlsf", "entropy_rlvr"])
def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path, base_run, run_cfg, trainer):
    from launch.train import train

    extra = [] if trainer == "sft" else ["trainer.num_generations=4", "budget.max_completion_length=48"]
    common = [f"model.init_from={base_run}", f"trainer={trainer}", *extra, "eval.probes=[pass_at_k,step_validity]"]
    a = train(run_cfg(*common, "run_name=a"))
    b = train(run_cfg(*common, "run_name=b"))
    c = train(run_cfg(*common, "run_name=c", "seed=1"))
    assert _comparable(a) == {**_comparable(b)}
    assert _comparable(a)["train/last_log"] != _comparable(c)["train/last_log"]


def test_non_finite_loss_stops_the_run_naming_the_step(tmp_path):
    from types import SimpleNamespace

    from launch.callbacks import StopOnNonFiniteLoss
    from tasks.registry import RunError

    ckpt = tmp_path / "checkpoints" / "checkpoint-4"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text("{}")
    args, state = SimpleNamespace(output_dir=str(tmp_path / "checkpoints")), SimpleNamespace(global_step=5)
    StopOnNonFiniteLoss().on_log(args, state, None, logs={"loss": 0.5})  # finite: nothing happens
    for bad in (float("nan"), float("inf")):
        with pytest.raises(RunError, match=r"loss became (nan|inf) at step 5.*last good checkpoint: .*checkpoint-4"):
            StopOnNonFiniteLoss().on_log(args, state, None, logs={"loss": bad})
