"""`jsonl`: a user's own data without code, in the formats people have.

`task.path` is a local file (`.jsonl`, `.json`, `.csv`, `.tsv`, `.parquet`, `.arrow`), a dataset
directory (written by `Dataset.save_to_disk`, or a folder of data files `datasets.load_dataset`
reads), or a hub id (`org/name`, loaded with `datasets.load_dataset(path, hub_config)`).

A row is one of:
  reasonlab fields   `prompt` (str or messages), `answer` (str or number), optional `steps`
                     (list of str; in a .csv/.tsv a string, one step per line)
  TRL prompt/completion   `prompt` and `completion`, both strings (standard) or both lists of
                     {role, content} messages (conversational)
  TRL conversational `messages`: a list of {role, content}; the last, assistant, message is the
                     completion, the messages before it the prompt
and may have `split` (train/test/ood; without it rows are split train/test by `test_fraction`),
`knowledge` (str) and `id`. `task.columns={prompt: question, answer: final}` maps a dataset's own
column names to these fields. Without `answer`, the answer is what the grader reads from the
completion; without `steps`, the steps are the completion's reasoning (before the answer line),
one per line (one paragraph: one per sentence). Reference completions are then written the way
every reasonlab task writes them: the steps, one per line, then `answer_prefix` and the answer.

Prompts: the row's prompt, `instruction` (if set) on the next line, then `separator` ("\\n": the
completion starts on a line of its own; never a trailing space, which BPE tokenizers would read
as the start of the completion's first word). `chat=true` renders the prompt (a conversation as it
is, a string as one user message) with the model tokenizer's chat template instead, as TRL does.

Grading (`grader`): `lenient` (default) is GSM8K's grader (tasks/grading.py): `#### 72`, `A: 72`,
`Answer: 72`, `The answer is 72.`, `\\boxed{72}`, `$1,200`, `72.00`; with no marker the last number;
equal numbers (72 == 72.0) or the same text are correct. `exact` reads the text after the last
`answer_prefix` to the end of its line and compares it with the gold answer character for character.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import re
from pathlib import Path
from typing import Any, Iterator, Optional

from reasonlab.core import ConfigError, did_you_mean, first_line
from reasonlab.tasks.base import SPLITS, Example, Task, stable_prompt
from reasonlab.tasks.grading import Extracted, equivalent, find_answer
from reasonlab.tasks.grading import normalize as lenient_normalize

log = logging.getLogger(__name__)

FIELDS = ("prompt", "answer", "completion", "messages", "steps", "split", "knowledge", "id")
GRADERS = ("lenient", "exact")
SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".csv": "csv", ".tsv": "csv",
            ".parquet": "parquet", ".arrow": "arrow"}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
# what is left of an answer line before its marker ("So the answer is 7"): not a reasoning step
_LEAD_IN = re.compile(r"^(?:so|thus|therefore|hence|then|finally|and)?\W*$", re.IGNORECASE)


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


def _first_byte(path: Path) -> bytes:
    """The file's first non-whitespace byte (a JSON array starts with `[`)."""
    with path.open("rb") as fh:
        head = fh.read(4096).lstrip()
        while not head:
            chunk = fh.read(4096)
            if not chunk:
                return b""
            head = chunk.lstrip()
    return head[:1]


def _messages(value: Any, where: str, name: str) -> list[dict[str, str]]:
    """A list of {role, content} messages with string content, or a ConfigError."""
    if (not isinstance(value, list) or not value
            or not all(isinstance(m, dict) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)
                       for m in value)):
        raise ConfigError(f"{where}: field '{name}' must be a non-empty list of {{\"role\", \"content\"}} messages "
                          "with string content")
    return [{"role": m["role"], "content": m["content"]} for m in value]


def read_json_array(path: Path) -> Iterator[tuple[str, Any]]:
    """(file:line, element) for every element of a JSON array, with the line each element starts on."""
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    pos = len(text) - len(text.lstrip())
    if not text.strip():
        raise ConfigError(f"{path}: the file is empty (expected a JSON array of records)")
    if text[pos] != "[":
        raise ConfigError(f"{path}:1: expected a JSON array of records")
    pos += 1
    n = 0
    while True:
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
        if pos >= len(text):
            raise ConfigError(f"{path}: the JSON array is not closed")
        if text[pos] == "]":
            break
        where = f"{path}:{text.count(chr(10), 0, pos) + 1}"
        try:
            row, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{where}: not valid JSON ({e.msg})") from None
        n += 1
        yield where, row
    if not n:
        raise ConfigError(f"{path}: the file has no records")


