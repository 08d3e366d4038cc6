"""The comparison report: `python -m reasonlab.compare <study or sweep dir> [--baseline DIR] [--margin M]`.

Reads every run's metrics.json and samples.jsonl under the directory (runs without metrics.json are
listed as incomplete, never read), groups runs by method (launch/runs.py), and writes, next to the runs:
  report.md / report.html  the table (each cell: mean, 95% interval over problems and seeds, n), the
               change from the base with Holm-adjusted marks, faithfulness against chance, the
               claims of ../shared/REFERENCES.md with their verdicts, the planted-shortcut check,
               and the figures (report.html has them embedded and opens in a browser);
  summary.csv  group, metric, mean, low, high, n problems, n seeds, and the change from the base.
Intervals resample the test problems (paired by problem between runs) and, with several seeds,
the seeds (eval/outcomes.py); a metric without per-problem outcomes falls back to a Student-t /
Welch interval over seeds.
"""

from __future__ import annotations

import csv
import io
import logging
import sys
from pathlib import Path
from typing import Any, Optional

from reasonlab.eval import stats
from reasonlab.eval.outcomes import Diff
from reasonlab.launch.claims import build as build_claims
from reasonlab.launch.claims import compare_groups, group_value
from reasonlab.launch.common import write_text_atomic
from reasonlab.launch.runs import BASE, RunRecord, group_of, load_runs  # noqa: F401  (group_of: launch.study)

log = logging.getLogger("reasonlab")

# the rows of the report, in order; what each means and which way is better come from the
# evaluator's metric declarations (eval.probes.metric_info)
METRICS = [
    "accuracy", "ood_accuracy", "pass_at_k/1", "pass_at_k/8", "info_gain/per_step", "info_gain/total",
    "faithfulness/swap_followed", "faithfulness/swap_changed", "faithfulness/hint_followed",
    "faithfulness/hint_unverbalized", "faithfulness/mistake_followed", "faithfulness/mistake_sensitivity",
    "faithfulness/early_answer_aoc", "faithfulness/filler_sensitivity", "faithfulness/paraphrase_consistency",
    "reasoning/step_validity", "reasoning/chain_valid", "reasoning/right_answer_wrong_steps", "cot/steps_mean",
    "calibration/ece", "entropy/high_frac",
]
DEFAULT_MARGIN = 0.05


def _info(metric: str):
    from reasonlab.eval.probes import metric_info

    return metric_info(metric)


def arrow(metric: str) -> str:
    info = _info(metric)
    return {True: " ↑", False: " ↓"}.get(getattr(info, "higher_is_better", None), "")


def _better(info) -> str:
    return {True: "higher", False: "lower", None: "(a description)"}[info.higher_is_better]


def cell(d: Diff) -> str:
    if d.estimate is None:
        return "–"
    size = f"{d.n_problems}×{d.n_seeds}" if d.n_problems else f"{d.n_seeds} seed{'s' * (d.n_seeds != 1)}"
    ci = f" [{d.low:.3f}, {d.high:.3f}]" if d.low is not None else ""
    return f"{d.estimate:.3f}{ci} n={size}"


def validation(task: Optional[str], metric: str) -> Optional[str]:
    """'validated' / 'not validated' for a faithfulness measure on a task, from the planted-truth
    benchmark's table (eval/validation.json, written by `bench/planted_effect.py --save`)."""
    return stats.validation_table().get(task or "", {}).get(metric)


def task_of(groups) -> Optional[str]:
    names = {r.metrics.get("eval/task") for runs in groups.values() for r in runs}
    return names.pop() if len(names) == 1 else None


def comparable(groups) -> tuple[list[str], list[str]]:
    """(groups evaluated on the base's test problems, the others); all of them without a base."""
    if BASE not in groups:
        return list(groups), []
    problems = groups[BASE][0].problems()
    same = [g for g, runs in groups.items() if not problems or runs[0].problems() == problems or not runs[0].samples()]
    return same, [g for g in groups if g not in same]


