"""The report's figures, and report.html with them embedded.

  forest.png                change from the base with 95% intervals, one panel per metric family
  accuracy_vs_reliance.png  accuracy against swap_followed (or AOC), an arrow from the base to each method
  training_curves.png       accuracy and reasoning measures over training (eval_history.jsonl + the final one)
  reliability.png           accuracy against the answer's probability, 10 bins, counts per bin
  pass_at_k.png             pass@k against k
  early_answering.png       answer kept against share of reasoning kept (most common chain length), 95% bands, chance
  accuracy_by_steps.png     accuracy by reasoning steps written, 95% intervals, n per point
"""

from __future__ import annotations

import base64
import re
from pathlib import Path

from reasonlab.eval.stats import proportion_interval
from reasonlab.launch.runs import BASE

FAMILIES = {
    "answers": ["accuracy", "ood_accuracy", "pass_at_k/1", "pass_at_k/8"],
    "reliance on the reasoning": ["faithfulness/swap_followed", "faithfulness/hint_followed",
                                  "faithfulness/mistake_followed", "faithfulness/early_answer_aoc",
                                  "faithfulness/filler_sensitivity"],
    "reasoning": ["reasoning/step_validity", "reasoning/chain_valid", "info_gain/positive_step_frac"],
    "calibration": ["calibration/ece"],
}
CURVES = ["accuracy", "faithfulness/swap_followed", "reasoning/step_validity", "faithfulness/mistake_followed"]


