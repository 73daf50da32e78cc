"""The math verifier: final-answer extraction and equivalence (``math-verify`` plus a fallback normaliser).

Extraction, in priority order: the last ``\\boxed{...}`` (or ``\\fbox``), the last ``#### x`` (GSM8K), the last
``Answer: x`` line, the last "the (final) answer is x".

Equivalence of the extracted answer with the gold answer:

1. the fallback normaliser (strip ``$``, ``\\text{}``/units, ``\\left``/``\\right``, spaces, thousands separators,
   ``dfrac``→``frac``, degree and percent signs, trailing full stops) makes both strings equal → ``True``;
2. both read as numbers (integers, decimals, ``a/b``, ``\\frac{a}{b}``) → integers exactly, others within
   ``1e-6`` absolute (a decimal rounded to 6 places equals the fraction);
3. ``math-verify`` (sympy) on ``\\boxed{gold}`` and ``\\boxed{answer}``. A gold answer that neither the normaliser
   nor math-verify can read gives ``None`` ("could not verify"), never ``False``.

Thread and process safety: math-verify's timeouts use ``signal.alarm``, which only works in the main thread (in
another thread it raises inside math-verify, which then silently scores the answer as wrong). Here the timeouts are
used in the main thread only; elsewhere they are disabled (``parsing_timeout=None``, ``timeout_seconds=None``) and
the inputs are capped at ``MAX_ANSWER_CHARS`` so sympy stays fast.
"""

from __future__ import annotations

import re
import threading
from fractions import Fraction

from negrl.records import Problem, Verdict


MAX_ANSWER_CHARS = 400
MV_TIMEOUT_S = 5

