"""The evaluator every run goes through: the same for every trainer, checkpoint and study row.

    from reasonlab.eval import EvalConfig, evaluate
    metrics, samples, curves = evaluate(model, tokenizer, task)                 # conf/eval/default.yaml
    metrics, samples, curves = evaluate(model, tokenizer, task, EvalConfig.default(num_samples=50))

1. Greedy completions of the test split (and the ood split, for `ood_accuracy`), each scored by
   the task's own `score` (the function the rewards call too).
2. Every probe selected by `cfg.probes` declares the requests it needs from the model, knowing
   those completions (eval/probes/, one file each); the backend answers all of them at once
   (eval/backend.py: equal requests once, shared prefixes shared), and each probe scores its
   answers.
Returns flat scalar metrics (metrics.json; logged to W&B under eval/), one record per sample
(samples.jsonl), and curves (early-answering curves, accuracy by steps, reliability bins).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any, Mapping, Optional, Union

from reasonlab.eval.backend import Backend, LMBackend
from reasonlab.eval.config import EvalConfig
from reasonlab.eval.probes import PROBES, Outcome, Probe, Run
from reasonlab.eval.requests import Sample, Unsupported
from reasonlab.eval.sharded import shard
from reasonlab.tasks.base import Task

# 7: one answer span (the grader's) for calibration; probes as requests. 8: contexts cut from the
# model's own text; answer-only samples scored by their behaviour; swap and hint; n and chance
EVALUATOR_VERSION = "8"
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


def backend_for(model, tokenizer, task: Task, cfg: EvalConfig, reader: Optional[tuple[Any, Any]] = None) -> LMBackend:
    """The LM backend sized by `cfg`; `reader` = (model, tokenizer) of a fixed information-gain reader."""
    sizes = dict(batch_size=cfg.batch_size, max_new_tokens=cfg.max_new_tokens, answer_max_tokens=cfg.answer_max_tokens,
                 truncation_rows=cfg.truncation_rows, seed=cfg.seed)
    read = LMBackend(reader[0], reader[1], task, **sizes) if reader is not None else None
    probes = [PROBES.get(name) for name in cfg.probes]
    return LMBackend(model, tokenizer, task, **sizes, reader=read, keep_stats=any(p.reads_token_stats for p in probes),
                     keep_prefixes=any(p.continues_completions for p in probes))


def evaluate(
    model, tokenizer, task: Task, cfg: Union[EvalConfig, Mapping[str, Any], None] = None, *,
    reader: Optional[tuple[Any, Any]] = None, backend: Optional[Backend] = None, has_reader: Optional[bool] = None,
) -> tuple[dict[str, Any], list[dict[str, Any]], dict[str, Any]]:
    """Return (metrics, samples, curves). `cfg`: an EvalConfig, or changes to the defaults
    (`{"num_samples": 50}`). `backend` replaces the model (tests); `has_reader` says whether it
    answers reader requests (default: whether `reader` was given)."""
    if not isinstance(cfg, EvalConfig):
        cfg = EvalConfig.default(**dict(cfg or {}))
    t0 = time.perf_counter()
    backend = backend or shard(backend_for(model, tokenizer, task, cfg, reader))  # several processes: each its share
    ood = task.examples("ood")[: cfg.num_samples]
    examples = task.examples("test")[: cfg.num_samples]
    probes = [PROBES.get(name)() for name in cfg.probes]
    has_reader = reader is not None if has_reader is None else has_reader
    # requests that read only the examples (pass@k's samples) are decoded with the greedy splits
    early = _early_requests(probes, Run(task, cfg, examples, _NOT_YET, _NOT_YET, _NOT_YET, _NOT_YET, has_reader,
                                        backend.num_tokens))
    flat = [r for requests in early.values() if not isinstance(requests, Unsupported) for r in requests]
    greedy = [Sample(ex.prompt) for ex in ood + examples]
    got = backend.answer(greedy + flat, desc="eval generate" if cfg.progress else None)
    texts, at = got[: len(greedy)], len(greedy)
    for i, requests in early.items():
        n = 0 if isinstance(requests, Unsupported) else len(requests)
        early[i], at = (requests, got[at: at + n]), at + n
    answers, correct, records = _records(task, examples, [t[0] for t in texts[len(ood):]], "test")
    _, ood_correct, ood_records = _records(task, ood, [t[0] for t in texts[: len(ood)]], "ood")
    metrics: dict[str, Any] = {
        "accuracy": sum(correct) / len(correct) if correct else None,
        "ood_accuracy": sum(ood_correct) / len(ood_correct) if ood else None,
        "accuracy/n": len(correct),
        "ood_accuracy/n": len(ood_correct),
        "eval/num_samples": len(examples),
    }
    t_acc = time.perf_counter() - t0
    run = Run(task=task, cfg=cfg, examples=examples, completions=[r["completion"] for r in records], answers=answers,
              correct=correct, steps=[r["steps"] for r in records], has_reader=has_reader, num_tokens=backend.num_tokens)
    scored = score_probes(probes, run, backend, early)
    metrics.update(scored.metrics)
    for rec, fields in zip(records, scored.fields):
        rec.update(fields)
    metrics["eval/seconds"] = round(time.perf_counter() - t0, 3)
    metrics["eval/accuracy_seconds"] = round(t_acc, 3)
    metrics["eval/version"] = EVALUATOR_VERSION
    metrics["eval/task"] = task.name
    if scored.notes:
        metrics["eval/notes"] = scored.notes
    return metrics, records + ood_records, {**scored.curves, "probe_seconds": scored.seconds}


@dataclass
class Scored:
    metrics: dict[str, Optional[float]]
    fields: list[dict[str, Any]]  # per test sample, the probes' per-sample values
    curves: dict[str, Any]
    notes: dict[str, str]  # probe -> why some of its metrics are null
    seconds: dict[str, float]  # per probe (its requests and scoring), and "answer": the backend's


class _NotYetKnown(BaseException):
    """Raised when a probe asked before generation reads the completions (BaseException, so that
    no `except Exception` in a probe swallows it)."""


class _NotYet(Sequence):
    def __getitem__(self, i):
        raise _NotYetKnown

    def __len__(self):
        raise _NotYetKnown


_NOT_YET = _NotYet()


def _early_requests(probes: list[Probe], pending: Run) -> dict[int, Any]:
    """The requests of the probes that need only the examples, asked before generation (their
    completions, answers, steps and grades raise when read): {probe index: requests}."""
    out = {}
    for i, probe in enumerate(probes):
        try:
            out[i] = probe.requests(pending)
        except _NotYetKnown:
            continue
    return out


def score_probes(probes: list[Probe], run: Run, backend: Backend, early: Optional[dict[int, tuple]] = None) -> Scored:
    """Every probe's requests, answered by `backend` in one call, then scored. `early`: probe
    index -> (requests, answers) of the probes already answered with the greedy splits."""
    early = early or {}
    timings, planned, flat = {}, [], []
    for i, probe in enumerate(probes):
        t = time.perf_counter()
        requests = early[i][0] if i in early else probe.requests(run)
        planned.append(requests)
        if i not in early and not isinstance(requests, Unsupported):
            flat.extend(requests)
        timings[probe.name] = time.perf_counter() - t
    t = time.perf_counter()
    answers = backend.answer(flat, desc="eval probes" if run.cfg.progress else None) if flat else []
    timings["answer"] = time.perf_counter() - t
    out, at = Scored({}, [{} for _ in run.examples], {}, {}, {}), 0
    for i, (probe, requests) in enumerate(zip(probes, planned)):
        t = time.perf_counter()
        if isinstance(requests, Unsupported):
            outcome = requests
        elif i in early:
            outcome = probe.score(run, early[i][1])
        else:
            outcome = probe.score(run, answers[at: at + len(requests)])
            at += len(requests)
        _merge(probe, outcome if isinstance(outcome, (Outcome, Unsupported)) else Outcome(dict(outcome)), out)
        timings[probe.name] += time.perf_counter() - t
    out.seconds = {k: round(v, 3) for k, v in timings.items()}
    return out


def _merge(probe: Probe, outcome: Union[Outcome, Unsupported], out: Scored) -> None:
    if isinstance(outcome, Unsupported):
        out.notes[probe.name] = outcome.reason
        declared = [k for k, m in probe.metrics.items() if not m.optional and "{" not in k]
        out.metrics.update({k: None for k in declared})
        out.metrics.update({f"{k}/n": 0 for k in declared})
        return
    undeclared = sorted(k for k in {*outcome.metrics, *outcome.n, *outcome.chance} if probe.metric(k) is None)
    if undeclared:
        raise ValueError(f"probe '{probe.name}' returned metrics it does not declare in Probe.metrics: {undeclared}")
    out.metrics.update(outcome.metrics)
    out.metrics.update({f"{k}/n": int(v) for k, v in outcome.n.items()})
    out.metrics.update({f"{k}/chance": v for k, v in outcome.chance.items() if v is not None})
    out.curves.update(outcome.curves)
    if outcome.note:
        out.notes[probe.name] = outcome.note
    for key, values in outcome.fields.items():
        for fields, value in zip(out.fields, values):
            fields[key] = value
