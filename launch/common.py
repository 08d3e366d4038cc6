"""Pieces every entry point shares: quiet libraries, seeding, atomic writes, provenance."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import random
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Any

from reasonlab.core import make_readable

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONF_DIR = PROJECT_ROOT / "conf"


def group_defaults(group: str, name: str) -> dict[str, Any]:
    """The options of conf/<group>/<name>.yaml with those it inherits through its `defaults`
    list (conf/trainer/rlsf.yaml starts from grpo.yaml), unresolved; {} for an unknown name."""
    from omegaconf import OmegaConf

    path = CONF_DIR / group / f"{name}.yaml"
    if not path.is_file():
        return {}
    own = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    out: dict[str, Any] = {}
    for parent in own.pop("defaults", []) or []:
        if isinstance(parent, str) and parent != "_self_":
            out.update(group_defaults(group, parent))
    return {**out, **own}


def quiet_libraries() -> None:
    """Readable console output: no walls of library warnings or loading bars."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(trl|transformers|torch|peft|accelerate)\b.*")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    import datasets
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    datasets.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    for name in ("trl", "accelerate", "peft", "httpx", "urllib3"):
        logging.getLogger(name).setLevel(logging.ERROR)


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write to a temporary file in the same directory, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        make_readable(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json_atomic(path: str | os.PathLike, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2) + "\n")


def write_jsonl_atomic(path: str | os.PathLike, rows: list[dict[str, Any]]) -> None:
    write_text_atomic(path, "".join(json.dumps(row) + "\n" for row in rows))


def group_options(group: str) -> list[str]:
    """The options of a config group: the files of conf/<group>/."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def flatten(cfg) -> dict[str, Any]:
    """A composed config's leaves (lists are leaves), resolved, by dotted key."""
    from omegaconf import OmegaConf

    flat: dict[str, Any] = {}

    def walk(node, prefix):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{prefix}{k}.")
        else:
            flat[prefix[:-1]] = node

    walk(OmegaConf.to_container(cfg, resolve=True), "")
    return flat


def checkpoint_step(path: str | os.PathLike) -> int | None:
    """The step of a `checkpoint-<step>` directory, or None for any other name (`checkpoint-2-backup`)."""
    tail = Path(path).name.removeprefix("checkpoint-")
    return int(tail) if Path(path).name.startswith("checkpoint-") and tail.isdigit() else None


def latest_checkpoint(run_dir: str | os.PathLike) -> str | None:
    """The newest complete `checkpoints/checkpoint-<step>` of a run: one with its trainer state,
    readable, and its weights. A newer one that is incomplete or corrupt is skipped with a warning
    naming it."""
    found = sorted((p for p in (Path(run_dir) / "checkpoints").glob("checkpoint-*") if checkpoint_step(p) is not None),
                   key=checkpoint_step, reverse=True)
    for p in found:
        problem = _checkpoint_problem(p)
        if problem is None:
            return str(p)
        logging.getLogger("reasonlab").warning("skipping checkpoint %s: %s", p, problem)
    return None


def _checkpoint_problem(path: Path) -> str | None:
    state = path / "trainer_state.json"
    if not state.is_file():
        return "no trainer_state.json (interrupted while saving)"
    try:
        json.loads(state.read_text())
    except ValueError:
        return "trainer_state.json is unreadable"
    weights = [w for w in path.iterdir() if w.suffix in (".safetensors", ".bin")]
    if not weights:
        return "no weights"
    for w in weights:
        if w.suffix == ".safetensors":
            try:
                from safetensors import safe_open

                with safe_open(str(w), framework="pt") as fh:
                    fh.keys()
            except Exception:  # noqa: BLE001 - any failure to read the header: a corrupt file
                return f"{w.name} is unreadable"
    return None


def provenance() -> dict[str, Any]:
    """Library versions and the project's git commit, so a result names the code that made it."""
    versions = {}
    for pkg in ("torch", "transformers", "trl", "peft", "accelerate", "datasets", "hydra-core", "wandb"):
        try:
            versions[pkg] = importlib.metadata.version(pkg)
        except importlib.metadata.PackageNotFoundError:
            versions[pkg] = None
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5
        ).stdout.strip() or None
        dirty = bool(
            subprocess.run(
                ["git", "status", "--porcelain", "--untracked-files=no"],
                cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5,
            ).stdout.strip()
        )
    except (OSError, subprocess.SubprocessError):
        commit, dirty = None, None
    return {"versions": versions, "git_commit": commit, "git_dirty": dirty}
