"""The report's statistics: checked against scipy on fixed inputs, and on runs whose truth is known."""

import json
import math

import numpy as np
import pytest
from scipy import stats as sps

from reasonlab.eval import stats
from reasonlab.eval.outcomes import PerProblem, difference, per_problem, summary


def test_t_quantile_is_scipys_at_fractional_df():
    for df in (1, 2.5, 7.3, 31, 45, 200):
        assert stats.t_quantile(df) == pytest.approx(sps.t.ppf(0.975, df), abs=1e-9)
    assert stats.t_quantile(45) > 2.01  # a lookup table's 1.96 above df 30 is 3% too narrow


@pytest.mark.parametrize("a, b", [([0.61, 0.64], [0.52, 0.50]), ([0.7, 0.72, 0.69], [0.6, 0.66, 0.61]),
                                  ([1.0, 2.0, 4.0, 3.5, 2.2], [0.1, 0.3, 0.2])])
def test_welch_matches_scipy(a, b):
    got = stats.welch(a, b)
    res = sps.ttest_ind(a, b, equal_var=False)
    ci = res.confidence_interval(0.95)
    assert got["p"] == pytest.approx(res.pvalue, abs=1e-6)
    assert got["df"] == pytest.approx(res.df, abs=1e-6)  # fractional, not rounded down
    assert got["low"] == pytest.approx(ci.low, abs=1e-6) and got["high"] == pytest.approx(ci.high, abs=1e-6)


def test_zero_variance_pair_gives_no_certainty():
    got = stats.welch([0.501, 0.501, 0.501], [0.500, 0.500, 0.500])
    assert got["estimate"] == pytest.approx(0.001)
    assert got["low"] is None and got["high"] is None and got["p"] is None
    assert stats.seed_interval([0.5, 0.5, 0.5]) == (0.5, None, None)
    # over problems, the same runs still have an interval: problem sampling is variation too
    rng = np.random.default_rng(0)
    outcomes = [rng.integers(0, 2, 200).astype(float) for _ in range(2)]
    runs = [PerProblem([str(i) for i in range(200)], o, np.ones(200), binary=True) for o in outcomes]
    d = difference([runs[0], runs[0]], [runs[1], runs[1]])
    assert d.low < d.estimate < d.high and d.high - d.low > 0.05


def test_mcnemar_is_the_exact_binomial_test_on_discordant_pairs():
    a = [1, 1, 1, 0, 1, 1, 0, 1, 1, 1, 1, 0]
    b = [0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 1]
    assert stats.mcnemar_p(a, b) == pytest.approx(sps.binomtest(5, 6, 0.5).pvalue, abs=1e-9)
    assert stats.mcnemar_p(a, a) == 1.0


def test_holm_on_a_fixed_family():
    # p = (0.01, 0.04, 0.03, 0.005): sorted 0.005*4, 0.01*3, 0.03*2, 0.04*1, made monotone
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert stats.holm([None, 0.2]) == [None, 0.2]
    # never below Benjamini-Hochberg's (scipy), which controls a weaker error rate
    ps = [0.001, 0.02, 0.03, 0.2, 0.04]
    assert all(h >= b - 1e-12 for h, b in zip(stats.holm(ps), sps.false_discovery_control(ps, method="bh")))


def test_tost_equals_two_one_sided_t_tests():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.0, 1.0, 60), rng.normal(0.05, 1.0, 60)
    d = a.mean() - b.mean()
    res = sps.ttest_ind(a, b)  # pooled; equal n
    lo90, hi90 = res.confidence_interval(0.90)
    for margin in (0.1, 0.5, 1.0):
        p_low = sps.ttest_ind(a + margin, b, alternative="greater").pvalue
        p_high = sps.ttest_ind(a - margin, b, alternative="less").pvalue
        both = max(p_low, p_high) < 0.05
        assert (stats.tost(lo90, hi90, margin) == "equivalent") == both, (margin, d)


