"""The ``code`` segmentation rule on MBPP-like answers: statements / blocks of the code, prose and fences merged."""

from __future__ import annotations

import json

import pytest

from negrl.steps.segment import segment, step_texts


FENCED = '''Here is a Python function that removes the first and last occurrence of a given character from the string:

```python
def remove_Occ(s, ch):
    # remove the first occurrence
    for i in range(len(s)):
        if s[i] == ch:
            s = s[:i] + s[i + 1:]
            break
    # remove the last occurrence
    for i in range(len(s) - 1, -1, -1):
        if s[i] == ch:
            s = s[:i] + s[i + 1:]
            break
    return s
```

This function loops over the string twice, once from each end.'''


def test_fenced_answer_steps_are_the_function_body_statements():
    assert step_texts(FENCED, "code") == [
        "Here is a Python function that removes the first and last occurrence of a given character from the string:"
        "\n\n```python\ndef remove_Occ(s, ch):\n    # remove the first occurrence\n    for i in range(len(s)):\n"
        "        if s[i] == ch:\n            s = s[:i] + s[i + 1:]\n            break\n",
        "    # remove the last occurrence\n    for i in range(len(s) - 1, -1, -1):\n        if s[i] == ch:\n"
        "            s = s[:i] + s[i + 1:]\n            break\n",
        "    return s\n```\n\nThis function loops over the string twice, once from each end.",
    ]
    # the `lines` rule, for contrast, makes the intro, the fence and the def line steps of their own
    lines = step_texts(FENCED, "lines")
    assert "```python\n" in lines and "def remove_Occ(s, ch):\n" in lines


def test_unfenced_answer_with_prose_intro_and_usage():
    text = ("Sure! Here's the function:\n\ndef is_not_prime(n):\n    if n < 2:\n        return True\n"
            "    for i in range(2, int(n ** 0.5) + 1):\n        if n % i == 0:\n            return True\n"
            "    return False\n\nprint(is_not_prime(10))\n")
    assert step_texts(text, "code") == [
        "Sure! Here's the function:\n\ndef is_not_prime(n):\n    if n < 2:\n        return True\n",
        "    for i in range(2, int(n ** 0.5) + 1):\n        if n % i == 0:\n            return True\n",
        "    return False\n\n",
        "print(is_not_prime(10))\n",
    ]


def test_imports_docstrings_brackets_compounds_decorators_and_classes():
    code = '''```python
import re
from typing import List


@staticmethod
def split_words(text: str) -> List[str]:
    """Split on spaces.

    # not a comment, and 'quotes' inside
    """
    words = [w for w in re.split(r"\\s+", text)
             if w]  # a bracketed statement over two lines
    if not words:
        return []
    elif len(words) == 1:
        return words
    else:
        words.sort()
    try:
        n = int(words[0])
    except ValueError:
        n = 0
    return words[n:]


class Counter:
    start = 0

    def add(self, x):
        return self.start + x
```'''
    steps = step_texts(code, "code")
    assert steps == [
        "```python\nimport re\n",
        "from typing import List\n\n\n",
        '@staticmethod\ndef split_words(text: str) -> List[str]:\n    """Split on spaces.\n\n'
        "    # not a comment, and 'quotes' inside\n    \"\"\"\n",
        '    words = [w for w in re.split(r"\\s+", text)\n             if w]  # a bracketed statement over two lines\n',
        "    if not words:\n        return []\n    elif len(words) == 1:\n        return words\n    else:\n"
        "        words.sort()\n",
        "    try:\n        n = int(words[0])\n    except ValueError:\n        n = 0\n",
        "    return words[n:]\n\n\n",
        "class Counter:\n    start = 0\n\n",
        "    def add(self, x):\n        return self.start + x\n```",
    ]


def test_truncated_generation_and_prose_only_answers():
    # cut by max_new_tokens inside the block: no closing fence, a dangling loop header joins as its own statement
    text = "```python\ndef f(x):\n    total = 0\n    for i in range(x):\n"
    assert step_texts(text, "code") == ["```python\ndef f(x):\n    total = 0\n", "    for i in range(x):\n"]
    assert step_texts("```python\ndef f(x):\n", "code") == ["```python\ndef f(x):\n"]  # nothing to split
    assert step_texts("I cannot solve this, sorry.\nIt's too hard.", "code") == [
        "I cannot solve this, sorry.\nIt's too hard."]
    # prose between two code blocks joins the next block's first statement
    two = "```python\nx = 1\n```\nThen call it:\n```python\nprint(x)\n```\n"
    assert step_texts(two, "code") == ["```python\nx = 1\n```\n", "Then call it:\n```python\nprint(x)\n```\n"]


def test_code_steps_merge_and_cap_and_unknown_rule_lists_code():
    steps = segment(FENCED, "code", max_steps=2)
    assert len(steps) == 2 and "".join(s.text for s in steps) == FENCED
    with pytest.raises(ValueError, match="'code'"):
        segment("x", "kode")


def _is_substantive(line: str) -> bool:
    body = line.strip()
    return bool(body) and not body.startswith(("```", "def ", "class ", "#", "@", "Here is", "This function"))


def test_every_mbpp_gold_solution_splits_into_steps_with_a_statement_each(shared_data):
    """On all sanitized MBPP gold programs, wrapped as a chat answer: exact offsets, and no step is only prose, a
    fence, a comment or a ``def`` line."""
    rows = json.loads((shared_data / "mbpp" / "sanitized-mbpp.json").read_text(encoding="utf-8"))
    many = 0
    for row in rows:
        answer = f"Here is a Python function:\n\n```python\n{row['code'].strip()}\n```\n\nThis function works."
        steps = segment(answer, "code")
        assert "".join(s.text for s in steps) == answer
        assert all(answer[s.start : s.end] == s.text for s in steps)
        for s in steps:
            assert any(_is_substantive(line) for line in s.text.splitlines()), (row["task_id"], s.text)
        many += len(steps) > 1
    assert many > len(rows) // 2  # most programs have several steps
