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

pytestmark = pytest.mark.slow

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
    cmd = [sys.executable, "-m", "reasonlab.train", *args]
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
    from reasonlab.launch.train import train

    cfg = run_cfg(f"model.init_from={base_run}", "eval.probes=[cot]")
    first = train(cfg)
    stamp = (Path(cfg.run_dir) / "metrics.json").stat().st_mtime_ns
    assert train(cfg) == json.loads(json.dumps(first))  # read back, not retrained
    assert (Path(cfg.run_dir) / "metrics.json").stat().st_mtime_ns == stamp
    again = train(run_cfg(f"model.init_from={base_run}", "eval.probes=[cot]", "resume=force_restart"))
    assert (Path(cfg.run_dir) / "metrics.json").stat().st_mtime_ns != stamp
    assert _comparable(again) == _comparable(json.loads(json.dumps(first)))  # same seed, same numbers


def test_complete_run_scored_by_another_evaluator_version_is_rescored_not_retrained(tmp_path, base_run, run_cfg):
    """After an evaluator change, a study reuses its trained runs but re-scores them, so its table
    never mixes evaluator versions; the training fields are kept, the weights untouched."""
    from reasonlab.eval.evaluator import EVALUATOR_VERSION
    from reasonlab.launch.train import train

    cfg = run_cfg(f"model.init_from={base_run}", "eval.probes=[cot,step_validity]")
    first = json.loads(json.dumps(train(cfg)))
    run = Path(cfg.run_dir)
    weights = (run / "final" / "model.safetensors").stat().st_mtime_ns
    stale = {**first, "eval/version": "0", "accuracy": -1.0, "reasoning/step_validity": -1.0}
    (run / "metrics.json").write_text(json.dumps(stale))
    (run / "samples.jsonl").write_text("")
    again = train(cfg)
    assert again["eval/version"] == EVALUATOR_VERSION
    assert again["accuracy"] == first["accuracy"] and again["reasoning/step_validity"] == first["reasoning/step_validity"]
    assert again["train/steps"] == first["train/steps"] and again["train/last_log"] == first["train/last_log"]
    assert json.loads((run / "metrics.json").read_text())["eval/version"] == EVALUATOR_VERSION
    records = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert sum(r["split"] == "test" for r in records) == first["eval/num_samples"]  # samples.jsonl rewritten too
    assert (run / "final" / "model.safetensors").stat().st_mtime_ns == weights  # not retrained
    assert train(cfg) == json.loads((run / "metrics.json").read_text())  # current now: read back as it is


@pytest.mark.parametrize("trainer", ["sft", "grpo", "rlag", "rlsf", "entropy_rlvr"])
def test_same_seed_same_numbers_other_seed_other_numbers(tmp_path, base_run, run_cfg, trainer):
    from reasonlab.launch.train import train

    extra = [] if trainer == "sft" else ["trainer.num_generations=4", "budget.max_completion_length=48"]
    common = [f"model.init_from={base_run}", f"trainer={trainer}", *extra, "eval.probes=[pass_at_k,step_validity]"]
    a = train(run_cfg(*common, "run_name=a"))
    b = train(run_cfg(*common, "run_name=b"))
    c = train(run_cfg(*common, "run_name=c", "seed=1"))
    assert _comparable(a) == {**_comparable(b)}
    assert _comparable(a)["train/last_log"] != _comparable(c)["train/last_log"]


def test_non_finite_loss_stops_the_run_naming_the_step(tmp_path):
    from types import SimpleNamespace

    from reasonlab.core import RunError
    from reasonlab.launch.callbacks import StopOnNonFiniteLoss

    from safetensors.torch import save_file

    ckpt = tmp_path / "checkpoints" / "checkpoint-4"
    ckpt.mkdir(parents=True)
    (ckpt / "trainer_state.json").write_text("{}")
    save_file({"w": torch.zeros(2)}, str(ckpt / "model.safetensors"))
    args, state = SimpleNamespace(output_dir=str(tmp_path / "checkpoints")), SimpleNamespace(global_step=5)
    model = torch.nn.Linear(2, 2)
    StopOnNonFiniteLoss().on_log(args, state, None, logs={"loss": 0.5, "grad_norm": 1.0}, model=model)  # finite
    for bad in (float("nan"), float("inf")):
        with pytest.raises(RunError, match=r"loss became (nan|inf) at step 5.*last good checkpoint: .*checkpoint-4"):
            StopOnNonFiniteLoss().on_log(args, state, None, logs={"loss": bad})
        # TRL logs a loss of 0.0 once the weights are NaN: the gradient norm and the weights still tell
        with pytest.raises(RunError, match=r"grad norm became (nan|inf) at step 5"):
            StopOnNonFiniteLoss().on_log(args, state, None, logs={"loss": 0.0, "grad_norm": bad})
    with torch.no_grad():
        model.bias[0] = float("nan")
    with pytest.raises(RunError, match=r"1 weight tensors became non-finite \(first: bias\) at step 5"):
        StopOnNonFiniteLoss().on_log(args, state, None, logs={"loss": 0.0}, model=model)


