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
