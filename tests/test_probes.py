"""The evaluator measures what it claims: known answers on hand-built models, and the fast
(prefix-sharing) path equal to a straightforward computation."""

import re

import pytest
import torch

from eval.evaluator import evaluate
from eval.probes.calibration import ece
from eval.probes.early_answer import area_over_curve
from eval.probes.pass_at_k import pass_at_k
from eval.truncation import Chain, TruncationResult, answer_logprobs, answer_logprobs_naive, forced_answers, forced_answers_naive
from models import build_tiny
from models.scoring import CompletionStats
from tasks import load_task

CFG = dict(num_samples=40, max_new_tokens=48, batch_size=16, progress=False, seed=0, answer_max_tokens=4,
           pass_at_k=dict(n=4, k=[1, 4], prompts=10, temperature=1.0), entropy_threshold=None,
           probes=["pass_at_k", "info_gain", "early_answer", "filler", "paraphrase", "mistake", "step_validity", "cot",
                   "calibration", "entropy"])
STEP = re.compile(r"([a-z]) ?= ?[a-z] ?[+\-*] ?\d+ ?= ?(\d+) ?([+\-*]) ?(\d+) ?= ?(\d+)")


class FakeBackend:
    """A 'model' whose answers are a known function of the text (arith task only)."""

    def __init__(self, task, follows_steps: bool):
        self.task, self.follows = task, follows_steps

    def _program(self, text):
        prompt = text[: text.index("?") + 1]
        return self.task.program_values(prompt), text[len(prompt):]

    def answer(self, context):
        program, reasoning = self._program(context)
        if not self.follows:
            return str(list(program.values())[-1][3])  # the true answer, whatever the reasoning says
        stated = STEP.findall(reasoning)
        return stated[-1][4] if stated else str(list(program.values())[0][3])  # last stated result

    def continue_chain(self, context):
        program, reasoning = self._program(context)
        names = list(program)
        if not self.follows:
            steps = [] if reasoning else [f"{v}={r}{op}{k}={program[r][3]}{op}{k}={val}"
                                          for v, (r, op, k, val) in list(program.items())[1:]]
            return ";".join([*steps, f"A:{list(program.values())[-1][3]}"])
        stated = STEP.findall(reasoning)
        var, value = (stated[-1][0], int(stated[-1][4])) if stated else (names[0], program[names[0]][3])
        out = []
        for name in names[names.index(var) + 1:]:
            ref, op, k, _ = program[name]
            new = {"+": value + k, "-": value - k, "*": value * k}[op] % self.task.modulus
            out.append(f"{name}={ref}{op}{k}={value}{op}{k}={new}")
            value = new
        return ";".join([*out, f"A:{value}"])

    def generate(self, prompts, max_new_tokens, *, do_sample=False, temperature=1.0, n=1, seed=None, desc=None):
        return [self.continue_chain(p) for p in prompts for _ in range(n)]

    def truncations(self, chains, *, logprobs, answers):
        from eval.truncation import prefixes

        res = TruncationResult([[] for _ in chains], [[] for _ in chains])
        for c, chain in enumerate(chains):
            text, ends = prefixes(self.task, chain)
            for end in ends:
                ans = self.answer(text[:end] + self.task.answer_prefix)
                res.answers[c].append(ans)
                if chain.target is not None:
                    res.logprobs[c].append(0.0 if ans == chain.target else -2.0)
        return res

    def completion_stats(self, prompts, completions):
        return [CompletionStats([0.1] * len(c), 0.9, 0.95, 1) for c in completions]

    def num_tokens(self, text):
        return len(text)


@pytest.fixture(scope="module")
def task():
    return load_task("arith", train_size=100, test_size=40, ood_size=10)


def test_answer_that_ignores_reasoning_scores_zero_faithfulness(task):
    m, _, _ = evaluate(None, None, task, CFG, backend=FakeBackend(task, follows_steps=False))
    assert m["accuracy"] == 1.0
    assert m["faithfulness/early_answer_aoc"] == 0.0
    assert m["faithfulness/filler_sensitivity"] == 0.0
    assert m["faithfulness/mistake_sensitivity"] == 0.0
    assert m["info_gain/total"] == 0.0  # the gold answer is as likely with no steps as with all
    assert m["reasoning/step_validity"] == 1.0 and m["reasoning/right_answer_wrong_steps"] == 0.0


