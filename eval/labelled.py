"""The GSM8K grader and step checker against published labels.

    python -m reasonlab.eval.labelled ../shared/data/gsm8k/example_model_solutions.jsonl

Reads GSM8K's example model solutions (each test problem with four real solutions: 6B and 175B,
fine-tuned and verifier-selected, each labelled `is_correct` by the dataset's authors), scores
every solution with `task.score` and reports the agreement with the labels and every
disagreement; then runs the evaluator's step-validity probe on the solutions treated as
completions, per model: how often a right answer was reached through an invalid calculation.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

from reasonlab.eval.config import EvalConfig
from reasonlab.eval.probes import PROBES, Run
from reasonlab.eval.requests import Unsupported
from reasonlab.tasks.base import Example
from reasonlab.tasks.math_word import Gsm8kTask
from reasonlab.core import ConfigError

MODELS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


def check_labelled(path: str | Path) -> dict[str, Any]:
    task = Gsm8kTask(hub_id=None, ood_hub_id=None, keep_calculator=True)
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"labelled solutions not found: {path}")
    by_model: dict[str, list[tuple[Example, str, bool]]] = defaultdict(list)
    disagreements = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            row = json.loads(line)
            gold = task.extract_answer(row["ground_truth"])
            ex = Example(id=f"labelled-{lineno}", prompt=task.format_prompt(row["question"]), answer=gold, split="test")
            for model in MODELS:
                sol = row[model]
                by_model[model].append((ex, sol["solution"], bool(sol["is_correct"])))
    total = agree = 0
    per_model = {}
    for model, items in by_model.items():
        examples = [ex for ex, _, _ in items]
        completions = [c for _, c, _ in items]
        answers = [task.extract_answer(c) for c in completions]
        correct = [task.score(c, ex) for c, ex in zip(completions, examples)]
        for (ex, c, label), a, s in zip(items, answers, correct):
            total += 1
            agree += bool(s) == label
            if bool(s) != label:
                disagreements.append({"model": model, "id": ex.id, "gold": ex.answer, "extracted": a, "label": label,
                                      "ending": c[-120:]})
        run = Run(task=task, cfg=EvalConfig.default(), examples=examples, completions=completions, answers=answers,
                  correct=correct, steps=[task.split_steps(c) for c in completions], has_reader=False, num_tokens=len)
        outcome = PROBES.get("step_validity")().score(run, [])  # reads the steps only: no model
        validity = {} if isinstance(outcome, Unsupported) else outcome.metrics
        per_model[model] = {
            "solutions": len(items),
            "label_accuracy": sum(label for _, _, label in items) / len(items),
            "graded_accuracy": sum(correct) / len(correct),
            **validity,
        }
    return {"solutions": total, "agree": agree, "agreement": agree / total, "disagreements": disagreements,
            "per_model": per_model}


def as_markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Agreement with `is_correct`: **{result['agree']} / {result['solutions']} = {result['agreement']:.2%}**; "
        f"disagreements: {len(result['disagreements'])}.",
        "",
        "| solutions by | n | accuracy (labels) | accuracy (task.score) | step_validity | right_answer_wrong_steps |",
        "|---|---|---|---|---|---|",
    ]
    for model, r in result["per_model"].items():
        lines.append(
            f"| {model} | {r['solutions']} | {r['label_accuracy']:.3f} | {r['graded_accuracy']:.3f} | "
            f"{r['reasoning/step_validity']:.3f} | {r['reasoning/right_answer_wrong_steps']:.3f} |"
        )
    for d in result["disagreements"]:
        lines.append(f"- {d['model']} {d['id']}: gold {d['gold']}, extracted {d['extracted']}, label {d['label']}: "
                     f"`{d['ending']!r}`")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", help="example_model_solutions.jsonl")
    args = parser.parse_args(argv)
    try:
        print(as_markdown(check_labelled(args.path)))
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
