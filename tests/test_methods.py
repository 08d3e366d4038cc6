"""The RL variants: rewards on hand-written completions, the entropy mask, the RLSF pair builder,
the RLAG schedule, and 2-step runs of every method that change the weights."""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from reasonlab.launch.train import train
from reasonlab.rewards import REWARDS, AccuracyReward, ConfidenceReward, RationalityReward
from reasonlab.rewards.base import Reward, RewardError
from reasonlab.tasks import load_task
from reasonlab.trainers.rlag import schedule
from reasonlab.trainers.rlsf import build_preference_pairs

PROMPT = "a=7;b=a+5;c=b*3;d=c-4;d?"
COLS = {"answer": ["2"], "raw_prompt": [PROMPT], "example_id": ["x"], "knowledge": ["7+5=2;2*3=6;6-4=2"]}


@pytest.fixture(scope="module")
def task():
    return load_task("arith", train_size=50, test_size=5, ood_size=5)


@pytest.mark.parametrize(
    "completion, accuracy, rationality",
    [
        ("b=a+5=7+5=2;c=b*3=2*3=6;d=c-4=6-4=2;A:2", 1.0, 1.0),  # right answer, every step valid
        ("b=a+5=7+5=2;c=b*3=2*3=7;d=c-4=7-4=3;A:3", 0.0, 1 / 3),  # one wrong result, then consistent
        ("b=a+5=7+5=3;c=b*3=3*3=9;d=c-4=6-4=2;A:2", 1.0, 1 / 3),  # right answer through wrong steps
        ("A:2", 1.0, 0.0),  # no explanation
        ("garbage", 0.0, 0.0),
    ],
)
def test_rlag_reward_parts(task, completion, accuracy, rationality):
    assert AccuracyReward(task)([PROMPT], [completion], **COLS) == [accuracy]
    assert RationalityReward(task)([PROMPT], [completion], **COLS) == [pytest.approx(rationality)]


class SetLogits(torch.nn.Module):
    """A 'model' whose next-token distribution is fixed: p(top1) - p(top2) is known."""

    def __init__(self, vocab, top1, top2):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        probs = torch.full((vocab,), (1 - top1 - top2) / (vocab - 2))
        probs[5], probs[6] = top1, top2
        self.register_buffer("logits", probs.log())

    def forward(self, input_ids, attention_mask=None, position_ids=None, **kw):
        from types import SimpleNamespace

        return SimpleNamespace(logits=self.logits.expand(*input_ids.shape, -1).clone())


def test_rlsf_confidence_reward_on_set_logits(task):
    from reasonlab.models.tokenizer import build_char_tokenizer

    tok = build_char_tokenizer(task.alphabet())
    reward = ConfidenceReward(task)
    reward.bind(SetLogits(len(tok), 0.7, 0.2), tok)
    out = reward([PROMPT, PROMPT], ["b=a+5=7+5=2;A:2", "no answer here"], answer=["9", "9"])
    assert out[0] == pytest.approx(0.5, abs=1e-5)  # 0.7 - 0.2, whatever the gold answer says
    assert out[1] == 0.0  # no answer: no confidence


def test_rlsf_preference_pairs():
    # (confidences, threshold) -> pairs (i preferred over j)
    assert build_preference_pairs([0.95, 0.5, 0.92], 0.9) == [(0, 1), (0, 2), (2, 1)]
    assert build_preference_pairs([0.8, 0.5], 0.9) == []  # nobody confident enough
    assert build_preference_pairs([0.95, None], 0.9) == [(0, 1)]  # no answer counts as 0
    assert build_preference_pairs([0.95, 0.95], 0.9) == []  # ties give no preference
    assert build_preference_pairs([0.99, 0.95, 0.1], 0.9, max_pairs=2) == [(0, 2), (0, 1)]  # widest margin first


def test_rlag_schedule():
    assert schedule(10, every=4, ratio=0.5) == [True, True, False, False] * 2 + [True, True]
    assert not any(schedule(5, every=3, ratio=0.0)) and all(schedule(5, every=3, ratio=1.0))


def test_reward_that_raises_names_itself(task):
    class Broken(Reward):
        name = "broken"

        def score_one(self, completion, example):
            raise ZeroDivisionError("boom")

    with pytest.raises(RewardError, match=r"reward 'broken' failed on sample 'x'.*ZeroDivisionError: boom"):
        Broken(task)([PROMPT], ["A:2"], **COLS)
    assert set(REWARDS.names()) >= {"accuracy", "format", "confidence", "rationality"}


