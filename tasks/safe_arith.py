"""A small, safe arithmetic evaluator for calculator annotations such as `<<48/2=24>>`.

Model output is never run as code. This parser accepts only numbers (`12`, `0.5`, `.5`,
`1,200`), the four operations (`+ - * /`, also `x`, `×`, `÷`), unary minus, percent signs
(`20%` = 0.2) and parentheses, with bounds on the text length, the digits of each number and the
nesting depth; anything else raises `ArithmeticSyntaxError`. Values are exact fractions.
"""

from __future__ import annotations

import re
from decimal import Decimal, localcontext
from fractions import Fraction

MAX_CHARS = 200
MAX_DIGITS = 30
MAX_DEPTH = 20

_TOKEN = re.compile(r"\s*(?:(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.?\d*|\.\d+)|([-+*/()%x×÷]))")
_OPS = {"x": "*", "×": "*", "÷": "/"}


class ArithmeticSyntaxError(ValueError):
    """The text is not a bounded arithmetic expression."""


def _tokens(text: str) -> list[str | Fraction]:
    if len(text) > MAX_CHARS:
        raise ArithmeticSyntaxError(f"expression longer than {MAX_CHARS} characters")
    out: list[str | Fraction] = []
    pos, text = 0, text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise ArithmeticSyntaxError(f"unexpected character {text[pos:].lstrip()[:1]!r}")
        number, op = m.groups()
        if number is not None:
            digits = number.replace(",", "")
            if sum(c.isdigit() for c in digits) > MAX_DIGITS:
                raise ArithmeticSyntaxError(f"number with more than {MAX_DIGITS} digits")
            out.append(Fraction(digits))
        else:
            out.append(_OPS.get(op, op))
        pos = m.end()
    return out


class _Parser:
    # expr := term (('+'|'-') term)* ; term := unary (('*'|'/') unary)* ;
    # unary := '-' unary | '+' unary | atom '%'* ; atom := number | '(' expr ')'
    def __init__(self, tokens):
        self.tokens, self.i, self.depth = tokens, 0, 0

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self):
        tok = self.peek()
        self.i += 1
        return tok

    def expr(self) -> Fraction:
        value = self.term()
        while self.peek() in ("+", "-"):
            op = self.take()
            rhs = self.term()
            value = value + rhs if op == "+" else value - rhs
        return value

    def term(self) -> Fraction:
        value = self.unary()
        while self.peek() in ("*", "/"):
            op = self.take()
            rhs = self.unary()
            if op == "/" and rhs == 0:
                raise ArithmeticSyntaxError("division by zero")
            value = value * rhs if op == "*" else value / rhs
        return value

    def unary(self) -> Fraction:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ArithmeticSyntaxError(f"nesting deeper than {MAX_DEPTH}")
        tok = self.peek()
        if tok in ("-", "+"):
            self.take()
            value = self.unary()
            value = -value if tok == "-" else value
        else:
            value = self.atom()
            while self.peek() == "%":
                self.take()
                value = value / 100
        self.depth -= 1
        return value

    def atom(self) -> Fraction:
        tok = self.take()
        if isinstance(tok, Fraction):
            return tok
        if tok == "(":
            value = self.expr()
            if self.take() != ")":
                raise ArithmeticSyntaxError("unbalanced parentheses")
            return value
        raise ArithmeticSyntaxError(f"expected a number, got {tok!r}" if tok is not None else "expression ends early")


def evaluate(text: str) -> Fraction:
    """The exact value of an arithmetic expression; raises ArithmeticSyntaxError on anything else."""
    tokens = _tokens(text)
    if not tokens:
        raise ArithmeticSyntaxError("empty expression")
    parser = _Parser(tokens)
    value = parser.expr()
    if parser.peek() is not None:
        raise ArithmeticSyntaxError(f"unexpected {parser.peek()!r} after the expression")
    return value


def try_evaluate(text: str) -> Fraction | None:
    try:
        return evaluate(text)
    except ArithmeticSyntaxError:
        return None


def parse_number(text: str) -> Fraction | None:
    """A plain number (`1,200`, `-3.50`, `.5`, `3/4`) as an exact fraction, else None."""
    text = text.strip()
    if len(text) > 100:  # no answer is that long; and int() refuses over 4,300 digits
        return None
    m = re.fullmatch(r"-?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?", text)
    if m and any(c.isdigit() for c in text):
        return Fraction(text.replace(",", ""))
    m = re.fullmatch(r"(-?\d+)\s*/\s*(\d+)", text)
    if m and int(m.group(2)) != 0:
        return Fraction(int(m.group(1)), int(m.group(2)))
    return None


def canonical(value: Fraction) -> str:
    """`72`, `0.5`, `-3.25`, or `1/3` when the decimal does not terminate."""
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    for p in (2, 5):
        while den % p == 0:
            den //= p
    if den != 1:
        return f"{value.numerator}/{value.denominator}"
    with localcontext() as ctx:
        ctx.prec = 60
        return format((Decimal(value.numerator) / Decimal(value.denominator)).normalize(), "f")


def close(value: Fraction, stated: Fraction) -> bool:
    """Whether `stated` is `value` written to the precision it was written with (10/3 = 3.33 is)."""
    if value == stated:
        return True
    digits = 0
    while (stated * 10**digits).denominator != 1 and digits < 12:
        digits += 1
    return abs(value - stated) <= Fraction(1, 2 * 10**digits) + Fraction(1, 10**12)
