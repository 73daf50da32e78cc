"""Multiple-choice version of the arithmetic task: pick the right worked solution among near-miss ones.

Each problem is an ``arithmetic`` problem (same prompt ``"Q: …\\n"``) whose options are complete solutions in the
gold format — the gold one and distractors that are *near misses* of it:

- ``off_by_one``: the last step's result (and the answer) is ±1 off;
- ``wrong_operator``: one step applies another operator to the same operands (and the error propagates);
- ``dropped_step``: one operation is skipped (the rest of the chain is computed from the earlier value).

The options are shuffled; ``answer`` is the gold label. The domain is ``"choice"``, so ``negrl.verifiers`` checks a
chosen label, and Likra scores each option as a continuation of the prompt (``answer_prefix=""``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from negrl.records import Problem
from negrl.tasks import arithmetic
from negrl.tasks.arithmetic import ArithmeticConfig
from negrl.tasks.sampling import disjoint_splits


DISTRACTORS = ("off_by_one", "wrong_operator", "dropped_step")
_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


@dataclass(frozen=True)
class ArithmeticChoiceConfig:
    """Knobs: the underlying arithmetic task's, plus the number of options."""

    min_steps: int = 2
    max_steps: int = 3
    digits: int = 1
    max_value: int = 99
    ops: str = "+-*"
    n_choices: int = 4

    def __post_init__(self) -> None:
        if not 2 <= self.n_choices <= 8:
            raise ValueError(f"n_choices must be in [2, 8], got {self.n_choices}")

    @property
    def arithmetic(self) -> ArithmeticConfig:
        return ArithmeticConfig(self.min_steps, self.max_steps, self.digits, self.max_value, self.ops)

    @property
    def name(self) -> str:
        return self.arithmetic.name.replace("arithmetic:", "arithmetic_choice:") + f"c{self.n_choices}"


def render(first: int, ops: list[str], operands: list[int]) -> str:
    """A solution in the gold format for the chain ``first op₁ b₁ op₂ b₂ …`` (computed exactly)."""
    lines, a = [], first
    for op, b in zip(ops, operands):
        c = _OPS[op](a, b)
        lines.append(f"{a}{op}{b}={c}")
        a = c
    return "\n".join(lines + [f"Answer: {a}"])


def near_miss(problem: Problem, kind: str, rng: random.Random) -> str | None:
    """One distractor solution of ``kind`` (see the module docstring), or ``None`` if it cannot be made."""
    operands, ops = problem.meta["operands"], problem.meta["ops"]
    first, rest = operands[0], operands[1:]
    if kind == "off_by_one":
        gold = render(first, ops, rest)
        *steps, _ = gold.split("\n")
        lhs, value = steps[-1].split("=")
        wrong = int(value) + rng.choice((-1, 1))
        return "\n".join(steps[:-1] + [f"{lhs}={wrong}", f"Answer: {wrong}"])
    if kind == "wrong_operator":
        i = rng.randrange(len(ops))
        alts = [o for o in "+-*" if o != ops[i]]
        new_ops = list(ops)
        new_ops[i] = rng.choice(alts)
        return render(first, new_ops, rest)
    if kind == "dropped_step":
        if len(ops) < 2:
            return None
        i = rng.randrange(len(ops))
        return render(first, ops[:i] + ops[i + 1 :], rest[:i] + rest[i + 1 :])
    raise ValueError(f"unknown distractor kind {kind!r}; expected one of {DISTRACTORS}")


def to_choice(problem: Problem, n_choices: int, rng: random.Random) -> Problem:
    """Turn an ``arithmetic`` problem into a ``choice`` problem with ``n_choices`` distinct options."""
    gold = problem.solution or arithmetic.gold_solution(problem)
    options, kinds = [gold], ["gold"]
    for attempt in range(50 * n_choices):
        if len(options) == n_choices:
            break
        # one of each kind first, then random kinds (a kind may be impossible, e.g. dropping a step of a 1-step chain)
        kind = DISTRACTORS[attempt] if attempt < len(DISTRACTORS) else rng.choice(DISTRACTORS)
        d = near_miss(problem, kind, rng)
        if d is not None and d not in options:
            options.append(d)
            kinds.append(kind)
    if len(options) < n_choices:
        raise ValueError(f"problem {problem.problem_id!r}: could only make {len(options)} distinct options")
    order = list(range(n_choices))
    rng.shuffle(order)
    labels = [chr(65 + i) for i in range(n_choices)]
    return Problem(
        problem_id=problem.problem_id.replace("arith:", "arith_choice:", 1), domain="choice", prompt=problem.prompt,
        answer=labels[order.index(0)], choices=[options[j] for j in order], choice_labels=labels,
        solution=gold, source=problem.source.replace("arithmetic:", "arithmetic_choice:"),
        meta={**problem.meta, "kinds": [kinds[j] for j in order]},
    )


def generate_problems(
    cfg: ArithmeticChoiceConfig, n: int, seed: int, exclude: set[str] | frozenset[str] = frozenset()
) -> list[Problem]:
    rng = random.Random(f"arithmetic_choice/{cfg.name}/{seed}")
    base_exclude = {e.replace("arith_choice:", "arith:", 1) for e in exclude}
    return [to_choice(p, cfg.n_choices, rng) for p in arithmetic.generate_problems(cfg.arithmetic, n, seed, base_exclude)]


def make_splits(
    cfg: ArithmeticChoiceConfig, n_train: int, n_test: int, seed: int = 0
) -> tuple[list[Problem], list[Problem]]:
    """Disjoint train / test problems (test drawn first, as in ``arithmetic.make_splits``)."""
    return disjoint_splits(generate_problems, cfg, n_train, n_test, seed)
