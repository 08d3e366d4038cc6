"""The benchmarks' own code paths at toy size (bench/ is never timed here)."""

import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT))


def test_benchmark_shape_builds_saves_and_evaluates(tmp_path):
    """bench/gpu.sh's base: a Qwen-like shape (grouped-query attention, embedding padded past the
    tokenizer) built by model=tiny, saved as a run, loaded back and put through every probe."""
    from bench.common import SHAPES, make_base, shape_overrides
    from eval.evaluator import ALL_PROBES, evaluate
    from models import load_pretrained
    from tasks import load_task

    make_base("toy", str(tmp_path / "base"), dtype="float32")
    model, tok = load_pretrained(str(tmp_path / "base"))
    assert model.config.num_key_value_heads == SHAPES["toy"]["num_kv_heads"] < model.config.num_attention_heads
    assert model.config.vocab_size == SHAPES["toy"]["vocab_size"] > len(tok)
    assert "model.num_kv_heads=2" in shape_overrides("toy")
    assert tok.decode([tok.convert_tokens_to_ids("7"), len(tok) + 5]) == "7"  # ids past the tokenizer decode to nothing
    cfg = dict(num_samples=4, max_new_tokens=24, batch_size=8, progress=False, seed=0, answer_max_tokens=4,
               truncation_rows=3, pass_at_k=dict(n=2, k=[1, 2], prompts=2, temperature=1.0), entropy_threshold=None,
               probes=ALL_PROBES)
    metrics, samples, curves = evaluate(model, tok, load_task("arith", test_size=4, ood_size=4), cfg)
    assert metrics["eval/num_samples"] == 4 and len(samples) == 8
    assert set(curves["probe_seconds"]) == set(ALL_PROBES)
