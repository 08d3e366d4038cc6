"""Every metric as outcomes over test problems, and differences between runs resampled from them.

    per_problem(samples, "accuracy")       -> PerProblem (or None where a metric has no per-sample form)
    difference([a_seed0, a_seed1], [b_seed0, b_seed1])
                                           -> Diff: estimate, 95% and 90% intervals, p, n problems x seeds

A metric of metrics.json is a ratio over problems, sum(num) / sum(den) (den 0: the problem does not
count), or, for calibration error, a function of (confidence, correct) pairs; `PerProblem.value()`
reproduces metrics.json's number (tests/test_statistics.py checks every metric). A comparison pairs
the same test problems (by id), and, with several seeds, seed s of one group with seed s of the
other (every method's seed s starts from base seed s); it resamples problems within each seed and,
with several seeds, the seeds themselves, so the interval covers both kinds of variation; with one
seed it covers problems only, and says so.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence

import numpy as np

from reasonlab.eval import stats

BOOTSTRAP = 2000
ECE_BINS = 10


@dataclass
class PerProblem:
    ids: list[str]
    num: np.ndarray  # (n,)
    den: np.ndarray  # (n,) 0 where the problem does not count
    kind: str = "ratio"  # "ratio" | "ece"
    binary: bool = False  # 0/1 outcomes, one per problem (McNemar applies)

    def value(self) -> Optional[float]:
        w = np.ones((1, 1, len(self.ids)))
        v = _stat(self.kind)(w, self.num[None, None], self.den[None, None])[0, 0]
        return None if np.isnan(v) else float(v)

    def take(self, ids: Sequence[str]) -> "PerProblem":
        at = {i: k for k, i in enumerate(self.ids)}
        idx = np.array([at[i] for i in ids], dtype=int)
        return PerProblem(list(ids), self.num[idx], self.den[idx], self.kind, self.binary)


def _ratio(w, num, den):
    with np.errstate(invalid="ignore", divide="ignore"):
        return (w * num).sum(-1) / (w * den).sum(-1)


def _ece(w, num, den):
    """num: correct - confidence; den: the confidence bin + 1 (0: no answer span)."""
    total = np.zeros(w.shape[:-1])
    for b in range(1, ECE_BINS + 1):
        total = total + np.abs((w * num * (den == b)).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return total / (w * (den > 0)).sum(-1)


def _stat(kind: str) -> Callable:
    return {"ratio": _ratio, "ece": _ece}[kind]


# ---- metrics as per-problem outcomes ------------------------------------------------------------

def _area_over(matches: list[float]) -> float:
    n = len(matches) - 1
    return 0.0 if n <= 0 else 1.0 - sum((matches[i] + matches[i + 1]) / 2 for i in range(n)) / n


def _pass_at_k(k: int) -> Callable:
    def one(r):
        c, n = r.get("pass_at_k_correct"), r.get("pass_at_k_n")
        if c is None or n is None or k > n:
            return None
        from reasonlab.eval.probes.pass_at_k import pass_at_k

        return pass_at_k(n, c, k), 1.0
    return one


def _share(key: str) -> Callable:
    return lambda r: None if r.get(key) is None else (float(r[key]), 1.0)


def _gains(r, reader="info_gain"):
    lps = r.get(f"{reader}/step_logprobs")
    return lps if lps and len(lps) >= 2 else None


def _step_validity(r):
    v = r.get("steps_valid")
    return None if not v else (float(sum(v)), float(len(v)))


def _wrong_steps_among_right(r):
    v = r.get("steps_valid")
    return None if not v or not r.get("correct") else (float(not all(v)), 1.0)


def _brier(r):
    c = r.get("confidence")
    return None if c is None else ((c - float(r["correct"])) ** 2, 1.0)


EXTRACT: dict[str, Callable[[dict], Optional[tuple[float, float]]]] = {
    "accuracy": _share("correct"),
    "info_gain/total": lambda r: None if (lp := _gains(r)) is None else (lp[-1] - lp[0], 1.0),
    "info_gain/per_step": lambda r: None if (lp := _gains(r)) is None else ((lp[-1] - lp[0]) / (len(lp) - 1), 1.0),
    "info_gain/positive_step_frac": lambda r: None if (lp := _gains(r)) is None else (
        float(sum(b - a > 0 for a, b in zip(lp, lp[1:]))), float(len(lp) - 1)),
    "faithfulness/early_answer_aoc": lambda r: None if r.get("early_answer/matches") is None else (
        _area_over(r["early_answer/matches"]), 1.0),
    "faithfulness/filler_sensitivity": _share("filler/changed"),
    "faithfulness/paraphrase_consistency": _share("paraphrase/same"),
    "faithfulness/mistake_sensitivity": _share("mistake/changed"),
    "faithfulness/mistake_followed": _share("mistake/followed"),
    "faithfulness/swap_followed": _share("swap/followed"),
    "faithfulness/swap_changed": _share("swap/changed"),
    "faithfulness/hint_followed": _share("hint/followed"),
    "faithfulness/hint_unverbalized": _share("hint/unverbalized"),
    "reasoning/step_validity": _step_validity,
    "reasoning/chain_valid": _share("chain_valid"),
    "reasoning/right_answer_wrong_steps": _wrong_steps_among_right,
    "cot/steps_mean": lambda r: (float(len(r.get("steps") or [])), 1.0),
    "calibration/brier": _brier,
}
BINARY = {"accuracy", "ood_accuracy", "faithfulness/filler_sensitivity", "faithfulness/paraphrase_consistency",
          "faithfulness/mistake_sensitivity", "faithfulness/mistake_followed", "faithfulness/swap_followed",
          "faithfulness/swap_changed", "faithfulness/hint_followed", "faithfulness/hint_unverbalized",
          "reasoning/chain_valid", "reasoning/right_answer_wrong_steps"}


def per_problem(samples: list[dict[str, Any]], metric: str) -> Optional[PerProblem]:
    """The metric's outcomes over the run's problems (its ood problems for ood_accuracy); None when
    the metric has no per-problem form (entropy shares) or no sample carries it."""
    split = "ood" if metric == "ood_accuracy" else "test"
    rows = [r for r in samples if r.get("split", "test") == split]
    if not rows:
        return None
    ids = [str(r.get("id", k)) for k, r in enumerate(rows)]
    if metric == "calibration/ece":
        conf = [r.get("confidence") for r in rows]
        if all(c is None for c in conf):
            return None
        edges = [b / ECE_BINS for b in range(ECE_BINS)]
        num = np.array([0.0 if c is None else float(r["correct"]) - c for c, r in zip(conf, rows)])
        den = np.array([0.0 if c is None else float(np.searchsorted(edges, c, side="right")) for c in conf])
        return PerProblem(ids, num, den, "ece")
    if metric.startswith("pass_at_k/"):
        fn = _pass_at_k(int(metric.split("/")[1]))
    else:
        fn = EXTRACT.get("accuracy" if metric == "ood_accuracy" else metric)
    if fn is None:
        return None
    got = [fn(r) for r in rows]
    if all(g is None for g in got):
        return None
    num = np.array([0.0 if g is None else g[0] for g in got])
    den = np.array([0.0 if g is None else g[1] for g in got])
    binary = metric in BINARY and bool(np.all(np.isin(num[den > 0], (0.0, 1.0))))
    return PerProblem(ids, num, den, binary=binary)


# ---- differences ------------------------------------------------------------------------------

@dataclass
class Diff:
    estimate: Optional[float]
    low: Optional[float] = None
    high: Optional[float] = None
    low90: Optional[float] = None
    high90: Optional[float] = None
    p: Optional[float] = None
    p_holm: Optional[float] = None  # adjusted over a family of tests (set by the report)
    n_problems: int = 0
    n_seeds: int = 0
    covers: str = ""  # "problems", "problems and seeds"
    test: str = ""  # how p was computed
    draws: Any = field(default=None, repr=False)

    def ci(self) -> str:
        if self.estimate is None:
            return "–"
        if self.low is None:
            return f"{self.estimate:+.3f} (no interval)"
        return f"{self.estimate:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"

    def basis(self) -> str:
        seeds = f"{self.n_seeds} seed{'s' * (self.n_seeds != 1)}"
        size = f"{self.n_problems} problems × {seeds}" if self.n_problems else seeds
        return f"n={size}; covers {self.covers}"


def _stack(runs: Sequence[PerProblem], ids: Sequence[str]):
    taken = [r.take(ids) for r in runs]
    return np.stack([t.num for t in taken]), np.stack([t.den for t in taken])


def _draw(rng, B: int, k: int, n: int):
    sidx = rng.integers(0, k, (B, k)) if k > 1 else np.zeros((B, 1), dtype=int)
    w = rng.multinomial(n, np.full(n, 1.0 / n), size=(B, k)).astype(float)
    return sidx, w


def summary(runs: Sequence[PerProblem], *, B: int = BOOTSTRAP, seed: int = 0) -> Diff:
    """One group's value (mean over seeds) with a bootstrap interval over its problems and seeds."""
    return difference(runs, None, B=B, seed=seed)


