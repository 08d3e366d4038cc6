"""Final-answer extraction and equivalence for math word problems (GSM8K, SVAMP).

Extraction accepts what real models write: `#### 72`, `A: 72`, `The answer is 72.`,
`\\boxed{72}`, `$1,200`, `72.00`, `72 dollars`, a trailing period. The last marker in the
completion wins; with no marker, `lenient` extraction takes the last number in the text (the
"flexible extract" of common harnesses). Equivalence has a fast exact-number path
(fractions: 72 == 72.00 == 72.0) and falls back to math-verify, the grader TRL and open-r1
use, for anything that is not a plain number (`\\frac{3}{4}`, `3/4`). Nothing is executed.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from dataclasses import dataclass
from fractions import Fraction
from typing import Optional

from reasonlab.tasks.safe_arith import canonical, parse_number

_NUMBER = re.compile(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|-?\.\d+")
# bounded digit runs: an unbounded `\d+` before a `/` that never comes backtracks quadratically
# on a long run of digits (a 5,000-digit junk answer took 0.6 s per search)
_FRACTION = re.compile(r"(-?\d{1,30})\s*/\s*(\d{1,30})(?![\d.])")
# an answer is read from the first characters of its text; the rest of a long junk line is not read
MAX_ANSWER_CHARS = 256
# math-verify (a LaTeX parser, for answers that are not plain numbers) sees only short answer texts
# that could be mathematics, and gets 1 s per call: on long junk it timed out at 5 s a call,
# thousands of times per evaluation
MAX_VERIFY_CHARS = 64
VERIFY_SECONDS = 1
# markers, each followed by the answer text; the last one in the completion wins
_MARKERS = re.compile(
    r"####\s*"
    r"|(?:^|\n)\s*A\s*:\s*"
    r"|(?:final answer|the answer)\s*(?:is|:|=)\s*:?\s*"
    r"|(?:^|\n)\s*answer\s*:\s*",
    re.IGNORECASE,
)
_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")


@dataclass(frozen=True)
class Extracted:
    text: str  # the raw answer text the marker introduced
    start: int  # where the answer marker begins in the completion (the reasoning ends there)
    text_start: int  # where `text` begins in the completion: completion[text_start:][:len(text)] == text

    def span(self) -> Optional[tuple[int, int]]:
        """Character offsets [start, end) in the completion of what the grader turns into the answer:
        the number `answer_value` parses (`1,200` in `$1,200.`, `\\frac{3}{4}`, `3/4`) when there is
        one, else the stripped answer text; None when the answer is empty (graded as no answer)."""
        local = answer_text_span(self.text)
        return None if local is None else (self.text_start + local[0], self.text_start + local[1])


def _boxed(completion: str) -> Optional[Extracted]:
    hits = list(_BOXED.finditer(completion))
    if not hits:
        return None
    m = hits[-1]
    depth, i = 1, m.end()
    while i < len(completion) and depth:
        depth += {"{": 1, "}": -1}.get(completion[i], 0)
        i += 1
    if depth:
        return None  # unbalanced: no answer
    return Extracted(completion[m.end() : i - 1], m.start(), m.end())


def find_answer(completion: str, lenient: bool = True) -> Optional[Extracted]:
    """The answer text, where its marker starts and where the text starts, or None."""
    boxed = _boxed(completion)
    markers = list(_MARKERS.finditer(completion))
    marked = None
    if markers:
        m = markers[-1]
        rest = completion[m.end() :]
        start = m.start() + (1 if completion[m.start()] == "\n" else 0)
        marked = Extracted(rest.split("\n", 1)[0], start, m.end())
    if boxed and (marked is None or boxed.start >= marked.start or not _NUMBER.search(marked.text)):
        return boxed
    if marked is not None:
        return marked
    if lenient:
        numbers = list(_NUMBER.finditer(completion))
        if numbers:
            last = numbers[-1]
            return Extracted(last.group(0), len(completion), last.start())
    return None


# LaTeX spellings `answer_value` reads through, replaced in this order (`\\$5`, `1\\!200`, `1{,}200`)
_CLEANUPS = (("\\$", "$"), ("\\!", ""), ("{,}", ","))


def _clean(text: str) -> tuple[str, list[int], list[int]]:
    """`text` with `_CLEANUPS` applied (what `str.replace` in that order gives), and for each character
    of the result the [start, end) offsets in `text` of the characters it came from."""
    starts, ends = list(range(len(text))), list(range(1, len(text) + 1))
    for old, new in _CLEANUPS:
        out, s2, e2, i = [], [], [], 0
        while i < len(text):
            if text.startswith(old, i):
                out.append(new)
                s2 += [starts[i]] * len(new)
                e2 += [ends[i + len(old) - 1]] * len(new)
                i += len(old)
            else:
                out.append(text[i])
                s2.append(starts[i])
                e2.append(ends[i])
                i += 1
        text, starts, ends = "".join(out), s2, e2
    return text, starts, ends


def _value_match(text: str) -> Optional[tuple[Optional[Fraction], int, int]]:
    """(the number an answer text states or None, where the text stating it starts and ends in `text`),
    or None when no number is there. The one place `answer_value` and the answer span read."""
    text, starts, ends = _clean(text[:MAX_ANSWER_CHARS])

    def located(value: Optional[Fraction], m: re.Match) -> tuple[Optional[Fraction], int, int]:
        return value, starts[m.start()], ends[m.end() - 1]

    frac = re.search(r"\\d?frac\{(-?\d+)\}\{(\d+)\}", text)
    if frac and int(frac.group(2)):
        return located(Fraction(int(frac.group(1)), int(frac.group(2))), frac)
    m = _FRACTION.search(text)
    first = _NUMBER.search(text)
    if m and first and m.start() <= first.start():
        return located(Fraction(int(m.group(1)), int(m.group(2))) if int(m.group(2)) else None, m)
    if not first:
        return None
    return located(parse_number(first.group(0)), first)


def answer_value(text: str) -> Optional[Fraction]:
    """The number an answer text states (`$1,200.` -> 1200, `72 dollars` -> 72, `3/4` -> 3/4)."""
    found = _value_match(text)
    return None if found is None else found[0]


def answer_text_span(text: str) -> Optional[tuple[int, int]]:
    """Offsets [start, end) in an answer text of what `normalize` turns into the answer: the number
    `answer_value` parses when there is one (`1,200` in `$1,200.`), else the stripped text (without
    a trailing period, as `normalize` drops it); None when `normalize` gives an empty answer."""
    found = _value_match(text)
    if found is not None and found[0] is not None:
        return found[1], found[2]
    answer = normalize(text)
    if not answer:
        return None
    lead = len(text) - len(text.lstrip())
    stripped = text.strip()
    # the answer is a prefix of the stripped text; keep the periods only where dropping them again
    # would change it (`x. .` normalizes to `x.`, and so must its span)
    end = len(answer) if normalize(answer) == answer else len(stripped)
    return lead, lead + end


def normalize(text: str) -> str:
    """Canonical answer string: the number when there is one (`72.00` -> `72`), else stripped text."""
    value = answer_value(text)
    if value is not None:
        return canonical(value)
    return text.strip().rstrip(".").strip()


@functools.lru_cache(maxsize=65536)
def _math_verify(gold: str, predicted: str) -> bool:
    if len(predicted) > MAX_VERIFY_CHARS or not re.search(r"[\d\\]", predicted):
        return False  # not an answer math-verify could read as equal to a number
    from math_verify import parse, verify

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # it logs each timed-out text whole
    # math-verify's timeouts use signals, which only work in the main thread; elsewhere the length
    # bound above is what keeps a call short
    timeout = VERIFY_SECONDS if threading.current_thread() is threading.main_thread() else None
    try:
        g = parse(f"${gold}$", parsing_timeout=timeout)
        p = parse(f"${predicted}$", parsing_timeout=timeout)
        return bool(g and p and verify(g, p, timeout_seconds=timeout))
    except Exception:  # a grader failure is a wrong answer, never a crash
        return False


def equivalent(gold: str, predicted: Optional[str]) -> bool:
    """Whether a predicted answer equals the gold: exact numbers first, math-verify otherwise."""
    if predicted is None or not predicted.strip():
        return False
    g, p = answer_value(gold), answer_value(predicted)
    if g is not None and p is not None:
        return g == p
    return _math_verify(gold, predicted)