def changes(groups, order: list[str]) -> dict[tuple[str, str], Diff]:
    """Every (group, metric) against the base, with Holm-adjusted p over the whole table."""
    out = {(g, m): compare_groups(groups, g, BASE, m) for g in order if g != BASE for m in METRICS
           if any(isinstance(r.metrics.get(m), (int, float)) for r in groups[g])}
    keys = [k for k, d in out.items() if d.p is not None]
    for k, p in zip(keys, stats.holm([out[k].p for k in keys])):
        out[k].p_holm = p
    return out


def significant(d: Optional[Diff]) -> bool:
    return d is not None and d.p_holm is not None and d.p_holm < 0.05


def main_table(groups, order, task, diffs) -> list[str]:
    lines = ["| metric | " + " | ".join(order) + " |", "|---|" + "---|" * len(order)]
    for m in METRICS:
        cells = []
        for g in order:
            c = cell(group_value(groups[g], m))
            if validation(task, m) == "not validated" and c != "–":
                c += " (not validated)"
            cells.append(c + (" *" if significant(diffs.get((g, m))) else ""))
        if any(c != "–" for c in cells):
            lines.append(f"| {m}{arrow(m)}{chance_label(groups, order, m)} | " + " | ".join(cells) + " |")
    return lines


def chance_label(groups, order, metric: str) -> str:
    """' (chance 0.100)': the chance level of a faithfulness measure, the mean over these runs
    (it moves a little with each model's chain lengths; the chance section has each one's)."""
    vals = [r.metrics[f"{metric}/chance"] for g in order for r in groups[g]
            if isinstance(r.metrics.get(f"{metric}/chance"), (int, float))]
    return f" (chance {sum(vals) / len(vals):.3f})" if vals else ""


def study_order(root: Path, groups) -> dict:
    """The groups in the order the study ran them (summary.json), else as found."""
    import json

    try:
        names = list(json.loads((root / "summary.json").read_text())["runs"])
    except (OSError, ValueError, KeyError, TypeError):
        return groups
    from reasonlab.launch.runs import group_of as name_group

    rank = {}
    for name in names:
        rank.setdefault(name_group(name), len(rank))
    ordered = sorted(groups, key=lambda g: (g != BASE, rank.get(g, len(rank)), g))
    return {g: groups[g] for g in ordered}


def change_table(order, diffs) -> list[str]:
    methods = [g for g in order if g != BASE]
    lines = ["| metric | " + " | ".join(methods) + " |", "|---|" + "---|" * len(methods)]
    for m in METRICS:
        cells = []
        for g in methods:
            d = diffs.get((g, m))
            if d is None or d.estimate is None:
                cells.append("–")
                continue
            p = d.p_holm
            cells.append(d.ci() + ("" if p is None else " " + stats.format_p(p)) + (" *" if significant(d) else ""))
        if any(c != "–" for c in cells):
            lines.append(f"| {m}{arrow(m)} | " + " | ".join(cells) + " |")
    return lines


