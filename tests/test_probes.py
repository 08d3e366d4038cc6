"""The evaluator measures what it claims: known answers on hand-built models, and the fast
(prefix-sharing) path equal to a straightforward computation."""

import re

import pytest
import torch

from eval.evaluator import evaluate
from eval.probes.calibration import ece
from eval.probes.early_answer import area_over_curve
from eval.probes.pass_at_k import pass_at_k
from eval.truncation import Chain, TruncationResult, analyze_truncations, answer_logprobs, answer_logprobs_naive, forced_answers, forced_answers_naive
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

        res = TruncationResult([[] for _ in chains], [[] for _ in chains], [[] for _ in chains])
        for c, chain in enumerate(chains):
            res.branch_answers[c] = [self.answer(b + self.task.answer_prefix) for b in chain.branches]
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


def test_branches_packed_with_the_chain_equal_their_own_encoding(base_run):
    """The filler and paraphrase probes' contexts ride along as branches of the chain's packed row
    (sharing its prompt tokens); each branch's forced answer equals decoding that context alone."""
    from eval.probes.filler import FILLER
    from models import load_pretrained

    task = load_task("arith", train_size=10, test_size=12, ood_size=1)
    model, tok = load_pretrained(str(base_run))
    sep, chains, alone = task.step_separator, [], []
    for ex in task.examples("test"):
        steps = list(ex.steps)
        branches = [ex.prompt + FILLER * 12, ex.prompt + sep.join(task.paraphrase_steps(steps)) + sep,
                    ex.prompt + sep.join(steps) + sep]  # the last: the chain's own full text
        chains.append(Chain(ex.prompt, steps, ex.answer, branches))
        alone += [Chain(b, [], None) for b in branches]
    res = analyze_truncations(model, tok, task, chains, batch_size=5, max_rows=20)
    got = [a for row in res.branch_answers for a in row]
    assert got == [row[0] for row in forced_answers_naive(model, tok, task, alone)]
    assert sum(a is not None for a in got) >= len(got) // 2  # a trained model writes answers
    assert [row[-1] for row in res.answers] == [row[-1] for row in res.branch_answers]
    without = analyze_truncations(model, tok, task, [Chain(c.prompt, c.steps, c.target) for c in chains], batch_size=5)
    assert without.answers == res.answers and without.branch_answers == [[] for _ in chains]
    assert max(abs(a - b) for ra, rb in zip(without.logprobs, res.logprobs) for a, b in zip(ra, rb)) < 1e-5

@pytest.mark.parametrize("mergeable", [True, False])
def test_speculative_forced_answers_equal_naive_decoding(base_run, monkeypatch, mergeable):
    """Forced answers are read off the packed forward as far as the greedy answer agrees with the
    guessed (target) answer, and only the points that depart decode on, several packed batches
    stacked into one decoding loop (or, for a cache that cannot be stacked, batch by batch).
    Whatever the target (the gold answer, a wrong one, one longer than the answer, none)
    the answers equal plain greedy decoding of every truncated context."""
    import eval.truncation as truncation
    from models import load_pretrained

    if not mergeable:
        monkeypatch.setattr(truncation, "_mergeable", lambda cache: False)
    task = load_task("arith", train_size=10, test_size=16, ood_size=1)
    model, tok = load_pretrained(str(base_run))
    chains = []
    for i, ex in enumerate(task.examples("test")):
        wrong = str((int(ex.answer) + 3) % 10)
        target = [ex.answer, wrong, ex.answer + "7", ex.answer[:-1] or None][i % 4]
        chains.append(Chain(ex.prompt, list(ex.steps), target, [ex.prompt + " ..." * 5]))
    naive = forced_answers_naive(model, tok, task, chains, max_tokens=5)
    for logprobs in (True, False):  # the answer reads the score block / a block of its own
        for max_rows in (None, 12):  # one packed batch / several, stacked for decoding
            res = analyze_truncations(model, tok, task, chains, logprobs=logprobs, max_answer_tokens=5, batch_size=8,
                                      max_rows=max_rows)
            assert res.answers == naive, (logprobs, max_rows)
    got = [row[0] for row in res.branch_answers]
    assert got == [row[0] for row in forced_answers_naive(model, tok, task, [Chain(c.branches[0], [], None) for c in chains], max_tokens=5)]
    assert sum(a[-1] == c.target for a, c in zip(naive, chains)) >= 3  # the guess is sometimes right ...
    assert sum(a[0] != c.target for a, c in zip(naive, chains)) >= 3  # ... and sometimes not


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
    # follow-ups of batches decoded by model.generate come from a pass of their own, same texts
    follow = {"q": lambda i, text: None if i % 2 else prompts[i] + text[:5]}
    (res,) = gen.generate_many(model, tok, [gen.Request(prompts, follow=follow)], 40, batch_size=7)
    assert res.texts == fast
    monkeypatch.undo()
    (loop,) = gen.generate_many(model, tok, [gen.Request(prompts, follow=follow)], 40, batch_size=7)
    assert res.follow["q"] == loop.follow["q"] and sum(t is not None for t in loop.follow["q"]) == (len(prompts) + 1) // 2
    with pytest.raises(ValueError, match="greedy request"):
        gen.Request(prompts, n=2, temperature=1.0, follow=follow)


