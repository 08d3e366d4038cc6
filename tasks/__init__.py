"""Tasks: the common data interface. `from tasks import load_task; task = load_task("arith")`."""

from __future__ import annotations

from typing import Any

from reasonlab.core import ConfigError, Registry
from reasonlab.tasks.arith import ArithTask
from reasonlab.tasks.base import SPLITS, Example, Task
from reasonlab.tasks.jsonl import JsonlTask
from reasonlab.tasks.math_word import Gsm8kTask, SvampTask

TASKS: Registry[type[Task]] = Registry("task")
TASKS.register("arith")(ArithTask)
TASKS.register("jsonl")(JsonlTask)
TASKS.register("gsm8k")(Gsm8kTask)
TASKS.register("svamp")(SvampTask)


def load_task(name: str, **kwargs: Any) -> Task:
    """Build a task by registry name; keyword arguments are the task's own options."""
    cls = TASKS.get(name)
    try:
        return cls(**kwargs)
    except TypeError as e:
        raise ConfigError(f"bad options for task '{name}': {e}") from None


__all__ = ["TASKS", "SPLITS", "ConfigError", "Example", "Task", "load_task"]