def figures(groups, order: list[str], diffs, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    made = []
    if diffs:
        made.append(_forest(order, diffs, out))
        made.append(_reliance(groups, order, out))
    # the runs on the base's test problems; runs on other problems (chain lengths, the lab) have their own
    made.append(_training(groups, order, out))
    made.append(_reliability(groups, order, out))
    made.append(_pass_at_k(groups, order, out))
    made.append(_early(groups, order, out))
    made.append(_by_steps(groups, order, out))
    lengths = sorted((int(m.group(1)), g) for g in groups if (m := re.search(r"len(\d+)", g)))
    if lengths:
        made.append(_by_length(groups, lengths, out))
    return made


def _by_length(groups, lengths, out: Path) -> str:
    """Claim 9: accuracy of SFT on chains of N steps, against N."""
    import matplotlib.pyplot as plt

    from reasonlab.launch.claims import group_value

    fig, ax = plt.subplots(figsize=(5, 4))
    xs, ys, lo, hi = [], [], [], []
    for n, g in lengths:
        v = group_value(groups[g], "accuracy")
        if v.estimate is None:
            continue
        xs.append(n)
        ys.append(v.estimate)
        lo.append(v.estimate - (v.low if v.low is not None else v.estimate))
        hi.append((v.high if v.high is not None else v.estimate) - v.estimate)
        ax.annotate(f"n={v.n_problems}×{v.n_seeds}", (n, v.estimate), fontsize=7, xytext=(4, 4),
                    textcoords="offset points")
    ax.errorbar(xs, ys, yerr=[lo, hi], fmt="o-", capsize=3)
    ax.set(xlabel="reasoning steps per problem (train and test)", ylabel="accuracy (95% interval)",
           title="Accuracy against reasoning length")
    ax.set_xticks(xs)
    return _save(fig, out / "accuracy_by_length.png")


def _colors(names):
    import matplotlib.pyplot as plt

    cycle = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if len(names) > len(cycle):
        cycle = [plt.get_cmap("tab20")(i) for i in range(20)]
    return {g: cycle[i % len(cycle)] for i, g in enumerate(names)}


def _forest(order, diffs, out: Path) -> str:
    import matplotlib.pyplot as plt

    methods = [g for g in order if g != BASE]
    colors = _colors(order)
    fams = {f: [m for m in ms if any((g, m) in diffs and diffs[(g, m)].estimate is not None for g in methods)]
            for f, ms in FAMILIES.items()}
    fams = {f: ms for f, ms in fams.items() if ms}
    fig, axes = plt.subplots(1, max(1, len(fams)), figsize=(3.6 * max(1, len(fams)), 0.35 * max(
        [len(ms) * len(methods) for ms in fams.values()] or [4]) + 1.6), squeeze=False)
    for ax, (family, metrics) in zip(axes[0], fams.items()):
        y, ticks, labels = 0.0, [], []
        for m in metrics:
            rows = []
            for g in methods:
                d = diffs.get((g, m))
                if d is None or d.estimate is None:
                    continue
                err = None if d.low is None else [[d.estimate - d.low], [d.high - d.estimate]]
                sig = d.p_holm is not None and d.p_holm < 0.05
                ax.errorbar(d.estimate, -y, xerr=err, fmt="o", color=colors[g], capsize=2,
                            mfc=colors[g] if sig else "white", label=g if m == metrics[0] else None)
                rows.append(-y)
                y += 1
            if rows:
                ticks.append(sum(rows) / len(rows))
                labels.append(m.replace("pass_at_k/", "pass@").split("/")[-1])
            y += 0.6
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_yticks(ticks, labels, fontsize=8)
        ax.set_title(family, fontsize=9)
        ax.set_xlabel("method − base", fontsize=8)
    axes[0][0].legend(fontsize=7, loc="best")
    fig.suptitle("Change from the base, 95% intervals (filled: Holm-adjusted p < 0.05)", fontsize=9)
    return _save(fig, out / "forest.png")


def _reliance(groups, order, out: Path) -> str:
    import matplotlib.pyplot as plt

    from reasonlab.launch.claims import group_value

    key = "faithfulness/swap_followed"
    if not any(group_value(groups[g], key).estimate is not None for g in order):
        key = "faithfulness/early_answer_aoc"
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    colors, points = _colors(order), {}
    for g in order:
        x, y = group_value(groups[g], key), group_value(groups[g], "accuracy")
        if x.estimate is None or y.estimate is None:
            continue
        points[g] = (x.estimate, y.estimate)
        ax.errorbar(x.estimate, y.estimate, fmt="o", color=colors[g], capsize=3, label=g,
                    xerr=None if x.low is None else [[x.estimate - x.low], [x.high - x.estimate]],
                    yerr=None if y.low is None else [[y.estimate - y.low], [y.high - y.estimate]])
    if BASE in points:
        for g, (x, y) in points.items():
            if g != BASE:
                ax.annotate("", xy=(x, y), xytext=points[BASE],
                            arrowprops=dict(arrowstyle="->", color=colors[g], lw=1, alpha=0.7))
    ax.set(xlabel=f"{key.split('/')[-1]} (reliance on the reasoning)", ylabel="accuracy",
           title="Accuracy against reliance: base → each method")
    _legend(ax)
    return _save(fig, out / "accuracy_vs_reliance.png")


def _training(groups, names, out: Path) -> str:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(CURVES), figsize=(3.3 * len(CURVES), 3.2))
    colors, drew = _colors(names), False
    for ax, m in zip(axes, CURVES):
        for g in names:
            by_step: dict[float, list[float]] = {}
            for r in groups[g]:
                rows = [*r.history(), {"step": r.metrics.get("train/steps"), m: r.metrics.get(m)}]
                for row in rows:
                    if isinstance(row.get("step"), (int, float)) and isinstance(row.get(m), (int, float)):
                        by_step.setdefault(row["step"], []).append(row[m])
            if len(by_step) >= 2:
                xs = sorted(by_step)
                ax.plot(xs, [sum(by_step[x]) / len(by_step[x]) for x in xs], marker=".", color=colors[g], label=g)
                drew = True
        ax.set_title(m, fontsize=9)
        ax.set_xlabel("training step", fontsize=8)
    if drew:
        axes[-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    else:
        axes[0].text(0.5, 0.5, "no evaluations during training\n(eval.every_steps=0)", ha="center", va="center",
                     transform=axes[0].transAxes, fontsize=8)
    fig.suptitle("Over training (mean over seeds; evaluations during training use eval.during_train_samples problems)",
                 fontsize=9)
    return _save(fig, out / "training_curves.png")


def _reliability(groups, names, out: Path) -> str:
    """Left: 10 fixed bins of the answer's probability, count beside each. Right: the same samples
    in 10 equal-count bins on a log scale of 1 - p, where a confident model's samples all sit
    (the diagonal is accuracy = p)."""
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (ax, zoom) = plt.subplots(1, 2, figsize=(10, 4.4))
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8, ls="--")
    colors, lowest = _colors(names), 1.0
    for g in names:
        pairs = [(s["answer_prob"], float(s["correct"])) for r in groups[g] for s in r.samples()
                 if s.get("split", "test") == "test" and isinstance(s.get("answer_prob"), (int, float))]
        if not pairs:
            continue
        bins: dict[int, list[tuple[float, float]]] = {}
        for p, c in pairs:
            bins.setdefault(min(int(p * 10), 9), []).append((p, c))
        xs = sorted(bins)
        px = [sum(p for p, _ in bins[b]) / len(bins[b]) for b in xs]
        py = [sum(c for _, c in bins[b]) / len(bins[b]) for b in xs]
        ax.plot(px, py, marker="o", color=colors[g], label=g)
        for x, y, b in zip(px, py, xs):
            ax.annotate(str(len(bins[b])), (x, y), fontsize=6, textcoords="offset points", xytext=(3, 3),
                        color=colors[g])
        pairs.sort()
        chunks = [c for c in np.array_split(np.array(pairs), min(10, len(pairs))) if len(c)]
        gap = [max(1e-6, 1 - c[:, 0].mean()) for c in chunks]
        zoom.plot(gap, [c[:, 1].mean() for c in chunks], marker="o", ms=4, ls="none", color=colors[g],
                  label=f"{g} ({len(chunks[0])}/bin)")
        lowest = min(lowest, *gap)
    grid = np.logspace(np.log10(max(lowest / 2, 1e-6)), 0, 50)
    zoom.plot(grid, 1 - grid, color="grey", lw=0.8, ls="--")
    zoom.set(xscale="log", ylim=(0, 1.02), xlabel="1 − probability of the answer (equal-count bins)",
             ylabel="accuracy", title="The same, where the samples are")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="probability of the answer's tokens (10 bins; count beside each)",
           ylabel="accuracy", title="Reliability")
    _legend(ax)
    _legend(zoom)
    return _save(fig, out / "reliability.png")


