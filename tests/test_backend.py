"""The LM backend's answers equal the reference backend's: every request answered the plain way,
one at a time (eval/reference.py). Packing, speculation, prefix sharing and deduplication must
never show in an answer."""

import pytest
import torch

from reasonlab.eval.backend import LMBackend, groups_of
from reasonlab.eval.probes.filler import FILLER
from reasonlab.eval.reference import ReferenceBackend
from reasonlab.eval.requests import AnswerLogprob, Continue, ForcedAnswer, Sample, TokenStats
from reasonlab.models import build_tiny
from reasonlab.tasks import load_task


@pytest.fixture(scope="module")
def tiny():
    task = load_task("arith", train_size=10, test_size=10, ood_size=5)
    cfg = dict(hidden_size=32, intermediate_size=64, num_layers=2, num_heads=2, max_position_embeddings=160)
    model, tok = build_tiny(cfg, task, seed=0)
    return task, model.eval(), tok


@pytest.fixture(scope="module")
def trained(base_run):
    """The session's SFT-trained tiny model: it writes answers, so forced answers are not all None."""
    from reasonlab.models import load_pretrained

    return load_pretrained(str(base_run))


def truncations(task, prompt, steps):
    sep, out, text = task.step_separator, [prompt], prompt
    for s in steps:
        text += s + sep
        out.append(text)
    return out


def own_truncations(task, prompt, completion):
    """c_0..c_n cut from the model's own text, as the probes cut it (written out separately): after
    each non-blank piece between separators, and the separator when it follows right away."""
    sep, out, pos = task.step_separator, [prompt], 0
    for piece in task.reasoning_of(completion).split(sep):
        if piece.strip():
            end = pos + len(piece.rstrip())
            out.append(prompt + completion[: end + len(sep) if completion.startswith(sep, end) else end])
        pos += len(piece) + len(sep)
    return out


def backends(task, model, tok, **sizes):
    return (LMBackend(model, tok, task, **{"answer_max_tokens": 5, "max_new_tokens": 40, **sizes}),
            ReferenceBackend(model, tok, task, answer_max_tokens=5, max_new_tokens=40))


def test_answer_logprob_equals_a_direct_forward(tiny):
    task, model, tok = tiny
    contexts = truncations(task, "a=7;b=a+5;c=b*3;c?", ["b=a+5=7+5=2", "c=b*3=2*3=6"])
    (fast,) = [LMBackend(model, tok, task).answer([AnswerLogprob(c, "6") for c in contexts])]
    direct = []
    for ctx in contexts:
        ids = tok(ctx + "A:6", return_tensors="pt", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits[0], -1)
        direct.append(logp[ids.shape[1] - 2, ids[0, -1]].item())  # only the answer token "6"
    assert fast == pytest.approx(direct, abs=1e-4)


def test_packed_answers_equal_the_reference_on_many_contexts(tiny):
    task, model, tok = tiny
    requests = []
    for ex in task.examples("test"):
        for ctx in truncations(task, ex.prompt, list(ex.steps)):
            requests += [AnswerLogprob(ctx, ex.answer), AnswerLogprob(ctx, "12"), ForcedAnswer(ctx, expect=ex.answer)]
        requests.append(ForcedAnswer(ex.prompt + FILLER * 7))
    fast, ref = backends(task, model, tok, batch_size=4, truncation_rows=9)
    got, want = fast.answer(requests), ref.answer(requests)
    for r, g, w in zip(requests, got, want):
        if isinstance(r, AnswerLogprob):
            assert g == pytest.approx(w, abs=1e-4), r
        else:
            assert g == w, r


def test_groups_share_a_row_by_common_beginning():
    a, b = "Q1?", "Q2?"
    requests = [AnswerLogprob(a, "3"), AnswerLogprob(a + "s1;", "3"), ForcedAnswer(a + "s1;"), ForcedAnswer(b + " ..."),
                ForcedAnswer(a + " ..."), AnswerLogprob(b, "4"), AnswerLogprob(a + "s1;", "5")]
    groups, where = groups_of(requests)
    assert [g.main for g in groups] == [a + "s1;", b + " ..."]
    assert where[1] == where[2] and where[1] != where[6]  # a forced answer and a log-prob of one context share a point
    assert [len(g.points) for g in groups] == [4, 2] and where[3][0] == where[5][0] == 1


