import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"

# Small but real settings for runs inside tests.
TINY = [
    "budget.max_steps=2",
    "budget.eval_samples=8",
    "budget.max_completion_length=24",
    "progress=false",
    "eval.progress=false",
    "eval.pass_at_k.prompts=4",
    "logging_steps=1",
    "trainer.batch_size=8",
]
ARITH_SMALL = ["task.train_size=64", "task.test_size=8", "task.ood_size=8"]


def compose(overrides, config_name="config"):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from reasonlab.launch.common import CONF_DIR
    from reasonlab.launch.schema import register

    register()
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides))


@pytest.fixture(scope="session")
def base_run(tmp_path_factory):
    """A tiny model SFT-trained long enough to write the format (so GRPO rewards vary)."""
    from reasonlab.launch.train import train

    root = tmp_path_factory.mktemp("base")
    cfg = compose([*TINY, *ARITH_SMALL, f"output_root={root}", "run_name=base", "budget.max_steps=250",
                   "trainer.batch_size=32", "task.train_size=2000", "budget.eval_samples=32"])
    train(cfg)
    return root / "base"


@pytest.fixture
def run_cfg(tmp_path):
    def make(*overrides):
        return compose([*TINY, *ARITH_SMALL, f"output_root={tmp_path}", *overrides])

    return make


def run_cli(module, *args, cwd=None, env=None, timeout=300):
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd or ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