def test_sampling_is_seeded_and_n_per_prompt(tiny):
    from eval.generation import generate

    task, model, tok = tiny
    prompts = [ex.prompt for ex in task.examples("test")[:4]]
    a = generate(model, tok, prompts, 20, do_sample=True, num_return_sequences=3, seed=1, batch_size=6)
    assert len(a) == 12 and a == generate(model, tok, prompts, 20, do_sample=True, num_return_sequences=3, seed=1, batch_size=6)
    assert a != generate(model, tok, prompts, 20, do_sample=True, num_return_sequences=3, seed=2, batch_size=6)
    assert len(set(a[:3])) > 1  # the n samples of one prompt differ


def test_samples_do_not_depend_on_batching(tiny):
    """Each sampled prompt draws from a stream of its own (seed, request, prompt index), so its
    samples are the same at any batch size and whatever greedy rows share the loop: pass@k does
    not move when eval.batch_size does."""
    from eval.generation import Request, generate_many

    task, model, tok = tiny
    prompts = [ex.prompt for ex in task.examples("test")]
    ood = [ex.prompt for ex in task.examples("ood")]

    def samples(batch_size, with_greedy, seed=3):
        requests = [Request(prompts[:5], n=4, temperature=1.0)] + ([Request(ood), Request(prompts)] if with_greedy else [])
        return generate_many(model, tok, requests, 30, batch_size=batch_size, seed=seed)[0].texts

    base = samples(4, False)
    assert len(base) == 20 and len(set(base)) > 5  # real draws, not one text repeated
    assert samples(64, False) == base and samples(7, True) == base and samples(100, True) == base
    assert samples(4, False, seed=4) != base


def _total_variation(counts: dict, probs: dict) -> float:
    n = sum(counts.values())
    return 0.5 * sum(abs(counts.get(t, 0) / n - p) for t, p in probs.items())


