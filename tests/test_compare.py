"""The comparison report: intervals on fixed numbers, incomplete runs, a real 2 x 2 sweep."""

import csv
import json

import pytest

from conftest import ARITH_SMALL, TINY, run_cli
from reasonlab.launch.compare import compare, group_of


def test_run_names_group_by_method():
    assert group_of("grpo-arith-seed12") == "grpo-arith"
    assert group_of("grpo-arith-seed12", {"task": {"name": "arith"}, "trainer": {"name": "grpo"}}) == "grpo"
    assert group_of("sft-arith-seed0,trainer.learning_rate=0.001", {"task": {"name": "arith"}, "trainer": {"name": "sft"}}) \
        == "sft,trainer.learning_rate=0.001"
    arith = {"name": "arith"}
    assert group_of("sft-arith-seed1", {"task": arith, "trainer": {"name": "sft", "target": "swapped"}}) == "sft-swapped"
    assert group_of("sft-arith-seed1", {"task": arith, "trainer": {"name": "sft", "target": "trace"}}) == "sft"
    grpo = {"name": "grpo", "top_entropy_quantile": 1.0}  # GRPO's own default: not a variant
    assert group_of("grpo-arith-seed0", {"task": arith, "trainer": grpo}) == "grpo"
    assert group_of("entropy_rlvr-arith-seed0", {"task": arith, "trainer": {**grpo, "name": "entropy_rlvr"}}) == \
        "entropy_rlvr-q1.0"
    assert group_of("sft-arith-seed0", {"trainer": {"name": "sft"},
                                        "task": {"name": "arith", "cue_rate": 1.0, "cue_accuracy": 0.1}}) == \
        "sft-cue1.0-cueacc0.1"
    # a name someone chose is kept as it is
    assert group_of("entropy_rlvr-q0.5-seed0", {"task": arith, "trainer": {"name": "entropy_rlvr"}}) == "entropy_rlvr-q0.5"
    assert group_of("lab_shortcut-seed1", {"task": {**arith, "cue_rate": 1.0}, "trainer": {"name": "sft"}}) == \
        "lab_shortcut"
    assert group_of("base") == group_of("base-seed2") == "base"


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
    row = next(line for line in report.splitlines() if line.startswith("| accuracy ↑ |"))
    assert "n=3 seeds" in row and row.rstrip(" |").endswith("*")  # sft differs from base (Welch over seeds, Holm)
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert {r["group"] for r in rows} == {"base", "sft"}
    sft = next(r for r in rows if r["group"] == "sft" and r["metric"] == "accuracy")
    assert float(sft["change"]) == pytest.approx(0.2933, abs=1e-3) and float(sft["change_low"]) > 0
    # what each row means comes from the probes' declarations (pass_at_k/{k} covers pass_at_k/8)
    assert "| calibration/ece | lower |" in report and "| pass_at_k/8 | higher |" in report
    assert "| cot/steps_mean | (a description) |" in report


@pytest.mark.slow
def test_compare_on_a_directory_without_runs(tmp_path):
    proc = run_cli("reasonlab.compare", str(tmp_path))
    assert proc.returncode != 0 and proc.stderr.strip().splitlines()[-1].startswith("error: no complete run")


@pytest.mark.slow
def test_compare_sweep_with_a_baseline_elsewhere_tests_the_claims(tmp_path, base_run):
    """`experiment=compare` (trainers x seeds from one base) then `launch.compare --baseline`: runs
    named sft-arith-seedN group as `sft`, the base comes from its own directory, and claim 1 is tested."""
    args = [a for a in TINY if not a.startswith("budget.max_steps")]
    out = tmp_path / "sweep"
    proc = run_cli("reasonlab.train", "-m", "experiment=compare", "trainer=sft,grpo", "seed=0,1", "budget.max_steps=1",
                   f"model.init_from={base_run}", "eval.probes=[info_gain,early_answer,cot,calibration,step_validity]",
                   *args, *ARITH_SMALL, f"output_root={out}", timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert sorted(p.name for p in out.glob("*-seed*")) == [
        "grpo-arith-seed0", "grpo-arith-seed1", "sft-arith-seed0", "sft-arith-seed1"]
    proc = run_cli("reasonlab.compare", str(out), "--baseline", str(base_run), "--margin", "0.1")
    assert proc.returncode == 0, proc.stderr
    report = (out / "report.md").read_text()
    assert "| metric | base | grpo | sft |" in report and "n=8×2" in report
    claim1 = next(line for line in report.splitlines() if line.startswith("| 1. SFT raises accuracy"))
    assert "**not run**" not in claim1 and "accuracy: sft − base" in claim1, claim1
    assert "margin of ±0.1" in report
    for fig in ("forest.png", "accuracy_vs_reliance.png", "training_curves.png", "reliability.png", "pass_at_k.png",
                "early_answering.png", "accuracy_by_steps.png"):
        assert (out / fig).stat().st_size > 1000, fig
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 7 and "<table>" in html
    assert (out / "summary.csv").read_text().startswith("group,metric,mean,low,high,n_problems,n_seeds,change")
    bad = run_cli("reasonlab.compare", str(out), "--baseline", str(tmp_path / "nowhere"))
    assert bad.returncode != 0 and bad.stderr.strip().splitlines()[-1].startswith("error: --baseline: not a directory")


def test_report_figures_go_to_wandb_offline(tmp_path, monkeypatch):
    from reasonlab.launch.figures import log_report_to_wandb

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    for seed, acc in enumerate([0.5, 0.6]):
        _fake_run(tmp_path, f"base-seed{seed}", acc)
    report = compare(tmp_path)
    log_report_to_wandb(tmp_path, report)
    images = list(tmp_path.glob("wandb/offline-run-*/files/media/images/report/*.png"))
    assert {p.name.split("_")[0] for p in images} >= {"training", "early", "reliability"}


def test_report_prints_n_and_chance_and_marks_measures_that_failed_validation(tmp_path, monkeypatch):
    import reasonlab.eval.stats as stats_module

    monkeypatch.setattr(stats_module, "validation_table", lambda: {
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
    main = next(line for line in report.splitlines() if line.startswith("| faithfulness/filler_sensitivity ↑ (chance 0.900) |"))
    assert "(not validated)" in main
    # another task: arith's verdicts do not carry over
    for d in tmp_path.iterdir():
        if (d / "metrics.json").is_file():
            m = json.loads((d / "metrics.json").read_text())
            (d / "metrics.json").write_text(json.dumps({**m, "eval/task": "gsm8k"}))
    assert "not validated" not in compare(tmp_path).read_text().split("## Faithfulness against chance")[1].split("##")[0]
