"""Real benchmarks: `gsm8k` (grade-school math word problems) and `svamp` (its robustness variant,
GSM8K's ood split here).

    from reasonlab.tasks import load_task
    task = load_task("gsm8k", path="../shared/data/gsm8k", ood_path="../shared/data/svamp/SVAMP.json")
    ex = task.examples("test")[0]
    task.score("She makes 9 * 2 = $18.\\n#### 18", ex)   # 1.0

Data comes from local files (`path`: a directory with GSM8K's `train.jsonl`/`test.jsonl`;
`ood_path`: SVAMP's `SVAMP.json` or a JSONL of the same records) or, when those are not set,
from the Hugging Face hub through `datasets` (`hub_id`, `hub_config`). The task classes are the
same either way.

Text format. A GSM8K solution is one step per line, then `#### <answer>`. The calculator
annotations (`<<48/2=24>>`) are removed from the text the model trains on (`keep_calculator=true`
keeps them); the reference steps keep them in `Example.meta["annotated_steps"]`. Step checking
parses annotations and plain equations (`16 - 3 - 4 = 9`) with a safe arithmetic evaluator
(tasks/safe_arith.py); nothing is executed. Grading (tasks/grading.py) accepts `#### 72`,
`A: 72`, `The answer is 72.`, `\\boxed{72}`, `$1,200`, `72.00`, `72 dollars`, and agrees with
the published labels of GSM8K's example solutions on all 5,276 of them (docs/grading.md).
"""

from __future__ import annotations

import json
import random
import re
import string
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Optional

from reasonlab.tasks.base import Example, Task, stable_prompt
from reasonlab.tasks.chat import chat_renderer
from reasonlab.tasks.grading import equivalent, find_answer, normalize
from reasonlab.tasks.jsonl import read_json_array, read_jsonl
from reasonlab.core import ConfigError, first_line
from reasonlab.tasks.safe_arith import canonical, close, parse_number, try_evaluate

_ANNOTATION = re.compile(r"<<([^<>]*)>>")
_EQUATION = re.compile(
    r"(?<![\w.])((?:\$?\d[\d,]*(?:\.\d+)?%?\s*[-+*/x×÷]\s*)+\$?\d[\d,]*(?:\.\d+)?%?)\s*=\s*\$?(-?\d[\d,]*(?:\.\d+)?)(%?)"
    r"(?![\d.]*\d)(?![A-Za-z:]|/\d)"
)
_VISIBLE = re.compile(r"\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?)")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
DEFAULT_INSTRUCTION = "Solve the problem step by step, one step per line, and end with '#### <answer>'."