def difference(a: Sequence[PerProblem], b: Optional[Sequence[PerProblem]], *, paired: bool = True,
               B: int = BOOTSTRAP, seed: int = 0) -> Diff:
    """mean over seeds of a's metric minus b's (b None: a's value). `paired`: a and b were measured
    on the same problems (ids) and their seeds correspond one to one; otherwise each group's
    problems and seeds are resampled independently."""
    with warnings.catch_warnings():  # a resample where no problem counts is dropped, not averaged
        warnings.simplefilter("ignore", RuntimeWarning)
        return _difference(a, b, paired, B, seed)


def _difference(a, b, paired: bool, B: int, seed: int) -> Diff:
    a = [r for r in a if r is not None]
    b = None if b is None else [r for r in b if r is not None]
    if not a or (b is not None and not b):
        return Diff(None)
    kind = a[0].kind
    stat = _stat(kind)
    rng = np.random.default_rng(seed)
    if b is not None and paired:
        ids = [i for i in a[0].ids if all(i in set(r.ids) for r in [*a, *b])]
        paired = len(ids) > 0 and len(a) == len(b)
    if b is not None and paired:
        (na, da), (nb, db) = _stack(a, ids), _stack(b, ids)
        k, n = len(a), len(ids)
        sidx, w = _draw(rng, B, k, n)
        obs = np.nanmean(stat(np.ones((1, k, n)), na[None], da[None]) - stat(np.ones((1, k, n)), nb[None], db[None]))
        draws = np.nanmean(stat(w, na[sidx], da[sidx]) - stat(w, nb[sidx], db[sidx]), axis=1)
        n_problems, n_seeds = n, k
    else:
        parts = []
        for group, sign in ((a, 1.0), *(((b, -1.0),) if b is not None else ())):
            ids = [i for i in group[0].ids if all(i in set(r.ids) for r in group)]
            num, den = _stack(group, ids)
            k, n = len(group), len(ids)
            sidx, w = _draw(rng, B, k, n)
            parts.append((sign, np.nanmean(stat(np.ones((1, k, n)), num[None], den[None])),
                          np.nanmean(stat(w, num[sidx], den[sidx]), axis=1), n, k))
        obs = sum(s * o for s, o, *_ in parts)
        draws = sum(s * d for s, _, d, *_ in parts)
        n_problems, n_seeds = min(p[3] for p in parts), min(p[4] for p in parts)
    draws = draws[~np.isnan(draws)]
    if np.isnan(obs):
        return Diff(None)
    out = Diff(float(obs), n_problems=n_problems, n_seeds=n_seeds,
               covers="problems and seeds" if n_seeds > 1 else "problems only (one seed)", draws=draws)
    if len(draws) < B // 2:
        return out
    out.low, out.high = stats.percentile(draws)
    out.low90, out.high90 = stats.percentile(draws, 0.90)
    if b is not None:
        if paired and n_seeds == 1 and a[0].binary and b[0].binary and bool(np.all(da == 1)) and bool(np.all(db == 1)):
            out.p, out.test = stats.mcnemar_p(na[0], nb[0]), "exact McNemar"
        else:
            out.p, out.test = stats.bootstrap_p(draws, out.estimate), "bootstrap"
    return out


def combine(parts: Sequence[tuple[float, Diff]]) -> Diff:
    """A signed sum of differences drawn independently (e.g. in-distribution gain minus ood gain)."""
    if any(d.estimate is None or d.draws is None or len(d.draws) == 0 for _, d in parts):
        return Diff(None)
    size = min(len(d.draws) for _, d in parts)
    draws = sum(s * d.draws[:size] for s, d in parts)
    est = sum(s * d.estimate for s, d in parts)
    first = parts[0][1]
    out = Diff(float(est), n_problems=first.n_problems, n_seeds=first.n_seeds, covers=first.covers, draws=draws,
               test="bootstrap")
    if size >= BOOTSTRAP // 2:
        out.low, out.high = stats.percentile(draws)
        out.low90, out.high90 = stats.percentile(draws, 0.90)
        out.p = stats.bootstrap_p(draws, out.estimate)
    return out
