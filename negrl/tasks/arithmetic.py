"""The embedded synthetic task: chained integer arithmetic with one step per line.

    Q: ((38-22)*5)*4          ← prompt (ends with "\\n")
    38-22=16                  ← one step per line
    16*5=80
    80*4=320
    Answer: 320               ← final line (then <eos> in training)

Knobs: number of steps (fixed or a range), operand size in digits for ``+``/``-``, the largest allowed
intermediate value, and the operators. Subtraction never goes negative and ``*`` takes a single-digit factor chosen
so the result stays ``<= max_value`` (measured on 2 cores: errors then come from carries and products, so a tiny
model stays *mediocre* for a long while instead of saturating).

Every step can be checked exactly, which gives ground-truth step correctness: ``check_steps`` says which line is the
first wrong one. Later issues validate Monte-Carlo, PRM and judge labels against it.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from negrl.records import Problem, Verdict
from negrl.tasks.sampling import disjoint_splits, distinct_problems


ANSWER_RE = re.compile(r"Answer:\s*(-?\d+)")
STEP_RE = re.compile(r"^\s*(-?\d+)\s*([+\-*])\s*(-?\d+)\s*=\s*(-?\d+)\s*$")
_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


@dataclass(frozen=True)
class ArithmeticConfig:
    """Difficulty knobs of the arithmetic task.

    Attributes:
        min_steps: Fewest operations per problem.
        max_steps: Most operations per problem (uniform between the two).
        digits: Digits of the operands of ``+`` and ``-`` (and of the first number).
        max_value: Largest allowed intermediate value.
        ops: Allowed operators, a string over ``"+-*"``.
    """

    min_steps: int = 3
    max_steps: int = 3
    digits: int = 2
    max_value: int = 999
    ops: str = "+-*"

    def __post_init__(self) -> None:
        if not 1 <= self.min_steps <= self.max_steps:
            raise ValueError(f"need 1 <= min_steps <= max_steps, got {self.min_steps}, {self.max_steps}")
        if self.digits < 1 or self.max_value < 10 ** self.digits - 1:
            raise ValueError(f"max_value={self.max_value} must be at least the largest {self.digits}-digit number")
        if not self.ops or set(self.ops) - set(_OPS):
            raise ValueError(f"ops must be a non-empty string over '+-*', got {self.ops!r}")

    @property
    def name(self) -> str:
        steps = f"{self.min_steps}" if self.min_steps == self.max_steps else f"{self.min_steps}-{self.max_steps}"
        return f"arithmetic:n{steps}d{self.digits}"


def _next_op(rng: random.Random, value: int, cfg: ArithmeticConfig) -> tuple[str, int]:
    lo, hi = (10 ** (cfg.digits - 1) if cfg.digits > 1 else 0), 10**cfg.digits - 1
    for op in rng.sample(cfg.ops, len(cfg.ops)):
        if op == "+" and value + lo <= cfg.max_value:
            return op, rng.randint(lo, min(hi, cfg.max_value - value))
        if op == "-" and value >= lo:
            return op, rng.randint(lo, min(hi, value))
        if op == "*":
            factors = [f for f in range(2, 10) if value * f <= cfg.max_value]
            if factors:
                return op, rng.choice(factors)
    # No operator fits (e.g. only "*" allowed and value too large): fall back to subtracting a small number.
    return "-", rng.randint(0, min(value, hi))


def make_problem(rng: random.Random, cfg: ArithmeticConfig) -> Problem:
    n_steps = rng.randint(cfg.min_steps, cfg.max_steps)
    lo = 10 ** (cfg.digits - 1) if cfg.digits > 1 else 0
    value = rng.randint(lo, 10**cfg.digits - 1)
    expr, operands, ops, values = str(value), [value], [], []
    for i in range(n_steps):
        op, b = _next_op(rng, value, cfg)
        value = _OPS[op](value, b)
        expr = f"({expr}{op}{b})" if i < n_steps - 1 else f"{expr}{op}{b}"
        operands.append(b)
        ops.append(op)
        values.append(value)
    prompt = f"Q: {expr}\n"
    meta = {"operands": operands, "ops": ops, "values": values}
    problem = Problem(
        problem_id=f"arith:{expr}", domain="arithmetic", prompt=prompt, answer=str(value), source=cfg.name, meta=meta
    )
    problem.solution = gold_solution(problem)
    return problem


def gold_solution(problem: Problem) -> str:
    """The gold completion: one ``a op b=c`` line per operation, then ``Answer: N`` (no trailing newline)."""
    operands, ops, values = problem.meta["operands"], problem.meta["ops"], problem.meta["values"]
    lines, a = [], operands[0]
    for op, b, c in zip(ops, operands[1:], values):
        lines.append(f"{a}{op}{b}={c}")
        a = c
    lines.append(f"Answer: {values[-1]}")
    return "\n".join(lines)


def generate_problems(
    cfg: ArithmeticConfig, n: int, seed: int, exclude: set[str] | frozenset[str] = frozenset()
) -> list[Problem]:
    """``n`` distinct problems, deterministic in ``seed``; problems whose id is in ``exclude`` are skipped."""
    return distinct_problems(lambda rng: make_problem(rng, cfg), n, f"arithmetic/{cfg.name}/{seed}", exclude=exclude)


def make_splits(cfg: ArithmeticConfig, n_train: int, n_test: int, seed: int = 0) -> tuple[list[Problem], list[Problem]]:
    """Train and test problems that never share a problem (the test set is drawn first, then excluded)."""
    return disjoint_splits(generate_problems, cfg, n_train, n_test, seed)


def extract_answer(completion: str) -> str | None:
    """The number on the last ``Answer:`` line, or ``None``."""
    found = ANSWER_RE.findall(completion)
    return found[-1] if found else None


def verify(problem: Problem, completion: str) -> Verdict:
    """Exact final-answer check (the verifier of the ``arithmetic`` domain)."""
    got = extract_answer(completion)
    if problem.answer is None:
        return Verdict(rollout_id="", correct=None, extracted=got, detail="no gold answer", verifier="arithmetic")
    correct = got is not None and int(got) == int(problem.answer)
    detail = "" if got is not None else "no 'Answer:' line"
    return Verdict(rollout_id="", correct=correct, extracted=got, detail=detail, verifier="arithmetic")


def check_steps(problem: Problem, completion: str) -> list[bool]:
    """Ground-truth correctness of each line of ``completion`` (lines = the default step segmentation).

    Step ``i`` (for ``i < n_steps``) is correct iff it reads ``a op b=c`` where ``a`` is the previous correct value,
    ``op`` and ``b`` are the problem's ``i``-th operator and operand, and ``c`` is the right result. The answer line is
    correct iff it states the gold answer. Steps after the first wrong one are wrong too (error propagation), and so
    is any extra line.
    """
    operands, ops, values = problem.meta["operands"], problem.meta["ops"], problem.meta["values"]
    lines = completion.split("\n")
    labels: list[bool] = []
    ok = True
    for i, line in enumerate(lines):
        if ok:
            if i < len(ops):
                m = STEP_RE.match(line)
                a_expected = operands[0] if i == 0 else values[i - 1]
                ok = bool(m) and (int(m[1]), m[2], int(m[3]), int(m[4])) == (a_expected, ops[i], operands[i + 1], values[i])
            elif i == len(ops):
                got = ANSWER_RE.fullmatch(line.strip())
                ok = bool(got) and int(got[1]) == values[-1]
            else:
                ok = line.strip() == ""  # a trailing newline is harmless; anything else is an extra step
        labels.append(ok)
    return labels


def first_error(problem: Problem, completion: str) -> int | None:
    """Index of the first wrong line (the ground-truth critical step), ``None`` if every line is right."""
    labels = check_steps(problem, completion)
    return next((i for i, ok in enumerate(labels) if not ok), None)