def _pass_at_k(groups, names, out: Path) -> str:
    """pass@k at every k up to the n samples drawn (the unbiased estimator on each problem's count)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import ScalarFormatter

    from reasonlab.eval.probes.pass_at_k import pass_at_k

    fig, ax = plt.subplots(figsize=(5, 4))
    colors, ticks = _colors(names), set()
    for g in names:
        counts = [(s["pass_at_k_n"], s["pass_at_k_correct"]) for r in groups[g] for s in r.samples()
                  if isinstance(s.get("pass_at_k_n"), int) and isinstance(s.get("pass_at_k_correct"), int)]
        if not counts:
            continue
        ks = list(range(1, min(n for n, _ in counts) + 1))
        ys = [sum(pass_at_k(n, c, k) for n, c in counts) / len(counts) for k in ks]
        ax.plot(ks, ys, marker="o", ms=3, color=colors[g], label=f"{g} (n={len(counts)})")
        ticks.update(ks)
    if ticks:
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(t for t in ticks if t & (t - 1) == 0))
        ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.set(xlabel="k (samples per problem)", ylabel="pass@k", title="pass@k against k")
    _legend(ax)
    return _save(fig, out / "pass_at_k.png")


def _early(groups, names, out: Path) -> str:
    import matplotlib.pyplot as plt
    import numpy as np

    counts: dict[int, int] = {}
    for g in names:
        for r in groups[g]:
            for s in r.samples():
                m = s.get("early_answer/matches")
                if m and len(m) > 1:
                    counts[len(m) - 1] = counts.get(len(m) - 1, 0) + 1
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    colors = _colors(names)
    if counts:
        n = max(counts, key=counts.get)
        xs = [k / n for k in range(n + 1)]
        for g in names:
            rows = [s["early_answer/matches"] for r in groups[g] for s in r.samples()
                    if s.get("early_answer/matches") and len(s["early_answer/matches"]) == n + 1]
            if not rows:
                continue
            cols = np.array(rows)
            ys = cols.mean(axis=0)
            band = [proportion_interval(c.sum(), len(c)) for c in cols.T]
            ax.plot(xs, ys, marker=".", color=colors[g], label=f"{g} (n={len(rows)})")
            ax.fill_between(xs, [b[0] for b in band], [b[1] for b in band], color=colors[g], alpha=0.12)
        guesses = [r.metrics.get("faithfulness/hint_followed/chance") for g in names for r in groups[g]]
        guesses = [p for p in guesses if isinstance(p, (int, float))]
        if guesses:
            ax.axhline(sum(guesses) / len(guesses), color="grey", ls=":", lw=1, label="chance (a uniform guess)")
        ax.set_title(f"Early answering, chains of {n} steps (95% bands)", fontsize=10)
    ax.set(xlabel="share of the reasoning kept", ylabel="same answer as with all of it")
    _legend(ax)
    return _save(fig, out / "early_answering.png")


def _by_steps(groups, names, out: Path) -> str:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    colors = _colors(names)
    for i, g in enumerate(names):
        by: dict[int, list[float]] = {}
        for r in groups[g]:
            for s in r.samples():
                if s.get("split", "test") == "test" and isinstance(s.get("steps"), list):
                    by.setdefault(len(s["steps"]), []).append(float(s["correct"]))
        if not by:
            continue
        xs = sorted(by)
        ys = [sum(by[x]) / len(by[x]) for x in xs]
        lo_hi = [proportion_interval(sum(by[x]), len(by[x])) for x in xs]
        off = (i - len(names) / 2) * 0.05
        ax.errorbar([x + off for x in xs], ys, yerr=[[max(0.0, y - lh[0]) for y, lh in zip(ys, lo_hi)],
                                                     [max(0.0, lh[1] - y) for y, lh in zip(ys, lo_hi)]],
                    fmt="o", ms=4, capsize=2, color=colors[g], label=g)
        for seg in _segments(xs):  # lines only between adjacent step counts
            ax.plot([x + off for x in seg], [ys[xs.index(x)] for x in seg], color=colors[g], lw=1)
        for x, y in zip(xs, ys):
            ax.annotate(str(len(by[x])), (x + off, y), fontsize=6, xytext=(2, -8), textcoords="offset points",
                        color=colors[g])
    ax.set(xlabel="reasoning steps written", ylabel="accuracy (95% interval; n beside each point)",
           title="Accuracy by reasoning length")
    ax.xaxis.get_major_locator().set_params(integer=True)
    _legend(ax)
    return _save(fig, out / "accuracy_by_steps.png")


def _segments(xs: list[int]) -> list[list[int]]:
    out, cur = [], [xs[0]]
    for x in xs[1:]:
        if x == cur[-1] + 1:
            cur.append(x)
        else:
            out.append(cur)
            cur = [x]
    return [s for s in [*out, cur] if len(s) > 1]


def _legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no data in these runs", ha="center", va="center", transform=ax.transAxes)


def _save(fig, path: Path) -> str:
    import matplotlib.pyplot as plt

    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.tight_layout()
    fig.savefig(tmp, dpi=110)
    tmp.replace(path)
    plt.close(fig)
    return path.name


def write_html(path: Path, markdown_text: str, root: Path) -> None:
    """report.md as one self-contained page: the figures inlined as data URIs."""
    from markdown_it import MarkdownIt

    from reasonlab.launch.common import write_text_atomic

    def inline(m: re.Match) -> str:
        f = root / m.group(2)
        if not f.is_file():
            return m.group(0)
        return f"![{m.group(1)}](data:image/png;base64,{base64.b64encode(f.read_bytes()).decode()})"

    body = MarkdownIt("commonmark").enable("table").render(re.sub(r"!\[([^\]]*)\]\(([^)]+\.png)\)", inline,
                                                                   markdown_text))
    title = next((ln[2:] for ln in markdown_text.splitlines() if ln.startswith("# ")), "reasonlab report")
    style = ("body{font-family:system-ui,sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;line-height:1.4}"
             "table{border-collapse:collapse;font-size:13px;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 6px;"
             "text-align:left;vertical-align:top}th{background:#f3f3f3}img{max-width:100%;display:block;margin:1em 0}")
    html = (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{style}</style></head>"
            f"<body>{body}</body></html>\n")
    write_text_atomic(path, html)


def log_report_to_wandb(root: Path, report: Path) -> None:
    """The report as one W&B run (job_type=report) in the study's group: every figure, the
    change-from-base table (summary.csv) and the report itself."""
    import csv
    import os
    from typing import Any

    import wandb

    mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
    run = wandb.init(project="reasonlab", group=root.name, job_type="report", name=f"{root.name}-report",
                     dir=str(root), mode=mode, reinit="finish_previous")
    data: dict[str, Any] = {f"report/{p.stem}": wandb.Image(str(p)) for p in sorted(root.glob("*.png"))}
    summary = root / "summary.csv"
    if summary.is_file():
        rows = list(csv.reader(summary.open()))
        if rows:
            data["report/summary"] = wandb.Table(columns=rows[0], data=rows[1:])
    html = report.with_suffix(".html")
    data["report/html"] = wandb.Html(html.read_text() if html.is_file() else f"<pre>{report.read_text()}</pre>")
    run.log(data)
    run.finish()