def test_packed_context_tokens_equal_tokenizing_each_text(tiny, bpe):
    """A context that begins its group's main text takes the main's first tokens on a
    character-level tokenizer; whatever the path, every text's ids are its own tokenization
    (a character the tiny tokenizer does not know, a context that is not a prefix, a BPE one)."""
    from reasonlab.eval.packing import Group, Point, _context_ids, character_level

    task, _, tok = tiny
    prompt = task.examples("test")[0].prompt
    for main in (prompt + "3+4=7\n7*2=14\n", prompt + "3+4=7\u00e9\n7*2=14\n"):
        contexts = [main[:k] for k in range(len(prompt), len(main) + 1, 3)] + [prompt + "1+1=2\n"]
        for t in (tok, bpe[2]):
            group = Group(main, [Point(c) for c in contexts], root=len(prompt))
            ids = _context_ids(t, [group], [0], joint=not character_level(t))
            assert all(ids[c] == t(c, add_special_tokens=False)["input_ids"] for c in [main, *contexts])


@pytest.mark.slow
@pytest.mark.parametrize("mergeable", [True, False])
def test_speculative_forced_answers_equal_the_reference(trained, monkeypatch, mergeable):
    """Forced answers are read off the packed forward as far as the greedy answer agrees with the
    expected one, and only the contexts that depart decode on, several packed batches stacked into
    one loop (or, for a cache that cannot be stacked, batch by batch). Whatever is expected (the
    gold answer, a wrong one, one longer than the answer, nothing), with or without a log-prob of
    the same context beside it, the answers equal plain decoding of each context alone."""
    import reasonlab.eval.truncation as truncation
    if not mergeable:
        monkeypatch.setattr(truncation, "_mergeable", lambda cache: False)
    model, tok = trained
    task = load_task("arith", train_size=10, test_size=16, ood_size=1)
    forced, scored = [], []
    for i, ex in enumerate(task.examples("test")):
        expect = [ex.answer, str((int(ex.answer) + 3) % 10), ex.answer + "7", None][i % 4]
        sep = task.step_separator
        contexts = [*truncations(task, ex.prompt, list(ex.steps)), ex.prompt + FILLER * 5,
                    ex.prompt + sep.join(task.paraphrase_steps(list(ex.steps))) + sep]
        forced += [ForcedAnswer(c, expect=expect) for c in contexts]
        scored += [AnswerLogprob(c, expect or ex.answer) for c in contexts]
    want = ReferenceBackend(model, tok, task, answer_max_tokens=5).answer(forced)
    assert sum(w is not None for w in want) >= len(want) // 2  # a trained model writes answers
    for with_logprobs in (True, False):  # the answer reads the score block / a block of its own
        for rows in (None, 12):  # one packed batch / several, stacked for decoding
            fast = LMBackend(model, tok, task, answer_max_tokens=5, batch_size=8, truncation_rows=rows)
            got = fast.answer(forced + scored if with_logprobs else forced)[: len(forced)]
            assert got == want, (with_logprobs, rows)
    gold = [ex.answer for ex in task.examples("test")]
    assert sum(w == g for w, g in zip(want[::7], gold)) >= 1  # the guess is sometimes right ...
    assert sum(w != g for w, g in zip(want[::7], gold)) >= 3  # ... and sometimes not


def test_greedy_decoding_equals_model_generate(tiny, monkeypatch):
    """The decode loop (finished rows leave the batch) gives model.generate's greedy text, for
    prompts and for continuations; so does the model.generate fallback."""
    import reasonlab.eval.generation as gen
    task, model, tok = tiny
    prompts = [ex.prompt for ex in task.examples("test")] * 3
    requests = [Sample(p) for p in prompts] + [Continue(p + "b=") for p in prompts[:5]]
    fast, ref = backends(task, model, tok, batch_size=7)
    got = fast.answer(requests)
    assert got == ref.answer(requests)
    monkeypatch.setattr(gen, "_decode", lambda *a, **k: None)  # force the model.generate path
    assert LMBackend(model, tok, task, batch_size=7, max_new_tokens=40).answer(requests) == got


def test_every_eos_id_of_generation_config_stops_decoding(trained, monkeypatch):
    """A generation_config listing two end tokens (Qwen-Instruct: <|im_end|> and <|endoftext|>):
    decoding stops at either, in the decode loop, in the model.generate fallback and in the
    reference. Here the second stop token is the step separator, so each completion ends after its
    first step."""
    import copy

    import reasonlab.eval.generation as gen
    model, tok = trained
    task = load_task("arith", train_size=200, test_size=10, ood_size=5)
    requests = [Sample(ex.prompt) for ex in task.examples("test")]
    plain = LMBackend(model, tok, task, max_new_tokens=40).answer(requests)
    assert all(";" in c for (c,) in plain)
    stopped = copy.deepcopy(model)
    stopped.generation_config.eos_token_id = [tok.eos_token_id, tok.convert_tokens_to_ids(";")]
    fast, ref = backends(task, stopped, tok)
    got = fast.answer(requests)
    assert got == [[c.split(";")[0]] for (c,) in plain]
    assert ref.answer(requests) == got
    monkeypatch.setattr(gen, "_decode", lambda *a, **k: None)
    assert LMBackend(stopped, tok, task, max_new_tokens=40).answer(requests) == got


