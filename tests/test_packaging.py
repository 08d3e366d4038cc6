"""What gets installed: one top-level name, `reasonlab`, with every folder of the project under it.

The repository keeps its folders at the top (trainers/, eval/, conf/, ...); pyproject.toml maps each
to a subpackage (`reasonlab.eval` is eval/). These tests read that mapping and build the wheel a user
would install, then use it from another directory.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT

SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def _folders_with_files(root: Path, name: str):
    """`name` for root and each folder below it that holds a .py, .yaml or .json file."""
    for path in sorted([root, *root.rglob("*")]):
        if path.is_dir() and "__pycache__" not in path.parts and any(
                f.suffix in (".py", ".yaml", ".json", ".sbatch") for f in path.iterdir() if f.is_file()):
            yield ".".join([name, *path.relative_to(root).parts])


def test_every_folder_is_installed_under_reasonlab():
    mapping = SETUPTOOLS["package-dir"]
    assert all(name == "reasonlab" or name.startswith("reasonlab.") for name in mapping)
    expected = {pkg for name, folder in mapping.items() for pkg in _folders_with_files(ROOT / folder, name)}
    # a folder mapped as a subfolder of another (none today) would be listed twice: one set
    assert set(SETUPTOOLS["packages"]) == expected, (
        "pyproject.toml's [tool.setuptools] packages must list every folder that holds code or configs: "
        f"missing {sorted(expected - set(SETUPTOOLS['packages']))}, "
        f"extra {sorted(set(SETUPTOOLS['packages']) - expected)}")
    top = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert top <= {Path(folder).name for folder in mapping.values()}, "a top-level package is not installed"


@pytest.mark.slow
def test_the_wheel_adds_only_reasonlab_and_runs_from_anywhere(tmp_path):
    src = tmp_path / "src"  # a copy: building in the checkout would leave build/ and *.egg-info there
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in {Path(f).parts[0] for f in SETUPTOOLS["package-dir"].values()}:
        shutil.copytree(ROOT / folder, src / folder, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    build = subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(src)],
                           capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("reasonlab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"reasonlab", wheel.name.split("-py")[0] + ".dist-info"}
    for data in ("reasonlab/conf/config.yaml", "reasonlab/conf/trainer/sft.yaml", "reasonlab/conf/hydra/launcher/slurm.yaml",
                 "reasonlab/eval/validation.json", "reasonlab/launch/accelerate/ddp.yaml", "reasonlab/launch/slurm.sbatch",
                 "reasonlab/eval/probes/__init__.py", "reasonlab/train.py"):
        assert data in names

    site = tmp_path / "site"
    install = subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
                             capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr[-3000:]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"}
    probe = subprocess.run(
        [sys.executable, "-c",
         "import importlib.util, reasonlab, reasonlab.eval.evaluator\n"
         "from reasonlab.launch.common import CONF_DIR\n"
         "print(reasonlab.__file__, CONF_DIR, (CONF_DIR / 'config.yaml').is_file())\n"
         "print([n for n in ('tasks', 'eval', 'models', 'trainers', 'rewards', 'launch', 'core')"
         " if importlib.util.find_spec(n) is not None])\n"],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert probe.returncode == 0, probe.stderr[-3000:]
    first, second = probe.stdout.splitlines()[-2:]
    assert first.startswith(str(site)) and first.endswith(f"{site / 'reasonlab' / 'conf'} True")
    assert second == "[]"  # no generic top-level name resolves, not even to the checkout's folders
    # the configs come from the installed package: --help lists conf/'s groups and options
    for cmd, expect in (([sys.executable, "-m", "reasonlab.train"], "trainer          entropy_rlvr, grpo, rlag, rlsf, sft"),
                        ([str(site / "bin" / "reasonlab-evaluate")], "model.name_or_path=<checkpoint")):
        proc = subprocess.run([*cmd, "--help"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert expect in proc.stdout, proc.stdout[:2000]
