"""Step segmentation: split a completion into ``Step`` records whose texts join back to it exactly.

One entry point, ``segment(completion, rule="lines", min_chars=0, max_steps=None)``, and one plain dict of rules,
``SEGMENTERS`` (name → function ``str -> list[Step]``; add your own there). Rules:

- ``"lines"`` (default; the synthetic tasks and GSM8K): one step per line. **Each step's text includes its trailing
  ``"\\n"``**, so a Monte-Carlo prefix ``completion[:step.end]`` ends at a line boundary and the policy continues
  with the next line. Whitespace-only lines are not steps of their own: they are glued to the previous step (or to
  the next one when they open the completion).
- ``"paragraphs"`` (long chain-of-thought): steps separated by blank lines; each step keeps the blank-line
  separator that follows it.
- ``"step_markers"``: a new step starts at each line beginning with ``Step k:`` (or ``Step k.``); text before the
  first marker is a step of its own unless it is whitespace only.

Then two optional merges (offsets stay exact because only neighbours are merged):

- ``min_chars``: a step whose stripped text is shorter than ``min_chars`` is merged into the next step (the last
  one into the previous step);
- ``max_steps``: while there are more steps than the cap, the adjacent pair with the shortest combined text is
  merged (ties: the earliest pair).

Invariant (tested): ``"".join(s.text for s in steps) == completion`` and ``completion[s.start:s.end] == s.text``.
The empty completion has no steps.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from negrl.records import Step


Segmenter = Callable[[str], list[Step]]

_BLANK_LINE_RE = re.compile(r"\n[ \t\r\f\v]*\n\s*")
_STEP_MARKER_RE = re.compile(r"(?m)^[ \t]*Step[ \t]+\d+[ \t]*[:.]")


def _from_cuts(text: str, cuts: list[int]) -> list[Step]:
    """Steps between consecutive cut offsets (0 and ``len(text)`` added; empty pieces dropped)."""
    bounds = sorted({0, len(text), *cuts})
    return [Step(text=text[a:b], start=a, end=b) for a, b in zip(bounds, bounds[1:]) if b > a]


def merge_steps(steps: list[Step], i: int) -> list[Step]:
    """Merge step ``i`` with step ``i + 1`` (they must be adjacent)."""
    a, b = steps[i], steps[i + 1]
    if a.end != b.start:
        raise ValueError(f"steps {i} and {i + 1} are not adjacent ({a.end} != {b.start})")
    return steps[:i] + [Step(text=a.text + b.text, start=a.start, end=b.end)] + steps[i + 2 :]


def _glue_blank(steps: list[Step]) -> list[Step]:
    """Merge whitespace-only steps into their predecessor (or successor when first)."""
    i = 0
    while i < len(steps) and len(steps) > 1:
        if steps[i].text.strip():
            i += 1
            continue
        if i == 0:
            steps = merge_steps(steps, 0)
        else:
            steps = merge_steps(steps, i - 1)
    return steps


def split_lines(completion: str) -> list[Step]:
    """One step per line, each with its trailing newline; blank lines glued to a neighbour."""
    cuts = [m.end() for m in re.finditer("\n", completion)]
    return _glue_blank(_from_cuts(completion, cuts))


def split_paragraphs(completion: str) -> list[Step]:
    """Steps separated by blank lines, each keeping the separator that follows it."""
    cuts = [m.end() for m in _BLANK_LINE_RE.finditer(completion)]
    return _glue_blank(_from_cuts(completion, cuts))


def split_step_markers(completion: str) -> list[Step]:
    """A step starts at each ``Step k:`` line; a whitespace-only preamble is glued to the first step."""
    cuts = [m.start() for m in _STEP_MARKER_RE.finditer(completion)]
    return _glue_blank(_from_cuts(completion, cuts))


SEGMENTERS: dict[str, Segmenter] = {
    "lines": split_lines,
    "paragraphs": split_paragraphs,
    "step_markers": split_step_markers,
}


def merge_short(steps: list[Step], min_chars: int) -> list[Step]:
    """Merge steps whose stripped text is shorter than ``min_chars`` into the next (last: into the previous)."""
    i = 0
    while len(steps) > 1 and i < len(steps):
        if len(steps[i].text.strip()) >= min_chars:
            i += 1
        elif i == len(steps) - 1:
            steps = merge_steps(steps, i - 1)
        else:
            steps = merge_steps(steps, i)
    return steps


def cap_steps(steps: list[Step], max_steps: int) -> list[Step]:
    """Merge the adjacent pair with the shortest combined text until at most ``max_steps`` steps remain."""
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")
    while len(steps) > max_steps:
        sizes = [len(a.text) + len(b.text) for a, b in zip(steps, steps[1:])]
        steps = merge_steps(steps, sizes.index(min(sizes)))
    return steps


def segment(
    completion: str, rule: str | Segmenter = "lines", min_chars: int = 0, max_steps: int | None = None
) -> list[Step]:
    """Split ``completion`` into steps with ``rule`` (a ``SEGMENTERS`` name or a function), then merge.

    See the module docstring for the rules; joining the returned texts always gives back ``completion``.
    """
    if isinstance(rule, str):
        try:
            fn = SEGMENTERS[rule]
        except KeyError:
            raise ValueError(f"unknown segmentation rule {rule!r}; known: {sorted(SEGMENTERS)}") from None
    else:
        fn = rule
    if not completion:
        return []
    steps = fn(completion)
    if min_chars > 0:
        steps = merge_short(steps, min_chars)
    if max_steps is not None:
        steps = cap_steps(steps, max_steps)
    if "".join(s.text for s in steps) != completion:
        raise AssertionError(f"segmentation rule {rule!r} lost text: steps do not join back to the completion")
    return steps


def step_texts(completion: str, rule: str | Segmenter = "lines", **merge: int | None) -> list[str]:
    """The texts of ``segment(completion, rule, ...)`` (the TRL stepwise-supervision ``completions`` column)."""
    return [s.text for s in segment(completion, rule, **merge)]  # type: ignore[arg-type]