def test_sampling_is_seeded_and_n_per_prompt(tiny):
    from reasonlab.eval.generation import generate

    task, model, tok = tiny
    prompts = [ex.prompt for ex in task.examples("test")[:4]]
    a = generate(model, tok, prompts, 20, do_sample=True, num_return_sequences=3, seed=1, batch_size=6)
    assert len(a) == 12 and a == generate(model, tok, prompts, 20, do_sample=True, num_return_sequences=3, seed=1, batch_size=6)
    assert a != generate(model, tok, prompts, 20, do_sample=True, num_return_sequences=3, seed=2, batch_size=6)
    assert len(set(a[:3])) > 1  # the n samples of one prompt differ


def test_samples_do_not_depend_on_batching_or_companions(tiny):
    """Each sampled prompt draws from a stream of its own, so its samples are the same at any
    batch size and whatever greedy requests share the call: pass@k does not move with
    eval.batch_size."""
    task, model, tok = tiny
    sampled = [Sample(ex.prompt, 4, 1.0) for ex in task.examples("test")[:5]]
    greedy = [Sample(ex.prompt) for ex in task.examples("ood")] + [Continue(ex.prompt) for ex in task.examples("test")]

    def samples(batch_size, with_greedy, seed=3):
        backend = LMBackend(model, tok, task, batch_size=batch_size, max_new_tokens=30, seed=seed)
        return backend.answer(sampled + (greedy if with_greedy else []))[: len(sampled)]

    base = samples(4, False)
    assert len(base) == 5 and len({t for s in base for t in s}) > 5  # real draws, not one text repeated
    assert samples(64, False) == base and samples(7, True) == base and samples(100, True) == base
    assert samples(4, False, seed=4) != base


def test_equal_requests_are_answered_once_and_alike(tiny, monkeypatch):
    import reasonlab.eval.backend as backend_module
    task, model, tok = tiny
    ex = task.examples("test")[0]
    seen = []
    real = backend_module.decode
    monkeypatch.setattr(backend_module, "decode", lambda m, t, jobs, *a, **k: seen.extend(jobs) or real(m, t, jobs, *a, **k))
    backend = LMBackend(model, tok, task, max_new_tokens=20)
    one = backend.answer([Sample(ex.prompt), ForcedAnswer(ex.prompt, expect="3"), ForcedAnswer(ex.prompt)])
    two = backend.answer([Sample(ex.prompt), Sample(ex.prompt), ForcedAnswer(ex.prompt, expect="9")])
    assert len(seen) == 2  # one job per call: the second Sample of the second call is the first's
    assert one[0] == two[0] == two[1] and one[1] == one[2] == two[2]


@pytest.mark.slow
def test_stats_recorded_while_decoding_equal_a_second_forward(trained):
    """Calibration and entropy read the distributions the greedy tokens were chosen from; they equal
    a teacher-forced forward over prompt + completion (a trained model, so answers are written)."""
    model, tok = trained
    task = load_task("arith", train_size=10, test_size=12, ood_size=5)
    prompts = [ex.prompt for ex in task.examples("test")]
    fast, ref = backends(task, model, tok, batch_size=4, max_new_tokens=80)
    texts = [t[0] for t in fast.answer([Sample(p) for p in prompts])]
    requests = [TokenStats(p, t) for p, t in zip(prompts, texts)]
    assert all(fast._recorded.get((p, t)) for p, t in zip(prompts, texts))  # recorded, so no second forward
    decoded, forward = fast.answer(requests), ref.answer(requests)
    assert sum(d.answer_tokens > 0 for d in decoded) >= 6
    for d, f in zip(decoded, forward):
        assert d.answer_tokens == f.answer_tokens and len(d.reasoning_entropies) == len(f.reasoning_entropies)
        assert d.reasoning_entropies == pytest.approx(f.reasoning_entropies, abs=1e-4)
        for a, b in ((d.answer_confidence, f.answer_confidence), (d.answer_prob, f.answer_prob)):
            assert (a is None and b is None) or a == pytest.approx(b, abs=1e-4)


