"""Runs that cannot lie: a rerun into a run directory made with other settings refuses (or, for
evaluation settings only, re-scores); a sweep gets one directory per job; two processes never
share a directory; a diverged model never becomes a run; a run killed during its final
evaluation resumes to the metrics of an uninterrupted one."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ARITH_SMALL, TINY, run_cli

pytestmark = pytest.mark.slow


def _comparable(metrics):
    skip = ("seconds", "runtime", "per_second", "checkpoint", "git_", "curves", "num_tokens")
    out = {k: v for k, v in metrics.items() if not any(s in k for s in skip)}
    out["train/last_log"] = {k: v for k, v in metrics["train/last_log"].items() if not any(s in k for s in skip)}
    return out


def test_a_changed_setting_refuses_and_leaves_the_run_as_it_was(run_cfg):
    from reasonlab.core import ConfigError
    from reasonlab.launch.train import train

    cfg = run_cfg("run_name=r", "eval.probes=[cot]")
    train(cfg)
    run_dir = Path(cfg.run_dir)
    before = {p: (run_dir / p).read_bytes() for p in ("metrics.json", "run.json", ".hydra/config.yaml")}
    for change in ("trainer.learning_rate=1e-5", "task.modulus=7", "trainer.batch_size=4"):
        with pytest.raises(ConfigError, match=rf"holds a run made with other settings \({change.split('=')[0]}: .* -> "
                                              r".*\); give this run another run_name=\.\.\., or resume=force_restart"):
            train(run_cfg("run_name=r", "eval.probes=[cot]", change))
    assert {p: (run_dir / p).read_bytes() for p in before} == before  # nothing rewritten
    # an interrupted run (checkpoints, no metrics.json) refuses alike instead of resuming
    cfg = run_cfg("run_name=i", "eval.probes=[cot]", "checkpoint.every_steps=1")
    train(cfg)
    (Path(cfg.run_dir) / "metrics.json").unlink()
    with pytest.raises(ConfigError, match=r"budget\.max_steps: 2 -> 3"):
        train(run_cfg("run_name=i", "eval.probes=[cot]", "checkpoint.every_steps=1", "budget.max_steps=3"))
    # what cannot change a result does not count: logging, progress, checkpoint frequency
    again = train(run_cfg("run_name=r", "eval.probes=[cot]", "logging_steps=2", "progress=true", "checkpoint.keep=5"))
    assert again == json.loads(before["metrics.json"])
    # resume=force_restart replaces the run with the new settings
    new = train(run_cfg("run_name=r", "eval.probes=[cot]", "trainer.learning_rate=1e-5", "resume=force_restart"))
    assert json.loads((run_dir / "run.json").read_text())["settings"]["trainer.learning_rate"] == 1e-5
    assert new["train/last_log"] != json.loads(before["metrics.json"])["train/last_log"]


def test_changed_evaluation_settings_rescore_without_retraining(run_cfg):
    from reasonlab.launch.train import train

    cfg = run_cfg("run_name=e", "eval.probes=[cot]")
    first = train(cfg)
    weights = Path(cfg.run_dir) / "final" / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    second = train(run_cfg("run_name=e", "eval.probes=[cot,step_validity]"))
    assert weights.stat().st_mtime_ns == stamp  # not retrained
    assert "reasoning/step_validity" in second and "reasoning/step_validity" not in first
    assert second["train/last_log"] == first["train/last_log"] and second["accuracy"] == first["accuracy"]
    recorded = json.loads((Path(cfg.run_dir) / "run.json").read_text())["settings"]
    assert recorded["eval.probes"] == ["cot", "step_validity"]
    assert "step_validity" in (Path(cfg.run_dir) / ".hydra" / "config.yaml").read_text()


def test_a_sweep_over_any_key_gets_one_directory_per_job(tmp_path):
    proc = run_cli("reasonlab.train", "-m", *TINY, *ARITH_SMALL, f"output_root={tmp_path}", "eval.probes=[cot]",
                   "trainer.learning_rate=1e-3,5e-4")
    assert proc.returncode == 0, proc.stderr[-2000:]
    runs = sorted(p.parent.name for p in tmp_path.glob("*/metrics.json"))
    assert runs == ["sft-arith-seed0,trainer.learning_rate=0.0005", "sft-arith-seed0,trainer.learning_rate=0.001"]
    rates = {json.loads((tmp_path / r / "run.json").read_text())["settings"]["trainer.learning_rate"] for r in runs}
    assert rates == {1e-3, 5e-4}


def test_two_live_processes_never_share_a_directory_and_a_stale_lock_is_taken_over(run_cfg, caplog):
    from reasonlab.core import ConfigError
    from reasonlab.launch.train import train

    cfg = run_cfg("run_name=l", "eval.probes=[cot]")
    run_dir = Path(cfg.run_dir)
    run_dir.mkdir(parents=True)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        import socket

        (run_dir / ".lock").write_text(json.dumps({"pid": live.pid, "host": socket.gethostname()}))
        with pytest.raises(ConfigError, match=rf"another process \(pid {live.pid}\) is running in"):
            train(cfg)
        assert not (run_dir / "metrics.json").exists() and not (run_dir / "run.json").exists()
    finally:
        live.kill()
        live.wait()
    with caplog.at_level("WARNING", logger="reasonlab"):
        train(cfg)  # the lock's process is gone
    assert "taking over the lock of a process that no longer runs" in caplog.text
    assert (run_dir / "metrics.json").is_file() and not (run_dir / ".lock").exists()


def test_a_diverged_model_is_never_a_run(tmp_path):
    proc = run_cli("reasonlab.train", *TINY, *ARITH_SMALL, f"output_root={tmp_path}", "trainer.learning_rate=1e30",
                   "budget.max_steps=4", "checkpoint.every_steps=1")
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and re.search(r"non-finite|became (nan|inf)", last), last
    assert "Lower trainer.learning_rate" in last
    run = tmp_path / "sft-arith-seed0"
    assert not (run / "metrics.json").exists() and not (run / "final").exists()
    import torch
    from safetensors.torch import load_file

    for ckpt in (run / "checkpoints").glob("checkpoint-*"):  # what is left to resume from is finite
        assert all(torch.isfinite(t).all() for t in load_file(str(ckpt / "model.safetensors")).values()), ckpt


def test_killed_during_the_final_evaluation_resumes_to_the_same_metrics(run_cfg):
    """checkpoint.every_steps divides max_steps: the last checkpoint is at max_steps, and the rerun
    goes straight to saving and evaluation (not one step further)."""
    import shutil

    from reasonlab.launch.train import train

    overrides = ("eval.probes=[cot,step_validity]", "budget.max_steps=4", "checkpoint.every_steps=2")
    clean = train(run_cfg("run_name=clean", *overrides))
    cfg = run_cfg("run_name=killed", *overrides)
    train(cfg)
    run_dir = Path(cfg.run_dir)
    (run_dir / "metrics.json").unlink()  # as if killed while evaluating
    shutil.rmtree(run_dir / "final")
    resumed = train(cfg)
    assert resumed["train/steps"] == 4
    assert _comparable(resumed) == _comparable(clean)


def test_latest_checkpoint_skips_foreign_and_corrupt_ones(tmp_path, caplog):
    from reasonlab.launch.common import latest_checkpoint

    ckpts = tmp_path / "checkpoints"
    for step in (2, 4):
        (ckpts / f"checkpoint-{step}").mkdir(parents=True)
        (ckpts / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(ckpts / "checkpoint-2" / "model.safetensors"))
    (ckpts / "checkpoint-4" / "model.safetensors").write_bytes(b"\x10\x00\x00")  # truncated
    (ckpts / "checkpoint-2-backup").mkdir()
    with caplog.at_level("WARNING", logger="reasonlab"):
        assert latest_checkpoint(tmp_path) == str(ckpts / "checkpoint-2")
    assert "skipping checkpoint" in caplog.text and "checkpoint-4" in caplog.text
    (ckpts / "checkpoint-2" / "trainer_state.json").write_text('{"global_st')  # truncated state too
    assert latest_checkpoint(tmp_path) is None
