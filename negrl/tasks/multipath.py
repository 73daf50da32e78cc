"""Multi-path arithmetic: several valid solution orders, and optional valid-but-useless (spurious) steps.

    Q: (7+5)-(3*2)+(9-4)      ← prompt: parenthesised terms joined left to right by + / - (ends with "\\n")
    3*2=6                     ← the terms may be evaluated in any order ...
    7+5=12
    12*1=12                   ← ... a distractor: valid arithmetic, no progress (spurious)
    12-6=6                    ← combinations as soon as their inputs exist
    9-4=5
    6+5=11
    Answer: 11

The expression is a tree: ``n_terms`` leaves ``(a op b)`` and ``n_terms - 1`` left-to-right combinations. Any
topological order of the tree is a valid solution, and ``+`` / ``*`` lines may swap their operands, so a correct
self-sample can differ from the gold one. Gold solutions use a random valid order and, with probability
``distractor_prob``, one distractor step (an identity ``x+0=x`` / ``x*1=x`` or a recomputation of the previous
line), so a policy trained on them produces positives containing spurious steps — the setting in which Setlur et al.
report that per-step advantages expose spurious steps inside *positive* samples.

``classify_steps`` labels every line ``"progress"`` (computes a not-yet-computed node of the tree), ``"spurious"``
(true arithmetic that computes nothing new: an identity or a recomputation), ``"answer"`` (the right final answer) or
``"wrong"`` (false arithmetic, an unparseable line, a computation the expression does not ask for, a wrong answer).
``check_steps`` turns that into ground-truth correctness (progress, spurious and answer are right). The final-answer
verifier is the arithmetic task's (``Answer: N`` must equal the value of the expression).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from negrl.records import Problem, Verdict
from negrl.tasks import arithmetic
from negrl.tasks.sampling import disjoint_splits, distinct_problems


STEP_RE = arithmetic.STEP_RE
ANSWER_RE = arithmetic.ANSWER_RE
_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
STEP_KINDS = ("progress", "spurious", "answer", "wrong")


@dataclass(frozen=True)
class MultipathConfig:
    """Knobs of the multi-path arithmetic task.

    Attributes:
        n_terms: Parenthesised terms ``(a op b)`` in the expression (>= 2; the tree has ``2 * n_terms - 1`` nodes).
        digits: Digits of the operands of ``+`` / ``-`` inside terms (``*`` takes a single-digit factor).
        max_value: Largest allowed value of a term.
        ops: Operators allowed inside terms, over ``"+-*"``.
        top_ops: Operators joining the terms, over ``"+-"`` (``-`` only where the result stays >= 0).
        distractor_prob: Probability that a gold solution contains one distractor (spurious) step.
        shuffle_order: Gold solutions use a random valid order (else terms left to right, each combination ASAP).
    """

    n_terms: int = 2
    digits: int = 1
    max_value: int = 99
    ops: str = "+-*"
    top_ops: str = "+-"
    distractor_prob: float = 0.3
    shuffle_order: bool = True

    def __post_init__(self) -> None:
        if self.n_terms < 2 or self.digits < 1:
            raise ValueError(f"need n_terms >= 2 and digits >= 1, got {self.n_terms}, {self.digits}")
        if self.max_value < 10**self.digits - 1:
            raise ValueError(f"max_value={self.max_value} must be at least the largest {self.digits}-digit number")
        if not self.ops or set(self.ops) - set(_OPS):
            raise ValueError(f"ops must be a non-empty string over '+-*', got {self.ops!r}")
        if not self.top_ops or set(self.top_ops) - set("+-"):
            raise ValueError(f"top_ops must be a non-empty string over '+-', got {self.top_ops!r}")
        if not 0.0 <= self.distractor_prob <= 1.0:
            raise ValueError(f"distractor_prob must be in [0, 1], got {self.distractor_prob}")

    @property
    def name(self) -> str:
        return f"multipath:t{self.n_terms}d{self.digits}p{self.distractor_prob:g}"


def _term(rng: random.Random, cfg: MultipathConfig) -> tuple[int, str, int]:
    # Operands >= 1 and "-" only when the result is >= 1: no value is 0, so no node of the tree is itself an
    # identity (x+0, x*1) and identity distractors are never mistaken for progress.
    lo, hi = (10 ** (cfg.digits - 1) if cfg.digits > 1 else 1), 10**cfg.digits - 1
    op = rng.choice(cfg.ops)
    a = rng.randint(lo, hi)
    if op == "*":
        factors = [f for f in range(2, 10) if a * f <= cfg.max_value]
        if factors:
            return a, op, rng.choice(factors)
        op = "+"
    b = rng.randint(lo, hi)
    if op == "-" and b > a:
        a, b = b, a
    if op == "-" and a == b:
        op = "+"
    if op == "+" and a + b > cfg.max_value:
        op, a, b = "-", max(a, b), min(a, b)  # max_value >= the largest operand, so a - b fits
        b -= a == b  # keep the result >= 1
    return a, op, b


def _tree(terms: list[tuple[int, str, int]], top: list[str]) -> list[dict[str, Any]]:
    """Nodes ``{"a", "op", "b", "value", "deps"}``: terms first, then the left-to-right combinations."""
    nodes = [{"a": a, "op": op, "b": b, "value": _OPS[op](a, b), "deps": []} for a, op, b in terms]
    left = 0
    for j, op in enumerate(top):
        right = j + 1
        a, b = nodes[left]["value"], nodes[right]["value"]
        nodes.append({"a": a, "op": op, "b": b, "value": _OPS[op](a, b), "deps": [left, right]})
        left = len(nodes) - 1
    return nodes


def valid_orders(nodes: list[dict[str, Any]]) -> Iterator[tuple[int, ...]]:
    """Every topological order of the expression tree (each is a valid solution order)."""
    def extend(done: tuple[int, ...]) -> Iterator[tuple[int, ...]]:
        if len(done) == len(nodes):
            yield done
            return
        for k, node in enumerate(nodes):
            if k not in done and all(d in done for d in node["deps"]):
                yield from extend((*done, k))

    yield from extend(())


def _line(node: dict[str, Any], swap: bool = False) -> str:
    a, b = (node["b"], node["a"]) if swap else (node["a"], node["b"])
    return f"{a}{node['op']}{b}={node['value']}"


def _distractor(rng: random.Random, nodes: list[dict[str, Any]], prev: int) -> str:
    """A valid step that makes no progress after node ``prev``: an identity on its value or its recomputation."""
    v = nodes[prev]["value"]
    return rng.choice([f"{v}+0={v}", f"{v}*1={v}", _line(nodes[prev])])


def make_problem(rng: random.Random, cfg: MultipathConfig) -> Problem:
    terms = [_term(rng, cfg) for _ in range(cfg.n_terms)]
    top: list[str] = []
    value = _OPS[terms[0][1]](terms[0][0], terms[0][2])
    for a, op, b in terms[1:]:
        t = _OPS[op](a, b)
        top_op = rng.choice(cfg.top_ops)
        if top_op == "-" and value <= t:
            top_op = "+"
        top.append(top_op)
        value = _OPS[top_op](value, t)
    nodes = _tree(terms, top)
    expr = f"({terms[0][0]}{terms[0][1]}{terms[0][2]})" + "".join(
        f"{o}({a}{op}{b})" for o, (a, op, b) in zip(top, terms[1:])
    )
    if cfg.shuffle_order:
        order = list(rng.choice(list(itertools.islice(valid_orders(nodes), 200))))
    else:
        order = list(next(valid_orders(nodes)))
    distractor = None
    if rng.random() < cfg.distractor_prob:
        pos = rng.randint(1, len(order))  # inserted after the first `pos` steps
        distractor = [pos, _distractor(rng, nodes, order[pos - 1])]
    meta = {"nodes": nodes, "order": order, "distractor": distractor}
    problem = Problem(
        problem_id=f"multipath:{expr}", domain="multipath", prompt=f"Q: {expr}\n", answer=str(nodes[-1]["value"]),
        source=cfg.name, meta=meta,
    )
    problem.solution = gold_solution(problem)
    return problem


def solution_text(problem: Problem, order: list[int], swaps: frozenset[int] = frozenset(),
                  distractor: list[Any] | None = None) -> str:
    """A solution computing the nodes in ``order`` (nodes in ``swaps`` with operands swapped), then the answer."""
    nodes = problem.meta["nodes"]
    lines = [_line(nodes[k], swap=k in swaps and nodes[k]["op"] in "+*") for k in order]
    if distractor is not None:
        lines.insert(int(distractor[0]), str(distractor[1]))
    return "\n".join([*lines, f"Answer: {problem.answer}"])


def gold_solution(problem: Problem) -> str:
    """The gold completion: the stored order (and distractor, if any), then ``Answer: N`` (no trailing newline)."""
    return solution_text(problem, problem.meta["order"], distractor=problem.meta["distractor"])


def alternative_solutions(problem: Problem, limit: int = 100) -> list[str]:
    """Distinct distractor-free valid solutions: every valid order, with and without commutative swaps."""
    nodes = problem.meta["nodes"]
    out: list[str] = []
    for order in valid_orders(nodes):
        for swaps in (frozenset(), frozenset(range(len(nodes)))):
            text = solution_text(problem, list(order), swaps)
            if text not in out:
                out.append(text)
            if len(out) >= limit:
                return out
    return out


def generate_problems(
    cfg: MultipathConfig, n: int, seed: int, exclude: set[str] | frozenset[str] = frozenset()
) -> list[Problem]:
    """``n`` distinct problems, deterministic in ``seed``; problems whose id is in ``exclude`` are skipped."""
    return distinct_problems(lambda rng: make_problem(rng, cfg), n, f"multipath/{cfg.name}/{seed}", exclude=exclude)


def make_splits(cfg: MultipathConfig, n_train: int, n_test: int, seed: int = 0) -> tuple[list[Problem], list[Problem]]:
    """Train and test problems that never share an expression (the test set is drawn first, then excluded)."""
    return disjoint_splits(generate_problems, cfg, n_train, n_test, seed)


def verify(problem: Problem, completion: str) -> Verdict:
    """Exact final-answer check: the arithmetic task's verifier, named ``multipath``."""
    verdict = arithmetic.verify(problem, completion)
    verdict.verifier = "multipath"
    return verdict


