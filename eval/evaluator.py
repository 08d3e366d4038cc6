"""The evaluator every run goes through: the same for every trainer, checkpoint and study row.

    metrics, samples, curves = evaluate(model, tokenizer, task, cfg)

1. Greedy, batched generation on the test split (and the ood split for `ood_accuracy`); each
   completion is scored with the task's own `score` (the function the rewards call too).
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
from eval.probes import PROBES, EvalState
from tasks.base import Task

EVALUATOR_VERSION = "3"
ALL_PROBES = ["pass_at_k", "info_gain", "early_answer", "filler", "paraphrase", "mistake", "step_validity", "cot",
              "calibration", "entropy"]
log = logging.getLogger("reasonlab")


def _score_split(backend: Backend, task: Task, examples, cfg, split: str, with_stats: bool = False):
    prompts, desc = [ex.prompt for ex in examples], f"eval {split}" if cfg.get("progress", True) else None
    stats = None
    if with_stats and hasattr(backend, "generate_with_stats"):  # calibration/entropy from the decoding itself
        completions, stats = backend.generate_with_stats(prompts, cfg["max_new_tokens"], desc=desc)
    else:
        completions = backend.generate(prompts, cfg["max_new_tokens"], desc=desc)
    answers = [task.extract_answer(c) for c in completions]
    correct = [task.score(c, ex) for c, ex in zip(completions, examples)]
    records = [
        {"id": ex.id, "split": split, "prompt": ex.prompt, "completion": c, "answer": a, "gold": ex.answer,
         "correct": s, "steps": task.split_steps(c)}
        for ex, c, a, s in zip(examples, completions, answers, correct)
    ]
    return completions, answers, correct, records, stats


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
    if ood:
        _, _, ood_correct, ood_records, _ = _score_split(backend, task, ood, cfg, "ood")
        metrics["ood_accuracy"] = sum(ood_correct) / len(ood_correct)
    else:
        metrics["ood_accuracy"], ood_records = None, []

    examples = task.examples("test")[: cfg["num_samples"]]
    wants_stats = any(p in ("calibration", "entropy") for p in cfg.get("probes", ALL_PROBES))
    completions, answers, correct, records, stats = _score_split(backend, task, examples, cfg, "test", wants_stats)
    metrics = {"accuracy": sum(correct) / len(correct) if correct else None, **metrics}
    metrics["eval/num_samples"] = len(examples)
    t_acc = time.perf_counter() - t0

    state = EvalState(task=task, backend=backend, reader=reader_backend, cfg=dict(cfg), examples=examples,
                      completions=completions, answers=answers, correct=correct,
                      steps=[r["steps"] for r in records], records=records, _stats=stats)
    timings = {}
    for name in cfg.get("probes", ALL_PROBES):
        probe = PROBES.get(name)()
        t = time.perf_counter()
        metrics.update(probe.run(state))
        timings[name] = time.perf_counter() - t
    samples = records + ood_records
    metrics["eval/seconds"] = round(time.perf_counter() - t0, 3)
    metrics["eval/accuracy_seconds"] = round(t_acc, 3)
    metrics["eval/version"] = EVALUATOR_VERSION
    if state.notes:
        metrics["eval/notes"] = state.notes
    curves = {**state.curves, "probe_seconds": {k: round(v, 3) for k, v in timings.items()}}
    return metrics, samples, curves