def _changed(a, b):
    return sum(not torch.equal(a[k], b[k]) for k in b)


GRPO_SMALL = ["trainer.num_generations=4", "trainer.batch_size=16", "budget.max_completion_length=64", "logging_steps=1"]


@pytest.mark.parametrize("trainer, extra", [
    ("entropy_rlvr", []),
    ("rlag", ["trainer.augment_every=2"]),
    ("rlsf", []),
    ("rlsf", ["trainer.mode=dpo", "trainer.prompts=8", "trainer.samples_per_prompt=4", "trainer.threshold=0.3"]),
])
def test_two_step_run_of_each_method(run_cfg, base_run, trainer, extra):
    cfg = run_cfg(f"trainer={trainer}", f"model.init_from={base_run}", *GRPO_SMALL, *extra,
                  f"run_name={trainer}-{len(extra)}", "eval.probes=[step_validity]")
    result = train(cfg)
    assert result["trainer"] == trainer and result["train/steps"] == 2
    before = load_file(str(base_run / "final" / "model.safetensors"))
    after = load_file(str(Path(cfg.run_dir) / "final" / "model.safetensors"))
    assert _changed(before, after) > 0
    if trainer == "rlsf" and not extra:
        assert "rewards/confidence/mean" in result["train/last_log"] and "rewards/accuracy/mean" in result["train/last_log"]
    if trainer == "rlag":
        assert "rewards/rationality/mean" in result["train/last_log"]
    if "trainer.mode=dpo" in extra:  # max_length fit to the preference pairs: none cut
        assert result["train/truncated"] == 0 and result["train/max_length"] == result["train/longest_example"]


@pytest.mark.parametrize("trainer, quantile", [("entropy_rlvr", 0.2), ("grpo", 1.0)])
def test_entropy_mask_share(run_cfg, base_run, trainer, quantile):
    cfg = run_cfg(f"trainer={trainer}", f"model.init_from={base_run}", *GRPO_SMALL, "trainer.batch_size=16",
                  "eval.probes=[]", f"run_name=mask-{trainer}")
    result = train(cfg)
    share = result["train/last_log"]["entropy_mask/grad_token_share"]
    assert share == pytest.approx(quantile, abs=0.05)
    if trainer == "entropy_rlvr":
        assert result["train/last_log"]["entropy_mask/threshold"] > 0


def test_rationality_falls_back_to_likelihood_without_a_checker(tmp_path):
    """A task with no step checker: rationality = exp(mean log-prob) of the explanation given the
    knowledge-augmented prompt, under the bound model."""
    from reasonlab.models import build_tiny
    from reasonlab.rewards.rationality import augment

    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"prompt": "q?", "answer": "4", "steps": ["2+2=4"], "knowledge": "2+2=4"}) + "\n")
    task = load_task("jsonl", path=str(data), test_fraction=0.0)
    model, tok = build_tiny(dict(hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2,
                                 max_position_embeddings=64), task, seed=0)
    reward = RationalityReward(task)
    reward.bind(model.eval(), tok)
    cols = {"answer": ["4"], "raw_prompt": ["q?"], "example_id": ["0"], "knowledge": ["2+2=4"]}
    value = reward(["q?"], ["2+2=4\nA:4"], **cols)[0]
    ids = tok(augment("2+2=4", "q?") + "2+2=4\n", return_tensors="pt", add_special_tokens=False)["input_ids"]
    n_ctx = len(tok(augment("2+2=4", "q?"), add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1], -1)
    expected = logp.gather(-1, ids[0, 1:, None]).squeeze(-1)[n_ctx - 1:].mean().exp().item()
    assert value == pytest.approx(expected, rel=1e-5) and 0 < value < 1


@pytest.mark.parametrize("value", [False, True])
def test_log_completions_reaches_grpo_config(run_cfg, tmp_path, value):
    """trainer.log_completions turns TRL's completions table on (off by default)."""
    from reasonlab.tasks import load_task
    from reasonlab.trainers.base import RunContext
    from reasonlab.trainers.grpo import grpo_args

    cfg = run_cfg("trainer=grpo", *([f"trainer.log_completions={str(value).lower()}"] if value else []))
    ctx = RunContext(cfg, load_task("arith", train_size=16, test_size=4, ood_size=4), None, None, tmp_path, [])
    assert grpo_args(ctx).log_completions is value