def _classify_line(line: str, nodes: list[dict[str, Any]], done: set[int]) -> tuple[str, int | None]:
    m = STEP_RE.match(line)
    if m is None:
        return "wrong", None
    a, op, b, c = int(m[1]), m[2], int(m[3]), int(m[4])
    if _OPS[op](a, b) != c:
        return "wrong", None
    matches = [
        k for k, node in enumerate(nodes)
        if (a, op, b) == (node["a"], node["op"], node["b"]) or (op in "+*" and (b, op, a) == (node["a"], node["op"], node["b"]))
    ]
    fresh = [k for k in matches if k not in done]
    if fresh:
        return "progress", fresh[0]
    if matches:
        return "spurious", None  # a recomputation
    if (op in "+-" and b == 0) or (op == "*" and b == 1) or (op in "+*" and a == (0 if op == "+" else 1)):
        return "spurious", None
    return "wrong", None


def classify_steps(problem: Problem, completion: str) -> list[str]:
    """The kind of each line of ``completion``: one of ``STEP_KINDS`` (see the module docstring).

    No error propagation here: each line is judged on its own against the tree and the nodes computed so far. A
    blank line after the answer is ``"spurious"``; any other line after the answer is ``"wrong"``.
    """
    nodes = problem.meta["nodes"]
    done: set[int] = set()
    kinds: list[str] = []
    answered = False
    for line in completion.split("\n"):
        if answered:
            kinds.append("spurious" if not line.strip() else "wrong")
            continue
        got = ANSWER_RE.fullmatch(line.strip())
        if got is not None:
            answered = True
            kinds.append("answer" if int(got[1]) == int(problem.answer or "-1") else "wrong")
            continue
        kind, k = _classify_line(line, nodes, done)
        if k is not None:
            done.add(k)
        kinds.append(kind)
    return kinds


def check_steps(problem: Problem, completion: str) -> list[bool]:
    """Ground-truth correctness of each line: progress, spurious and a right answer are right; lines after the first
    wrong one are wrong too (error propagation), as in the arithmetic task."""
    labels: list[bool] = []
    ok = True
    for kind in classify_steps(problem, completion):
        ok = ok and kind != "wrong"
        labels.append(ok)
    return labels


def spurious_flags(problem: Problem, completion: str) -> list[bool]:
    """Per line: is it a valid-but-spurious step (an identity or a recomputation)?"""
    return [kind == "spurious" for kind in classify_steps(problem, completion)]
