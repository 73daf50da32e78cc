"""Math verifier: extraction and equivalence, table-driven, in the main thread, a thread pool and a process pool.

The thread-pool run is the regression test for math-verify's signal-based timeout, which only works in the main
thread (elsewhere it silently scores every answer that needs sympy as wrong).
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from negrl.records import Problem
from negrl.verifiers import verify
from negrl.verifiers.math import extract_answer, last_boxed, normalize


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
    assert normalize("\\$1,234.") == "1234"
    assert normalize("\\text{ Evelyn }") == "evelyn"
