"""Rewards given by import path: `trainer.rewards=[accuracy, my_pkg.rewards:my_fn]`.

`my_pkg.rewards:my_fn` names a module (importable from the working directory or PYTHONPATH) and
an attribute of it:
  - a function with TRL's reward signature, `fn(completions, **kwargs) -> list[float | None]`:
    TRL calls it with `prompts`, `completions`, `completion_ids` and every other column of the
    training dataset as keyword arguments, one list entry per completion (reasonlab's datasets
    have `answer`, `steps`, `knowledge`, `example_id` and `raw_prompt`; `None` leaves a completion
    out of that reward);
  - or a `rewards.base.Reward` subclass, built with the task like the built-in ones.
Its name in TRL's logs and W&B is the function's name (`rewards/my_fn/mean`).
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path
from typing import Any, Callable

from reasonlab.core import ConfigError, RewardError, first_line
from reasonlab.rewards.base import Reward
from reasonlab.tasks.base import Task


def is_import_path(name: str) -> bool:
    return ":" in name


def load_function(path: str) -> Callable:
    """The object `module:attribute` names; one line when it cannot be imported or called."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"reward '{path}': an import path is module:function, e.g. my_pkg.rewards:my_reward")
    if str(Path.cwd()) not in sys.path and "" not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # `python -m` puts the working directory first; entry points may not
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # noqa: BLE001 - the user's module: any error it raises on import is theirs
        raise ConfigError(f"reward '{path}': cannot import {module_name} ({type(e).__name__}: {first_line(e)}); "
                          "is it on PYTHONPATH or in the working directory?") from None
    fn = module
    for part in attribute.split("."):
        if not hasattr(fn, part):
            names = [n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))]
            raise ConfigError(f"reward '{path}': {module_name} has no '{attribute}' "
                              f"(its functions: {', '.join(names) or 'none'})")
        fn = getattr(fn, part)
    if not callable(fn):
        raise ConfigError(f"reward '{path}': {attribute} is a {type(fn).__name__}, not a function")
    return fn


class ImportedReward:
    """A user's TRL-signature reward function, named in TRL's logs as itself; an exception it
    raises becomes a RewardError naming it and the first completion of the batch."""

    def __init__(self, path: str, fn: Callable):
        self.path, self.fn = path, fn
        self.__name__ = getattr(fn, "__name__", path.rpartition(":")[2])

    def __call__(self, prompts: list[Any] | None = None, completions: list[Any] | None = None, **kwargs: Any):
        try:
            out = self.fn(prompts=prompts, completions=completions, **kwargs)
        except Exception as e:
            first = completions[0] if completions else None
            raise RewardError(f"reward '{self.path}' failed (first completion {str(first)[:80]!r}): "
                              f"{type(e).__name__}: {first_line(e)}") from e
        out = list(out)
        if completions is not None and len(out) != len(completions):
            raise RewardError(f"reward '{self.path}' returned {len(out)} values for {len(completions)} completions")
        return out


def imported_reward(path: str, task: Task) -> Any:
    obj = load_function(path)
    if inspect.isclass(obj) and issubclass(obj, Reward):
        return obj(task)
    if inspect.isclass(obj):
        raise ConfigError(f"reward '{path}': {obj.__name__} is a class but not a rewards.base.Reward; give a function "
                          "(completions, **kwargs) -> list[float | None] or a Reward subclass")
    return ImportedReward(path, obj)
