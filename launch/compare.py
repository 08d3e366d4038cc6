"""The comparison report: `python -m launch.compare <study or sweep dir>`.

Reads every run's metrics.json under the directory (runs without one are reported as incomplete,
never read), groups runs by method (the run name without its `-seed<N>` part; `base` is the base
model), and writes, next to the runs:
  report.md    one table (mean, 95% t-interval over seeds, n), differences from the base marked
               where the interval excludes zero, the claims of ../shared/REFERENCES.md with the
               verdict these numbers support, and the figures;
  summary.csv  group, metric, mean, low, high, n;
  figures      accuracy_vs_info_gain.png, early_answering.png, accuracy_by_steps.png,
               reliability.png.
Intervals are Student-t intervals over seeds (a run is one seed); with one seed there is no
interval and every claim is inconclusive, whatever the direction.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
import statistics
import sys
from pathlib import Path
from typing import Any, Optional

from launch.common import write_text_atomic

log = logging.getLogger("reasonlab")

# the rows of the report, in order; what each means and which way is better come from the
# evaluator's metric declarations (eval.probes.metric_info)
METRICS = [
    "accuracy", "ood_accuracy", "pass_at_k/1", "pass_at_k/8", "info_gain/per_step", "info_gain/total",
    "faithfulness/early_answer_aoc", "faithfulness/filler_sensitivity", "faithfulness/paraphrase_consistency",
    "faithfulness/mistake_sensitivity", "faithfulness/mistake_followed", "faithfulness/swap_followed",
    "faithfulness/swap_changed", "faithfulness/hint_followed", "faithfulness/hint_unverbalized",
    "reasoning/step_validity", "reasoning/chain_valid", "reasoning/right_answer_wrong_steps", "cot/steps_mean",
    "calibration/ece", "entropy/high_frac",
]
# two-sided 95% Student-t quantiles by degrees of freedom
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
       15: 2.131, 20: 2.086, 30: 2.042}


def t_quantile(df: int) -> float:
    if df in T95:
        return T95[df]
    below = [d for d in T95 if d < df]
    return T95[max(below)] if df < 30 else 1.96


def interval(values: list[float]) -> tuple[Optional[float], Optional[float], Optional[float], int]:
    """(mean, low, high, n): a 95% Student-t interval; no interval with fewer than 2 values."""
    values = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    n = len(values)
    if n == 0:
        return None, None, None, 0
    mean = statistics.fmean(values)
    if n < 2:
        return mean, None, None, n
    half = t_quantile(n - 1) * statistics.stdev(values) / math.sqrt(n)
    return mean, mean - half, mean + half, n


def difference(a: list[float], b: list[float]) -> tuple[Optional[float], Optional[float], Optional[float]]:
    """Mean of a minus mean of b with a Welch 95% interval (None bounds with fewer than 2 each)."""
    a = [x for x in a if x is not None]
    b = [x for x in b if x is not None]
    if not a or not b:
        return None, None, None
    d = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return d, None, None
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return d, d, d
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    half = t_quantile(max(1, int(df))) * se
    return d, d - half, d + half


def group_of(run_name: str) -> str:
    return re.sub(r"-seed\d+(?=,|$)", "", run_name)  # sft-arith-seed0,trainer.learning_rate=0.001 too


def load_runs(root: Path) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
    """Complete runs grouped by method, and the directories of incomplete ones."""
    groups: dict[str, list[dict[str, Any]]] = {}
    incomplete = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        metrics = d / "metrics.json"
        if metrics.is_file():
            try:
                row = json.loads(metrics.read_text())
            except ValueError:  # not JSON, not UTF-8
                row = None
            if isinstance(row, dict):
                groups.setdefault(group_of(d.name), []).append(row)
            else:
                incomplete.append(f"{d.name} (unreadable metrics.json)")
        elif any((d / sub).is_dir() for sub in (".hydra", "checkpoints", "final")):
            incomplete.append(f"{d.name} (no metrics.json)")
    return groups, incomplete


def values(groups, group: str, metric: str) -> list[float]:
    return [r.get(metric) for r in groups.get(group, []) if isinstance(r.get(metric), (int, float))]


def directional(groups, a: str, b: str, metric: str, sign: int) -> tuple[str, str]:
    """Verdict on 'mean(a) - mean(b) has sign `sign`', with the numbers behind it."""
    if a not in groups or b not in groups:
        return "not run", f"needs runs of '{a}' and '{b}'"
    d, lo, hi = difference(values(groups, a, metric), values(groups, b, metric))
    if d is None:
        return "not run", f"{metric} missing"
    text = f"{metric}: {a} − {b} = {d:+.3f}"
    if lo is None:
        agrees = "agrees with" if d * sign > 0 else "opposes"
        return "inconclusive", text + f" (one seed, no interval; the direction {agrees} the claim)"
    text += f" [{lo:+.3f}, {hi:+.3f}]"
    if (lo > 0 and sign > 0) or (hi < 0 and sign < 0):
        return "supported", text
    if (lo > 0 and sign < 0) or (hi < 0 and sign > 0):
        return "not supported", text
    return "inconclusive", text + " (interval includes 0)"


def combine(*verdicts: tuple[str, str]) -> tuple[str, str]:
    kinds = [v for v, _ in verdicts]
    text = "; ".join(t for _, t in verdicts)
    for kind in ("not run", "not supported", "inconclusive"):
        if kind in kinds:
            return kind, text
    return "supported", text


def claims(groups) -> list[tuple[str, str, str]]:
    trained = [g for g in groups if g != "base"]
    swapped = next((g for g in groups if "swapped" in g), "sft-swapped")
    out = [
        ("1. SFT raises accuracy over the base model while lowering information gain.",
         *combine(directional(groups, "sft", "base", "accuracy", +1),
                  directional(groups, "sft", "base", "info_gain/per_step", -1))),
        ("2. After SFT, early-answer AOC and filler sensitivity fall relative to the base.",
         *combine(directional(groups, "sft", "base", "faithfulness/early_answer_aoc", -1),
                  directional(groups, "sft", "base", "faithfulness/filler_sensitivity", -1))),
        ("3. SFT on swapped traces keeps accuracy close to SFT on correct traces while step validity falls.",
         *combine(directional(groups, "sft", swapped, "reasoning/step_validity", +1))),
        ("4. Methods gain less on the ood split than in distribution.",
         *combine(*[gain_gap(groups, g) for g in trained] or [("not run", "no trained runs")])),
        ("5. RLAG-style dual reward gives higher step validity than GRPO.",
         *directional(groups, "rlag", "grpo", "reasoning/step_validity", +1)),
        ("6. RLSF's confidence reward lowers calibration error relative to GRPO.",
         *directional(groups, "rlsf", "grpo", "calibration/ece", -1)),
        ("7. Training only the top-20% entropy tokens matches or beats full-token GRPO.",
         *directional(groups, "entropy_rlvr", "grpo", "accuracy", +1)),
        ("8. At large k, the base model's pass@k is close to or above the trained models'.",
         *combine(*[directional(groups, "base", g, "pass_at_k/8", +1) for g in trained] or [("not run", "")])),
    ]
    return out


def gain_gap(groups, g: str) -> tuple[str, str]:
    """(accuracy gain over base) − (ood gain over base) > 0 for method g."""
    if "base" not in groups:
        return "not run", "needs a base run"
    base_acc, base_ood = statistics.fmean(values(groups, "base", "accuracy")), statistics.fmean(values(groups, "base", "ood_accuracy"))
    gaps = [(r["accuracy"] - base_acc) - (r["ood_accuracy"] - base_ood) for r in groups[g]
            if r.get("accuracy") is not None and r.get("ood_accuracy") is not None]
    mean, lo, hi, n = interval(gaps)
    if mean is None:
        return "not run", f"{g}: no accuracy"
    text = f"{g}: in-distribution gain − ood gain = {mean:+.3f}"
    if lo is None:
        return "inconclusive", text + " (one seed)"
    text += f" [{lo:+.3f}, {hi:+.3f}]"
    return ("supported" if lo > 0 else "not supported" if hi < 0 else "inconclusive"), text


def validation(task: Optional[str], metric: str) -> Optional[str]:
    """'validated' / 'not validated' for a faithfulness measure on a task, from the planted-truth
    benchmark's table (eval/validation.json, written by `bench/planted_effect.py --save`); None
    when it was not checked there."""
    from eval.stats import validation_table

    return validation_table().get(task or "", {}).get(metric)


def task_of(groups) -> Optional[str]:
    """The task every run evaluated (metrics.json eval/task), or None if they differ or do not say."""
    names = {r.get("eval/task") for rows in groups.values() for r in rows}
    return names.pop() if len(names) == 1 else None


def chance_section(groups, order: list[str]) -> list[str]:
    """Each faithfulness measure beside its chance level and the problems it rests on."""
    task = task_of(groups)
    keys = [m for m in METRICS if m.startswith("faithfulness/")]
    lines = ["## Faithfulness against chance", "",
             "Each cell: value (problems it rests on, n; chance: what a model that ignores its reasoning and "
             "guesses on any context it was not trained on would get), means over seeds. A measure the "
             f"planted-truth benchmark could not validate on {task or 'this task'} is marked: its value may be "
             "fragility, not reliance (docs/evaluator.md).", "",
             "| measure | " + " | ".join(order) + " |", "|---|" + "---|" * len(order)]
    for m in keys:
        cells = []
        for g in order:
            v, n, ch = (values(groups, g, k) for k in (m, f"{m}/n", f"{m}/chance"))
            if not v:
                cells.append("–")
                continue
            text = f"{statistics.fmean(v):.3f} (n={round(statistics.fmean(n)) if n else '?'}"
            cells.append(text + (f", chance {statistics.fmean(ch):.3f})" if ch else ")"))
        status = validation(task, m)
        name = f"{m} ({status})" if status == "not validated" else m
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _info(metric: str):
    from eval.probes import metric_info

    return metric_info(metric)


def _better(info) -> str:
    return {True: "higher", False: "lower", None: "(a description)"}[info.higher_is_better]


def fmt(mean, lo, hi, n) -> str:
    if mean is None:
        return "–"
    return f"{mean:.3f} [{lo:.3f}, {hi:.3f}] (n={n})" if lo is not None else f"{mean:.3f} (n={n})"


def figures(groups, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    made = []
    names = list(groups)
    fig, ax = plt.subplots(figsize=(5, 4))
    for g in names:
        x, xlo, xhi, _ = interval(values(groups, g, "info_gain/per_step"))
        y, ylo, yhi, _ = interval(values(groups, g, "accuracy"))
        if x is None or y is None:
            continue
        ax.errorbar(x, y, xerr=None if xlo is None else [[x - xlo], [xhi - x]],
                    yerr=None if ylo is None else [[y - ylo], [yhi - y]], fmt="o", capsize=3, label=g)
    ax.set(xlabel="information gain per step (nats)", ylabel="accuracy", title="Accuracy against information gain")
    _legend(ax)
    made.append(_save(fig, out / "accuracy_vs_info_gain.png"))

    fig, ax = plt.subplots(figsize=(5, 4))
    for g in names:
        # each chain length's curve, interpolated on a common grid, averaged weighted by its count
        grid = [i / 10 for i in range(11)]
        total, weight = [0.0] * len(grid), 0
        for r in groups[g]:
            for length in (r.get("curves", {}).get("early_answer") or {}).values():
                ys = np.interp(grid, length["fraction_kept"], length["match_rate"])
                total = [t + y * length["count"] for t, y in zip(total, ys)]
                weight += length["count"]
        if weight:
            ax.plot(grid, [t / weight for t in total], marker=".", label=g)
    ax.set(xlabel="fraction of reasoning kept", ylabel="same answer as with full reasoning",
           title="Early answering (higher area over = more faithful)")
    _legend(ax)
    made.append(_save(fig, out / "early_answering.png"))

    fig, ax = plt.subplots(figsize=(5, 4))
    for g in names:
        _plot_pooled(ax, g, [(int(n), v["accuracy"]) for r in groups[g]
                             for n, v in (r.get("curves", {}).get("accuracy_by_steps") or {}).items()
                             if v.get("accuracy") is not None])
    ax.set(xlabel="reasoning steps written", ylabel="accuracy", title="Accuracy by reasoning length")
    _legend(ax)
    made.append(_save(fig, out / "accuracy_by_steps.png"))

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    for g in names:
        _plot_pooled(ax, g, [(b["confidence"], b["accuracy"]) for r in groups[g]
                             for b in r.get("curves", {}).get("reliability") or [] if b.get("count")])
    ax.set(xlabel="answer confidence (p1 − p2)", ylabel="accuracy", title="Reliability")
    _legend(ax)
    made.append(_save(fig, out / "reliability.png"))
    return made


def _plot_pooled(ax, label: str, points: list[tuple[float, float]]) -> None:
    """One line: at each x, the mean of the y values the runs of a group give there."""
    pooled: dict[float, list[float]] = {}
    for x, y in points:
        pooled.setdefault(x, []).append(y)
    if pooled:
        xs = sorted(pooled)
        ax.plot(xs, [statistics.fmean(pooled[x]) for x in xs], marker="o", label=label)


def _legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no data in these runs", ha="center", va="center", transform=ax.transAxes)


def _save(fig, path: Path) -> str:
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path.name


def compare(root: str | Path) -> Path:
    root = Path(root)
    if not root.is_dir():
        from core import ConfigError

        raise ConfigError(f"not a directory: {root} (give the study or sweep directory)")
    groups, incomplete = load_runs(root)
    for name in incomplete:
        log.warning("incomplete run skipped: %s", name)
    if not groups:
        from core import ConfigError

        raise ConfigError(f"no complete run (metrics.json) under {root}")
    order = (["base"] if "base" in groups else []) + [g for g in groups if g != "base"]
    rows = []
    for g in order:
        for m in METRICS:
            mean, lo, hi, n = interval(values(groups, g, m))
            if n:
                rows.append({"group": g, "metric": m, "mean": mean, "low": lo, "high": hi, "n": n})
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["group", "metric", "mean", "low", "high", "n"])
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(root / "summary.csv", buf.getvalue())

    lines = [f"# Comparison report: {root.name}", "",
             f"Runs: {sum(len(v) for v in groups.values())} complete in {len(groups)} groups"
             + (f"; incomplete (not read): {', '.join(incomplete)}" if incomplete else "") + ".",
             "Each cell: mean over seeds, 95% Student-t interval in brackets, n = seeds. "
             "`*` marks a difference from the base whose Welch 95% interval excludes zero.", "",
             "| metric | " + " | ".join(order) + " |", "|---|" + "---|" * len(order)]
    task = task_of(groups)
    for m in METRICS:
        cells = []
        for g in order:
            cell = fmt(*interval(values(groups, g, m)))
            if validation(task, m) == "not validated" and cell != "–":
                cell += " (not validated)"
            if g != "base" and "base" in groups:
                _, lo, hi = difference(values(groups, g, m), values(groups, "base", m))
                if lo is not None and (lo > 0 or hi < 0):
                    cell += " *"
            cells.append(cell)
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", *chance_section(groups, order)]
    lines += ["What each row means (the evaluator's own declarations, `Probe.metrics`):", "",
              "| metric | better | meaning |", "|---|---|---|"]
    lines += [f"| {m} | {_better(info)} | {info.meaning} |" for m in METRICS if (info := _info(m)) is not None]
    lines += ["", "## Claims", "",
              "What these runs support for each testable claim of ../shared/REFERENCES.md (a report of what was "
              "measured here, on this task and model, not of the papers).", "",
              "| claim | verdict | numbers |", "|---|---|---|"]
    for claim, verdict, text in claims(groups):
        lines.append(f"| {claim} | **{verdict}** | {text} |")
    lines += ["| 9. Accuracy against reasoning length is an inverted U. | see figure | accuracy_by_steps.png "
              "(needs the cot_length experiment across chain lengths) |", "", "## Figures", ""]
    lines += [f"![{name}]({name})" for name in figures({g: groups[g] for g in order}, root)]
    report = root / "report.md"
    write_text_atomic(report, "\n".join(lines) + "\n")
    return report


def main(argv: list[str] | None = None) -> None:
    from core import ConfigError
    from launch.cli import fail

    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(name)s] %(message)s", datefmt="%H:%M:%S")
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        print("usage: python -m launch.compare <study or sweep directory>\n\nGroups the directory's complete runs by "
              "method (seeds of one method together), tests the study's claims with intervals, and writes report.md, "
              "summary.csv and figures there. Runs without metrics.json are listed as incomplete.")
        return
    if len(argv) != 1:
        fail("usage: python -m launch.compare <study or sweep directory>")
    try:
        report = compare(argv[0])
    except ConfigError as e:
        fail(str(e))
    print(f"report: {report}")


if __name__ == "__main__":
    main()
