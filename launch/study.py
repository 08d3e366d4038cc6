"""The default study: for each seed s, base seed s -> every method from it -> one table and the report.

    python -m reasonlab.study                      # what `make study` runs (one seed)
    python -m reasonlab.study seeds=3              # seeds 0, 1, 2: a base per seed (`make study SEEDS=3`)

Each run is a normal `launch.train` run (same config, same evaluator) composed with Hydra's
compose API and run in this process (a single base) or, with jobs > 1, as `launch.train`
subprocesses `jobs` at a time; its directory is `<output_root>/<name>`. Seed s of every method
starts from base seed s, so a comparison with the base pairs seeds as well as problems. A run whose
metrics.json already exists is reused (re-scored, not retrained, when another evaluator version
made it) and an interrupted one resumes from its last checkpoint (launch.train's resume=auto);
force=true retrains everything.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from reasonlab.core import ConfigError, RewardError, RunError, did_you_mean
from reasonlab.launch.cli import check_group_overrides, fail, precompose
from reasonlab.launch.common import CONF_DIR, write_json_atomic, write_text_atomic

log = logging.getLogger("reasonlab")


def run_overrides(study, name: str, extra: list[str], init_from: str | None, seed: int) -> list[str]:
    out = [*study.common, *extra, f"seed={seed}", f"output_root={study.output_root}", f"run_name={name}",
           f"logger.group={Path(study.output_root).name}",
           f"resume={'force_restart' if study.force else 'auto'}"]
    if init_from:
        out.append(f"model.init_from={init_from}")
    return [str(o) for o in out]


def run_one(study, name: str, overrides: list[str]) -> dict[str, Any]:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from reasonlab.launch.train import train

    check_group_overrides(overrides)
    precompose("config", overrides)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=overrides)
    log.info("== %s: %s", name, " ".join(overrides))
    return train(cfg)


def run_parallel(study, runs: list[tuple[str, list[str]]]) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """`study.jobs` runs at a time, each a `launch.train` subprocess with cores / jobs threads
    (bench/parallel_runs.py: two at a time is 1.44x faster than one after the other on 2 cores)."""
    import os
    import subprocess
    from concurrent.futures import ThreadPoolExecutor

    from reasonlab.launch.common import PROJECT_ROOT

    threads = max(1, (os.cpu_count() or 2) // study.jobs)
    logs = Path(study.output_root) / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    def one(name: str, overrides: list[str]):
        log.info("== %s (subprocess, %d thread%s): %s", name, threads, "s" * (threads > 1), " ".join(overrides))
        cmd = [sys.executable, "-m", "reasonlab.train", *overrides, "progress=false", "eval.progress=false"]
        with (logs / f"{name}.log").open("w") as fh:
            proc = subprocess.run(cmd, cwd=PROJECT_ROOT, stdout=fh, stderr=subprocess.STDOUT, text=True,
                                  env={**os.environ, "OMP_NUM_THREADS": str(threads)})
        metrics = Path(study.output_root) / name / "metrics.json"
        if proc.returncode or not metrics.is_file():
            lines = [ln for ln in (logs / f"{name}.log").read_text().splitlines()
                     if ln.strip() and not ln.startswith("Set the environment variable HYDRA_FULL_ERROR")]
            error = next((ln for ln in reversed(lines) if ln.startswith("error: ")), lines[-1] if lines else "no output")
            raise RunError(error.removeprefix("error: ") + f" (log: {logs / f'{name}.log'})")
        result = json.loads(metrics.read_text())
        log.info("%s: accuracy %.3f", name, result["accuracy"])
        return result

    done, failed = {}, {}
    with ThreadPoolExecutor(max_workers=study.jobs) as pool:
        futures = {name: pool.submit(one, name, overrides) for name, overrides in runs}
        for name, future in futures.items():
            try:
                done[name] = future.result()
            except RunError as e:
                failed[name] = str(e)
                log.error("%s failed: %s", name, e)
    return done, failed


def format_table(rows: dict[str, dict[str, Any]], columns: list[str]) -> str:
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}"
        return str(v)

    header = ["metric", *rows]
    body = [[c, *(cell(r.get(c)) for r in rows.values())] for c in columns]
    widths = [max(len(x) for x in col) for col in zip(header, *body)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, body)])


def group_means(rows: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per method, the mean over its seeds of every numeric metric (the report has the intervals)."""
    from reasonlab.launch.compare import group_of

    groups: dict[str, list[dict[str, Any]]] = {}
    for name, r in rows.items():
        groups.setdefault(group_of(name), []).append(r)  # the study's names: <name> or <name>-seed<N>
    return {
        g: {k: sum(r[k] for r in rs) / len(rs) for k in rs[0] if all(isinstance(r.get(k), (int, float)) for r in rs)}
        for g, rs in groups.items()
    }


