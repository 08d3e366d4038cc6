"""Experiments, the SLURM launcher config, submitit running a real job, accelerate configs."""

import json
import subprocess

import pytest
import yaml
from omegaconf import OmegaConf

from conftest import ARITH_SMALL, ROOT, TINY, compose, run_cli
from reasonlab.launch.common import CONF_DIR

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes_and_starts_with_its_command(name):
    text = (CONF_DIR / "experiment" / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_\n")
    assert "python -m reasonlab." in text.split("\n\n")[0]  # the command that runs it, in the header
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from reasonlab.launch.schema import register

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
    """The project's own variables set the launcher; SLURM's (set inside an allocation) do not."""
    monkeypatch.setenv("SLURM_PARTITION", "inherited")
    monkeypatch.setenv("SLURM_GPUS_PER_NODE", "8")
    monkeypatch.setenv("REASONLAB_SLURM_PARTITION", "gpu-a100")
    monkeypatch.setenv("REASONLAB_SLURM_ACCOUNT", "proj42")
    monkeypatch.setenv("REASONLAB_SLURM_GPUS", "4")
    monkeypatch.setenv("REASONLAB_SLURM_SETUP", '["module load cuda", "source /shared/venv/bin/activate"]')
    from hydra import compose as hydra_compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from reasonlab.launch.schema import register

    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("config", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert launcher["_target_"].endswith("submitit_launcher.SlurmLauncher")
    assert (launcher["partition"], launcher["account"], launcher["gpus_per_node"]) == ("gpu-a100", "proj42", 4)
    assert launcher["tasks_per_node"] == 4  # one process per GPU
    assert launcher["setup"] == ["module load cuda", "source /shared/venv/bin/activate"]
    assert launcher["timeout_min"] == 240 and launcher["max_num_timeout"] == 3 and launcher["array_parallelism"] == 32
    for key in ("REASONLAB_SLURM_PARTITION", "REASONLAB_SLURM_ACCOUNT", "REASONLAB_SLURM_GPUS", "REASONLAB_SLURM_SETUP"):
        monkeypatch.delenv(key)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("config", overrides=["hydra/launcher=slurm"], return_hydra_config=True)
    launcher = OmegaConf.to_container(cfg.hydra.launcher, resolve=True)
    assert (launcher["partition"], launcher["gpus_per_node"], launcher["setup"]) == (None, 1, [])


@pytest.mark.slow
def test_a_submitit_job_with_two_tasks_is_one_two_process_run(tmp_path):
    """What a SLURM job with tasks_per_node=2 does, on submitit's local executor: the two tasks
    join one process group and train one run at the global batch (core/dist.py)."""
    proc = run_cli("reasonlab.train", "-m", "hydra/launcher=submitit_local", "hydra.launcher.tasks_per_node=2",
                   "eval.probes=[cot]", *TINY, *ARITH_SMALL, f"output_root={tmp_path}", env={"OMP_NUM_THREADS": "1"},
                   timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((tmp_path / "sft-arith-seed0" / "metrics.json").read_text())
    assert (metrics["train/world_size"], metrics["train/per_device_batch_size"], metrics["train/steps"]) == (2, 4, 2)


@pytest.mark.slow
def test_submitit_runs_a_job(tmp_path):
    """hydra-submitit-launcher's local executor runs a real (tiny) training job in a subprocess."""
    proc = run_cli("reasonlab.train", "-m", "hydra/launcher=submitit_local", "eval.probes=[cot]", *TINY, *ARITH_SMALL,
                   f"output_root={tmp_path}", timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((tmp_path / "sft-arith-seed0" / "metrics.json").read_text())
    assert metrics["train/steps"] == 2
    assert list(tmp_path.glob(".submitit/*"))  # submitit's own job folder


@pytest.mark.slow
def test_a_failing_submitit_job_fails_the_sweep(tmp_path):
    """With submitit's local executor the jobs run in their own processes and submitit reports a job
    that caught its error as a success; the sweep still exits 1 and names the failed run, and the
    other job finishes."""
    proc = run_cli("reasonlab.train", "-m", "hydra/launcher=submitit_local", "trainer=grpo,sft",
                   "eval.probes=[cot]", *TINY, *ARITH_SMALL, "trainer.batch_size=12", f"output_root={tmp_path}",
                   timeout=900)
    assert proc.returncode == 1, proc.stderr[-2000:]
    assert "1 run(s) of the sweep failed:\n  grpo-arith-seed0: trainer.batch_size (12) must be a multiple" in proc.stderr
    assert (tmp_path / "sft-arith-seed0" / "metrics.json").is_file()
    assert not list(ROOT.glob(".reasonlab-sweep-*"))  # the failures folder is removed


@pytest.mark.parametrize("name", ["ddp", "deepspeed_zero2", "deepspeed_zero3", "fsdp", "cpu"])
def test_accelerate_configs(name):
    cfg = yaml.safe_load((ROOT / "launch" / "accelerate" / f"{name}.yaml").read_text())
    expected = {"ddp": "MULTI_GPU", "deepspeed_zero2": "DEEPSPEED", "deepspeed_zero3": "DEEPSPEED", "fsdp": "FSDP",
                "cpu": "MULTI_GPU"}
    assert cfg["distributed_type"] == expected[name]
    # the process count comes from the command line (accelerate refuses -1 without --num_processes),
    # the precision from model.dtype
    assert cfg["num_processes"] == -1 and cfg["mixed_precision"] == "no" and cfg["use_cpu"] == (name == "cpu")
    if name.startswith("deepspeed"):
        assert cfg["deepspeed_config"]["zero_stage"] == int(name[-1])
    assert subprocess.run(["bash", "-n", str(ROOT / "launch" / "slurm.sbatch")]).returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("module, expect", [
    ("reasonlab.train", [r"trainer\s+entropy_rlvr, grpo, rlag, rlsf, sft", r"budget\.max_steps=300\s+optimizer steps",
                      r"trainer\.max_length=null\s+prompt \+ completion tokens", r"eval\.probes=\[pass_at_k"]),
    ("reasonlab.evaluate", [r"model\.name_or_path=<checkpoint", r"logger\s+none, wandb", r"eval\.scorer=self"]),
    ("reasonlab.study", [r"seeds=\[0\]\s+a list, or a count", r"jobs=2"]),
    ("reasonlab.compare", [r"usage: python -m reasonlab\.compare <study or sweep directory>"]),
])
def test_help_lists_groups_and_keys_with_their_comments(tmp_path, module, expect):
    import re

    proc = run_cli(module, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for pattern in expect:
        assert re.search(pattern, proc.stdout), (pattern, proc.stdout[:2000])
    assert not list(tmp_path.iterdir())  # nothing written


@pytest.mark.slow
@pytest.mark.parametrize("flags", [["--cfg", "job"], ["-c", "job"], ["--cfg=job"], ["--cfg", "hydra"]])
def test_print_the_composed_config(tmp_path, flags):
    proc = run_cli("reasonlab.train", *flags, "budget.max_steps=3", f"output_root={tmp_path / 'out'}")
    assert proc.returncode == 0, proc.stderr
    assert ("max_steps: 3" if "job" in flags[-1] else "sweeper:") in proc.stdout
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_evaluate_takes_logger_and_progress(tmp_path, base_run):
    out = tmp_path / "ev"
    proc = run_cli("reasonlab.evaluate", f"model.name_or_path={base_run}", "logger=none", "progress=false",
                   "budget.eval_samples=4", "eval.probes=[cot]", *ARITH_SMALL, f"output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads((out / "metrics.json").read_text())["eval/num_samples"] == 4
    assert "eval generate" not in proc.stderr  # no progress bars