@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_prefix_shared_samples_follow_the_model_distribution(base_run, temperature):
    """Samples that agree so far share one row and split where their draws differ: each sample
    must still be an independent draw from softmax(logits / T). 20,000 two-token samples of one
    prompt against the exact first-token and second-token distributions (a trained model, whose
    distributions are peaked like the ones pass@k samples from)."""
    from eval.generation import _decode
    from models import load_pretrained

    from eval.generation import Request, generate_many

    task = load_task("arith", train_size=10, test_size=12, ood_size=1)
    model, tok = load_pretrained(str(base_run))
    prompts = [ex.prompt for ex in task.examples("test")]
    (res,) = generate_many(model, tok, [Request(prompts, stats=True)], 80)
    raw = res.stats
    # sample from the most uncertain point of the greedy completions (where pass@k's samples split)
    entropy, i, k = max((st[0], i, k) for i, (_, stats) in enumerate(raw) for k, st in enumerate(stats))
    assert entropy > 0.5
    ids = tok(prompts[i], add_special_tokens=False)["input_ids"] + raw[i][0][:k]
    enc = {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long)}
    n = 20_000
    uniforms = (torch.rand(1, n, 2, generator=torch.Generator().manual_seed(0)), [0])
    ((samples, _, _),) = _decode(model, tok, enc["input_ids"], enc["attention_mask"], 2, [temperature], [n], [False], uniforms)
    assert len(samples) == n
    with torch.no_grad():
        first = torch.softmax(model(**enc).logits[0, -1] / temperature, -1)
    p1 = {t: p for t, p in enumerate(first.tolist())}
    counts1: dict = {}
    for s in samples:
        counts1[s[0] if s else tok.eos_token_id] = counts1.get(s[0] if s else tok.eos_token_id, 0) + 1
    assert _total_variation(counts1, p1) < 0.02, _total_variation(counts1, p1)
    top = max(counts1, key=counts1.get)  # second token, given the most frequent first one
    with torch.no_grad():
        ids = torch.cat([enc["input_ids"], torch.tensor([[top]])], 1)
        second = torch.softmax(model(input_ids=ids).logits[0, -1] / temperature, -1)
    counts2: dict = {}
    for s in samples:
        if s and s[0] == top:
            counts2[s[1] if len(s) > 1 else tok.eos_token_id] = counts2.get(s[1] if len(s) > 1 else tok.eos_token_id, 0) + 1
    assert sum(counts2.values()) > 1000
    assert _total_variation(counts2, dict(enumerate(second.tolist()))) < 0.03, _total_variation(counts2, dict(enumerate(second.tolist())))
    # the wrong temperature is detected: the test can fail
    wrong = torch.softmax(model(**enc).logits[0, -1].detach() / (temperature * 2), -1)
    assert _total_variation(counts1, dict(enumerate(wrong.tolist()))) > 0.05, _total_variation(counts1, dict(enumerate(wrong.tolist())))


def test_requests_decoded_together_equal_separate_calls(tiny):
    """The evaluator decodes the greedy splits and pass@k's samples in one loop: greedy text is the
    same as a greedy-only call, and every prompt gets its n samples."""
    from eval.generation import Request, generate, generate_many

    task, model, tok = tiny
    prompts = [ex.prompt for ex in task.examples("test")]
    ood = [ex.prompt for ex in task.examples("ood")]
    greedy, sampled, other = generate_many(
        model, tok, [Request(prompts, stats=True), Request(prompts[:4], n=5, temperature=1.0), Request(ood)], 30,
        batch_size=12, seed=0)
    assert greedy.texts == generate(model, tok, prompts, 30, batch_size=12)
    assert other.texts == generate(model, tok, ood, 30, batch_size=12)
    assert len(sampled.texts) == 20 and sampled.stats is None and other.stats is None
    assert len(greedy.stats) == len(prompts) and all(len(ids) == len(st) for ids, st in greedy.stats)


def test_follow_ups_decoded_in_the_loop_equal_decoding_their_context_alone(base_run):
    """A follow-up (the mistake probe's continuation) starts when its row's completion ends, from the
    cache of the tokens its context shares with the row: its text equals greedy decoding of the
    context on its own, whatever it shares (part of the reasoning, nothing, all of it), and two
    follow-ups of one row run one after the other."""
    from eval.generation import Request, generate, generate_many
    from models import load_pretrained

    task = load_task("arith", train_size=10, test_size=24, ood_size=6)
    model, tok = load_pretrained(str(base_run))
    prompts = [ex.prompt for ex in task.examples("test")]
    sep = task.step_separator

    def corrupt(i, text):  # the first step kept, the second replaced
        steps = task.split_steps(text)
        return prompts[i] + steps[0] + sep + "z=9*9=7" + sep if len(steps) >= 2 and i % 4 else None

    def unshared(i, text):  # shares no token with the row
        return None if i % 3 else "Q" + prompts[i]

    def whole(i, text):  # the row's own text: the last token is fed again
        return prompts[i] + text if i % 2 else None

    follow = {"corrupt": corrupt, "unshared": unshared, "whole": whole}
    greedy, sampled, ood = generate_many(
        model, tok, [Request(prompts, stats=True, follow=follow), Request(prompts[:3], n=4, temperature=1.0),
                     Request([ex.prompt for ex in task.examples("ood")])], 80, batch_size=10, seed=0)
    assert greedy.texts == generate(model, tok, prompts, 80, batch_size=10)
    assert all(len(ids) == len(st) for ids, st in greedy.stats)  # stats are the completion's, not a follow-up's
    assert len(sampled.texts) == 12 and sampled.follow == {} and len(ood.texts) == 6
    for name, fn in follow.items():
        contexts = [fn(i, t) for i, t in enumerate(greedy.texts)]
        idx = [i for i, c in enumerate(contexts) if c is not None]
        assert len(idx) >= 5 and all(greedy.follow[name][i] is None for i in set(range(len(prompts))) - set(idx))
        alone = generate(model, tok, [contexts[i] for i in idx], 80, batch_size=10)
        assert [greedy.follow[name][i] for i in idx] == alone, name
    assert any(t for t in greedy.follow["corrupt"] if t)  # the continuations are not empty