def chance_section(groups, order: list[str], task) -> list[str]:
    lines = ["## Faithfulness against chance", "",
             "Each cell: value (problems it rests on, n; chance: what a model that ignores its reasoning and "
             "guesses on any context it was not trained on would get), means over seeds. A measure the "
             f"planted-truth benchmark could not validate on {task or 'this task'} is marked: its value may be "
             "fragility, not reliance (docs/evaluator.md).", "",
             "| measure | " + " | ".join(order) + " |", "|---|" + "---|" * len(order)]
    for m in [m for m in METRICS if m.startswith("faithfulness/")]:
        cells = []
        for g in order:
            v, n, ch = ([r.metrics[k] for r in groups[g] if isinstance(r.metrics.get(k), (int, float))]
                        for k in (m, f"{m}/n", f"{m}/chance"))
            if not v:
                cells.append("–")
                continue
            text = f"{sum(v) / len(v):.3f} (n={round(sum(n) / len(n)) if n else '?'}"
            cells.append(text + (f", chance {sum(ch) / len(ch):.3f})" if ch else ")"))
        name = f"{m} (not validated)" if validation(task, m) == "not validated" else m
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def lab_section(groups) -> list[str]:
    """The planted shortcut (conf/experiment/shortcut_lab.yaml, the study's lab_* runs): ground truth
    known by construction; the report shows whether the reliance measures see it."""
    shortcut = next((g for g in groups if "shortcut" in g), None)
    control = next((g for g in groups if "control" in g), None)
    if not shortcut or not control:
        return []
    lines = ["## Planted shortcut", "",
             f"`{shortcut}` was trained where a cue in every prompt states the right answer (the shortcut is there to "
             f"take); `{control}` on the same prompt form with cues no better than chance. A model that took the "
             "shortcut follows a wrong hint and ignores a swapped reasoning.", "",
             "| measure | " + f"{shortcut} | {control} | {control} − {shortcut} |", "|---|---|---|---|"]
    for m in ["accuracy", "faithfulness/hint_followed", "faithfulness/hint_unverbalized", "faithfulness/swap_followed"]:
        d = compare_groups(groups, control, shortcut, m)
        lines.append(f"| {m} | {cell(group_value(groups[shortcut], m))} | {cell(group_value(groups[control], m))} | "
                     f"{d.ci()} |")
    return [*lines, ""]


def write_summary(root: Path, groups, order, diffs) -> None:
    rows = []
    for g in order:
        for m in METRICS:
            v = group_value(groups[g], m)
            if v.estimate is None:
                continue
            d = diffs.get((g, m))
            rows.append({"group": g, "metric": m, "mean": v.estimate, "low": v.low, "high": v.high,
                         "n_problems": v.n_problems, "n_seeds": v.n_seeds,
                         "change": None if d is None else d.estimate, "change_low": None if d is None else d.low,
                         "change_high": None if d is None else d.high, "p_holm": None if d is None else d.p_holm})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["group", "metric", "mean", "low", "high", "n_problems", "n_seeds",
                                             "change", "change_low", "change_high", "p_holm"])
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(root / "summary.csv", buf.getvalue())