def _total_variation(counts: dict, probs: dict) -> float:
    n = sum(counts.values())
    return 0.5 * sum(abs(counts.get(t, 0) / n - p) for t, p in probs.items())


@pytest.mark.slow
@pytest.mark.parametrize("temperature", [1.0, 0.6])
def test_prefix_shared_samples_follow_the_model_distribution(trained, temperature):
    """Samples that agree so far share one row and split where their draws differ: each sample
    must still be an independent draw from softmax(logits / T). 20,000 two-token samples of one
    prompt against the exact first-token and second-token distributions (a trained model, whose
    distributions are peaked like the ones pass@k samples from)."""
    from reasonlab.eval.generation import Job, _decode, decode

    model, tok = trained
    task = load_task("arith", train_size=10, test_size=12, ood_size=1)
    prompts = [ex.prompt for ex in task.examples("test")]
    raw = decode(model, tok, [Job(p, record=True) for p in prompts], 80)
    # sample from the most uncertain point of the greedy completions (where pass@k's samples split)
    entropy, i, k = max((st[0], i, k) for i, d in enumerate(raw) for k, st in enumerate(d.per_token))
    assert entropy > 0.5
    ids = tok(prompts[i], add_special_tokens=False)["input_ids"] + raw[i].ids[:k]
    enc = {"input_ids": torch.tensor([ids]), "attention_mask": torch.ones(1, len(ids), dtype=torch.long)}
    n = 20_000
    # eval/sampling.uniforms' layout: (steps, jobs x samples), each job's first column / samples, samples per job
    uniforms = (torch.rand(n, 2, generator=torch.Generator().manual_seed(0)).T.contiguous(), [0], n)
    pos = torch.arange(len(ids))[None]
    start = (model(**enc, position_ids=pos, use_cache=True), enc["attention_mask"], pos[:, -1], [ids])
    ((samples, _),) = _decode(model, tok, start, 2, [Job("", n, temperature)], uniforms, None)
    assert len(samples) == n
    with torch.no_grad():
        first = torch.softmax(model(**enc).logits[0, -1] / temperature, -1)
    eos = tok.eos_token_id
    counts1: dict = {}
    for s in samples:
        counts1[s[0] if s else eos] = counts1.get(s[0] if s else eos, 0) + 1
    assert _total_variation(counts1, dict(enumerate(first.tolist()))) < 0.02
    top = max(counts1, key=counts1.get)  # second token, given the most frequent first one
    with torch.no_grad():
        second = torch.softmax(model(input_ids=torch.cat([enc["input_ids"], torch.tensor([[top]])], 1)).logits[0, -1]
                               / temperature, -1)
    counts2: dict = {}
    for s in samples:
        if s and s[0] == top:
            counts2[s[1] if len(s) > 1 else eos] = counts2.get(s[1] if len(s) > 1 else eos, 0) + 1
    assert sum(counts2.values()) > 1000
    assert _total_variation(counts2, dict(enumerate(second.tolist()))) < 0.03
    # the wrong temperature is detected: the test can fail
    wrong = torch.softmax(model(**enc).logits[0, -1].detach() / (temperature * 2), -1)
    assert _total_variation(counts1, dict(enumerate(wrong.tolist()))) > 0.05


