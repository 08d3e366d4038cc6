"""`arith`: the embedded default task, procedurally generated multi-step modular arithmetic.

    prompt:     a=7;b=a+5;c=b*3;d=c-4;d?
    completion: b=a+5=7+5=2;c=b*3=2*3=6;d=c-4=6-4=2;A:2

Every value is taken modulo `modulus` (default 10), so the numbers stay one digit and a tiny
character-level model can learn the steps. Each step restates the definition it computes
(`c=b*3`), substitutes the value it uses (`=2*3`) and states the result (`=6`), so it can be
checked on its own, and every piece a step copies sits at a fixed distance from where it is
written (a tiny model learns fixed-offset copies quickly, content lookups slowly). Chains are long enough (2-5 steps for train/test, 6-8 for
ood by default) that a small model cannot jump to the answer without computing the steps.
Everything is deterministic for a seed; the three splits draw from separate random streams, and
test/ood problems never appear in train.
"""

from __future__ import annotations

import random
import re
from typing import Optional

from tasks.base import Example, Task

_OPS = {"+": lambda x, y: x + y, "-": lambda x, y: x - y, "*": lambda x, y: x * y}
_DEF = re.compile(r"^([a-z])=(?:(\d+)|([a-z])([+\-*])(\d+))$")
_STEP = re.compile(r"^([a-z])=([a-z])([+\-*])(\d+)=(\d+)([+\-*])(\d+)=(\d+)$")


