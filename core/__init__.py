"""The bottom layer every package imports: the errors a user can cause, and registries that fail loudly.

Layers: launch -> trainers -> rewards / eval -> tasks / models -> core. Nothing here imports
another reasonlab package.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Callable, Generic, Iterable, TypeVar

T = TypeVar("T")


class ConfigError(Exception):
    """A mistake the user can fix: bad config, missing file, malformed data.

    The entry points print its message as one line (no traceback) and exit non-zero.
    """


class RunError(Exception):
    """A run that cannot go on (a non-finite loss, say): printed as one line, exit non-zero."""


class RewardError(RuntimeError):
    """A reward function failed; the message names the reward and the sample."""


def first_line(error: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), for one-line errors."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" Did you mean '{close[0]}'?" if close else ""


class Registry(Generic[T]):
    """Name -> object map. Unknown names list the valid ones; duplicates are refused."""

    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def wrap(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} '{name}' is already registered ({self._items[name]!r})")
            self._items[name] = obj
            return obj

        return wrap

    def get(self, name: str) -> T:
        if name not in self._items:
            raise ConfigError(
                f"unknown {self.kind} '{name}'.{did_you_mean(name, self._items)} "
                f"Valid {self.kind}s: {', '.join(sorted(self._items))}"
            )
        return self._items[name]

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_readable(path: "str | os.PathLike[str]") -> None:
    """Give a file the permissions a plain `open(..., "w")` would (0666 minus the umask, 0644 with
    the usual 022): temporary files are created 0600, which collaborators on a shared filesystem
    cannot read. A directory: every file in it."""
    path = Path(path)
    mode = 0o666 & ~_umask()
    for f in ([path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]):
        os.chmod(f, mode)
