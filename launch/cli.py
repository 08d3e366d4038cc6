"""Hydra entry points that report a user's mistake as one clear line, never a traceback.

Before Hydra runs, the command-line overrides are checked: an unknown option of a config group
(`trainer=sftt`) gets the list of valid ones and a did-you-mean; then the config is composed once
with Hydra's compose API so a wrong type or a misspelled key fails here, in one line (and an
output directory that cannot be written). The values are checked when the run starts
(launch.schema.validate). During the run, `ConfigError` (raised by the checks, tasks, models,
trainers) is printed the same way. Set
HYDRA_FULL_ERROR=1 to see full tracebacks.
"""

from __future__ import annotations

import os
from pathlib import Path
import re
import sys
from typing import Callable

from reasonlab.core import ConfigError, RewardError, RunError, did_you_mean
from reasonlab.launch.common import CONF_DIR, group_defaults, group_options


def fail(message: str, code: int = 2) -> None:
    print(f"error: {message}", file=sys.stderr)
    sys.exit(code)


def check_group_overrides(overrides: list[str]) -> None:
    for item in overrides:
        if "=" not in item or item.startswith(("hydra", "+", "~")):
            continue
        key, value = item.split("=", 1)
        group = key.lstrip("+")
        if not (CONF_DIR / group).is_dir() or "." in group:
            continue
        options = group_options(group)
        choices = re.sub(r"^(choice|range)\((.*)\)$", r"\2", value).split(",")
        for choice in (c.strip() for c in choices):
            if choice and choice != "null" and choice not in options:
                fail(f"unknown {group} '{choice}'.{did_you_mean(choice, options)} Valid {group}s: {', '.join(options)}")


def _trainer_key(override: str) -> str | None:
    key = override.split("=", 1)[0].lstrip("+~")
    return key.split(".", 1)[1] if key.startswith("trainer.") and key.count(".") == 1 else None


def trl_overrides(overrides: list[str]) -> list[str]:
    """`trainer.<TRL field>=v` for a field no conf/trainer/*.yaml has (`trainer.use_vllm=true`)
    becomes `++trainer.<field>=v`, so TRL's names need no `+` (trainers/options.py); a field
    reasonlab sets from its own settings (`trainer.per_device_train_batch_size`) fails here,
    naming that setting."""
    keys = [_trainer_key(o) for o in overrides if "=" in o]
    if not any(keys):
        return overrides
    from reasonlab.trainers.options import all_field_names, owned_message

    for key in filter(None, keys):
        if (message := owned_message(key)) is not None:
            fail(message)
    ours = {k for name in group_options("trainer") for k in group_defaults("trainer", name)}
    trl = all_field_names()
    return [f"++{o}" if "=" in o and not o.startswith(("+", "~")) and (k := _trainer_key(o)) and k not in ours
            and k in trl else o for o in overrides]


def _one_line(exc: BaseException) -> str:
    text = str(exc)
    if exc.__cause__ is not None and str(exc.__cause__):
        text = f"{text}\n{exc.__cause__}"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(("object_type", "Set the env"))]
    return "; ".join(dict.fromkeys(lines))


def _is_sweep(override: str) -> bool:
    """`key=a,b` sweeps; `key=[a,b]` (a list value) does not."""
    value = override.split("=", 1)[1]
    return "," in value and not value.strip().startswith(("[", "{", "'", '"'))


def precompose(config_name: str, overrides: list[str]) -> None:
    """Compose once with the given overrides; turn any composition error into one line."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from reasonlab.launch.schema import check_output_dir, register

    register()
    if any(_is_sweep(o) or o.startswith("hydra") for o in overrides if "=" in o):
        return  # sweeps and hydra's own keys: Hydra checks those itself
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=overrides)
            OmegaConf.to_container(cfg, resolve=True)
        if config_name == "evaluate":  # no model, no output directory named after it ("None/eval-arith")
            from reasonlab.launch.schema import EvaluateConfig

            EvaluateConfig.check(cfg)
        else:
            check_output_dir(cfg)  # before Hydra creates it
    except Exception as e:  # noqa: BLE001 - every composition error becomes one line
        msg = _one_line(e)
        m = re.search(r"Key '([^']+)' is not in struct.*?full_key: ([\w.]+)", str(e), re.S) or re.search(
            r"Could not override '([\w.]+)'", str(e)
        )
        if m:
            full_key = m.groups()[-1]
            parent, _, leaf = full_key.rpartition(".")
            try:
                rest = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != full_key]
                with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
                    base = compose(config_name=config_name, overrides=rest)
                node = OmegaConf.select(base, parent) if parent else base
                keys = [k for k in node.keys() if k != leaf] if node is not None else []
                if parent == "trainer":  # TRL's own names are trainer options too
                    from reasonlab.trainers.options import config_class, field_names

                    keys += sorted(field_names(config_class(node)))
                hint = did_you_mean(leaf, keys)
            except Exception:  # noqa: BLE001
                hint = ""
            where = (" (trainer options: conf/trainer/<name>.yaml's and the fields of TRL's config class, by TRL's "
                     "name)" if parent == "trainer" else " (prefix with + to add a new key)")
            msg = f"unknown config key '{full_key}'.{hint}{where}"
        fail(msg)
    finally:
        GlobalHydra.instance().clear()


def swept_keys(config_name: str, overrides: list[str]) -> list[str]:
    """The keys a multirun varies: its command line's `key=a,b` overrides and the experiment's
    `hydra.sweeper.params`."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    given = [o for o in overrides if "=" in o and not o.startswith("hydra")]
    keys = [o.split("=", 1)[0].lstrip("+~") for o in given if _is_sweep(o)]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose(config_name=config_name, overrides=[o for o in given if not _is_sweep(o)],
                          return_hydra_config=True)
        keys += [k for k, v in (cfg.hydra.sweeper.get("params") or {}).items() if "," in str(v)]
    except Exception:  # noqa: BLE001 - Hydra reports a bad override itself
        pass
    finally:
        GlobalHydra.instance().clear()
    return list(dict.fromkeys(keys))


