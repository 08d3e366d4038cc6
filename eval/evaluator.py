"""The evaluator every run goes through: the same for every trainer, checkpoint and study row.

    metrics, samples, curves = evaluate(model, tokenizer, task, cfg)

1. Greedy, batched generation on the test split (and the ood split for `ood_accuracy`); each
   completion is scored with the task's own `score` (the function the rewards call too). What
   the probes need from the prompts alone (pass@k's samples) is decoded in the same loop, and so
   is what they continue from a completion (the mistake probe's corrupted reasoning).
2. The reasoning-quality probes selected by `cfg["probes"]` run on the test completions
   (eval/probes/, one file each): pass@k, information gain, early answering, filler, paraphrase,
   mistakes, step validity, chain length, calibration, entropy.
Returns flat scalar metrics (metrics.json; logged to W&B under eval/), one record per sample
(samples.jsonl), and curves (early-answering curves, accuracy by steps, reliability bins).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Mapping, Optional

from eval.backend import Backend, LMBackend
from eval.generation import Request, Result
from eval.probes import PROBES, EvalState
from tasks.base import Task

EVALUATOR_VERSION = "6"  # 6: each sampled prompt draws from a stream of its own (pass@k no longer moves with eval.batch_size)
ALL_PROBES = ["pass_at_k", "info_gain", "early_answer", "filler", "paraphrase", "mistake", "step_validity", "cot",
              "calibration", "entropy"]
log = logging.getLogger("reasonlab")


def _records(task: Task, examples, completions, split: str):
    answers = [task.extract_answer(c) for c in completions]
    correct = [task.score(c, ex) for c, ex in zip(completions, examples)]
    records = [
        {"id": ex.id, "split": split, "prompt": ex.prompt, "completion": c, "answer": a, "gold": ex.answer,
         "correct": s, "steps": task.split_steps(c)}
        for ex, c, a, s in zip(examples, completions, answers, correct)
    ]
    return answers, correct, records


def _generate(backend: Backend, task: Task, cfg, ood, examples, probes, wants_stats: bool) -> dict[str, Result]:
    """Greedy completions of both splits, every probe's prompt-only requests (pass@k's samples)
    and the probes' follow-ups of the test completions (the mistake probe's continuations),
    decoded in one loop where the backend can (`generate_many`)."""
    desc = "eval generate" if cfg.get("progress", True) else None
    if not hasattr(backend, "generate_many"):
        return {"ood": Result(backend.generate([ex.prompt for ex in ood], cfg["max_new_tokens"], desc=desc), None),
                "test": Result(backend.generate([ex.prompt for ex in examples], cfg["max_new_tokens"], desc=desc), None)}
    follow = {p.name: f for p in probes if (f := p.follow(task, cfg, examples)) is not None}
    requests = {"ood": Request([ex.prompt for ex in ood]),
                "test": Request([ex.prompt for ex in examples], stats=wants_stats, follow=follow)}
    for probe in probes:
        requests.update({f"{probe.name}/{k}": req for k, req in probe.requests(cfg, examples).items()})
    results = dict(zip(requests, backend.generate_many(list(requests.values()), cfg["max_new_tokens"],
                                                       seed=cfg.get("seed", 0), desc=desc)))
    results.update({f"{name}/follow": Result(texts, None) for name, texts in results["test"].follow.items()})
    return results


def evaluate(
    model, tokenizer, task: Task, cfg: Mapping[str, Any], reader: Optional[tuple[Any, Any]] = None,
    backend: Optional[Backend] = None, reader_backend: Optional[Backend] = None,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """Return (metrics, samples, curves). `reader` = (model, tokenizer) of a fixed information-gain reader."""
    t0 = time.perf_counter()
    sizes = dict(batch_size=cfg["batch_size"], answer_max_tokens=cfg.get("answer_max_tokens", 8),
                 truncation_rows=cfg.get("truncation_rows", 80))
    backend = backend or LMBackend(model, tokenizer, task, **sizes)
    if reader is not None and reader_backend is None:
        reader_backend = LMBackend(reader[0], reader[1], task, **sizes)
    metrics: dict[str, Any] = {}
    samples: list[dict[str, Any]] = []

    ood = task.examples("ood")[: cfg["num_samples"]]
    examples = task.examples("test")[: cfg["num_samples"]]
    probes = [PROBES.get(name)() for name in cfg.get("probes", ALL_PROBES)]
    wants_stats = any(p.name in ("calibration", "entropy") for p in probes)
    generated = _generate(backend, task, cfg, ood, examples, probes, wants_stats)
    completions = generated["test"].texts
    answers, correct, records = _records(task, examples, completions, "test")
    _, ood_correct, ood_records = _records(task, ood, generated["ood"].texts, "ood")
    metrics["accuracy"] = sum(correct) / len(correct) if correct else None
    metrics["ood_accuracy"] = sum(ood_correct) / len(ood_correct) if ood else None
    metrics["eval/num_samples"] = len(examples)
    t_acc = time.perf_counter() - t0

    state = EvalState(task=task, backend=backend, reader=reader_backend, cfg=dict(cfg), examples=examples,
                      completions=completions, answers=answers, correct=correct,
                      steps=[r["steps"] for r in records], records=records, _stats=generated["test"].stats,
                      generated={k: r.texts for k, r in generated.items() if k not in ("test", "ood")})
    timings = {}
    for probe in probes:  # contexts the filler and paraphrase probes need, packed with the truncation points
        t = time.perf_counter()
        if branches := probe.branches(state):
            state.branches[probe.name] = branches
        timings[probe.name] = time.perf_counter() - t
    for probe in probes:
        t = time.perf_counter()
        metrics.update(probe.run(state))
        timings[probe.name] += time.perf_counter() - t
    samples = records + ood_records
    metrics["eval/seconds"] = round(time.perf_counter() - t0, 3)
    metrics["eval/accuracy_seconds"] = round(t_acc, 3)
    metrics["eval/version"] = EVALUATOR_VERSION
    if state.notes:
        metrics["eval/notes"] = state.notes
    curves = {**state.curves, "probe_seconds": {k: round(v, 3) for k, v in timings.items()}}
    return metrics, samples, curves