def _run_until(args, path, sig, env=None):
    """Start a run, wait until `path` exists, send `sig`; return (returncode, stderr)."""
    cmd = [sys.executable, "-m", "reasonlab.train", *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not path.exists():
        assert proc.poll() is None, f"the run ended before {path.name} appeared"
        assert time.time() < deadline, f"no {path.name} after 300 s"
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def test_preemption_signal_saves_a_checkpoint_and_the_rerun_resumes(tmp_path, base_run):
    """SLURM's preemption signal (SIGUSR2 via submitit) mid-training: a checkpoint at that step, a
    clear message, no metrics.json; the same command again (what submitit's requeue runs) resumes
    and ends with the metrics of an uninterrupted run."""
    import re

    clean, pre = tmp_path / "clean", tmp_path / "pre"
    args = lambda out: [a.replace("budget.max_steps=6", "budget.max_steps=30").replace("checkpoint.every_steps=2",
                                                                                        "checkpoint.every_steps=10")
                        for a in _args("sft", out, base_run)]
    _run(args(clean))
    code, err = _run_until(args(pre), pre / "run" / "checkpoints" / "checkpoint-10" / "trainer_state.json",
                           signal.SIGUSR2)
    assert code != 0
    m = re.search(r"error: stopped by SIGUSR2 at step (\d+); checkpoint saved in .*Rerun the same command", err)
    assert m, err[-2000:]
    step = int(m.group(1))
    assert 10 <= step < 30 and (pre / "run" / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").is_file()
    assert not (pre / "run" / "metrics.json").exists()
    _run(args(pre))
    a = json.loads((clean / "run" / "metrics.json").read_text())
    b = json.loads((pre / "run" / "metrics.json").read_text())
    assert _comparable(a) == _comparable(b)


def test_preemption_hands_over_to_the_previous_handler(monkeypatch):
    """Under submitit the handler installed before the run (its checkpoint-and-requeue) runs after
    the checkpoint is saved."""
    from types import SimpleNamespace

    from reasonlab.launch.callbacks import Preempted, SaveOnPreemption

    calls = []
    previous = signal.signal(signal.SIGUSR2, lambda signum, frame: calls.append(signum))
    try:
        cb = SaveOnPreemption()
        os.kill(os.getpid(), signal.SIGUSR2)
        control = SimpleNamespace(should_save=False, should_training_stop=False)
        cb.on_step_end(None, SimpleNamespace(global_step=7), control)
        assert control.should_save and control.should_training_stop and not calls
        with pytest.raises(Preempted, match="stopped by SIGUSR2 at step 7"):
            cb.on_save(SimpleNamespace(output_dir="/x/checkpoints"), SimpleNamespace(global_step=7), control)
        assert calls == [signal.SIGUSR2]  # submitit's requeue would run here
    finally:
        signal.signal(signal.SIGUSR2, previous)


def test_kill_during_evaluation_leaves_no_metrics_and_compare_says_incomplete(tmp_path, base_run):
    from conftest import run_cli

    out = tmp_path / "sweep"
    args = [a.replace("eval.probes=[step_validity,cot]", "eval.probes=[pass_at_k,info_gain,early_answer]")
            for a in _args("sft", out, base_run)] + ["budget.eval_samples=64", "checkpoint.every_steps=0"]
    code, _ = _run_until(args, out / "run" / "final" / "model.safetensors", signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert not (out / "run" / "metrics.json").exists() and not (out / "run" / "samples.jsonl").exists()
    _run([*_args("sft", out, base_run)[:-1], "run_name=other"])  # one complete run beside it
    proc = run_cli("reasonlab.compare", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "incomplete run skipped: run (no metrics.json)" in proc.stderr


def test_ctrl_c_saves_a_checkpoint_and_says_so_in_one_line(tmp_path, base_run):
    """Ctrl-C (SIGINT) is handled like preemption: a checkpoint at the end of the step and one line,
    no KeyboardInterrupt traceback; a rerun resumes."""
    import re

    args = [a.replace("budget.max_steps=6", "budget.max_steps=30").replace("checkpoint.every_steps=2",
                                                                           "checkpoint.every_steps=10")
            for a in _args("sft", tmp_path, base_run)]
    code, err = _run_until(args, tmp_path / "run" / "checkpoints" / "checkpoint-10" / "trainer_state.json",
                           signal.SIGINT)
    assert code != 0 and "Traceback" not in err and "KeyboardInterrupt" not in err, err[-2000:]
    assert re.search(r"error: stopped by SIGINT at step \d+; checkpoint saved", err.strip().splitlines()[-1]), err
    assert not (tmp_path / "run" / "metrics.json").exists()