def test_bootstrap_interval_covers_a_known_difference():
    """Paired 0/1 outcomes with a true difference of +0.2: the interval holds it and excludes 0;
    with no true difference, about 95% of intervals hold 0."""
    rng = np.random.default_rng(2)
    ids = [str(i) for i in range(300)]
    base = rng.random(300) < 0.5
    better = base | (rng.random(300) < 0.4)
    a = PerProblem(ids, better.astype(float), np.ones(300), binary=True)
    b = PerProblem(ids, base.astype(float), np.ones(300), binary=True)
    d = difference([a], [b])
    assert d.low > 0 and d.low < 0.2 < d.high and d.test == "exact McNemar" and d.p < 1e-6
    assert d.covers.startswith("problems only")
    held = 0
    for s in range(40):
        x = PerProblem(ids, (rng.random(300) < 0.6).astype(float), np.ones(300), binary=True)
        y = PerProblem(ids, (rng.random(300) < 0.6).astype(float), np.ones(300), binary=True)
        got = difference([x], [y], B=1000, seed=s)
        held += got.low <= 0 <= got.high
    assert held >= 34  # 95% nominal; 34/40 is the binomial 1% lower tail


def test_seed_variation_widens_the_interval():
    """Two seeds whose runs disagree by much more than problem noise: resampling seeds widens the
    interval relative to one seed's."""
    ids = [str(i) for i in range(200)]
    rng = np.random.default_rng(3)
    runs = [PerProblem(ids, (rng.random(200) < p).astype(float), np.ones(200), binary=True) for p in (0.3, 0.9)]
    one = summary(runs[:1])
    two = summary(runs)
    assert two.covers == "problems and seeds" and (two.high - two.low) > 2 * (one.high - one.low)


def _reproduced(metrics, samples):
    from reasonlab.launch.compare import METRICS

    checked = []
    for m in [*METRICS, "calibration/brier", "pass_at_k/4"]:
        pp = per_problem(samples, m)
        if metrics.get(m) is None or pp is None:
            continue
        assert pp.value() == pytest.approx(metrics[m], abs=1e-9), m
        checked.append(m)
    return set(checked)


def test_every_metric_is_reproduced_from_its_problems():
    """Each metric's per-problem outcomes give back metrics.json's value, so the intervals are about
    the numbers the table shows (a fake that follows its reasoning, every default probe)."""
    from test_reliance import SmallModel

    from reasonlab.eval.evaluator import evaluate
    from reasonlab.tasks import load_task

    task = load_task("arith", train_size=200, test_size=60, ood_size=20)
    metrics, samples, _ = evaluate(None, None, task, {"num_samples": 60, "progress": False, "entropy_threshold": None},
                                   backend=SmallModel(task, "follower", False), has_reader=True)
    checked = _reproduced(metrics, samples)
    # every metric of the report that this evaluation measured, but the entropy share (not per problem)
    measured = {m for m in [*_metric_names(), "calibration/brier", "pass_at_k/4"] if metrics.get(m) is not None}
    assert checked == measured - {"entropy/high_frac"}
    assert {"accuracy", "ood_accuracy", "pass_at_k/1", "calibration/ece", "info_gain/per_step",
            "faithfulness/early_answer_aoc", "faithfulness/swap_followed", "reasoning/step_validity"} <= checked


def _metric_names():
    from reasonlab.launch.compare import METRICS

    return METRICS


def test_a_trained_models_metrics_are_reproduced_from_its_problems(base_run):
    metrics = json.loads((base_run / "metrics.json").read_text())
    samples = [json.loads(line) for line in (base_run / "samples.jsonl").read_text().splitlines()]
    assert {"accuracy", "ood_accuracy", "pass_at_k/1", "reasoning/step_validity"} <= _reproduced(metrics, samples)
    assert not math.isnan(summary([per_problem(samples, "accuracy")]).low)