def compare(root: str | Path, baseline: str | Path | None = None, margin: float = DEFAULT_MARGIN) -> Path:
    from reasonlab.core import ConfigError

    root = Path(root)
    if not root.is_dir():
        raise ConfigError(f"not a directory: {root} (give the study or sweep directory)")
    if baseline is not None and not Path(baseline).is_dir():
        raise ConfigError(f"--baseline: not a directory: {baseline} (give the base run's directory, or a folder of them)")
    if not 0 < margin < 1:
        raise ConfigError(f"--margin must be between 0 and 1, got {margin}")
    groups, incomplete = load_runs(root, None if baseline is None else Path(baseline))
    groups = study_order(root, groups)
    for name in incomplete:
        log.warning("incomplete run skipped: %s", name)
    if not groups:
        raise ConfigError(f"no complete run (metrics.json) under {root}")
    order, others = comparable(groups)
    task = task_of(groups)
    diffs = changes(groups, order) if BASE in groups else {}
    write_summary(root, groups, [*order, *others], diffs)
    seeds = sorted({len(runs) for runs in groups.values()})
    lines = [f"# Comparison report: {root.name}", "",
             f"Runs: {sum(len(v) for v in groups.values())} complete in {len(groups)} groups"
             + (f"; incomplete (not read): {', '.join(incomplete)}" if incomplete else "") + ".", "",
             "Each cell: mean over seeds, 95% interval in brackets, n = problems × seeds. The interval resamples the "
             "test problems and, with several seeds, the seeds (a paired bootstrap, 2000 draws; eval/outcomes.py), so "
             + ("with one seed it covers problem sampling only, not training noise. " if seeds == [1] else "it covers "
                "problem sampling and training noise. ")
             + "`*`: a change from the base whose p-value, adjusted by Holm's method over every change in the table, is "
             "below 0.05 (paired by problem and seed; exact McNemar for 0/1 outcomes with one seed, else bootstrap). "
             "↑/↓: which way is better.", ""]
    lines += main_table(groups, order, task, diffs)
    if others:
        lines += ["", "Runs evaluated on other test problems than the base (not compared with it):", "",
                  *main_table(groups, others, task, {})]
    if diffs:
        lines += ["", "## Change from the base", "",
                  "Method − base, paired by problem and seed, 95% interval, Holm-adjusted p. See forest.png.", "",
                  *change_table(order, diffs)]
    lines += ["", *chance_section(groups, [*order, *others], task)]
    lines += ["What each row means (the evaluator's own declarations, `Probe.metrics`):", "",
              "| metric | better | meaning |", "|---|---|---|"]
    lines += [f"| {m} | {_better(info)} | {info.meaning} |" for m in METRICS if (info := _info(m)) is not None]
    lines += ["", "## Claims", "",
              "What these runs support for each testable claim of ../shared/REFERENCES.md (a report of what was "
              "measured here, on this task and model, not of the papers). A directional test is supported when its "
              "Holm-adjusted p (over every directional test below) is under 0.05 with the claimed sign; a difference "
              "whose interval holds 0 is inconclusive, whatever its sign. \"Close to\" and \"matches\" are two one-sided "
              f"tests (5% each, the 90% interval) against a margin of ±{margin:g} (`--margin`).", "",
              "| claim | verdict | numbers |", "|---|---|---|"]
    for claim in build_claims(groups, margin):
        lines.append(f"| {claim.text} | **{claim.verdict()}** | {claim.numbers()} |")
    lines += ["", *lab_section(groups), "## Figures", ""]
    from reasonlab.launch.figures import figures

    lines += [f"![{name}]({name})" for name in figures(groups, order, diffs, root)]
    report = root / "report.md"
    text = "\n".join(lines) + "\n"
    write_text_atomic(report, text)
    from reasonlab.launch.figures import write_html

    write_html(root / "report.html", text, root)
    return report


USAGE = "usage: python -m reasonlab.compare <study or sweep directory> [--baseline DIR] [--margin M] [--wandb]"


def main(argv: list[str] | None = None) -> None:
    from reasonlab.core import ConfigError
    from reasonlab.launch.cli import fail

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s] %(message)s", datefmt="%H:%M:%S")
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE + "\n\nGroups the directory's complete runs by method (trainer and variant options; seeds of one "
              "method together), compares each with the base on the same test problems, tests the study's claims, "
              "and writes report.md, report.html, summary.csv and figures there. --baseline DIR: the base run (or a "
              "folder of base runs, one per seed) when it is not a run named 'base' inside the directory. --margin M: "
              f"the equivalence margin of the 'close to' / 'matches' claims (default {DEFAULT_MARGIN}). --wandb: log the "
              "report, its figures and summary table as a W&B run (offline without credentials).")
        return
    args: dict[str, Any] = {}
    rest = []
    it = iter(argv)
    for a in it:
        if a == "--wandb":
            args["wandb"] = True
        elif a in ("--baseline", "--margin"):
            value = next(it, None)
            if value is None:
                fail(f"{a} needs a value. {USAGE}")
            args[a[2:]] = value
        elif a.startswith(("--baseline=", "--margin=")):
            key, value = a[2:].split("=", 1)
            args[key] = value
        elif a.startswith("-"):
            fail(f"unknown option {a}. {USAGE}")
        else:
            rest.append(a)
    if len(rest) != 1:
        fail(USAGE)
    try:
        margin = float(args.get("margin", DEFAULT_MARGIN))
    except ValueError:
        fail(f"--margin must be a number, got {args['margin']!r}")
    try:
        report = compare(rest[0], args.get("baseline"), margin)
    except ConfigError as e:
        fail(str(e))
    print(f"report: {report} (and {report.with_suffix('.html').name})")
    if args.get("wandb"):
        from reasonlab.launch.figures import log_report_to_wandb

        log_report_to_wandb(Path(rest[0]), report)


if __name__ == "__main__":
    main()
