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

- ``"code"`` (code answers: MBPP, HumanEval): the statements and blocks of the code inside the answer (every
  fenced block if there is one, else the whole text, where lines that do not parse as Python count as prose). A step
  starts at each statement at top level or directly inside a ``def`` / ``class`` body; a nested block (``for``,
  ``if``/``else``, ``try``, ``with``...) stays whole inside its statement's step. A ``def`` / ``class`` header,
  decorators and comments join the statement after them, blank lines and a closing fence the step before; prose and
  the opening fence join the next statement (prose after the last statement: the last step). So neither "Here is a
  Python function…" nor a ``def`` line is ever a step of its own.

  **Monte-Carlo labels on code** need a pass/fail verifier per continuation (the sandboxed test runner): a prefix's
  value is the fraction of its K continuations that pass the tests. A prefix from which the policy succeeds with
  probability q shows no success at all with probability ``P(miss) = (1 − q)^K``, and is then labelled as a pit:
  K = 8 misses a q = 0.2 prefix 17% of the time (0.8^8), K = 16 3%, and K ≥ 21 is needed for P(miss) < 1% at
  q = 0.2 (``K ≥ ln(0.01) / ln(1 − q)``). Weak policies on MBPP have small q even after correct steps, so use a
  large K, read a pit found with a small K as weak evidence, and prefer few, coarse steps (``max_steps``): each
  step costs K sandboxed runs.

Then two optional merges (offsets stay exact because only neighbours are merged):

- ``min_chars``: a step whose stripped text is shorter than ``min_chars`` is merged into the next step (the last
  one into the previous step);
- ``max_steps``: while there are more steps than the cap, the adjacent pair with the shortest combined text is
  merged (ties: the earliest pair).

Invariant (tested): ``"".join(s.text for s in steps) == completion`` and ``completion[s.start:s.end] == s.text``.
The empty completion has no steps.
"""

from __future__ import annotations

import ast
import re
import textwrap
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


# --- code answers ("code" rule) -------------------------------------------------------------------------------

_FENCE_RE = re.compile(r"(?m)^[ \t]*```[^\n]*(?:\n|$)")
_SCOPE_RE = re.compile(r"(?:async[ \t]+)?(?:def|class)\b")
_CONTINUATION_RE = re.compile(r"(?:elif|else|except|finally)\b")


def _logical_lines(code: str) -> list[tuple[int, int, str]]:
    """``(start, end, last significant char)`` of each logical line of Python-like ``code`` (bracketed and
    backslash continuations and triple-quoted strings joined; comments ignored). An unterminated one-quote string
    ends at its line end, so an apostrophe in prose never swallows the rest of the text."""
    out, start, i, depth, quote, last = [], 0, 0, 0, "", ""
    n = len(code)
    while i < n:
        c = code[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if code.startswith(quote, i):
                i, quote, last = i + len(quote), "", c
                continue
            if not (c == "\n" and len(quote) == 1):
                i += 1
                continue
            quote = ""  # an unterminated 'string' ends with its line; the newline is handled below
        if c == "#":
            nl = code.find("\n", i)
            i = n if nl < 0 else nl
            continue
        if c in "'\"":
            quote = code[i : i + 3] if code.startswith(c * 3, i) else c
            i, last = i + len(quote), c
            continue
        if c == "\\" and code.startswith("\n", i + 1):
            i += 2
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth = max(0, depth - 1)
        if c == "\n" and depth == 0:
            out.append((start, i + 1, last))
            start, last = i + 1, ""
        elif not c.isspace():
            last = c
        i += 1
    if start < n:
        out.append((start, n, last))
    return out


def _looks_like_code(unit: str) -> bool:
    """Whether one logical line parses as Python (alone, as a block header, or as an ``else``/``except`` part)."""
    src = textwrap.dedent(unit).strip()
    for wrapped in (src, src + "\n    pass", "if 1:\n    pass\n" + src + "\n    pass",
                    "try:\n    pass\n" + src + "\n    pass"):
        try:
            ast.parse(wrapped)
            return True
        except (SyntaxError, ValueError):
            continue
    return False


def _code_units(text: str, start: int, end: int, guess_prose: bool) -> list[tuple[int, str]]:
    """``(offset, kind)`` of the logical lines of ``text[start:end]``: ``"blank"`` (joins the step before),
    ``"lead"`` (comments, decorators, prose: join the statement after), ``"stmt"`` (a statement that may start a
    step: at top level or directly in a ``def`` / ``class`` body), ``"inner"`` (inside another block) and
    ``"scope"`` (a ``def`` / ``class`` header: never a step without its first statement)."""
    units: list[tuple[int, str]] = []
    stack: list[tuple[int, bool]] = []  # open block headers: (indent, is def/class)
    for a, b, last in _logical_lines(text[start:end]):
        line = text[start + a : start + b]
        body = line.lstrip()
        if not body.strip():
            units.append((start + a, "blank"))
            continue
        if body.startswith(("#", "@")) or (guess_prose and not _looks_like_code(line)):
            units.append((start + a, "lead"))
            continue
        indent = len(line) - len(body)
        header = last == ":"
        if _CONTINUATION_RE.match(body):  # elif / else / except / finally: part of the compound before it
            while stack and stack[-1][0] > indent:
                stack.pop()
            if not (stack and stack[-1][0] == indent):
                stack.append((indent, False))
            units.append((start + a, "inner"))
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        scope = bool(_SCOPE_RE.match(body)) and header
        eligible = all(is_scope for _, is_scope in stack)
        units.append((start + a, ("scope" if scope else "stmt") if eligible else "inner"))
        if header:
            stack.append((indent, scope))
    return units


def split_code(completion: str) -> list[Step]:
    """Steps of a code answer: the statements and blocks of its code (see the module docstring)."""
    fences = list(_FENCE_RE.finditer(completion))
    units: list[tuple[int, str]] = []
    if not fences:
        units = _code_units(completion, 0, len(completion), guess_prose=True)
    else:
        pos = 0
        for k in range(0, len(fences), 2):  # fences pair up as open / close; an unclosed block runs to the end
            opening = fences[k]
            closing = fences[k + 1] if k + 1 < len(fences) else None
            units += _prose_units(completion, pos, opening.start())
            units.append((opening.start(), "lead"))
            code_end = closing.start() if closing else len(completion)
            units += _code_units(completion, opening.end(), code_end, guess_prose=False)
            if closing is None:
                pos = len(completion)
                break
            units.append((closing.start(), "blank"))
            pos = closing.end()
        units += _prose_units(completion, pos, len(completion))
    cuts, substance, pending = [], False, None
    for offset, kind in units:
        if kind == "lead":
            pending = offset if pending is None else pending
        elif kind in ("stmt", "scope", "inner"):
            if kind != "inner" and substance:
                cuts.append(offset if pending is None else pending)
                substance = False
            substance = substance or kind != "scope"
            pending = None
    return _from_cuts(completion, cuts)


def _prose_units(text: str, start: int, end: int) -> list[tuple[int, str]]:
    """Each non-blank line of prose outside the code fences is a ``"lead"`` (it joins the statement after it)."""
    return [(start + m.start(), "lead") for m in re.finditer(r"(?m)^[^\n]*\S", text[start:end])]


SEGMENTERS: dict[str, Segmenter] = {
    "lines": split_lines,
    "paragraphs": split_paragraphs,
    "step_markers": split_step_markers,
    "code": split_code,
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
