"""Math verifier: extraction and equivalence, table-driven, in the main thread, a thread pool and a process pool.

The thread-pool run is the regression test for math-verify's signal-based timeout, which only works in the main
thread (elsewhere it silently scores every answer that needs sympy as wrong).
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from negrl.records import Problem
from negrl.verifiers import math as math_verifier
from negrl.verifiers import verify
from negrl.verifiers.math import base_number, extract_answer, last_boxed, normalize, split_unit, too_costly


# (gold, completion, expected correct)
CASES: list[tuple[str | None, str, bool | None]] = [
    ("18", "She makes 9 * 2 = $18.\n#### 18", True),
    ("18", "The answer is 18.", True),
    ("18", "Answer: 18 dollars", True),
    ("18", "The final answer is $\\boxed{18}$.", True),
    ("1000", "#### 1,000", True),  # GSM8K thousands separator
    ("1,000", "Answer: 1000", True),
    ("\\frac{1}{2}", "so the probability is $\\boxed{0.5}$", True),  # fraction vs decimal
    ("0.5", "$\\boxed{\\dfrac12}$", True),
    ("\\frac{3}{4}", "Answer: 3/4", True),
    ("\\left( 3, \\frac{\\pi}{2} \\right)", "\\boxed{(3, \\frac{\\pi}{2})}", True),  # needs sympy
    ("x^2+2x+1", "\\boxed{(x+1)^2}", True),  # needs sympy
    ("\\frac{\\sqrt{2}}{2}", "\\boxed{\\frac{1}{\\sqrt{2}}}", True),  # needs sympy
    ("\\text{Evelyn}", "The answer is \\boxed{\\text{Evelyn}}", True),
    ("10", "\\boxed{10\\text{ cm}}", True),  # units
    ("90^\\circ", "\\boxed{90}", True),
    ("50\\%", "Answer: 50", True),
    ("3", "\\boxed{3.0}", True),
    ("-3", "Answer: -3", True),
    ("2", "first \\boxed{2} then I changed my mind: \\boxed{3}", False),  # the last box counts
    ("2", "\\boxed{3}", False),
    ("18", "#### 17", False),
    ("1450000", "#### 1,450,001", False),  # large integers are compared exactly
    ("\\frac{1}{3}", "Answer: 0.333333", True),
    ("\\frac{1}{3}", "Answer: 0.33", False),
    ("x^2+2x+1", "\\boxed{(x+2)^2}", False),
    ("\\frac{1}{2}", "Answer: 0.6", False),
    ("5", "I do not know.", False),  # no answer found
    ("{{{", "\\boxed{5}", None),  # unparseable gold
    (None, "\\boxed{5}", None),  # no gold
    # A letter glued to a number is algebra, not a unit.
    ("2", "\\boxed{2x}", False),
    ("2x", "\\boxed{2}", False),
    ("2k", "\\boxed{2m}", False),
    ("29", "\\boxed{29i}", False),
    ("29i", "\\boxed{29}", False),
    ("2x", "\\boxed{2x}", True),
    # Numeral bases: same base and value only.
    ("52_9", "\\boxed{52_8}", False),
    ("52_9", "\\boxed{52}", False),
    ("52", "\\boxed{52_9}", False),
    ("52_8", "\\boxed{52_{8}}", True),
    ("52_{10}", "\\boxed{52}", True),
    ("4210_{6}", "\\boxed{4210_{5}}", False),
    ("4210_{5}", "The answer is $4210_5$.", True),
    # Units with exponents: both stated → unit and exponent must agree; a bare number may omit them.
    ("864 \\mbox{ inches}^3", "\\boxed{864 \\mbox{ inches}^2}", False),
    ("864 \\mbox{ inches}^2", "\\boxed{864 \\text{ inches}^2}", True),
    ("864 \\mbox{ inches}^2", "\\boxed{864}", True),
    ("15\\mbox{ cm}^2", "\\boxed{15 \\text{ m}^2}", False),
    ("5.4 \\text{ cents}", "Answer: 5.4 cents", True),
    # False negatives: an empty box does not hide a later statement; an answer ends at its clause.
    ("800", "So the total is \\boxed{}. The answer is 800.", True),
    ("800", "The answer is 800 dollars, because she saved 40 a week.", True),
    ("800", "The answer is 800 dollars, because she saved 40 a week; not 900.", True),
    ("(1, 2)", "The answer is $(1, 2)$, since both work.", True),
    ("1000", "The answer is 1,000 dollars.", True),
    # Hang-inducing input: could not verify, quickly, never a pass.
    ("1", "\\boxed{9^{9^{9^{9}}}}", None),
    ("9^{9^{9^{9}}}", "\\boxed{5}", None),
    ("1", "\\boxed{10^{10^{10}}}", None),
    ("1", "\\boxed{(10^{100000})!}", None),
]


def _check(case: tuple[str | None, str, bool | None]) -> bool | None:
    gold, completion, _ = case
    return verify(Problem(problem_id="m", domain="math", prompt="", answer=gold), completion).correct


@pytest.mark.parametrize("case", CASES, ids=[f"{i}" for i in range(len(CASES))])
def test_main_thread(case) -> None:
    assert _check(case) is case[2], case


def test_thread_pool_gives_the_same_verdicts() -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(_check, CASES))
    assert got == [c[2] for c in CASES]


def test_process_pool_gives_the_same_verdicts() -> None:
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        got = list(pool.map(_check, CASES))
    assert got == [c[2] for c in CASES]


def test_extraction_priority_and_helpers() -> None:
    assert last_boxed("a \\boxed{\\frac{1}{2}} b \\boxed{x^{2}}") == "x^{2}"
    assert last_boxed("\\boxed{unterminated") is None
    assert extract_answer("#### 5\nAnswer: 6") == "5"  # '####' before 'Answer:'
    assert extract_answer("Answer: 6\nThe answer is 7") == "6"
    assert extract_answer("nothing") is None
    assert extract_answer("\\boxed{} so The answer is 800.") == "800"
    assert extract_answer("\\boxed{3} then \\boxed{ }") == "3"  # the last non-empty box
    t0 = time.monotonic()
    assert extract_answer("\\boxed{" * 50_000) is None  # unclosed boxes: one pass, not one scan per box
    assert time.monotonic() - t0 < 2
    assert normalize("\\$1,234.") == "1234"
    assert normalize("\\text{ Evelyn }") == "evelyn"
    assert normalize("18 dollars") == normalize("18") == "18" and normalize("2x") == "2x"  # vote keys


TOWER = ("1", "\\boxed{9^{9^{9^{9}}}}", None)


def test_tower_returns_none_quickly_everywhere() -> None:
    """The 13-character input that used to hang sympy (and, holding the GIL, the process): None within 2 s."""
    t0 = time.monotonic()
    assert _check(TOWER) is None
    with ThreadPoolExecutor(max_workers=2) as pool:
        assert list(pool.map(_check, [TOWER, TOWER])) == [None, None]
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        assert list(pool.map(_check, [TOWER])) == [None]
    assert time.monotonic() - t0 < 10  # process start included


def test_math_verify_past_its_deadline_is_none_and_the_worker_is_replaced(monkeypatch) -> None:
    """The outer bound: a worker that has not answered by the deadline is killed; the verdict is None."""
    needs_sympy = ("x^2+2x+1", "\\boxed{(x+1)^2}", True)
    assert _check(needs_sympy) is True  # a worker is up
    monkeypatch.setattr(math_verifier, "MV_DEADLINE_S", 0.0)
    v = verify(Problem(problem_id="m", domain="math", prompt="", answer="x^2+2x+1"), "\\boxed{(x+1)^2}")
    assert v.correct is None and "could not verify in time" in v.detail
    monkeypatch.setattr(math_verifier, "MV_DEADLINE_S", 10.0)
    assert _check(needs_sympy) is True  # a fresh worker


def test_units_bases_and_cost_helpers() -> None:
    assert split_unit("864 \\mbox{ inches}^3") == ("864", "inches", "3")
    assert split_unit("10\\text{ cm}") == ("10", "cm", "1")
    assert split_unit("18 dollars") == ("18", "dollars", "1")
    assert split_unit("2x")[1] is None and split_unit("\\text{Evelyn}")[1] is None
    assert base_number("52_8") == (8, 42) and base_number("4210_{5}") == (5, 555) and base_number("x_1") is None
    assert too_costly("9^{9^{9^{9}}}") and too_costly("2^3^4") and too_costly("2^{100000}") and too_costly("100001!")
    assert not too_costly("x^{2}+2^{10}") and not too_costly("\\frac{\\pi^2}{8}")


def test_math500_perturbed_answers_are_rejected(shared_data) -> None:
    """Bases changed or dropped, unit exponents changed, ``+1`` appended: none verifies (the gold still does)."""
    import re

    from negrl.problems import load_problems

    problems = load_problems("math500", path=shared_data)
    perturbed: list[tuple[Problem, str]] = []
    for p in problems:
        perturbed.append((p, p.answer + "+1"))
        m = re.fullmatch(r"(\w+)_\{?(\d+)\}?", p.answer)
        if m:  # 52_8 → 52_9, 52
            perturbed += [(p, f"{m.group(1)}_{{{int(m.group(2)) + 1}}}"), (p, m.group(1))]
        value, unit, exp = split_unit(p.answer)
        if unit:  # 864 \mbox{ inches}^2 → ^3
            perturbed.append((p, f"{value}\\text{{ {unit}}}^{int(exp) + 1}"))
    assert sum(1 for _, a in perturbed if "_" in a) >= 6 and sum(1 for _, a in perturbed if "text{ " in a) >= 3
    accepted = [(p.answer, a) for p, a in perturbed if verify(p, f"\\boxed{{{a}}}").correct is True]
    assert accepted == []
    assert all(verify(p, f"\\boxed{{{p.answer}}}").correct is True for p in problems)


def test_no_math_verify_worker_means_none(monkeypatch) -> None:
    """A worker that cannot start (math-verify missing, no processes left): "could not verify", quickly."""
    monkeypatch.setattr(math_verifier._MathVerifyPool, "_start", staticmethod(lambda: None))
    math_verifier._POOL.reset()
    try:
        for _ in range(3):  # the retry back-off: later calls do not try again at once
            v = verify(Problem(problem_id="m", domain="math", prompt="", answer="x^2+2x+1"), "\\boxed{(x+1)^2}")
            assert v.correct is None and "could not be started" in v.detail
    finally:
        math_verifier._POOL.reset()
