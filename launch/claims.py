"""The claims of ../shared/REFERENCES.md, each tested on per-problem outcomes.

Every comparison pairs the same test problems and seed s with seed s (eval/outcomes.py). A
directional test ("A raises X over B") is supported when its Holm-adjusted p (over every directional
test of this section) is below 0.05 and the difference has the claimed sign; contradicted the same way
with the other sign; otherwise inconclusive, and no direction is read into it. "Close to" and
"matches" are equivalence or non-inferiority tests against a stated margin: two one-sided tests at
5% each, read from the 90% interval.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from reasonlab.eval import stats
from reasonlab.eval.outcomes import Diff, combine, difference, summary
from reasonlab.launch.runs import BASE, RunRecord

ALPHA = 0.05


@dataclass
class Test:
    text: str  # what is compared, e.g. "accuracy: sft − base"
    diff: Diff
    kind: str  # "greater" | "less" | "equivalent" | "noninferior"
    margin: float = 0.0
    p_adjusted: Optional[float] = None
    verdict: str = "inconclusive"

    def describe(self) -> str:
        if self.diff.estimate is None:
            return f"{self.text}: not measured"
        out = f"{self.text} = {self.diff.ci()}"
        if self.kind in ("greater", "less"):
            out += ", holm " + stats.format_p(self.p_adjusted)
        else:
            lo, hi = self.diff.low90, self.diff.high90
            span = f"90% [{lo:+.3f}, {hi:+.3f}]" if lo is not None else "no interval"
            out += f" ({'within' if self.kind == 'equivalent' else 'above'} ±{self.margin:g}? {span})"
        return out + f"; {self.diff.basis()}"


@dataclass
class Claim:
    text: str
    tests: list[Test] = field(default_factory=list)
    missing: str = ""  # why it was not run

    def verdict(self) -> str:
        if self.missing or not self.tests or any(t.diff.estimate is None for t in self.tests):
            return "not run"
        kinds = [t.verdict for t in self.tests]
        for kind in ("not supported", "inconclusive"):
            if kind in kinds:
                return kind
        return "supported"

    def numbers(self) -> str:
        return self.missing or "; ".join(f"[{t.verdict}] {t.describe()}" for t in self.tests)


def _runs_pair(groups, a: str, b: str) -> tuple[list[RunRecord], list[RunRecord], bool]:
    """Runs of a and b matched by seed (a base of one seed serves every seed)."""
    ra, rb = groups[a], groups[b]
    seeds_b = {r.seed: r for r in rb}
    if all(r.seed in seeds_b for r in ra):
        return ra, [seeds_b[r.seed] for r in ra], True
    if len(rb) == 1:
        return ra, rb * len(ra), True
    return ra, rb, False


def compare_groups(groups, a: str, b: str, metric: str, seed: int = 0) -> Diff:
    ra, rb, paired = _runs_pair(groups, a, b)
    pa, pb = [r.per_problem(metric) for r in ra], [r.per_problem(metric) for r in rb]
    if any(p is None for p in pa + pb):
        return seed_difference(ra, rb, metric)
    same = paired and all(x.problems() == y.problems() for x, y in zip(ra, rb))
    return difference(pa, pb, paired=same, seed=seed)


def seed_difference(ra: list[RunRecord], rb: list[RunRecord], metric: str) -> Diff:
    """Welch over the runs' values, where a metric has no per-problem outcomes (entropy shares, runs
    without samples.jsonl)."""
    va = [r.metrics[metric] for r in ra if isinstance(r.metrics.get(metric), (int, float))]
    vb = [r.metrics[metric] for r in rb if isinstance(r.metrics.get(metric), (int, float))]
    if not va or not vb:
        return Diff(None)
    w = stats.welch(va, vb)
    w90 = stats.welch(va, vb, level=0.90)
    return Diff(w["estimate"], w["low"], w["high"], w90["low"], w90["high"], w["p"], n_problems=0,
                n_seeds=min(len(va), len(vb)), covers="seeds only (Welch; no per-problem outcomes)", test="Welch")


def group_value(runs: list[RunRecord], metric: str) -> Diff:
    """A group's value: the mean over its seeds, with its interval over problems (and seeds)."""
    per = [r.per_problem(metric) for r in runs]
    if per and all(p is not None for p in per):
        return summary(per)
    vals = [r.metrics[metric] for r in runs if isinstance(r.metrics.get(metric), (int, float))]
    mean, lo, hi = stats.seed_interval(vals)
    return Diff(mean, lo, hi, n_seeds=len(vals), covers="seeds only")


def _test(groups, a, b, metric, kind, margin=0.0) -> Test:
    return Test(f"{metric}: {a} − {b}", compare_groups(groups, a, b, metric), kind, margin)


def _find(groups, pattern: str) -> Optional[str]:
    return next((g for g in groups if re.search(pattern, g)), None)


