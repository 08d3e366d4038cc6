"""The evaluator every run goes through: one function, the same for every trainer.

`evaluate(model, tokenizer, task, cfg)` generates greedily for the test and ood splits (batched,
left-padded), scores each completion with the task's own `score`, and returns the metrics dict
that becomes metrics.json, plus per-sample records for samples.jsonl.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

from eval.generation import generate
from tasks.base import Task

EVALUATOR_VERSION = "1"


def evaluate(model, tokenizer, task: Task, cfg: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return (metrics, samples). cfg: num_samples, max_new_tokens, batch_size, progress."""
    t0 = time.perf_counter()
    metrics: dict[str, Any] = {}
    samples: list[dict[str, Any]] = []
    for split, key in (("test", "accuracy"), ("ood", "ood_accuracy")):
        examples = task.examples(split)[: cfg["num_samples"]]
        if not examples:
            metrics[key] = None
            continue
        completions = generate(
            model,
            tokenizer,
            [ex.prompt for ex in examples],
            max_new_tokens=cfg["max_new_tokens"],
            batch_size=cfg["batch_size"],
            desc=f"eval {split}" if cfg.get("progress", True) else None,
        )
        correct = []
        for ex, completion in zip(examples, completions):
            score = task.score(completion, ex)
            correct.append(score)
            samples.append(
                {
                    "id": ex.id,
                    "split": split,
                    "prompt": ex.prompt,
                    "completion": completion,
                    "answer": task.extract_answer(completion),
                    "gold": ex.answer,
                    "correct": score,
                    "steps": task.split_steps(completion),
                }
            )
        metrics[key] = sum(correct) / len(correct)
        if split == "test":
            metrics["eval/num_samples"] = len(examples)
    metrics["eval/seconds"] = round(time.perf_counter() - t0, 3)
    metrics["eval/version"] = EVALUATOR_VERSION
    return metrics, samples