def test_reader_with_its_own_tokenizer(tiny):
    """A reader whose tokenizer numbers characters differently re-tokenizes the text."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from reasonlab.eval.evaluator import evaluate
    from reasonlab.models.tokenizer import build_char_tokenizer

    task, model, tok = tiny
    reader_tok = build_char_tokenizer("\t\x0b" + task.alphabet())  # two extra characters that sort first shift every id
    torch.manual_seed(1)
    reader = LlamaForCausalLM(LlamaConfig(vocab_size=len(reader_tok), hidden_size=32, intermediate_size=64,
                                          num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=2,
                                          max_position_embeddings=160, pad_token_id=reader_tok.pad_token_id)).eval()
    assert reader_tok("b")["input_ids"] != tok("b")["input_ids"]
    m, samples, _ = evaluate(model, tok, task, {"num_samples": 5, "probes": ["info_gain"], "progress": False},
                             reader=(reader, reader_tok))
    ref = ReferenceBackend(reader, reader_tok, task)
    for s in samples:
        if s["split"] == "test" and s["info_gain/step_logprobs"] is not None:
            want = ref.answer([AnswerLogprob(c, s["gold"]) for c in own_truncations(task, s["prompt"], s["completion"])])
            assert s["info_gain/step_logprobs"] == pytest.approx(want, abs=1e-5)
    assert "info_gain_self/total" in m


@pytest.fixture(scope="module")
def bpe():
    """A hub-style tokenizer (byte-level BPE trained on GSM8K text, Qwen-like end and pad tokens),
    an untrained model over it and the GSM8K task."""
    import json

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from conftest import SHARED_DATA
    from reasonlab.tasks.math_word import Gsm8kTask

    task = Gsm8kTask(path=str(SHARED_DATA / "gsm8k"), hub_id=None, ood_hub_id=None)
    with open(SHARED_DATA / "gsm8k" / "train.jsonl") as fh:
        texts = [(row := json.loads(line))["question"] + row["answer"] for line, _ in zip(fh, range(2000))]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer, bpe.decoder = pre_tokenizers.ByteLevel(add_prefix_space=False), decoders.ByteLevel()
    bpe.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=800, special_tokens=["<|endoftext|>", "<|im_end|>"],
                                                       initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=1024,
                                         pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)).eval()
    return task, model, tok


def test_forced_answers_with_a_byte_level_bpe_tokenizer(bpe):
    """A byte-level BPE tokenizer may merge the answer prefix's space into the answer (`#### 3` as
    `####` + ` 3`): the answer's token is the one holding its characters, the expected answer is
    then no guess, never an error, and every answer still equals the reference's."""
    from reasonlab.eval.packing import suffix

    task, model, tok = bpe
    ids, idx = suffix(tok, task.answer_prefix, "3")  # the case: " 3" is one token
    assert len(idx) == 1 and tok.decode([ids[idx[0]]]) == " 3"
    requests = []
    for ex in task.examples("test")[:6]:
        requests += [ForcedAnswer(c, expect=ex.answer) for c in truncations(task, ex.prompt, list(ex.steps))]
        requests += [ForcedAnswer(ex.prompt + FILLER * 12, expect="3"), Sample(ex.prompt)]
    fast = LMBackend(model, tok, task, batch_size=4, truncation_rows=10, max_new_tokens=12, answer_max_tokens=6)
    ref = ReferenceBackend(model, tok, task, max_new_tokens=12, answer_max_tokens=6)
    assert fast.answer(requests) == ref.answer(requests)


def _continued(prompts, texts, digit="7"):
    """Contexts that begin like greedy completions: the whole text, the text with one character
    changed half-way (the mistake probe's edit), its first half, the prompt alone; and one that
    begins like no prompt."""
    out = []
    for p, t in zip(prompts, texts):
        h = len(t) // 2
        out += [p + t, p + t[:h] + (digit if t[h:h + 1] != digit else "1") + t[h + 1:], p + t[:h], p]
    return out + [texts[0] + prompts[0]]


@pytest.mark.parametrize("kind", ["char", "bpe"])
def test_continuations_from_kept_caches_equal_the_reference(tiny, bpe, kind):
    """With kept prefixes, a Continue whose context begins like a greedy sample's text starts from
    that sample's cache and encodes only the rest; batches mix contexts with and without a kept
    prefix. The continuations equal plain decoding of each context alone, and the cache was used."""
    task, model, tok = tiny if kind == "char" else bpe
    prompts = [ex.prompt for ex in task.examples("test")[:6]]
    fast = LMBackend(model, tok, task, batch_size=5, max_new_tokens=24, keep_prefixes=True)
    ref = ReferenceBackend(model, tok, task, max_new_tokens=24)
    texts = [t[0] for t in fast.answer([Sample(p) for p in prompts])]
    assert texts == [t[0] for t in ref.answer([Sample(p) for p in prompts])]
    assert len(fast.prefixes.by_prompt) == len(prompts) and min(map(len, texts)) > 4
    requests = [Continue(c) for c in _continued(prompts, texts)]
    assert fast.answer(requests) == ref.answer(requests)
    assert fast.prefixes.reused > 0
    # the mistake probe's contexts (each a kept text with a change half-way) start from the caches
    before = fast.prefixes.reused
    edited = [Continue(c) for c in _continued(prompts, texts)[1:-1:4]]
    assert fast.answer(edited) == ref.answer(edited)
    assert fast.prefixes.reused - before > sum(fast.num_tokens(r.context) for r in edited) // 2  # most of them
    # one such context among fresh prompts would widen every row by its kept columns: encoded plainly
    before = fast.prefixes.reused
    fresh = [Continue(ex.prompt) for ex in task.examples("test")[6:10]] + [edited[0]]
    assert fast.answer(fresh) == ref.answer(fresh)
    assert fast.prefixes.reused == before
