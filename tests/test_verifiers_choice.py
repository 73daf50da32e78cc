"""Multiple-choice verifier: which option a completion chose (labels, bracketed labels, option text)."""

from __future__ import annotations

import pytest

from negrl.records import Problem
from negrl.verifiers import verify


def _problem(answer: str = "B") -> Problem:
    return Problem(problem_id="c", domain="choice", prompt="What is steam?", answer=answer,
                   choices=["a solid", "gas", "a liquid", "plasma"], choice_labels=["A", "B", "C", "D"])  # fmt: skip


# (completion, gold, expected chosen label)
CASES = [
    ("The answer is a gas, because water boils.", "B", "B"),  # "a" is an article: the option text decides
    ("The answer is a gas", "A", "B"),
    ("A gas: steam is water vapour.", "B", "B"),
    ("I think the answer is (B).", "B", "B"),
    ("Answer: B", "B", "B"),
    ("answer: b", "B", "B"),
    ("The answer is A.", "A", "A"),
    ("The answer is (a) a solid", "A", "A"),  # bracketed: a label
    ("The answer is a", "A", "A"),  # nothing follows: a label
    ("B", "B", "B"),
    ("(C) a liquid", "C", "C"),
    ("D. plasma", "D", "D"),
    ("A is correct.", "A", "A"),  # a label followed by a verb, not an article
    ("The answer is a plasma-like gas", "D", "D"),  # the longest option text that appears
    ("I do not know.", "B", None),
]


@pytest.mark.parametrize("completion,gold,chosen", CASES, ids=[c[0][:30] for c in CASES])
def test_choice_extraction(completion: str, gold: str, chosen: str | None) -> None:
    v = verify(_problem(gold), completion)
    assert v.extracted == chosen, (completion, v)
    assert v.correct is (chosen == gold)
