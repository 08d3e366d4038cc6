"""Run identity: a run directory remembers the settings that made it, so a rerun never reuses or
resumes another configuration's work.

`run.json` in a run directory records its settings: every leaf of the composed config that can
change its results. Left out are where outputs go and what they are called (`output_root`,
`run_name`, `run_dir`, `sweep_keys`), logging and progress (`logger.*`, `logging_steps`,
`progress`, `eval.progress`, `eval.table_rows`), and how the run is saved and resumed (`resume`,
`checkpoint.*`). On a rerun into the same directory (`launch.train`, resume=auto):

- the same settings: a complete run is reused, an interrupted one resumes;
- only evaluation settings differ (`eval.*`, `budget.eval_samples`): a complete run's final
  checkpoint is evaluated again (no retraining); an interrupted one resumes and is evaluated with
  the new settings;
- anything else differs: the run refuses, in one line naming the keys, before anything is
  written (another `run_name`, or `resume=force_restart` to replace the run).

A lock file (`.lock`: pid and host) keeps two live processes out of one directory; the lock of a
process that no longer runs is taken over with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any, Optional

from omegaconf import OmegaConf

from reasonlab.core import ConfigError
from reasonlab.launch.common import flatten, write_json_atomic, write_text_atomic

log = logging.getLogger("reasonlab")

IGNORED = ("output_root", "run_name", "run_dir", "sweep_keys", "logger", "logging_steps", "progress", "resume",
           "checkpoint", "hydra", "eval.progress", "eval.table_rows")
EVALUATION = ("eval", "budget.eval_samples")
RECORD = "run.json"


def _under(key: str, prefixes) -> bool:
    return any(key == p or key.startswith(p + ".") for p in prefixes)


def settings(cfg) -> dict[str, Any]:
    """The run's result-changing settings, flattened to dotted keys."""
    return {k: v for k, v in sorted(flatten(cfg).items()) if not _under(k, IGNORED)}


def fingerprint(values: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:16]


def recorded(run_dir: Path) -> Optional[dict[str, Any]]:
    path = Path(run_dir) / RECORD
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())["settings"]
    except (ValueError, KeyError, TypeError):
        raise ConfigError(f"{path} is not a run record (unreadable JSON); delete it, or use resume=force_restart "
                          "to replace the run") from None


def differing(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [k for k in sorted(set(old) | set(new)) if old.get(k, "<unset>") != new.get(k, "<unset>")]


def compare(cfg, run_dir: Path) -> list[str]:
    """The evaluation keys whose values differ from the run directory's record ([] when it has no
    record, or the same settings); raises ConfigError when any other setting differs."""
    old = recorded(run_dir)
    if old is None:
        return []
    new = settings(cfg)
    keys = differing(old, new)
    training = [k for k in keys if not _under(k, EVALUATION)]
    if training:
        shown = "; ".join(f"{k}: {old.get(k, '<unset>')} -> {new.get(k, '<unset>')}" for k in training[:4])
        more = f" (and {len(training) - 4} more)" if len(training) > 4 else ""
        raise ConfigError(f"{run_dir} holds a run made with other settings ({shown}{more}); give this run another "
                          f"run_name=..., or resume=force_restart to replace that run")
    return keys


def record(cfg, run_dir: Path) -> None:
    """Write run.json and the composed config (.hydra/config.yaml) for the settings this run uses."""
    values = settings(cfg)
    write_json_atomic(Path(run_dir) / RECORD, {"fingerprint": fingerprint(values), "settings": values})
    write_text_atomic(Path(run_dir) / ".hydra" / "config.yaml", OmegaConf.to_yaml(cfg, resolve=True))


class RunLock:
    """`with RunLock(run_dir):` one live process per run directory (the main process of a
    multi-process launch; the other ranks do not lock)."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / ".lock"
        self.held = False

    def __enter__(self):
        if int(os.environ.get("RANK", "0")) != 0:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mine = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(mine)
            self.held = True
            return self
        raise ConfigError(f"cannot lock {self.path}; delete it if no run is using {self.path.parent}")

    def _take_over_if_stale(self) -> None:
        try:
            owner = json.loads(self.path.read_text())
            pid, host = int(owner["pid"]), owner["host"]
        except (OSError, ValueError, KeyError, TypeError):
            pid, host = None, None
        if pid is not None and host == socket.gethostname() and _alive(pid) and pid != os.getpid():
            raise ConfigError(f"another process (pid {pid}) is running in {self.path.parent}; wait for it to end, or "
                              "give this run another run_name=...")
        if pid is not None and host != socket.gethostname():
            raise ConfigError(f"{self.path.parent} is locked by pid {pid} on host {host}; if that run is over, delete "
                              f"{self.path}")
        log.warning("%s: taking over the lock of a process that no longer runs (pid %s)", self.path.parent, pid)
        self.path.unlink(missing_ok=True)

    def __exit__(self, *exc):
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
