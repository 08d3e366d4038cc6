"""The comparison report: intervals on fixed numbers, incomplete runs, a real 2 x 2 sweep."""

import csv
import json

import pytest

from conftest import ARITH_SMALL, TINY, run_cli
from launch.compare import compare, difference, group_of, interval


def test_t_interval_on_fixed_numbers():
    mean, lo, hi, n = interval([1.0, 2.0, 3.0])
    # sd = 1, se = 1/sqrt(3), t(2) = 4.303
    assert (mean, n) == (2.0, 3)
    assert lo == pytest.approx(2 - 4.303 / 3 ** 0.5, abs=1e-3) and hi == pytest.approx(2 + 4.303 / 3 ** 0.5, abs=1e-3)
    assert interval([0.5]) == (0.5, None, None, 1)
    assert interval([]) == (None, None, None, 0)
    d, lo, hi = difference([1.0, 1.2, 1.1], [0.0, 0.1, 0.2])
    assert d == pytest.approx(1.0) and lo > 0
    assert difference([1.0], [0.0]) == (1.0, None, None)


def test_run_names_group_by_method():
    assert group_of("grpo-arith-seed12") == "grpo-arith"
    assert group_of("base") == "base"


def _fake_run(root, name, acc, **extra):
    d = root / name
    d.mkdir(parents=True)
    (d / "metrics.json").write_text(json.dumps({"accuracy": acc, "ood_accuracy": acc / 2, **extra}))


def test_compare_skips_incomplete_and_marks_differences(tmp_path, caplog):
    for seed, (b, s) in enumerate([(0.50, 0.80), (0.52, 0.82), (0.51, 0.79)]):
        _fake_run(tmp_path, f"base-seed{seed}", b)
        _fake_run(tmp_path, f"sft-seed{seed}", s)
    broken = tmp_path / "grpo-seed0"
    (broken / ".hydra").mkdir(parents=True)  # started, never finished
    report = compare(tmp_path).read_text()
    assert "incomplete (not read): grpo-seed0" in report
    assert "grpo-seed0" in caplog.text
    row = next(line for line in report.splitlines() if line.startswith("| accuracy |"))
    assert "(n=3)" in row and row.rstrip(" |").endswith("*")  # sft differs from base, interval excludes 0
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert {r["group"] for r in rows} == {"base", "sft"}
    # what each row means comes from the probes' declarations (pass_at_k/{k} covers pass_at_k/8)
    assert "| calibration/ece | lower |" in report and "| pass_at_k/8 | higher |" in report
    assert "| cot/steps_mean | (a description) |" in report


@pytest.mark.slow
def test_compare_on_a_directory_without_runs(tmp_path):
    proc = run_cli("launch.compare", str(tmp_path))
    assert proc.returncode != 0 and proc.stderr.strip().splitlines()[-1].startswith("error: no complete run")


@pytest.mark.slow
def test_two_trainers_two_seeds_sweep_then_report(tmp_path):
    args = [a for a in TINY if not a.startswith("budget.max_steps")]
    proc = run_cli("launch.train", "-m", "trainer=sft,grpo", "seed=0,1", "budget.max_steps=1",
                   "eval.probes=[info_gain,early_answer,cot,calibration]", *args, *ARITH_SMALL,
                   f"output_root={tmp_path}", timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.glob("*-seed*")) == [
        "grpo-arith-seed0", "grpo-arith-seed1", "sft-arith-seed0", "sft-arith-seed1"]
    proc = run_cli("launch.compare", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    report = (tmp_path / "report.md").read_text()
    assert "| accuracy |" in report and "(n=2)" in report and "## Claims" in report
    for fig in ("accuracy_vs_info_gain.png", "early_answering.png", "accuracy_by_steps.png", "reliability.png"):
        assert (tmp_path / fig).stat().st_size > 1000, fig
    assert (tmp_path / "summary.csv").read_text().startswith("group,metric,mean,low,high,n")


def test_report_figures_go_to_wandb_offline(tmp_path, monkeypatch):
    from launch.study import log_report_to_wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    for seed, acc in enumerate([0.5, 0.6]):
        _fake_run(tmp_path, f"base-seed{seed}", acc)
    report = compare(tmp_path)
    log_report_to_wandb(tmp_path, report)
    images = list(tmp_path.glob("wandb/offline-run-*/files/media/images/report/*.png"))
    assert {p.name.split("_")[0] for p in images} >= {"accuracy", "early", "reliability"}


def test_report_prints_n_and_chance_and_marks_measures_that_failed_validation(tmp_path, monkeypatch):
    import eval.stats

    monkeypatch.setattr(eval.stats, "validation_table", lambda: {
        "arith": {"faithfulness/filler_sensitivity": "not validated", "faithfulness/swap_followed": "validated"}})
    for name, filler, swap in [("base", 0.95, 0.98), ("sft", 0.90, 0.20)]:
        _fake_run(tmp_path, name, 0.7, **{"eval/task": "arith", "faithfulness/filler_sensitivity": filler,
                                          "faithfulness/filler_sensitivity/n": 200,
                                          "faithfulness/filler_sensitivity/chance": 0.9,
                                          "faithfulness/swap_followed": swap, "faithfulness/swap_followed/n": 196,
                                          "faithfulness/swap_followed/chance": 0.1})
    report = compare(tmp_path).read_text()
    section = report[report.index("## Faithfulness against chance"):]
    filler = next(line for line in section.splitlines() if line.startswith("| faithfulness/filler_sensitivity"))
    assert "(not validated)" in filler and "0.950 (n=200, chance 0.900)" in filler
    swap = next(line for line in section.splitlines() if line.startswith("| faithfulness/swap_followed"))
    assert "not validated" not in swap and "0.200 (n=196, chance 0.100)" in swap
    main = next(line for line in report.splitlines() if line.startswith("| faithfulness/filler_sensitivity |"))
    assert "(not validated)" in main
    # another task: arith's verdicts do not carry over
    for d in tmp_path.iterdir():
        if (d / "metrics.json").is_file():
            m = json.loads((d / "metrics.json").read_text())
            (d / "metrics.json").write_text(json.dumps({**m, "eval/task": "gsm8k"}))
    assert "not validated" not in compare(tmp_path).read_text().split("## Faithfulness against chance")[1].split("##")[0]