def test_answer_that_follows_its_last_step_is_faithful(task):
    m, samples, curves = evaluate(None, None, task, CFG, backend=FakeBackend(task, follows_steps=True))
    assert m["accuracy"] == 1.0
    assert m["faithfulness/early_answer_aoc"] > 0.3
    assert m["faithfulness/filler_sensitivity"] > 0.5
    assert m["faithfulness/mistake_followed"] == 1.0
    # below 1 only where the program maps the wrong value to the same answer (e.g. x*5 mod 10)
    assert m["faithfulness/mistake_sensitivity"] > 0.5
    assert m["faithfulness/paraphrase_consistency"] == 1.0  # the fake reads reworded steps too
    assert m["info_gain/total"] > 0
    for n, curve in curves["early_answer"].items():
        assert curve["match_rate"][-1] == 1.0  # with all steps, the same answer
    rec = next(s for s in samples if s["split"] == "test")
    assert len(rec["info_gain/step_gains"]) == len(rec["steps"])


def test_completion_without_answer_or_steps_is_recorded_not_crashed(task):
    class Mute(FakeBackend):
        def generate(self, prompts, max_new_tokens, **kw):
            return ["???" for _ in prompts for _ in range(kw.get("n", 1))]

    m, samples, _ = evaluate(None, None, task, CFG, backend=Mute(task, follows_steps=True))
    assert m["accuracy"] == 0.0
    assert m["faithfulness/early_answer_aoc"] is None and "early_answer" in m["eval/notes"]
    assert all(s["answer"] is None for s in samples)


@pytest.mark.parametrize("n, c, k, expected", [
    (8, 0, 1, 0.0), (8, 8, 1, 1.0), (8, 2, 1, 0.25), (8, 1, 8, 1.0),
    (4, 1, 2, 0.5),  # 1 - C(3,2)/C(4,2) = 1 - 3/6
    (5, 2, 3, 0.9),  # 1 - C(3,3)/C(5,3) = 1 - 1/10
])
def test_pass_at_k_unbiased_estimator(n, c, k, expected):
    assert pass_at_k(n, c, k) == pytest.approx(expected)


def test_ece_and_aoc_on_fixed_numbers():
    # two bins: [0.9, 0.9] with accuracy 0.5 -> gap 0.4; [0.25] with accuracy 1 -> gap 0.75
    assert ece([0.9, 0.9, 0.25], [1.0, 0.0, 1.0]) == pytest.approx(2 / 3 * 0.4 + 1 / 3 * 0.75)
    assert area_over_curve([1.0, 1.0, 1.0]) == 0.0
    assert area_over_curve([0.0, 0.0, 1.0]) == pytest.approx(0.75)


@pytest.fixture(scope="module")
def tiny():
    task = load_task("arith", train_size=10, test_size=10, ood_size=5)
    cfg = dict(hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2, max_position_embeddings=160)
    model, tok = build_tiny(cfg, task, seed=0)
    return task, model.eval(), tok


def test_info_gain_cached_equals_direct_two_step(tiny):
    task, model, tok = tiny
    chain = Chain("a=7;b=a+5;c=b*3;c?", ["b=a+5=7+5=2", "c=b*3=2*3=6"], "6")
    fast = answer_logprobs(model, tok, task, [chain])[0]
    direct = []
    for ctx in ["a=7;b=a+5;c=b*3;c?", "a=7;b=a+5;c=b*3;c?b=a+5=7+5=2;", "a=7;b=a+5;c=b*3;c?b=a+5=7+5=2;c=b*3=2*3=6;"]:
        ids = tok(ctx + "A:6", return_tensors="pt", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits[0], -1)
        direct.append(logp[ids.shape[1] - 2, ids[0, -1]].item())  # only the answer token "6"
    assert fast == pytest.approx(direct, abs=1e-4)


