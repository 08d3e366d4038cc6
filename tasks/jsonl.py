"""`jsonl`: any file with one JSON object per line, so a user's own data works without code.

Fields: `prompt` (str, required), `answer` (str or number, required), `steps` (list of str,
optional), `split` (train/test/ood, optional: without it, lines are split train/test by
`test_fraction`), `knowledge` (str, optional), `id` (optional).
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Iterator

from core import ConfigError
from tasks.base import SPLITS, Example, Task


def read_jsonl(path: Path, noun: str = "records") -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-empty line; a ConfigError naming the file and line for
    a line that is not a JSON object, and for a file without any."""
    n = 0
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ConfigError(f"{path}:{lineno}: not valid UTF-8 (byte {e.start + 1}); save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ConfigError(f"{path}:{lineno}: not valid JSON ({e.msg}); each line must be one JSON object") from None
            if not isinstance(row, dict):
                raise ConfigError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            n += 1
            yield lineno, row
    if not n:
        raise ConfigError(f"{path}: the file has no {noun} (expected one JSON object per line)")


class JsonlTask(Task):
    name = "jsonl"
    version = "1"

    def __init__(self, path: str | None = None, test_fraction: float = 0.1, seed: int = 0, step_separator: str = "\n"):
        super().__init__()
        if not path:
            raise ConfigError("task=jsonl needs a data file: add task.path=/path/to/data.jsonl")
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise ConfigError(f"data file not found: {self.path} (set task.path to an existing .jsonl file)")
        self.test_fraction, self.seed, self.step_separator = test_fraction, seed, step_separator
        self._all = self._read()

    def _read(self) -> list[Example]:
        out = []
        for lineno, row in read_jsonl(self.path, "examples"):
            where = f"{self.path}:{lineno}"
            for key in ("prompt", "answer"):
                if key not in row:
                    raise ConfigError(f"{where}: missing required field '{key}'")
            if not isinstance(row["prompt"], str) or not row["prompt"].strip():
                raise ConfigError(f"{where}: field 'prompt' must be a non-empty string")
            if not isinstance(row["answer"], (str, int, float)) or isinstance(row["answer"], bool):
                raise ConfigError(f"{where}: field 'answer' must be a string or a number")
            answer = str(row["answer"]).strip()
            if not answer or answer.lower() in ("nan", "inf", "-inf", "infinity", "-infinity") or len(answer) > 100:
                raise ConfigError(f"{where}: the answer {answer[:20]!r}{'...' if len(answer) > 20 else ''} can never be "
                                  "matched (empty, not finite, or over 100 characters)")
            steps = row.get("steps", [])
            if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
                raise ConfigError(f"{where}: field 'steps' must be a list of strings")
            split = row.get("split")
            if split is not None and split not in SPLITS:
                raise ConfigError(f"{where}: field 'split' must be one of {', '.join(SPLITS)}, got {split!r}")
            out.append(
                Example(
                    id=str(row.get("id", f"{self.path.stem}-{lineno}")),
                    prompt=row["prompt"],
                    answer=str(row["answer"]).strip(),
                    steps=tuple(steps),
                    split=split or "",
                    knowledge=row.get("knowledge"),
                )
            )
        return out

    def _build_split(self, split: str) -> list[Example]:
        unsplit = [ex for ex in self._all if not ex.split]
        rng = random.Random(self.seed)
        order = list(range(len(unsplit)))
        rng.shuffle(order)
        n_test = int(round(len(unsplit) * self.test_fraction))
        auto = {i: ("test" if rank < n_test else "train") for rank, i in enumerate(order)}
        chosen = [ex for ex in self._all if ex.split == split]
        chosen += [ex for i, ex in enumerate(unsplit) if auto[i] == split]
        return [Example(**{**ex.__dict__, "split": split}) for ex in chosen]
