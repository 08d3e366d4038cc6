"""Intervals over problems, for a measure read against its chance level.

    proportion_interval(k, n)        Wilson 95% interval of a share k/n
    mean_interval(values)            Student-t 95% interval of a mean (values over problems)
    paired_interval(a, b)            Student-t 95% interval of mean(a - b), paired by problem
    against_chance(values, chance, higher_is_reliant)
                                     "reliant" / "not reliant" / "inconclusive": is the interval
                                     on the reliant side of the chance level, the other side, or
                                     does it hold chance?
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Optional, Sequence

from scipy import stats as _stats

Z95 = 1.959963984540054


def proportion_interval(k: float, n: int) -> tuple[Optional[float], Optional[float]]:
    if n <= 0:
        return None, None
    p = k / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(values: Sequence[float]) -> tuple[Optional[float], Optional[float], Optional[float]]:
    """(mean, low, high); a share of 0/1 values gets the Wilson interval, anything else Student t."""
    n = len(values)
    if not n:
        return None, None, None
    m = sum(values) / n
    if all(v in (0.0, 1.0) for v in values):
        return (m, *proportion_interval(sum(values), n))
    if n < 2:
        return m, None, None
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    half = float(_stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return m, m - half, m + half


def paired_interval(a: Sequence[float], b: Sequence[float]) -> tuple[Optional[float], Optional[float], Optional[float]]:
    """(mean difference a - b, low, high) over paired values, Student t on the differences."""
    d = [x - y for x, y in zip(a, b)]
    n = len(d)
    if n < 2:
        return (d[0] if d else None), None, None
    m = sum(d) / n
    sd = math.sqrt(sum((v - m) ** 2 for v in d) / (n - 1))
    half = float(_stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return m, m - half, m + half


def against_chance(values: Sequence[float], chance: Optional[float], higher_is_reliant: bool) -> str:
    """Whether the 95% interval of the mean of `values` lies on the reliant side of `chance`."""
    _, lo, hi = mean_interval(values)
    if chance is None or lo is None:
        return "inconclusive"
    if lo > chance:
        return "reliant" if higher_is_reliant else "not reliant"
    if hi < chance:
        return "not reliant" if higher_is_reliant else "reliant"
    return "inconclusive"


@functools.lru_cache(maxsize=1)
def validation_table() -> dict[str, dict[str, str]]:
    """task -> measure -> 'validated' / 'not validated' (eval/validation.json, from bench/planted_effect.py)."""
    path = Path(__file__).with_name("validation.json")
    if not path.is_file():
        return {}
    table = json.loads(path.read_text())
    return {task: rows for task, rows in table.items() if isinstance(rows, dict)}


# ---- differences between runs -------------------------------------------------------------------
# A run's outcome on each test problem is kept as arrays over problems (eval/outcomes.py); a
# comparison resamples problems (and seeds, with several) and recomputes the statistic, so every
# interval covers the variation its verdict claims to cover.

LEVEL = 0.95


def t_quantile(df: float, level: float = LEVEL) -> float:
    """Two-sided Student-t quantile at fractional degrees of freedom (scipy)."""
    return float(_stats.t.ppf(0.5 + level / 2, df))


def seed_interval(values: Sequence[float], level: float = LEVEL) -> tuple[Optional[float], Optional[float], Optional[float]]:
    """(mean, low, high) of per-seed values, Student t; no interval below 2 values or with no spread."""
    n = len(values)
    if not n:
        return None, None, None
    m = sum(values) / n
    if n < 2:
        return m, None, None
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    if sd == 0:
        return m, None, None
    half = t_quantile(n - 1, level) * sd / math.sqrt(n)
    return m, m - half, m + half


def welch(a: Sequence[float], b: Sequence[float], level: float = LEVEL) -> dict[str, Optional[float]]:
    """mean(a) - mean(b) with Welch's interval and two-sided p at fractional degrees of freedom
    (scipy.stats.ttest_ind(equal_var=False)). No interval when either group has one value or both
    have no spread: a zero-width interval would make any difference look certain."""
    d = sum(a) / len(a) - sum(b) / len(b)
    out = {"estimate": d, "low": None, "high": None, "p": None, "df": None}
    if len(a) < 2 or len(b) < 2:
        return out
    va = _stats.tvar(a) / len(a) if len(set(a)) > 1 else 0.0
    vb = _stats.tvar(b) / len(b) if len(set(b)) > 1 else 0.0
    if va + vb == 0:
        return out
    df = (va + vb) ** 2 / ((va**2 / (len(a) - 1) if va else 0.0) + (vb**2 / (len(b) - 1) if vb else 0.0))
    se = math.sqrt(va + vb)
    half = t_quantile(df, level) * se
    p = float(2 * _stats.t.sf(abs(d) / se, df))
    return {"estimate": d, "low": d - half, "high": d + half, "p": p, "df": df}


def mcnemar_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Exact McNemar test of paired 0/1 outcomes: two-sided binomial test on the discordant pairs."""
    up = sum(1 for x, y in zip(a, b) if x > y)
    down = sum(1 for x, y in zip(a, b) if x < y)
    if up + down == 0:
        return 1.0
    return float(_stats.binomtest(up, up + down, 0.5).pvalue)


def holm(pvalues: Sequence[Optional[float]]) -> list[Optional[float]]:
    """Holm's step-down adjusted p-values (family-wise error control); None stays None."""
    known = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    m, out, running = len(known), list(pvalues), 0.0
    for rank, (p, i) in enumerate(known):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


def bootstrap_p(draws, estimate: float) -> Optional[float]:
    """Two-sided p of 'no difference' from the bootstrap standard error (normal approximation)."""
    import numpy as np

    se = float(np.std(draws, ddof=1)) if len(draws) > 1 else 0.0
    if se == 0:
        return None if estimate == 0 else 0.0
    return float(2 * _stats.norm.sf(abs(estimate) / se))


def percentile(draws, level: float = LEVEL) -> tuple[float, float]:
    import numpy as np

    lo, hi = np.quantile(draws, [0.5 - level / 2, 0.5 + level / 2])
    return float(lo), float(hi)


def tost(low90: Optional[float], high90: Optional[float], margin: float) -> str:
    """Two one-sided tests at 5% each, read from the 90% interval of a difference: 'equivalent'
    when it lies inside (-margin, margin), 'different' when it lies wholly outside, else 'inconclusive'."""
    if low90 is None or high90 is None:
        return "inconclusive"
    if -margin < low90 and high90 < margin:
        return "equivalent"
    if low90 >= margin or high90 <= -margin:
        return "different"
    return "inconclusive"


def format_p(p: Optional[float]) -> str:
    if p is None:
        return "no p"
    return "p<1e-16" if p < 1e-16 else f"p={p:.2g}"