class JsonlTask(Task):
    name = "jsonl"
    version = "3"  # 2: a separator after the prompt, GSM8K's grader, the answer line not a step; 3: chat prompts end where their tokens stay a prefix

    def __init__(self, path: Optional[str] = None, test_fraction: float = 0.1, seed: int = 0, step_separator: str = "\n",
                 columns: Optional[dict] = None, hub_config: Optional[str] = None, chat: bool = False,
                 instruction: Optional[str] = None, separator: str = "\n", answer_prefix: str = "A:",
                 grader: str = "lenient"):
        super().__init__()
        if not path:
            raise ConfigError("task=jsonl needs a data file: add task.path=/path/to/data.jsonl (or a .csv/.parquet "
                              "file, a dataset directory, or a hub id org/name)")
        if grader not in GRADERS:
            raise ConfigError(f"task.grader must be one of {', '.join(GRADERS)}, got '{grader}'.{did_you_mean(grader, GRADERS)}")
        if not 0 <= test_fraction <= 1:
            raise ConfigError(f"task.test_fraction must be in [0, 1], got {test_fraction}")
        tail = separator or (instruction or "")
        if tail.endswith((" ", "\t")):
            raise ConfigError(f"task.separator={separator!r} ends the prompt with a space, which a BPE tokenizer reads as "
                              "the start of the completion's first word; end it with a newline or a non-space character")
        if not answer_prefix.strip():
            raise ConfigError("task.answer_prefix must not be empty (it is written before the final answer)")
        columns = dict(columns or {})
        for field, column in columns.items():
            if field not in FIELDS:
                raise ConfigError(f"task.columns: unknown field '{field}'.{did_you_mean(str(field), FIELDS)} "
                                  f"Fields: {', '.join(FIELDS)} (as {{field: your_column}})")
            if not isinstance(column, str) or not column:
                raise ConfigError(f"task.columns.{field} must be a column name, got {column!r}")
        self.source = str(path)
        self.path = Path(path).expanduser()
        self.columns, self.hub_config = columns, hub_config
        self._names = {f: columns.get(f, f) for f in FIELDS}
        self.test_fraction, self.seed, self.step_separator = test_fraction, seed, step_separator
        self.chat, self.instruction, self.separator = chat, instruction, separator
        self.answer_prefix, self.grader = answer_prefix, grader
        self._render = None
        self._lead = ""  # chat: what the completion begins with, the end of the template the prompt leaves out
        self._all = self._read()

    # -- reading -----------------------------------------------------------------------------
    def _rows(self) -> Iterator[tuple[str, dict[str, Any], Optional[str], str, bool]]:
        """(where, row, the split its source names or None, default id, steps may be a string)."""
        p = self.path
        if p.is_file():
            kind = SUFFIXES.get(p.suffix.lower())
            if kind is None:
                raise ConfigError(f"{p}: unknown data file type '{p.suffix}'; task=jsonl reads "
                                  f"{', '.join(SUFFIXES)} files, a dataset directory or a hub id")
            if kind == "json" and _first_byte(p) == b"[":

                for i, (where, row) in enumerate(read_json_array(p)):
                    if not isinstance(row, dict):
                        raise ConfigError(f"{where}: expected a JSON object, got {type(row).__name__}")
                    yield where, row, None, f"{p.stem}-{i + 1}", False
            elif kind in ("json", "jsonl"):
                for lineno, row in read_jsonl(p, "examples"):
                    yield f"{p}:{lineno}", row, None, f"{p.stem}-{lineno}", False
            else:
                yield from self._dataset_rows(self._load_file(p, kind), str(p), p.stem, flat=kind == "csv")
        elif p.is_dir():
            yield from self._dataset_rows(self._load_dir(p), str(p), p.name)
        elif _HUB_ID.match(self.source) and Path(self.source).suffix.lower() not in SUFFIXES:
            yield from self._dataset_rows(self._load_hub(self.source), self.source, self.source.rsplit("/", 1)[-1])
        else:
            raise ConfigError(f"data file not found: {p} (set task.path to an existing .jsonl, .json, .csv, .tsv, "
                              ".parquet or .arrow file, a dataset directory, or a hub id org/name)")

    @staticmethod
    def _load_file(p: Path, kind: str):
        try:
            if kind == "csv":  # every cell as its text ("007" stays "007"); empty cells are missing
                import pandas as pd
                from datasets import Dataset

                frame = pd.read_csv(p, sep="\t" if p.suffix.lower() == ".tsv" else ",", dtype=str,
                                    keep_default_na=False, na_values=[""])
                return Dataset.from_pandas(frame, preserve_index=False)
            import datasets

            return datasets.load_dataset(kind, data_files=str(p), split="train")
        except ConfigError:
            raise
        except Exception as e:
            raise ConfigError(f"{p}: could not read the file as {kind} ({first_line(e)})") from None

    def _load_dir(self, p: Path):
        import datasets

        try:
            if (p / "dataset_dict.json").is_file() or (p / "state.json").is_file():  # Dataset.save_to_disk
                return datasets.load_from_disk(str(p))
            return datasets.load_dataset(str(p), self.hub_config)  # a folder of data files
        except Exception as e:
            raise ConfigError(f"{p}: could not read the directory as a dataset ({first_line(e)}); point task.path at "
                              "a data file, a Dataset.save_to_disk directory or a folder of data files") from None

    def _load_hub(self, hub_id: str):
        try:
            import datasets

            return datasets.load_dataset(hub_id, self.hub_config)
        except Exception as e:  # offline, unknown dataset, gated: say what to do instead
            raise ConfigError(f"could not load '{hub_id}' through datasets ({first_line(e)}); without network, "
                              "point task.path at a local file or a Dataset.save_to_disk directory") from None

    def _dataset_rows(self, ds, name: str, stem: str, flat: bool = False):
        """Rows of a `datasets` Dataset or DatasetDict. A DatasetDict with a `test` split gives its
        train/test/ood splits as they are (others, like validation, are not used); without one, its
        rows are split by `test_fraction` like a file's."""
        import datasets

        parts = dict(ds) if isinstance(ds, datasets.DatasetDict) else {None: ds}
        named = "test" in parts
        unused = [s for s in parts if named and s not in SPLITS]
        if unused:
            log.info("%s: using the %s split(s); not using %s", name, ", ".join(s for s in parts if s in SPLITS),
                     ", ".join(unused))
        n = 0
        for split, part in parts.items():
            if split in unused:
                continue
            missing = [col for col in self.columns.values() if col not in part.column_names]
            if missing:
                maps = ", ".join(f"{f} to '{c}'" for f, c in self.columns.items() if c in missing)
                raise ConfigError(f"{name}: task.columns maps {maps}, but there is no such column.{did_you_mean(missing[0], part.column_names)} "
                                  f"Columns: {', '.join(part.column_names)}")
            try:
                records = part.to_list()
            except Exception as e:
                raise ConfigError(f"{name}: could not read the rows ({first_line(e)})") from None
            label = name if split is None else f"{name}[{split}]"
            for i, row in enumerate(records):
                n += 1
                yield (f"{label} row {i + 1}", row, split if named else None,
                       f"{stem}-{i + 1}" if split is None else f"{stem}-{split}-{i + 1}", flat)
        if not n:
            raise ConfigError(f"{name}: the dataset has no examples")

    def _read(self) -> list[Example]:
        return [self._example(*row) for row in self._rows()]

    def _example(self, where: str, raw: dict[str, Any], source_split: Optional[str], default_id: str,
                 flat: bool) -> Example:
        names = self._names
        row = {f: raw[c] for f, c in names.items() if c in raw and raw[c] is not None}  # a missing cell is None
        completion: Optional[str] = None
        if "messages" in row:  # TRL conversational: the last, assistant, message is the completion
            messages = _messages(row["messages"], where, names["messages"])
            if messages[-1]["role"] != "assistant":
                raise ConfigError(f"{where}: field '{names['messages']}' must end with the assistant's message "
                                  f"(the completion), got a last message from '{messages[-1]['role']}'")
            if len(messages) < 2:
                raise ConfigError(f"{where}: field '{names['messages']}' has no message before the assistant's "
                                  "(the prompt)")
            prompt: Any = messages[:-1]
            completion = messages[-1]["content"]
        else:
            if "prompt" not in row:
                raise ConfigError(f"{where}: missing required field '{names['prompt']}' (a row needs prompt and answer, "
                                  "prompt and completion, or messages; task.columns maps your column names)")
            prompt = row["prompt"]
            if isinstance(prompt, list):
                prompt = _messages(prompt, where, names["prompt"])
            elif not isinstance(prompt, str) or not prompt.strip():
                raise ConfigError(f"{where}: field '{names['prompt']}' must be a non-empty string or a list of messages")
            if "completion" in row:  # TRL prompt/completion, standard or conversational
                value = row["completion"]
                if isinstance(value, list):
                    value = "\n".join(m["content"] for m in _messages(value, where, names["completion"]))
                elif not isinstance(value, str):
                    raise ConfigError(f"{where}: field '{names['completion']}' must be a string or a list of messages")
                completion = value
            elif "answer" not in row:
                raise ConfigError(f"{where}: missing required field '{names['answer']}' (or a '{names['completion']}' "
                                  "to read it from)")
        if "answer" in row:
            gold = row["answer"]
            if not isinstance(gold, (str, int, float)) or isinstance(gold, bool):
                raise ConfigError(f"{where}: field '{names['answer']}' must be a string or a number")
            answer = str(gold).strip()
        else:
            answer = self.extract_answer(completion) or ""
            if not answer:
                raise ConfigError(
                    f"{where}: the grader found no final answer in the completion; end it with '#### <answer>' or "
                    f"'Answer: <answer>', or give the answer in an '{names['answer']}' field "
                    "(task.columns={answer: <your column>} maps one)")
        if not answer or answer.lower() in ("nan", "inf", "-inf", "infinity", "-infinity") or len(answer) > 100:
            raise ConfigError(f"{where}: the answer {answer[:20]!r}{'...' if len(answer) > 20 else ''} can never be "
                              "matched (empty, not finite, or over 100 characters)")
        if "steps" in row:
            steps = row["steps"]
            if flat and isinstance(steps, str):  # a CSV cell: one step per line
                steps = [s.strip() for s in steps.split(self.step_separator) if s.strip()]
            if not isinstance(steps, list) or not all(isinstance(s, str) for s in steps):
                raise ConfigError(f"{where}: field '{names['steps']}' must be a list of strings")
        else:
            steps = self.split_steps(completion) if completion is not None else []
        split = row.get("split", source_split)
        if split is not None and split not in SPLITS:
            raise ConfigError(f"{where}: field '{names['split']}' must be one of {', '.join(SPLITS)}, got {split!r}")
        knowledge = row.get("knowledge")
        if knowledge is not None and not isinstance(knowledge, str):
            raise ConfigError(f"{where}: field '{names['knowledge']}' must be a string")
        return Example(id=str(row.get("id", default_id)), prompt=self.format_prompt(prompt, where), answer=answer,
                       steps=tuple(steps), split=split or "", knowledge=knowledge,
                       meta={"prompt": prompt, "completion": completion, "where": where})

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

    # -- prompts -----------------------------------------------------------------------------
    def use_tokenizer(self, tokenizer) -> None:
        """With `chat=true`, prompts are the tokenizer's chat template around the row's prompt (the
        prompt TRL builds from a conversational dataset), the same text in training and evaluation.
        Either way, a tokenizer that merges the prompt's last characters with the completion's first
        is reported (`_check_boundary`)."""
        if not self.chat:
            self._check_boundary(tokenizer)
            return
        from reasonlab.tasks.chat import chat_renderer

        self._render = chat_renderer(tokenizer)
        # the prompt ends where its tokens are a prefix of prompt + completion's (tasks/base.py); the
        # completion begins with the rest of the template
        _, self._lead = stable_prompt(tokenizer, self._render([{"role": "user", "content": "Q"}]))
        self._all = [dataclasses.replace(ex, prompt=self.format_prompt(ex.meta["prompt"], ex.meta["where"]))
                     for ex in self._all]
        self._cache.clear()
        self._check_boundary(tokenizer)

    def _check_boundary(self, tokenizer, n: int = 100) -> None:
        """Warn when, for some of the first `n` examples, the prompt's tokens are not a prefix of
        prompt + completion's: SFT would train on a context that generation never gives the model
        (a BPE without pre-tokenization can merge "?\n" with the next word)."""
        examples = self._all[:n]
        bad = 0
        for ex in examples:
            ids = tokenizer(ex.prompt, add_special_tokens=False)["input_ids"]
            full = tokenizer(ex.prompt + self.format_completion(ex.steps, ex.answer), add_special_tokens=False)["input_ids"]
            bad += full[: len(ids)] != ids
        if bad:
            log.warning("task=jsonl: for %d of %d examples this tokenizer merges the end of the prompt (%r) with the "
                        "start of the completion, so training sees other prompt tokens than generation; "
                        "task.chat=true avoids it (a chat prompt ends where its tokens stay a prefix), or choose a "
                        "task.separator this tokenizer does not merge with the next word",
                        bad, len(examples), examples[0].prompt[-12:])

    def format_prompt(self, prompt: str | list[dict[str, str]], where: str = "") -> str:
        """The prompt as the model sees it: chat-rendered, or the text, the instruction and the separator
        (a conversation without chat: its messages' contents, one per line)."""
        if self._render is not None:
            messages = [dict(m) for m in prompt] if isinstance(prompt, list) else [{"role": "user", "content": prompt.strip()}]
            if self.instruction:
                users = [m for m in messages if m["role"] == "user"]
                if users:
                    users[-1]["content"] = f"{users[-1]['content'].rstrip()}\n{self.instruction}"
                else:
                    messages.append({"role": "user", "content": self.instruction})
            try:
                text = self._render(messages)
            except Exception as e:
                raise ConfigError(f"{where}: the chat template could not render the prompt ({first_line(e)})") from None
            return text[: len(text) - len(self._lead)] if self._lead and text.endswith(self._lead) else text
        text = prompt if isinstance(prompt, str) else "\n".join(m["content"].strip() for m in prompt)
        text = text.rstrip()
        if self.instruction:
            text = f"{text}\n{self.instruction}"
        return text + self.separator

    def format_completion(self, steps, answer: str) -> str:
        """The reference completion; after a chat prompt it begins with what the prompt left of the
        template (`use_tokenizer`)."""
        return self._lead + super().format_completion(steps, answer)

    # -- answers: the grader, its span, the reasoning before it ----------------------------------
    def _find(self, completion: str, lenient: bool = True) -> Optional[Extracted]:
        if self.grader == "exact":
            idx = completion.rfind(self.answer_prefix)
            if idx < 0:
                return None
            start = idx + len(self.answer_prefix)
            return Extracted(completion[start:].split(self.step_separator or "\n", 1)[0], idx, start)
        return find_answer(completion, lenient=lenient)

    def extract_answer(self, completion: str) -> Optional[str]:
        found = self._find(completion)
        if found is None:
            return None
        return self.normalize(found.text) or None

    def answer_span(self, completion: str) -> Optional[tuple[int, int]]:
        """The characters the grader reads the answer from (the same `_find` as `extract_answer`):
        lenient, GSM8K's span (the number in `#### $1,200.`, the boxed text, the last number); exact,
        the stripped text after the last answer prefix."""
        found = self._find(completion)
        if found is None:
            return None
        if self.grader == "lenient":
            return found.span()
        text = found.text
        if not text.strip():
            return None
        lead = len(text) - len(text.lstrip())
        return found.text_start + lead, found.text_start + len(text.rstrip())

    def has_answer(self, completion: str) -> bool:
        """An explicit answer (a marker, or the answer prefix), not the lenient last-number guess."""
        found = self._find(completion, lenient=False)
        return found is not None and bool(self.normalize(found.text))

    def normalize(self, answer: str) -> str:
        return lenient_normalize(answer) if self.grader == "lenient" else answer.strip()

    def score(self, completion: str, example: Example) -> float:
        predicted = self.extract_answer(completion)
        if predicted is None:
            return 0.0
        if self.grader == "exact":
            return float(predicted == example.answer.strip())
        return float(predicted == self.normalize(example.answer) or equivalent(example.answer, predicted))

    def reasoning_of(self, completion: str) -> str:
        found = self._find(completion, lenient=False)
        return completion if found is None else completion[: found.start]

    def split_steps(self, completion: str) -> list[str]:
        """The reasoning's steps: its pieces between step separators (one paragraph: its sentences),
        without the answer line (`#### 72`, `Answer: 72`, `So the answer is 72.`)."""
        found = self._find(completion, lenient=False)
        reasoning = completion if found is None else completion[: found.start]
        steps = [s.strip() for s in reasoning.split(self.step_separator or "\n") if s.strip()]
        if len(steps) == 1:
            steps = [s.strip() for s in _SENTENCE.split(steps[0]) if s.strip()]
        if found is not None and steps and _LEAD_IN.match(steps[-1]):  # "So" before "the answer is 72"
            steps.pop()
        return steps

    def alphabet(self) -> str:
        """The base alphabet and every character of the data, so a character-level tokenizer covers it."""
        chars = set(super().alphabet()) | set(self.answer_prefix + self.separator + self.step_separator)
        chars |= set(self.instruction or "")
        for ex in self._all:
            chars |= set(ex.prompt) | set(ex.answer) | set("".join(ex.steps))
        return "".join(sorted(chars))