_ANSWER_LINE_RE = re.compile(r"Answer\s*:\s*(.+)", re.IGNORECASE)
_HASH_RE = re.compile(r"####\s*(.+)")
_ANSWER_IS_RE = re.compile(r"answer is\s*:?\s*(.+)", re.IGNORECASE)
_THOUSANDS_RE = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` / ``\\fbox{...}`` (balanced braces), or ``None``."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    i = text.find("{", start)
    if i < 0:
        m = re.match(r"\\boxed\s+(\S+)", text[start:])  # "\boxed 5"
        return m.group(1) if m else None
    depth = 0
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j]
    return None  # unbalanced: cut off by the token limit


def _clean(ans: str) -> str:
    ans = ans.strip()
    ans = re.split(r"\n", ans, maxsplit=1)[0].strip()
    return ans.rstrip(".").strip().strip("$").strip()


def extract_answer(completion: str) -> str | None:
    """The final answer stated in ``completion`` (see the module docstring for the order), or ``None``."""
    boxed = last_boxed(completion)
    if boxed is not None:
        return boxed.strip()
    for pattern in (_HASH_RE, _ANSWER_LINE_RE, _ANSWER_IS_RE):
        found = pattern.findall(completion)
        if found:
            ans = found[-1]
            inner = last_boxed(ans)
            ans = _clean(inner if inner is not None else ans)
            if ans:
                return ans
    return None


def normalize(ans: str) -> str:
    """Canonical string form of an answer for the fallback comparison."""
    s = ans.strip()
    inner = last_boxed(s)
    if inner is not None:
        s = inner
    s = s.replace("\\!", "").replace("\\,", "").replace("\\;", "").replace("\\ ", "")
    s = re.sub(r"\\(?:text|textbf|mathrm|mbox)\{\s*([^{}]*?)\s*\}", r"\1", s)
    s = re.sub(r"\\(left|right)\s*", "", s)
    s = s.replace("dfrac", "frac").replace("tfrac", "frac").replace("^\\circ", "").replace("^{\\circ}", "")
    s = s.replace("\\%", "").replace("%", "").replace("\\$", "").replace("$", "")
    s = re.sub(r"\s+", " ", s).strip().rstrip(".").strip()
    # Trailing unit words ("18 dollars", "5 cm") after a number.
    s = re.sub(r"^(-?[\d.,/]+)\s*[a-zA-Z ]+$", r"\1", s)
    if _THOUSANDS_RE.match(s):
        s = s.replace(",", "")
    s = s.replace(" ", "")
    s = re.sub(r"\\frac(\d)(\d)", r"\\frac{\1}{\2}", s)  # \frac12
    return s.lower() if re.fullmatch(r"[A-Za-z ]+", s) else s


def to_number(s: str) -> Fraction | float | None:
    """Read a normalised answer as a number (int, decimal, ``a/b``, ``\\frac{a}{b}``), else ``None``."""
    m = re.fullmatch(r"(-?)\\frac\{(-?\d+)\}\{(-?\d+)\}", s)
    if m:
        num, den = int(m.group(2)), int(m.group(3))
        return None if den == 0 else (-1 if m.group(1) else 1) * Fraction(num, den)
    m = re.fullmatch(r"(-?\d+)/(-?\d+)", s)
    if m:
        return None if int(m.group(2)) == 0 else Fraction(int(m.group(1)), int(m.group(2)))
    try:
        return Fraction(s) if re.fullmatch(r"-?\d+(\.\d*)?|-?\.\d+", s) else None
    except (ValueError, ZeroDivisionError):
        return None


def _math_verify(gold: str, answer: str) -> bool | None:
    """``math-verify`` equivalence; ``None`` if the gold cannot be parsed. Signal timeouts only in the main thread."""
    from math_verify import parse
    from math_verify import verify as mv_verify

    main = threading.current_thread() is threading.main_thread()
    timeout = MV_TIMEOUT_S if main else None
    try:
        gold_parsed = parse(f"\\boxed{{{gold}}}", parsing_timeout=timeout)
        if not gold_parsed:
            return None
        pred_parsed = parse(f"\\boxed{{{answer}}}", parsing_timeout=timeout)
        if not pred_parsed:
            return False
        return bool(mv_verify(gold_parsed, pred_parsed, timeout_seconds=timeout))
    except Exception:  # math-verify raising (a timeout, a sympy failure) means "could not verify"
        return None


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += (ch == "{") - (ch == "}")
        if depth < 0:
            return False
    return depth == 0


def answers_equivalent(gold: str, answer: str) -> bool | None:
    """Is ``answer`` equivalent to ``gold``? ``None`` when the gold answer cannot be read."""
    if len(gold) > MAX_ANSWER_CHARS or not _balanced(gold):
        return None
    if len(answer) > MAX_ANSWER_CHARS:
        return False
    g, a = normalize(gold), normalize(answer)
    if not g:
        return None
    if g == a:
        return True
    gn, an = to_number(g), to_number(a)
    if gn is not None and an is not None:
        if isinstance(gn, Fraction) and isinstance(an, Fraction) and gn.denominator == an.denominator == 1:
            return gn == an  # integers: exact (a relative tolerance would accept 1450001 for 1450000)
        return abs(float(gn) - float(an)) <= 1e-6 + 1e-9 * abs(float(gn))  # rounded decimals (1/3 ≈ 0.333333)
    result = _math_verify(gold, answer)
    if result is None and gn is not None:
        return False  # a numeric gold is always readable: an answer math-verify could not handle is wrong
    return result


def verify(problem: Problem, completion: str) -> Verdict:
    """Final-answer check of a math problem (the verifier of the ``math`` domain)."""
    extracted = extract_answer(completion)
    if problem.answer is None or not problem.answer.strip():
        return Verdict(rollout_id="", correct=None, extracted=extracted, detail="no gold answer", verifier="math")
    if extracted is None:
        return Verdict(rollout_id="", correct=False, extracted=None, detail="no final answer found", verifier="math")
    correct = answers_equivalent(problem.answer, extracted)
    detail = "gold answer could not be parsed" if correct is None else ""
    return Verdict(rollout_id="", correct=correct, extracted=extracted, detail=detail, verifier="math")
