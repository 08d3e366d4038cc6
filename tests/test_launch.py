"""Experiments, the SLURM launcher config, submitit running a real job, accelerate configs."""

import json
import subprocess

import pytest
import yaml
from omegaconf import OmegaConf

from conftest import ARITH_SMALL, ROOT, TINY, compose, run_cli
from launch.common import CONF_DIR

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes_and_starts_with_its_command(name):
    text = (CONF_DIR / "experiment" / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_\n")
    assert "python -m launch." in text.split("\n\n")[0]  # the command that runs it, in the header
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from launch.schema import register

    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("config", overrides=[f"experiment={name}"], return_hydra_config=True)
    resolved = OmegaConf.to_container(cfg, resolve=False)
    assert resolved["hydra"]["sweeper"]["params"], name
    assert OmegaConf.to_container(cfg.trainer, resolve=True)["name"]
    assert str(cfg.output_root).startswith("outputs/")


def test_experiment_run_names_come_from_the_swept_options():
    cfg = compose(["experiment=entropy_quantile", "trainer.top_entropy_quantile=0.5", "seed=2"])
    assert cfg.run_name == "entropy_rlvr-q0.5-seed2"
    cfg = compose(["experiment=cot_length", "task.train_steps=[4,4]"])
    assert cfg.run_name == "sft-len4-seed0"


def test_slurm_launcher_config(monkeypatch):
    monkeypatch.setenv("SLURM_PARTITION", "gpu-a100")
    monkeypatch.setenv("SLURM_ACCOUNT", "proj42")
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("config", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("submitit_launcher.SlurmLauncher")
    assert (launcher["partition"], launcher["account"], launcher["gpus_per_node"]) == ("gpu-a100", "proj42", 1)
    assert launcher["timeout_min"] == 240 and launcher["max_num_timeout"] == 3


@pytest.mark.slow
def test_submitit_runs_a_job(tmp_path):
    """hydra-submitit-launcher's local executor runs a real (tiny) training job in a subprocess."""
    proc = run_cli("launch.train", "-m", "hydra/launcher=submitit_local", "eval.probes=[cot]", *TINY, *ARITH_SMALL,
                   f"output_root={tmp_path}", timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((tmp_path / "sft-arith-seed0" / "metrics.json").read_text())
    assert metrics["train/steps"] == 2
    assert list(tmp_path.glob(".submitit/*"))  # submitit's own job folder


@pytest.mark.parametrize("name", ["ddp", "deepspeed_zero2", "deepspeed_zero3", "fsdp"])
def test_accelerate_configs(name):
    cfg = yaml.safe_load((ROOT / "launch" / "accelerate" / f"{name}.yaml").read_text())
    expected = {"ddp": "MULTI_GPU", "deepspeed_zero2": "DEEPSPEED", "deepspeed_zero3": "DEEPSPEED", "fsdp": "FSDP"}
    assert cfg["distributed_type"] == expected[name]
    if name.startswith("deepspeed"):
        assert cfg["deepspeed_config"]["zero_stage"] == int(name[-1])
    assert subprocess.run(["bash", "-n", str(ROOT / "launch" / "slurm.sbatch")]).returncode == 0