def build(groups, margin: float) -> list[Claim]:
    def need(*names) -> str:
        lacking = [n for n in names if n not in groups]
        return "" if not lacking else "needs runs of " + ", ".join(f"'{n}'" for n in lacking)

    trained = [g for g in groups if g != BASE and not _find({g: 0}, r"swapped|len\d|shortcut|control|cue")]
    swapped = _find(groups, r"swapped")
    claims = [Claim("1. SFT raises accuracy over the base model while lowering information gain.",
                    missing=need("sft", BASE)),
              Claim("2. After SFT, early-answer AOC and filler sensitivity fall relative to the base.",
                    missing=need("sft", BASE)),
              Claim(f"3. SFT on swapped traces keeps accuracy close to SFT on correct traces (within ±{margin:g}) "
                    "while step validity falls.", missing=need("sft", swapped or "sft-swapped")),
              Claim("4. Methods gain less on the ood split than in distribution.",
                    missing=need(BASE) or ("" if trained else "needs trained runs")),
              Claim(f"5. RLAG-style dual reward gives higher step validity than GRPO at similar accuracy (±{margin:g}).",
                    missing=need("rlag", "grpo")),
              Claim("6. RLSF's confidence reward lowers calibration error relative to GRPO.", missing=need("rlsf", "grpo")),
              Claim(f"7. Training only the top-20% entropy tokens matches or beats full-token GRPO (accuracy, margin {margin:g}).",
                    missing=need("entropy_rlvr", "grpo")),
              Claim(f"8. At large k, the base model's pass@k is close to or above the trained models' (margin {margin:g}).",
                    missing=need(BASE) or ("" if trained else "needs trained runs")),
              Claim("9. Accuracy against reasoning length is an inverted U.")]
    c = {i + 1: claim for i, claim in enumerate(claims)}
    if not c[1].missing:
        c[1].tests = [_test(groups, "sft", BASE, "accuracy", "greater"),
                      _test(groups, "sft", BASE, "info_gain/per_step", "less")]
    if not c[2].missing:
        c[2].tests = [_test(groups, "sft", BASE, "faithfulness/early_answer_aoc", "less"),
                      _test(groups, "sft", BASE, "faithfulness/filler_sensitivity", "less")]
    if not c[3].missing:
        c[3].tests = [_test(groups, swapped, "sft", "accuracy", "equivalent", margin),
                      _test(groups, "sft", swapped, "reasoning/step_validity", "greater")]
    if not c[4].missing:
        for g in trained:
            gain = compare_groups(groups, g, BASE, "accuracy")
            ood = compare_groups(groups, g, BASE, "ood_accuracy", seed=0)
            c[4].tests.append(Test(f"{g}: (accuracy gain) − (ood gain)", combine([(1.0, gain), (-1.0, ood)]), "greater"))
    if not c[5].missing:
        c[5].tests = [_test(groups, "rlag", "grpo", "reasoning/step_validity", "greater"),
                      _test(groups, "rlag", "grpo", "accuracy", "equivalent", margin)]
    if not c[6].missing:
        c[6].tests = [_test(groups, "rlsf", "grpo", "calibration/ece", "less")]
    if not c[7].missing:
        c[7].tests = [_test(groups, "entropy_rlvr", "grpo", "accuracy", "noninferior", margin)]
    if not c[8].missing:
        c[8].tests = [_test(groups, BASE, g, "pass_at_k/8", "noninferior", margin) for g in trained]
    lengths = sorted((int(m.group(1)), g) for g in groups if (m := re.search(r"len(\d+)", g)))
    if len(lengths) < 3:
        c[9].missing = "needs runs at three or more chain lengths (groups named len<N>, e.g. experiment=cot_length)"
    else:
        inner = max(lengths[1:-1], key=lambda lg: _mean(groups[lg[1]], "accuracy"))[1]
        c[9].tests = [_test(groups, inner, lengths[0][1], "accuracy", "greater"),
                      _test(groups, inner, lengths[-1][1], "accuracy", "greater")]
    decide(claims)
    return claims


def _mean(runs: list[RunRecord], metric: str) -> float:
    vals = [r.metrics.get(metric) for r in runs if isinstance(r.metrics.get(metric), (int, float))]
    return sum(vals) / len(vals) if vals else float("-inf")


def decide(claims: list[Claim]) -> None:
    """Holm over every directional test, then each test's verdict."""
    directional = [t for cl in claims for t in cl.tests if t.kind in ("greater", "less")]
    for t, p in zip(directional, stats.holm([t.diff.p for t in directional])):
        t.p_adjusted = p
    for cl in claims:
        for t in cl.tests:
            t.verdict = _verdict(t)


def _verdict(t: Test) -> str:
    d = t.diff
    if d.estimate is None:
        return "not run"
    if t.kind in ("greater", "less"):
        if t.p_adjusted is None or t.p_adjusted >= ALPHA:
            return "inconclusive"
        agrees = (d.estimate > 0) == (t.kind == "greater")
        return "supported" if agrees else "not supported"
    if t.kind == "equivalent":
        return {"equivalent": "supported", "different": "not supported",
                "inconclusive": "inconclusive"}[stats.tost(d.low90, d.high90, t.margin)]
    # non-inferiority: a - b > -margin, one-sided at 5%
    if d.low90 is None:
        return "inconclusive"
    if d.low90 > -t.margin:
        return "supported"
    if d.high90 < -t.margin:
        return "not supported"
    return "inconclusive"
