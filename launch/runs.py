"""The runs of a folder, grouped by method, for `launch.compare`.

A run is a directory with a metrics.json (a study's `<root>/<name>/`, a sweep's
`<output_root>/<run_name>/`, a Hydra multirun's numbered folders). Its group is its method: the
run name without its seed and task parts (`sft-arith-seed0` -> `sft`), plus the options that make
a variant when the name does not already carry them (`trainer.target`, `trainer.top_entropy_quantile`,
`task.cue_rate`, `task.cue_accuracy`, `task.trace_noise`), read from the run's `.hydra/config.yaml`.
The base model is the group `base`, or every run of `--baseline DIR`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

# option -> the label it gets in a group name, when its value is not the trainer's or task's default
# (conf/trainer/<name>.yaml, conf/task/<name>.yaml)
VARIANTS = {"trainer.target": "", "trainer.top_entropy_quantile": "q", "task.cue_rate": "cue",
            "task.cue_accuracy": "cueacc", "task.trace_noise": "noise"}
BASE = "base"


@dataclass
class RunRecord:
    name: str
    path: Path
    group: str
    seed: int
    metrics: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)
    _samples: Optional[list[dict[str, Any]]] = None
    _per: dict[str, Any] = field(default_factory=dict)

    def samples(self) -> list[dict[str, Any]]:
        if self._samples is None:
            path, rows = self.path / "samples.jsonl", []
            if path.is_file():
                for line in path.read_text(errors="replace").splitlines():
                    try:
                        row = json.loads(line)
                    except ValueError:
                        continue
                    if isinstance(row, dict):
                        row["id"] = f"{row.get('id')}:{hashlib.sha1(str(row.get('prompt')).encode()).hexdigest()[:8]}"
                        rows.append(row)
            self._samples = rows
        return self._samples

    def per_problem(self, metric: str):
        """The metric over this run's problems (eval.outcomes.PerProblem), or None."""
        if metric not in self._per:
            from reasonlab.eval.outcomes import per_problem

            self._per[metric] = per_problem(self.samples(), metric) if self.samples() else None
        return self._per[metric]

    def history(self) -> list[dict[str, Any]]:
        path = self.path / "eval_history.jsonl"
        rows = []
        if path.is_file():
            for line in path.read_text(errors="replace").splitlines():
                try:
                    rows.append(json.loads(line))
                except ValueError:
                    continue
        return [r for r in rows if isinstance(r, dict) and isinstance(r.get("step"), (int, float))]

    def problems(self) -> frozenset:
        return frozenset(r["id"] for r in self.samples() if r.get("split", "test") == "test")


def _select(cfg: dict, dotted: str):
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _default(config: dict, key: str):
    """The value of trainer.X / task.X in the trainer's or task's own YAML, or None."""
    from omegaconf import OmegaConf

    from reasonlab.launch.common import CONF_DIR

    group, _, leaf = key.partition(".")
    path = CONF_DIR / group / f"{_select(config, f'{group}.name')}.yaml"
    if not path.is_file():
        return None
    return OmegaConf.to_container(OmegaConf.load(path)).get(leaf)


def group_of(name: str, config: Optional[dict] = None) -> str:
    """The method a run belongs to: its name without the seed (and task) parts; a run with the
    default name (<trainer>-<task>-seed<N>) also gets a label per variant option it changed."""
    group = re.sub(r"-seed\d+(?=,|-|$)", "", name)
    if group == BASE:
        return BASE
    if not config:
        return group
    trainer, task = _select(config, "trainer.name"), _select(config, "task.name")
    if not (trainer and task and group.startswith(f"{trainer}-{task}")):
        return group  # a name someone chose (a study's, an experiment's run_name) says what the run is
    group = group.replace(f"{trainer}-{task}", str(trainer), 1)
    for key, label in VARIANTS.items():
        value, default = _select(config, key), _default(config, key)
        if value is not None and default is not None and value != default and str(value) not in group:
            group += f"-{label}{value}"
    return group


def _config(path: Path) -> dict:
    for candidate in (path / ".hydra" / "config.yaml",):
        if candidate.is_file():
            try:
                from omegaconf import OmegaConf

                loaded = OmegaConf.to_container(OmegaConf.load(candidate), resolve=False)
                return loaded if isinstance(loaded, dict) else {}
            except Exception:  # noqa: BLE001 - an unreadable config only loses the variant labels
                return {}
    return {}


def _seed(name: str, config: dict) -> int:
    seed = config.get("seed")
    if isinstance(seed, int):
        return seed
    m = re.search(r"-seed(\d+)(?=,|-|$)", name)
    return int(m.group(1)) if m else 0


def _run_dirs(root: Path) -> list[Path]:
    """Run directories under root: its subfolders, and one more level for Hydra multirun folders
    (`multirun/<date>/<time>/<n>/`) and sweeps kept in subfolders."""
    found = []
    for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if (d / "metrics.json").exists() or any((d / s).is_dir() for s in (".hydra", "checkpoints", "final")):
            found.append(d)
        else:
            found.extend(sorted(p for p in d.iterdir() if p.is_dir() and (p / "metrics.json").exists()))
    return found


def load_run(d: Path, group: Optional[str] = None) -> tuple[Optional[RunRecord], Optional[str]]:
    """(the run, None) or (None, why it is not read)."""
    metrics = d / "metrics.json"
    if not metrics.is_file():
        return None, f"{d.name} (no metrics.json)"
    try:
        row = json.loads(metrics.read_text())
    except ValueError:  # not JSON, not UTF-8
        row = None
    if not isinstance(row, dict):
        return None, f"{d.name} (unreadable metrics.json)"
    config = _config(d)
    name = d.name if not d.name.isdigit() else str(config.get("run_name") or d.name)
    return RunRecord(name, d, group or group_of(name, config), _seed(name, config), row, config), None


def load_runs(root: Path, baseline: Optional[Path] = None) -> tuple[dict[str, list[RunRecord]], list[str]]:
    """Complete runs grouped by method (base first), and the runs that were not read."""
    groups: dict[str, list[RunRecord]] = {}
    incomplete = []
    for d in _run_dirs(root):
        run, why = load_run(d)
        if run is None:
            incomplete.append(why)
        elif baseline is None or run.group != BASE:
            groups.setdefault(run.group, []).append(run)
    if baseline is not None:
        base_dirs = [baseline] if (baseline / "metrics.json").exists() else [
            d for d in _run_dirs(baseline) if group_of(d.name, _config(d)) == BASE] or _run_dirs(baseline)
        for d in base_dirs:
            run, why = load_run(d, BASE)
            if run is None:
                incomplete.append(f"baseline {why}")
            else:
                groups.setdefault(BASE, []).append(run)
    for runs in groups.values():
        runs.sort(key=lambda r: r.seed)
    order = ([BASE] if BASE in groups else []) + [g for g in groups if g != BASE]
    return {g: groups[g] for g in order}, incomplete
