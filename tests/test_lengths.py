"""No silent truncation: SFT's and DPO's max_length fits the data unless set, and every example a
set max_length still cuts is counted, logged, and refused above trainer.max_truncated."""

import pytest

from reasonlab.core import ConfigError
from reasonlab.launch.train import train
from reasonlab.models.tokenizer import build_char_tokenizer
from reasonlab.tasks import load_task
from reasonlab.tasks.variants import sft_completions


def _lengths():
    """Each training example's tokens (prompt + completion + end token), counted here independently."""
    task = load_task("arith", train_size=64, test_size=8, ood_size=8)
    tok = build_char_tokenizer(task.alphabet())
    examples = task.examples("train")
    completions = sft_completions(task, examples, "trace", seed=0)
    return [len(tok(ex.prompt + c, add_special_tokens=False)["input_ids"]) + 1 for ex, c in zip(examples, completions)]


def test_sft_fits_the_longest_example_by_default(run_cfg):
    result = train(run_cfg("trainer=sft", "eval.probes=[]", "run_name=fit"))
    lengths = _lengths()
    assert result["train/max_length"] == max(lengths) and result["train/longest_example"] == max(lengths)
    assert result["train/truncated"] == 0 and result["train/truncated_share"] == 0


def test_cut_examples_are_counted(run_cfg, caplog):
    lengths = sorted(_lengths())
    limit = lengths[len(lengths) // 2]  # about half are longer
    cut = sum(n > limit for n in lengths)
    assert 0 < cut < len(lengths)
    with caplog.at_level("WARNING", logger="reasonlab"):
        result = train(run_cfg("trainer=sft", "eval.probes=[]", "run_name=cut", f"trainer.max_length={limit}",
                               "trainer.max_truncated=1.0"))
    assert result["train/truncated"] == cut and result["train/max_length"] == limit
    assert result["train/truncated_share"] == pytest.approx(cut / len(lengths), abs=1e-4)
    assert f"{cut} of {len(lengths)} training examples" in caplog.text


def test_too_many_cut_examples_refuse_the_run(run_cfg, tmp_path):
    limit = min(_lengths()) - 1  # every example is cut
    with pytest.raises(ConfigError, match=r"64 of 64 training examples \(100\.0%\) are longer than max_length "
                                          rf"{limit} \(trainer.max_length={limit};.*trainer.max_truncated"):
        train(run_cfg("trainer=sft", "eval.probes=[]", "run_name=refused", f"trainer.max_length={limit}"))
    assert not (tmp_path / "refused" / "metrics.json").exists() and not (tmp_path / "refused" / "final").exists()


@pytest.mark.parametrize("bad", ["trainer.max_length=0", "trainer.max_truncated=1.5"])
def test_bad_length_settings(run_cfg, bad):
    from reasonlab.launch.schema import validate

    with pytest.raises(ConfigError, match=bad.split("=")[0]):
        validate(run_cfg("trainer=sft", bad))