def test_mistake_probe_same_in_the_loop_and_on_its_own(base_run):
    """The mistake probe's continuations decoded as follow-ups of the greedy loop give the same
    records as a backend that decodes them in a pass of their own."""
    from eval.backend import LMBackend
    from models import load_pretrained

    task = load_task("arith", train_size=10, test_size=30, ood_size=4)
    model, tok = load_pretrained(str(base_run))
    cfg = {**CFG, "probes": ["mistake"], "max_new_tokens": 80}

    class Separate:  # no generate_many: the probe generates its continuations itself
        def __init__(self, inner):
            self.inner = inner

        def __getattr__(self, name):
            if name == "generate_many":
                raise AttributeError(name)
            return getattr(self.inner, name)

    backend = LMBackend(model, tok, task, batch_size=8)
    m_loop, s_loop, _ = evaluate(model, tok, task, cfg, backend=backend)
    m_alone, s_alone, _ = evaluate(model, tok, task, cfg, backend=Separate(backend))
    assert m_loop["faithfulness/mistake_sensitivity"] is not None
    assert m_loop["faithfulness/mistake_sensitivity"] == m_alone["faithfulness/mistake_sensitivity"]
    assert m_loop["faithfulness/mistake_followed"] == m_alone["faithfulness/mistake_followed"]
    keys = ("completion", "mistake/changed", "mistake/followed")
    assert [[r.get(k) for k in keys] for r in s_loop] == [[r.get(k) for k in keys] for r in s_alone]
    assert sum(r["mistake/changed"] is not None for r in s_loop if r["split"] == "test") >= 20


def test_stats_recorded_while_decoding_equal_a_second_forward(base_run):
    """Calibration and entropy read the distributions the greedy tokens were chosen from; they equal
    a teacher-forced forward over prompt + completion (a trained model, so answers are written)."""
    from eval.backend import LMBackend
    from eval.generation import Request
    from models import load_pretrained
    from models.scoring import completion_stats

    task = load_task("arith", train_size=10, test_size=12, ood_size=5)
    model, tok = load_pretrained(str(base_run))
    prompts = [ex.prompt for ex in task.examples("test")]
    backend = LMBackend(model, tok, task, batch_size=4)
    (res,) = backend.generate_many([Request(prompts, stats=True)], 80)
    texts, decoded = res.texts, res.stats
    forward = completion_stats(model, tok, task, prompts, texts)
    assert all(d is not None for d in decoded) and sum(d.answer_tokens > 0 for d in decoded) >= 6
    for d, f in zip(decoded, forward):
        assert d.answer_tokens == f.answer_tokens and len(d.reasoning_entropies) == len(f.reasoning_entropies)
        assert d.reasoning_entropies == pytest.approx(f.reasoning_entropies, abs=1e-4)
        for a, b in ((d.answer_confidence, f.answer_confidence), (d.answer_prob, f.answer_prob)):
            assert (a is None and b is None) or a == pytest.approx(b, abs=1e-4)