def test_batched_truncations_equal_naive_on_many_chains(tiny):
    task, model, tok = tiny
    chains = [Chain(ex.prompt, list(ex.steps), ex.answer) for ex in task.examples("test")]
    chains.append(Chain(chains[0].prompt, [], "3"))  # no steps
    chains.append(Chain(chains[1].prompt, chains[1].steps, "12"))  # two-token answer
    fast, slow = answer_logprobs(model, tok, task, chains, batch_size=4), answer_logprobs_naive(model, tok, task, chains)
    assert [len(r) for r in fast] == [len(r) for r in slow]
    assert max(abs(a - b) for ra, rb in zip(fast, slow) for a, b in zip(ra, rb)) < 1e-4
    assert forced_answers(model, tok, task, chains, max_tokens=3, batch_size=4) == forced_answers_naive(model, tok, task, chains, max_tokens=3)


def test_reader_with_its_own_tokenizer(tiny):
    """A reader whose tokenizer numbers characters differently re-tokenizes the text."""
    from models.tokenizer import build_char_tokenizer

    task, model, tok = tiny
    reader_tok = build_char_tokenizer("\t\x0b" + task.alphabet())  # two extra characters that sort first shift every id
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    reader = LlamaForCausalLM(LlamaConfig(vocab_size=len(reader_tok), hidden_size=32, intermediate_size=64,
                                          num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                          max_position_embeddings=160, pad_token_id=reader_tok.pad_token_id)).eval()
    assert reader_tok("b")["input_ids"] != tok("b")["input_ids"]
    cfg = {**CFG, "num_samples": 5, "probes": ["info_gain"]}
    m, samples, _ = evaluate(model, tok, task, cfg, reader=(reader, reader_tok))
    chains = [Chain(s["prompt"], s["steps"], s["gold"]) for s in samples if s["split"] == "test"]
    expected = answer_logprobs(reader, reader_tok, task, chains)
    got = [s["info_gain/step_logprobs"] for s in samples if s["split"] == "test"]
    for e, g in zip(expected, got):
        if g is not None:
            assert g == pytest.approx(e, abs=1e-5)
    assert "info_gain_self/total" in m


def test_pruning_decoder_equals_model_generate_greedy(tiny, monkeypatch):
    """The evaluator's decode loop (finished rows leave the batch) gives model.generate's greedy text."""
    import eval.generation as gen

    task, model, tok = tiny
    prompts = [ex.prompt for ex in task.examples("test")] * 3
    fast = gen.generate(model, tok, prompts, 40, batch_size=7)
    monkeypatch.setattr(gen, "_decode", lambda *a, **k: None)  # force the model.generate path
    assert gen.generate(model, tok, prompts, 40, batch_size=7) == fast


def test_sampling_is_seeded_and_n_per_prompt(tiny):
    from eval.generation import generate

    task, model, tok = tiny
    prompts = [ex.prompt for ex in task.examples("test")[:4]]
    a = generate(model, tok, prompts, 20, do_sample=True, num_return_sequences=3, seed=1, batch_size=6)
    assert len(a) == 12 and a == generate(model, tok, prompts, 20, do_sample=True, num_return_sequences=3, seed=1, batch_size=6)
    assert a != generate(model, tok, prompts, 20, do_sample=True, num_return_sequences=3, seed=2, batch_size=6)
    assert len(set(a[:3])) > 1  # the n samples of one prompt differ


def test_stats_recorded_while_decoding_equal_a_second_forward(base_run):
    """Calibration and entropy read the distributions the greedy tokens were chosen from; they equal
    a teacher-forced forward over prompt + completion (a trained model, so answers are written)."""
    from eval.backend import LMBackend
    from models import load_pretrained
    from models.scoring import completion_stats

    task = load_task("arith", train_size=10, test_size=12, ood_size=5)
    model, tok = load_pretrained(str(base_run))
    prompts = [ex.prompt for ex in task.examples("test")]
    backend = LMBackend(model, tok, task, batch_size=4)
    texts, decoded = backend.generate_with_stats(prompts, 80)
    forward = completion_stats(model, tok, task, prompts, texts)
    assert all(d is not None for d in decoded) and sum(d.answer_tokens > 0 for d in decoded) >= 6
    for d, f in zip(decoded, forward):
        assert d.answer_tokens == f.answer_tokens and len(d.reasoning_entropies) == len(f.reasoning_entropies)
        assert d.reasoning_entropies == pytest.approx(f.reasoning_entropies, abs=1e-4)
        for a, b in ((d.answer_confidence, f.answer_confidence), (d.answer_prob, f.answer_prob)):
            assert (a is None and b is None) or a == pytest.approx(b, abs=1e-4)
