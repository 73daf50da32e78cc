"""Step segmentation: exact round-trips, the rules, and the merges."""

from __future__ import annotations

import pytest

from negrl.steps.segment import SEGMENTERS, cap_steps, merge_short, segment, step_texts


CASES = [
    "",
    "1+2=3\n3*4=12\nAnswer: 12",
    "1+2=3\n3*4=12\nAnswer: 12\n",
    "\n\n1+2=3\n\n\n3*4=12\n  \nAnswer: 12",
    "First we add.\n\nThen we multiply\nby four.\n\n\nSo the answer is 12.",
    "Let me think.\nStep 1: add 1 and 2.\nStep 2. multiply.\n  Step 3: done\nThe answer is 12",
    "no newline at all",
    "\n",
]


@pytest.mark.parametrize("rule", sorted(SEGMENTERS))
@pytest.mark.parametrize("text", CASES)
@pytest.mark.parametrize("merge", [{}, {"min_chars": 8}, {"max_steps": 2}])
def test_round_trip_and_offsets(rule, text, merge):
    steps = segment(text, rule, **merge)
    assert "".join(s.text for s in steps) == text
    pos = 0
    for s in steps:
        assert s.start == pos and text[s.start : s.end] == s.text and s.text
        pos = s.end
    assert (steps == []) == (text == "")
    if "max_steps" in merge:
        assert len(steps) <= merge["max_steps"]


def test_lines_keep_trailing_newline_and_glue_blank_lines():
    assert step_texts("1+2=3\n3*4=12\nAnswer: 12") == ["1+2=3\n", "3*4=12\n", "Answer: 12"]
    assert step_texts("a\n\nb\n  \nc\n") == ["a\n\n", "b\n  \n", "c\n"]
    assert step_texts("\n\na\nb") == ["\n\na\n", "b"]


def test_paragraphs_and_step_markers():
    text = "First we add.\n\nThen we multiply\nby four.\n\n\nSo 12."
    assert step_texts(text, "paragraphs") == ["First we add.\n\n", "Then we multiply\nby four.\n\n\n", "So 12."]
    text = "Let me think.\nStep 1: add.\nStep 2. multiply.\n  Step 3: done\nThe answer is 12"
    assert step_texts(text, "step_markers") == [
        "Let me think.\n", "Step 1: add.\n", "Step 2. multiply.\n", "  Step 3: done\nThe answer is 12",
    ]
    assert step_texts("  \nStep 1: a\nStep 2: b", "step_markers") == ["  \nStep 1: a\n", "Step 2: b"]


def test_merges():
    steps = segment("ab\nc\nd\nefgh\nij")
    assert [s.text for s in merge_short(steps, 3)] == ["ab\nc\n", "d\nefgh\nij"]
    # The last short step goes into its predecessor.
    assert [s.text for s in merge_short(segment("abcd\nx"), 3)] == ["abcd\nx"]
    # Cap: the shortest adjacent pair is merged first (earliest on ties).
    assert [s.text for s in cap_steps(segment("aaaa\nb\nc\ndddd"), 3)] == ["aaaa\n", "b\nc\n", "dddd"]
    with pytest.raises(ValueError, match="max_steps"):
        cap_steps(steps, 0)


def test_custom_and_unknown_rules():
    from negrl.records import Step

    def halves(text):
        h = len(text) // 2
        return [Step(text[:h], 0, h), Step(text[h:], h, len(text))]

    assert step_texts("abcdef", halves) == ["abc", "def"]
    with pytest.raises(ValueError, match="unknown segmentation rule 'sentences'"):
        segment("x", "sentences")