class ArithTask(Task):
    name = "arith"
    version = "1"
    step_separator = ";"

    def __init__(
        self,
        seed: int = 0,
        modulus: int = 10,
        ops: str = "+-*",
        train_steps: tuple[int, int] = (2, 5),
        ood_steps: tuple[int, int] = (6, 8),
        train_size: int = 20000,
        test_size: int = 500,
        ood_size: int = 500,
    ) -> None:
        super().__init__()
        from core import ConfigError

        if modulus < 2:
            raise ConfigError(f"task.modulus must be >= 2, got {modulus}")
        if not ops or set(ops) - set(_OPS):
            raise ConfigError(f"task.ops must be a non-empty subset of '+-*', got '{ops}'")
        for key, (lo, hi) in (("train_steps", train_steps), ("ood_steps", ood_steps)):
            if not 1 <= lo <= hi <= 25:
                raise ConfigError(f"task.{key} must be [min, max] with 1 <= min <= max <= 25, got {[lo, hi]}")
        for key, size in (("train_size", train_size), ("test_size", test_size), ("ood_size", ood_size)):
            if size < 1:
                raise ConfigError(f"task.{key} must be a positive integer, got {size}")
        self.seed, self.modulus, self.ops = seed, modulus, ops
        self.steps_range = {"train": tuple(train_steps), "test": tuple(train_steps), "ood": tuple(ood_steps)}
        self.sizes = {"train": train_size, "test": test_size, "ood": ood_size}

    # -- generation ---------------------------------------------------------------------------
    def make_example(self, rng: random.Random, n_steps: int, split: str, idx: int) -> Example:
        names = "abcdefghijklmnopqrstuvwxyz"[: n_steps + 1]  # fixed order: the lookup is positional
        value = rng.randrange(self.modulus)
        defs, steps, facts = [f"{names[0]}={value}"], [], []
        for prev, var in zip(names, names[1:]):
            op, k = rng.choice(self.ops), rng.randrange(1, self.modulus)
            new = _OPS[op](value, k) % self.modulus
            defs.append(f"{var}={prev}{op}{k}")
            steps.append(f"{var}={prev}{op}{k}={value}{op}{k}={new}")
            facts.append(f"{value}{op}{k}={new}")
            value = new
        prompt = ";".join(defs) + f";{names[-1]}?"
        return Example(
            id=f"arith-{split}-{idx}",
            prompt=prompt,
            answer=str(value),
            steps=tuple(steps),
            split=split,
            knowledge=";".join(facts),
            meta={"n_steps": n_steps},
        )

    def _build_split(self, split: str) -> list[Example]:
        # One stream per split, so changing test_size never changes the training data.
        rng = random.Random(f"{self.seed}-{split}-{self.modulus}-{self.ops}")
        lo, hi = self.steps_range[split]
        exclude = {ex.prompt for ex in self.examples("train")} if split != "train" else set()
        out, seen = [], set()
        attempts = 0
        while len(out) < self.sizes[split]:
            attempts += 1
            if attempts > 50 * self.sizes[split]:
                raise RuntimeError(f"arith: could not draw {self.sizes[split]} distinct {split} problems")
            ex = self.make_example(rng, rng.randint(lo, hi), split, len(out))
            if ex.prompt in seen or ex.prompt in exclude:
                continue
            seen.add(ex.prompt)
            out.append(ex)
        return out

    # -- checking -----------------------------------------------------------------------------
    def program_values(self, prompt: str) -> dict[str, tuple[Optional[str], Optional[str], int, int]]:
        """var -> (referenced var, op, constant, true value) parsed from the prompt (no eval)."""
        values: dict[str, tuple[Optional[str], Optional[str], int, int]] = {}
        for part in prompt.rstrip("?").split(";"):
            m = _DEF.match(part)
            if not m:
                continue
            var, const, ref, op, k = m.groups()
            if const is not None:
                values[var] = (None, None, int(const), int(const) % self.modulus)
            elif ref in values:
                values[var] = (ref, op, int(k), _OPS[op](values[ref][3], int(k)) % self.modulus)
        return values

    def check_step(self, step: str, context: Example) -> Optional[bool]:
        """Valid iff the step restates its variable's definition, uses the true value of the variable
        it reads, and states the true result."""
        m = _STEP.match(step.strip())
        if not m:
            return False
        var, ref, op, k, used, op2, k2, result = m.groups()
        program = self.program_values(context.prompt)
        if var not in program or program[var][0] is None:
            return False
        true_ref, true_op, true_k, true_value = program[var]
        return (
            (ref, op, int(k)) == (true_ref, true_op, true_k)
            and (op2, int(k2)) == (op, int(k))
            and int(used) == program[ref][3]
            and int(result) == true_value
        )

    can_paraphrase = True
    can_corrupt = True

    def paraphrase_steps(self, steps: list[str]) -> Optional[list[str]]:
        """Same variables, numbers and results, different surface: "c=b*3=2*3=6" -> "c = b * 3 = 2 * 3 = 6"."""
        out = []
        for step in steps:
            m = _STEP.match(step.strip())
            if not m:
                return None
            var, ref, op, k, used, op2, k2, result = m.groups()
            out.append(f"{var} = {ref} {op} {k} = {used} {op2} {k2} = {result}")
        return out

    def implied_answer(self, example: Example, steps: list[str], original_steps: Optional[list[str]] = None) -> Optional[str]:
        """Carry the value stated by the last step through the rest of the program, correctly."""
        m = _STEP.match(steps[-1].strip()) if steps else None
        if not m:
            return None
        var, value = m.group(1), int(m.group(8))
        program = self.program_values(example.prompt)
        names = list(program)
        if var not in names:
            return None
        for name in names[names.index(var) + 1 :]:
            ref, op, k, _ = program[name]
            if ref is None:
                return None
            value = _OPS[op](value, k) % self.modulus  # linear chain: each variable reads the previous
        return str(value)

    def corrupt_step(self, step: str, rng: random.Random) -> Optional[str]:
        """The step with its stated result changed to another value (for the mistake probe)."""
        m = _STEP.match(step.strip())
        if not m:
            return None
        var, ref, op, k, used, op2, k2, result = m.groups()
        wrong = (int(result) + rng.randrange(1, self.modulus)) % self.modulus
        return f"{var}={ref}{op}{k}={used}{op2}{k2}={wrong}"