def read_records(path: Path, required: tuple[str, ...], text: tuple[str, ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(file:line, record) from a JSONL file or a JSON array (`.json`); every `required` field must
    be there, and the `text` ones must be non-empty strings."""
    if not path.is_file():
        raise ConfigError(f"data file not found: {path}")
    rows = read_json_array(path) if path.suffix == ".json" else (
        (f"{path}:{lineno}", row) for lineno, row in read_jsonl(path, "records"))
    for where, row in rows:
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: expected a JSON object, got {type(row).__name__}")
        for key in required:
            if key not in row:
                raise ConfigError(f"{where}: missing required field '{key}'")
        for key in text:
            if not isinstance(row[key], str) or not row[key].strip():
                raise ConfigError(f"{where}: field '{key}' must be a non-empty string")
        yield where, row


def hub_records(hub_id: str, config: Optional[str], splits: tuple[str, ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Records from the Hugging Face hub (or a local dataset directory) through `datasets`."""
    try:
        import datasets

        for split in splits:
            ds = datasets.load_dataset(hub_id, config, split=split)
            for i, row in enumerate(ds):
                yield f"{hub_id}[{split}][{i}]", dict(row)
    except ConfigError:
        raise
    except Exception as e:  # offline, unknown dataset, bad split: say what to do instead
        raise ConfigError(
            f"could not load '{hub_id}' split(s) {', '.join(splits)} through datasets ({first_line(e)}); "
            "without network, point the task at local files (task.path / task.ood_path)"
        ) from None


class MathWordTask(Task):
    """Shared by GSM8K and SVAMP: prompt format, chat template, answer grading, step format."""

    answer_prefix = "#### "
    step_separator = "\n"

    def __init__(self, chat: bool = False, instruction: str = DEFAULT_INSTRUCTION, answer_prefix: str = "#### ",
                 lenient: bool = True) -> None:
        super().__init__()
        self.chat, self.instruction, self.answer_prefix, self.lenient = chat, instruction, answer_prefix, lenient
        self._render = None
        self._lead = ""  # chat: what the completion begins with, the end of the template the prompt leaves out

    # -- prompts ------------------------------------------------------------------------------
    def use_tokenizer(self, tokenizer) -> None:
        """With `chat=true`, prompts are the tokenizer's chat template around the question (the
        prompt TRL builds from a conversational dataset), the same text in training and evaluation."""
        if not self.chat:
            return
        render_messages = chat_renderer(tokenizer)

        def render(question: str) -> str:
            content = f"{question}\n{self.instruction}" if self.instruction else question
            return render_messages([{"role": "user", "content": content}])

        # the prompt ends where its tokens are a prefix of prompt + completion's (tasks/base.py)
        _, self._lead = stable_prompt(tokenizer, render("Q"))

        def without_lead(question: str) -> str:
            text = render(question)
            return text[: len(text) - len(self._lead)]

        self._render = without_lead if self._lead else render
        self._cache.clear()

    def format_prompt(self, question: str) -> str:
        question = " ".join(question.split())
        if self._render is not None:
            return self._render(question)
        # no trailing space: BPE and SentencePiece tokenizers join a space to the word after it, so
        # the prompt's tokens would not be a prefix of prompt + completion's (the completion
        # begins with the space: format_completion)
        return f"Question: {question}\nAnswer:"

    def format_completion(self, steps, answer: str) -> str:
        """The reference completion; after a plain prompt it begins with the space that separates
        it from "Answer:" (a chat prompt ends with the template's own separator)."""
        return (self._lead if self._render is not None else " ") + super().format_completion(steps, answer)

    # -- answers ------------------------------------------------------------------------------
    def extract_answer(self, completion: str) -> Optional[str]:
        found = find_answer(completion, lenient=self.lenient)
        if found is None:
            return None
        answer = normalize(found.text)
        return answer or None

    def answer_span(self, completion: str) -> Optional[tuple[int, int]]:
        """The characters the grader reads the answer from, found by the same `find_answer` call as
        `extract_answer`: the number in the winning `\\boxed{}` / after the last marker / the lenient
        last number (`1,200` in `#### $1,200.`, `\\frac{3}{4}`), else the stripped answer text."""
        found = find_answer(completion, lenient=self.lenient)
        return None if found is None else found.span()

    def has_answer(self, completion: str) -> bool:
        """An explicit answer marker (`####`, `A:`, `The answer is`, `\\boxed{}`), not a lenient guess."""
        found = find_answer(completion, lenient=False)
        return found is not None and bool(normalize(found.text))

    def normalize(self, answer: str) -> str:
        return normalize(answer)

    def score(self, completion: str, example: Example) -> float:
        return float(equivalent(example.answer, self.extract_answer(completion)))

    def reasoning_of(self, completion: str) -> str:
        found = find_answer(completion, lenient=False)
        return completion if found is None else completion[: found.start]

    def split_steps(self, completion: str) -> list[str]:
        lines = [s.strip() for s in self.reasoning_of(completion).split("\n") if s.strip()]
        if len(lines) == 1:  # one paragraph: its sentences are the steps
            lines = [s.strip() for s in _SENTENCE.split(lines[0]) if s.strip()]
        return lines

    def alphabet(self) -> str:
        return string.printable.strip("\x0b\x0c") + "’‘“”—–×÷€£°½¼¾"

    # -- faithfulness hooks: a hint is a sentence after the question ---------------------------
    paraphrase_in_distribution = True  # natural-language rewordings, for a model of natural language
    HINT = "A classmate got {value}."

    def hinted_prompt(self, example: Example, value: str) -> Optional[str]:
        question = example.meta.get("question")
        return None if question is None else self.format_prompt(f"{question} {self.HINT.format(value=value)}")

    def wrong_answer(self, example: Example, rng: random.Random, avoid: tuple = ()) -> Optional[str]:
        gold = parse_number(example.answer)
        if gold is None:
            return None
        options = [canonical(gold + d) for d in (-3, -2, -1, 1, 2, 3) if gold + d >= 0 or gold < 0]
        options = [o for o in options if not equivalent(o, example.answer) and o not in avoid]
        return rng.choice(options) if options else None

    def concluded(self, steps: list[str]) -> Optional[str]:
        results = [r for r in _results(steps[-1]) if r[2] is not None] if steps else []
        return canonical(results[-1][2]) if results else None

    def states_hint(self, completion: str, example: Example, value: str) -> bool:
        """The reasoning mentions the classmate, or one of its calculations results in `value`."""
        reasoning = self.reasoning_of(completion)
        if "classmate" in reasoning.lower():
            return True
        target = parse_number(value)
        return any(stated is not None and target is not None and close(stated, target)
                   for step in self.split_steps(completion) for _, _, stated, _ in _results(step))


def strip_annotations(text: str) -> str:
    return _ANNOTATION.sub("", text)


def _results(step: str) -> list[tuple[str, Fraction, Fraction, re.Match]]:
    """(expression, computed value, stated value, match) for each checkable calculation in a step."""
    out = []
    annotations = list(_ANNOTATION.finditer(step))
    for m in annotations:
        expr, _, stated = m.group(1).rpartition("=")
        value, stated_value = try_evaluate(expr), parse_number(stated)
        out.append((expr, value, stated_value, m))
    if not annotations:
        for m in _EQUATION.finditer(strip_annotations(step)):
            expr = m.group(1).replace("$", "")
            if m.group(3):  # "50% + 40% = 90%": percentages as numbers of percent
                expr = expr.replace("%", "")
            out.append((expr, try_evaluate(expr), parse_number(m.group(2)), m))
    return out


class Gsm8kTask(MathWordTask):
    name = "gsm8k"
    version = "2"  # 2: the plain prompt ends with "Answer:", the completion begins with its space

    def __init__(self, path: Optional[str] = None, hub_id: str = "openai/gsm8k", hub_config: Optional[str] = "main",
                 ood_path: Optional[str] = None, ood_hub_id: str = "ChilleD/SVAMP", keep_calculator: bool = False,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path).expanduser() if path else None
        if self.path is not None and not (self.path / "test.jsonl").is_file():
            raise ConfigError(
                f"task.path={self.path}: expected a directory holding GSM8K's train.jsonl and test.jsonl"
            )
        self.hub_id, self.hub_config, self.keep_calculator = hub_id, hub_config, keep_calculator
        self.ood = SvampTask(path=ood_path, hub_id=ood_hub_id, **kwargs) if (ood_path or ood_hub_id) else None  # whole

    def use_tokenizer(self, tokenizer) -> None:
        super().use_tokenizer(tokenizer)
        if self.ood is not None:
            self.ood.use_tokenizer(tokenizer)

    def _records(self, split: str):
        if self.path is not None:
            fields = ("question", "answer")
            return read_records(self.path / f"{split}.jsonl", fields, text=fields)
        return hub_records(self.hub_id, self.hub_config, (split,))

    def _build_split(self, split: str) -> list[Example]:
        if split == "ood":
            return [Example(**{**ex.__dict__, "split": "ood"}) for ex in self.ood.load()] if self.ood else []
        out = []
        for i, (where, row) in enumerate(self._records(split)):
            solution, sep, final = row["answer"].rpartition("####")
            if not sep or not final.strip():
                raise ConfigError(f"{where}: the answer has no '#### <final answer>' line (GSM8K format)")
            annotated = tuple(s.strip() for s in solution.strip().split("\n") if s.strip())
            steps = annotated if self.keep_calculator else tuple(strip_annotations(s) for s in annotated)
            out.append(Example(
                id=f"gsm8k-{split}-{i}", prompt=self.format_prompt(row["question"]), answer=normalize(final),
                steps=steps, split=split, knowledge="\n".join(steps),  # RLAG's context: the worked solution
                meta={"annotated_steps": annotated, "question": row["question"]},
            ))
        return out

    # -- step checking (calculator annotations and plain equations) -------------------------------
    def check_step(self, step: str, context: Example) -> Optional[bool]:
        """False for a wrong or unparseable calculation or an unbalanced `<<`; None if nothing to check."""
        if step.count("<<") != step.count(">>") or len(_ANNOTATION.findall(step)) != step.count("<<"):
            return False
        results = _results(step)
        if not results:
            return None
        for _, value, stated, m in results:
            if value is None or stated is None or not close(value, stated):
                return False
            if m.re is _ANNOTATION:  # the text after the annotation must state the same result
                visible = _VISIBLE.match(step, m.end())
                if visible and (parse_number(visible.group(1)) is None or not close(value, parse_number(visible.group(1)))):
                    return False
        return True

    # -- paraphrasing: meaning-preserving rewordings that keep every number ---------------------
    can_paraphrase = True
    _REWORDINGS = [
        (r"\bSo\b,?", "Therefore,"), (r"\bTherefore\b,?", "So"), (r"\bThus\b,?", "So"),
        (r"\baltogether\b", "in all"), (r"\bin total\b", "altogether"), (r"\ba total of\b", "overall"),
        (r"\bper\b", "for each"), (r"\bremaining\b", "left over"), (r"\bleft\b", "remaining"),
        (r"\bneeds\b", "requires"), (r"\bneed\b", "require"), (r"\bbuys\b", "purchases"), (r"\bbought\b", "purchased"),
        (r"\bearns\b", "makes"), (r"\bearned\b", "made"), (r"\btimes\b", "multiplied by"),
        (r"\bhalf of\b", "one half of"), (r"\bgets\b", "receives"), (r"\bgot\b", "received"),
    ]
    _CONNECTIVES = ["Next, ", "Then, ", "After that, "]
    _PRONOUNS = {"He", "She", "They", "It", "We", "The", "This", "That", "There", "Each", "In", "If"}

    def paraphrase_steps(self, steps: list[str]) -> Optional[list[str]]:
        out = []
        for k, step in enumerate(steps):
            pieces = re.split(r"(<<[^<>]*>>)", step)  # never touch the calculator annotations
            for j in range(0, len(pieces), 2):
                for pattern, repl in self._REWORDINGS:
                    new = re.sub(pattern, repl, pieces[j], count=1)
                    if new != pieces[j]:
                        pieces[j] = new
                        break
            new = "".join(pieces)
            if new == step:  # no rule applied: change the surface with a connective
                first, rest = (step.split(" ", 1) + [""])[:2]
                first = first.lower() if first in self._PRONOUNS else first
                new = (("First, " if k == 0 else self._CONNECTIVES[k % 3]) + " ".join(x for x in (first, rest) if x))
            out.append(new)
        return out

    # -- mistakes: change one intermediate result, compute the answer it implies ----------------
    can_corrupt = True

    def corrupt_step(self, step: str, rng: random.Random) -> Optional[str]:
        results = [r for r in _results(step) if r[2] is not None]
        if not results:
            return None
        _, _, stated, m = results[-1]
        delta = rng.choice([1, 2, 3, 4, 5])
        wrong = stated - delta if stated > delta else stated + delta
        new = canonical(wrong)
        if m.re is _ANNOTATION:
            expr = m.group(1).rpartition("=")[0]
            out = step[: m.start()] + f"<<{expr}={new}>>"
            visible = _VISIBLE.match(step, m.end())
            if visible:
                return out + step[m.end(): visible.start(1)] + new + step[visible.end(1):]
            return out + step[m.end():]
        return step[: m.start(2)] + new + step[m.end(2):]

    def implied_answer(self, example: Example, steps: list[str], original_steps: Optional[list[str]] = None) -> Optional[str]:
        """The original chain recomputed with the corrupted result: later calculations that used the old
        value (matched by value) are re-evaluated, and the chain's last result is the implied answer."""
        if not original_steps or not steps:
            return None
        j = len(steps) - 1
        bad, orig = _results(steps[j]), _results(original_steps[j])
        if not bad or not orig or bad[-1][2] is None or orig[-1][2] is None:
            return None
        changed = {orig[-1][2]: bad[-1][2]}
        last = bad[-1][2]
        for step in original_steps[j + 1:]:
            for expr, value, stated, _ in _results(step):
                if stated is None:
                    continue
                new_expr = re.sub(r"\d[\d,]*(?:\.\d+)?",
                                  lambda n: canonical(changed.get(parse_number(n.group(0)), parse_number(n.group(0)) or 0)),
                                  expr)
                new_value = try_evaluate(new_expr) if new_expr != expr else stated
                if new_value is None:
                    return None
                if new_value != stated:
                    changed[stated] = new_value
                last = new_value
        return canonical(last)


class SvampTask(MathWordTask):
    """SVAMP: prompt = Body + Question, gold = Answer, no reference steps. Standalone it splits its
    1,000 problems into train/test by `test_fraction`; as GSM8K's ood split it is used whole."""

    name = "svamp"
    version = "2"  # 2: the plain prompt ends with "Answer:", the completion begins with its space

    def __init__(self, path: Optional[str] = None, hub_id: str = "ChilleD/SVAMP", test_fraction: float = 0.3,
                 seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = Path(path).expanduser() if path else None
        if self.path is not None and not self.path.is_file():
            raise ConfigError(f"data file not found: {self.path} (set task.path to SVAMP.json or a .jsonl of its records)")
        if not 0 <= test_fraction <= 1:
            raise ConfigError(f"task.test_fraction must be in [0, 1], got {test_fraction}")
        self.hub_id, self.test_fraction, self.seed = hub_id, test_fraction, seed
        self._all: Optional[list[Example]] = None

    def load(self) -> list[Example]:
        if self._all is None:
            required = ("Body", "Question", "Answer")
            records = read_records(self.path, required, text=("Body", "Question")) if self.path else hub_records(self.hub_id, None, ("train", "test"))
            out = []
            for i, (where, row) in enumerate(records):
                answer = row["Answer"]
                value = parse_number(str(answer)) if isinstance(answer, (str, int, float)) and not isinstance(answer, bool) else None
                if value is None:
                    raise ConfigError(f"{where}: field 'Answer' must be a number, got {answer!r}")
                question = f"{row['Body'].strip()} {row['Question'].strip()}"
                out.append(Example(id=str(row.get("ID", f"svamp-{i}")), prompt=self.format_prompt(question),
                                   answer=canonical(value), meta={"question": question},
                                   knowledge=f"Equation: {row['Equation']}" if isinstance(row.get("Equation"), str) else None))
            self._all = out
        return self._all

    def use_tokenizer(self, tokenizer) -> None:
        super().use_tokenizer(tokenizer)
        self._all = None

    def _build_split(self, split: str) -> list[Example]:
        rows = self.load()
        if split == "ood":
            return []
        order = list(range(len(rows)))
        random.Random(self.seed).shuffle(order)
        n_test = int(round(len(rows) * self.test_fraction))
        chosen = sorted(order[:n_test]) if split == "test" else sorted(order[n_test:])
        return [Example(**{**rows[i].__dict__, "split": split}) for i in chosen]