# Hydra's flags that take a value (`--cfg job`, `-c job`): that value is not an override
HYDRA_VALUE_FLAGS = ("--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
                     "--config-dir", "-cd", "--experimental-rerun")


def overrides_of(argv: list[str]) -> list[str]:
    """The key=value overrides of a command line, without Hydra's flags and their values."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in HYDRA_VALUE_FLAGS:
            skip = True
        elif not a.startswith("-"):
            out.append(a)
    return out


def run_hydra_app(task_fn: Callable, config_name: str) -> None:
    """Run `task_fn(cfg)` as a Hydra app with one-line errors for anything the user can fix."""
    import hydra

    from reasonlab.launch.schema import register

    register()
    argv = sys.argv[1:]
    if any(a in ("-h", "--help") for a in argv):
        from reasonlab.launch.help import help_text

        print(help_text(config_name))
        sys.exit(0)
    overrides = overrides_of(argv)
    rewritten = trl_overrides(overrides)
    if rewritten != overrides:  # what Hydra parses
        sys.argv = [sys.argv[0], *(dict(zip(overrides, rewritten)).get(a, a) for a in argv)]
        argv, overrides = sys.argv[1:], rewritten
    full = os.environ.get("HYDRA_FULL_ERROR") == "1"
    if not full:
        check_group_overrides(overrides)
        if not any(a.split("=")[0] in ("-m", "--multirun", *HYDRA_VALUE_FLAGS, "--info", "-i") for a in argv):
            precompose(config_name, overrides)  # (--cfg job, --info: Hydra prints what it composes)

    multirun = "-m" in argv or "--multirun" in argv
    if multirun and config_name == "config" and not any(o.startswith("sweep_keys=") for o in overrides):
        keys = swept_keys(config_name, overrides)
        if keys:  # every job names its directory after the values it sweeps
            sys.argv.append(f"sweep_keys=[{','.join(keys)}]")
    # A sweep's jobs may run in other processes (submitit's local and SLURM executors), where a
    # failure is only printed to the job's own log and submitit reports success: each failing job
    # writes one line into a folder this process reads when the sweep ends.
    failures_dir = None
    if multirun:
        import tempfile

        failures_dir = Path(os.environ.get(FAILURES_ENV) or tempfile.mkdtemp(prefix=".reasonlab-sweep-", dir=Path.cwd()))
        os.environ[FAILURES_ENV] = str(failures_dir)

    @hydra.main(config_path=str(CONF_DIR), config_name=config_name, version_base="1.3")
    def entry(cfg):
        try:
            return task_fn(cfg)
        except (ConfigError, RunError, RewardError) as e:
            if full:
                raise
            if not multirun:
                fail(str(e))
            why = str(e)
        except Exception as e:  # noqa: BLE001 - in a sweep, one crashing run does not stop the others
            if full or not multirun:
                raise
            why = f"{e.__class__.__name__}: {str(e).splitlines()[0] if str(e) else ''} (unexpected; see the job's log)"
        line = f"{cfg.get('run_name', '?')}: {why}"
        print(f"error: {line}", file=sys.stderr)
        record_failure(Path(os.environ.get(FAILURES_ENV, failures_dir or ".")), line)
        return None

    try:
        entry()
    except KeyboardInterrupt:
        if full:
            raise
        fail("interrupted (Ctrl-C) before a checkpoint was saved; rerun the same command to resume from the latest "
             "checkpoint, if any", code=130)
    finally:
        failures = read_failures(failures_dir) if failures_dir is not None else []
    if failures:
        print(f"error: {len(failures)} run(s) of the sweep failed:", file=sys.stderr)
        for line in failures:
            print(f"  {line}", file=sys.stderr)
        sys.exit(1)


FAILURES_ENV = "REASONLAB_SWEEP_FAILURES"


def record_failure(folder: Path, line: str) -> None:
    import uuid

    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{uuid.uuid4().hex}.txt").write_text(line + "\n")


def read_failures(folder: Path) -> list[str]:
    """The failures the sweep's jobs recorded, then the folder removed."""
    import shutil

    lines = sorted(p.read_text().strip() for p in folder.glob("*.txt")) if folder.is_dir() else []
    shutil.rmtree(folder, ignore_errors=True)
    return lines