def seed_list(study) -> list[int]:
    seeds = study.seeds
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ConfigError(f"seeds={seeds}: give a count of at least 1, or a list such as seeds=[0,1,2]")
        return list(range(seeds))
    try:
        out = [int(s) for s in seeds]
    except (TypeError, ValueError):
        raise ConfigError(f"seeds={seeds}: give a count (seeds=3) or a list of integers (seeds=[0,1,2])") from None
    if not out or len(set(out)) != len(out) or min(out) < 0:
        raise ConfigError(f"seeds={list(seeds)}: give distinct non-negative seeds, e.g. seeds=[0,1,2]")
    return out


def base_name(seeds: list[int], seed: int) -> str:
    return "base" if len(seeds) == 1 else f"base-seed{seed}"


def run_all(study, runs: list[tuple[str, list[str]]], rows, failed) -> None:
    if study.jobs > 1 and len(runs) > 1:
        done, bad = run_parallel(study, runs)
        rows.update({name: done[name] for name, _ in runs if name in done})
        failed.update(bad)
        return
    for name, overrides in runs:
        try:
            rows[name] = run_one(study, name, overrides)
        except (ConfigError, RunError, RewardError) as e:  # one failing run does not stop the others
            failed[name] = str(e)
            log.error("%s failed: %s", name, e)


def peak_memory_mb() -> float:
    """Peak resident memory of this process and of its largest finished child (MiB)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(max(own, child) / 1024, 1)


def run_study(study) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Run the base of each seed, then every method from it; return (metrics by run, error by failed run)."""
    from reasonlab.launch.common import quiet_libraries

    quiet_libraries()
    root = Path(study.output_root)
    t0 = time.perf_counter()
    seeds = seed_list(study)
    rows: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    bases = [(base_name(seeds, s), run_overrides(study, base_name(seeds, s), list(study.base), None, s)) for s in seeds]
    if len(bases) == 1:
        name, overrides = bases[0]
        rows[name] = run_one(study, name, overrides)
    else:
        run_all(study, bases, rows, failed)
    runs = []
    for seed in seeds:
        base = base_name(seeds, seed)
        if base not in rows:
            continue  # its methods cannot start; the failure is reported
        # Every method is read by the same fixed reader (its base) for information gain, and its
        # high-entropy share is counted against the base's 80th-percentile entropy.
        shared_eval = [f"eval.scorer={root / base}", f"eval.every_steps={study.evaluate_every}"]
        if rows[base].get("entropy/p80") is not None:
            shared_eval.append(f"eval.entropy_threshold={rows[base]['entropy/p80']}")
        for method, extra in study.methods.items():
            name = method if len(seeds) == 1 else f"{method}-seed{seed}"
            runs.append((name, run_overrides(study, name, [*shared_eval, *extra], str(root / base), seed)))
    run_all(study, runs, rows, failed)
    table = format_table(group_means(rows) if len(seeds) > 1 else rows, list(study.columns))
    seconds, memory = time.perf_counter() - t0, peak_memory_mb()
    write_text_atomic(root / "table.md", table + "\n")
    write_json_atomic(root / "summary.json", {"runs": rows, "failed": failed, "seeds": seeds,
                                              "wall_seconds": round(seconds, 1), "peak_memory_mb": memory})
    print(f"\nreasonlab study ({seconds:.0f}s, peak memory {memory:.0f} MiB, {len(seeds)} seed"
          f"{'s' * (len(seeds) > 1)}) -> {root}\n\n{table}\n")
    for name, error in failed.items():
        print(f"FAILED {name}: {error}")
    from reasonlab.launch.compare import compare

    report = compare(root, margin=float(study.margin))
    print(f"report (intervals over problems and seeds, claims, figures): {report} and {report.with_suffix('.html')}")
    if any(str(o) == "logger=wandb" for o in study.common):
        from reasonlab.launch.figures import log_report_to_wandb

        log_report_to_wandb(root, report)
    return rows, failed


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s] %(message)s", datefmt="%H:%M:%S")
    argv = sys.argv[1:] if argv is None else argv
    if any(a in ("-h", "--help") for a in argv):
        from reasonlab.launch.help import help_text

        print(help_text("study"))
        return
    study = OmegaConf.load(CONF_DIR / "study.yaml")
    try:
        over = OmegaConf.from_dotlist(argv)
    except Exception as e:  # noqa: BLE001
        fail(f"bad study override ({e.__class__.__name__}): {str(e).splitlines()[0]}")
    for key in over:
        if key not in study:
            fail(f"unknown study key '{key}'.{did_you_mean(str(key), study.keys())} Valid keys: {', '.join(study.keys())}")
    if "methods" in over:  # a given method list replaces the default one
        study.methods = over.pop("methods")
    study = OmegaConf.merge(study, over)
    try:
        _, failed = run_study(study)
    except (ConfigError, RunError, RewardError) as e:
        fail(str(e))
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
