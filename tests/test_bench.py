"""The benchmarks' own code paths at toy size (bench/ is never timed here)."""

import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT))


@pytest.mark.slow
def test_benchmark_shape_builds_saves_and_evaluates(tmp_path):
    """bench/gpu.sh's base: a Qwen-like shape (grouped-query attention, embedding padded past the
    tokenizer) built by model=tiny, saved as a run, loaded back and put through every probe."""
    from bench.common import SHAPES, make_base, shape_overrides
    from reasonlab.eval.config import EvalConfig
    from reasonlab.eval.evaluator import evaluate
    from reasonlab.models import load_pretrained
    from reasonlab.tasks import load_task

    make_base("toy", str(tmp_path / "base"), dtype="float32")
    model, tok = load_pretrained(str(tmp_path / "base"))
    assert model.config.num_key_value_heads == SHAPES["toy"]["num_kv_heads"] < model.config.num_attention_heads
    assert model.config.vocab_size == SHAPES["toy"]["vocab_size"] > len(tok)
    assert "model.num_kv_heads=2" in shape_overrides("toy")
    assert tok.decode([tok.convert_tokens_to_ids("7"), len(tok) + 5]) == "7"  # ids past the tokenizer decode to nothing
    cfg = dict(num_samples=4, max_new_tokens=24, batch_size=8, progress=False, answer_max_tokens=4,
               truncation_rows=3, pass_at_k=dict(n=2, k=[1, 2], prompts=2))
    metrics, samples, curves = evaluate(model, tok, load_task("arith", test_size=4, ood_size=4), cfg)
    assert metrics["eval/num_samples"] == 4 and len(samples) == 8
    assert set(curves["probe_seconds"]) == {*EvalConfig.default().probes, "answer"}


@pytest.mark.slow
def test_eval_parts_counts_each_part_of_the_suite():
    """bench/eval_parts.py at toy size: every part is timed and its work counted (prefix sharing
    never computes more tokens than it samples)."""
    import re

    from bench.eval_parts import parts, unit_costs
    from reasonlab.models import build_tiny
    from reasonlab.tasks import load_task

    task = load_task("arith", train_size=10, test_size=6, ood_size=6)
    model, tok = build_tiny(dict(hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2,
                                 max_position_embeddings=256), task, seed=0)
    cfg = dict(num_samples=6, max_new_tokens=16, batch_size=8, progress=False, seed=0, answer_max_tokens=3,
               truncation_rows=8, pass_at_k=dict(n=3, k=[1, 3], prompts=2, temperature=1.0), entropy_threshold=None)
    rows = parts(model.eval(), tok, task, cfg, repeats=1)
    assert [r[0] for r in rows] == ["(a) accuracy-only", "pass@k", "mistakes", "packed pass"]
    assert all(t > 0 for _, _, t in rows)
    sampled, distinct = (int(x.replace(",", "")) for x in re.findall(r"([\d,]+) (?:sampled tokens|distinct)", rows[1][1]))
    assert 0 < distinct <= sampled
    assert rows[0][1].startswith("12 greedy completions")
    scored, forced = (int(x) for x in re.findall(r"(\d+) (?:answer log-probs|forced answers)", rows[3][1]))
    assert scored >= 6 and forced >= 0  # info gain scores at least each test chain's prompt (an untrained
    # model writes no answer, so nothing is forced)
    step, token = unit_costs(model, rows=4, context=8, packed=16)
    assert step > 0 and token > 0


def test_forward_seconds_counts_each_entry_into_the_model_once():
    """bench/eval_speed.py's split of wall time: a call through the whole model counts once (its
    decoder and head inside it are not counted again), the decoder and head called on their own
    (as the truncation pass does) count once each, and the hooks are gone afterwards."""
    import torch

    from bench.common import forward_seconds
    from reasonlab.models import build_tiny
    from reasonlab.tasks import load_task

    task = load_task("arith", train_size=4, test_size=2, ood_size=2)
    model, _ = build_tiny(dict(hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2,
                               max_position_embeddings=64), task, seed=0)
    ids = torch.tensor([[3, 4, 5, 6]])

    def work():
        with torch.no_grad():
            model(input_ids=ids)
            model(input_ids=ids)
            hidden = model.get_decoder()(input_ids=ids).last_hidden_state
            return model.get_output_embeddings()(hidden[:, -1])

    out, wall, inside, calls = forward_seconds(model, work)
    assert out.shape == (1, model.config.vocab_size)
    assert calls == 4
    assert 0 < inside <= wall
    assert forward_seconds(model, lambda: None)[3] == 0  # no hook left behind counts anything
    assert not model._forward_hooks and not model._forward_pre_hooks
