"""The math verifier: final-answer extraction and equivalence (``math-verify`` plus a fallback normaliser).

Extraction, in priority order: the last non-empty ``\\boxed{...}`` (or ``\\fbox``), the last ``#### x``
(GSM8K), the last ``Answer: x`` line, the last "the (final) answer is x". A stated answer ends at the end of its
line or sentence, or at a comma / semicolon outside brackets (``"800 dollars, because ..."`` → ``800 dollars``).

Equivalence of the extracted answer with the gold answer:

1. **units** are split off first: a ``\\text{}`` / ``\\mbox{}`` / ``\\mathrm{}`` word after the value, or a plain
   word of two or more letters after a space (``18 dollars``), with an optional exponent (``\\mbox{ inches}^3``).
   When both sides state a unit, unit and exponent must agree; a bare number may omit the unit. A single letter
   glued to a number is algebra, not a unit (``2x``, ``2k``, ``29i`` keep their letter);
2. **numeral bases** (``52_8``, ``4210_{5}``): equal only with the same base and the same value; never equal to a
   number without a base (except base 10);
3. the fallback normaliser (strip ``$``, ``\\left``/``\\right``, spaces, thousands separators, ``dfrac``→``frac``,
   degree and percent signs, trailing full stops) makes both strings equal → ``True``;
4. both read as numbers (integers, decimals, ``a/b``, ``\\frac{a}{b}``) → integers exactly, others within
   ``1e-6`` absolute (a decimal rounded to 6 places equals the fraction);
5. ``math-verify`` (sympy) on ``\\boxed{gold}`` and ``\\boxed{answer}``. A gold answer that neither the normaliser
   nor math-verify can read gives ``None`` ("could not verify"), never ``False``.

**Time bounds, wherever this runs** (main thread, threads, processes): math-verify runs in worker processes
(``negrl.verifiers.math_verify_worker``) that are killed when ``MV_DEADLINE_S`` passes — sympy holds the GIL, so
only a process can be stopped — and inputs that would make it compute for ever are refused before it sees them
(exponent towers such as ``9^{9^{9^{9}}}``, exponents or factorials above ``MAX_EXPONENT``, literals longer than
``MAX_LITERAL_DIGITS`` digits; inputs longer than ``MAX_ANSWER_CHARS``). Either way the verdict is ``None``
("could not verify in time"), never a pass and never a negative.
"""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from fractions import Fraction

from negrl.records import Problem, Verdict


MAX_ANSWER_CHARS = 400
MV_TIMEOUT_S = 5  # math-verify's own (inner) timeout, in its worker's main thread
MV_DEADLINE_S = 10.0  # the worker is killed past this
MV_MAX_WORKERS = 4
MAX_EXPONENT = 10_000
MAX_LITERAL_DIGITS = 300

_ANSWER_LINE_RE = re.compile(r"Answer\s*:\s*(.+)", re.IGNORECASE)
_HASH_RE = re.compile(r"####\s*(.+)")
_ANSWER_IS_RE = re.compile(r"answer is\s*:?\s*(.+)", re.IGNORECASE)
_THOUSANDS_RE = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")


def _boxes(text: str) -> list[str]:
    """Contents of every complete ``\\boxed{...}`` / ``\\fbox{...}`` (balanced braces), in order; one pass over the
    text (an unbalanced box, cut off by the token limit, is skipped)."""
    closing: dict[int, int] = {}  # index of "{" -> index of its "}"
    stack: list[int] = []
    for i, ch in enumerate(text):
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            closing[stack.pop()] = i
    out = []
    for m in re.finditer(r"\\(?:boxed|fbox)(?:\s*(\{)|\s+([^\s{}$]+))?", text):
        if m.group(1):
            j = closing.get(m.end() - 1)
            if j is not None:
                out.append(text[m.end() : j])
        elif m.group(2):  # "\boxed 5"
            out.append(m.group(2))
    return out


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` / ``\\fbox{...}``, or ``None``."""
    boxes = _boxes(text)
    return boxes[-1] if boxes else None


_STOP_WORDS_RE = re.compile(r"\s+(?:because|since|as|so|which|where)\b", re.IGNORECASE)


def _clean(ans: str) -> str:
    """A stated answer up to the end of its line or sentence, or a comma / semicolon outside brackets and ``$``."""
    ans = ans.strip().split("\n", 1)[0].strip()
    depth, in_math = 0, False
    for i, ch in enumerate(ans):
        nxt = ans[i + 1] if i + 1 < len(ans) else " "
        if ch == "$":
            in_math = not in_math
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth = max(0, depth - 1)
        elif depth == 0 and not in_math and ch in ",;." and nxt.isspace():
            ans = ans[:i]
            break
    m = _STOP_WORDS_RE.search(ans)
    if m and not in_math:
        ans = ans[: m.start()]
    return ans.rstrip(".").strip().strip("$").strip()


def extract_answer(completion: str) -> str | None:
    """The final answer stated in ``completion`` (see the module docstring for the order), or ``None``."""
    boxed = [b.strip() for b in _boxes(completion) if b.strip()]
    if boxed:
        return boxed[-1]
    for pattern in (_HASH_RE, _ANSWER_LINE_RE, _ANSWER_IS_RE):
        for ans in reversed(pattern.findall(completion)):
            inner = [b for b in _boxes(ans) if b.strip()]
            ans = _clean(inner[-1] if inner else ans)
            if ans:
                return ans
    return None


def _pre(ans: str) -> str:
    """Outer box, ``$`` and TeX spacing removed (before units are split off)."""
    s = ans.strip()
    inner = last_boxed(s)
    if inner is not None:
        s = inner
    s = s.replace("\\!", "").replace("\\,", " ").replace("\\;", " ").replace("\\ ", " ").replace("~", " ")
    return s.replace("\\$", "").replace("$", "").strip().rstrip(".").strip()


_UNIT_TEX_RE = re.compile(
    r"^(?P<value>.*?)\s*\\(?:text|textrm|textbf|mathrm|mbox|operatorname)\s*\{\s*(?P<unit>[A-Za-z][A-Za-z .]*?)\s*\}"
    r"\s*(?:\^\s*\{?\s*(?P<exp>\d+)\s*\}?)?$"
)
_UNIT_WORD_RE = re.compile(r"^(?P<value>\S*\d\S*?)\s+(?P<unit>[A-Za-z]{2,}(?: [A-Za-z]+)*)\s*(?:\^\s*\{?\s*(?P<exp>\d+)\s*\}?)?$")


def split_unit(ans: str) -> tuple[str, str | None, str | None]:
    """``(value, unit, exponent)``: ``"864 \\mbox{ inches}^3"`` → ``("864", "inches", "3")``; no unit → ``(ans, None, None)``.

    The value must read as a number (digits and TeX commands, no letters): ``\\text{Evelyn}`` and ``2x`` have no unit.
    """
    s = _pre(ans)
    for rx in (_UNIT_TEX_RE, _UNIT_WORD_RE):
        m = rx.match(s)
        if m:
            bare = re.sub(r"\\[A-Za-z]+", "", m.group("value"))
            if re.search(r"\d", bare) and not re.search(r"[A-Za-z]", bare):
                return m.group("value").strip(), m.group("unit").strip(" .").lower(), m.group("exp") or "1"
    return s, None, None


def _same_unit(a: str, b: str) -> bool:
    """Singular and plural spellings agree (``inch`` / ``inches``, ``cent`` / ``cents``)."""

    def forms(u: str) -> set[str]:
        return {u, re.sub(r"s$", "", u), re.sub(r"es$", "", u)}

    return bool(forms(a) & forms(b))


_BASE_RE = re.compile(r"([0-9A-Za-z]+)_\{?\(?(\d+)\)?\}?")


def base_number(s: str) -> tuple[int, int | str] | None:
    """A numeral with a base subscript (normalised text ``52_8``, ``4210_{5}``) → ``(base, value)``; else ``None``.

    Digits invalid for the base are kept as text (equal only to the same text)."""
    m = _BASE_RE.fullmatch(s)
    if not m or not (re.search(r"\d", m.group(1)) or int(m.group(2)) > 10):
        return None
    digits, base = m.group(1), int(m.group(2))
    try:
        return base, int(digits, base) if 2 <= base <= 36 else digits.lower()
    except ValueError:
        return base, digits.lower()


def normalize(ans: str) -> str:
    """Canonical string form of an answer's value (its unit dropped: see ``split_unit``), for the fallback
    comparison and for majority votes."""
    s = split_unit(ans)[0]
    s = re.sub(r"\\(?:text|textbf|mathrm|mbox)\{\s*([^{}]*?)\s*\}", r"\1", s)
    s = re.sub(r"\\(left|right)\s*", "", s)
    s = s.replace("dfrac", "frac").replace("tfrac", "frac").replace("^\\circ", "").replace("^{\\circ}", "")
    s = s.replace("\\%", "").replace("%", "")
    s = re.sub(r"\s+", " ", s).strip().rstrip(".").strip()
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


def _exponent_at(s: str, i: int) -> tuple[str, int]:
    """The exponent starting at ``s[i]`` (a braced group, a TeX command or one token) and the index after it."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i < len(s) and s[i] == "{":
        depth = 0
        for j in range(i, len(s)):
            depth += (s[j] == "{") - (s[j] == "}")
            if depth == 0:
                return s[i + 1 : j], j + 1
        return s[i + 1 :], len(s)
    m = re.compile(r"\\[A-Za-z]+|-?\d+|.").match(s, i)
    return (m.group(0), m.end()) if m else ("", i)


def too_costly(s: str) -> bool:
    """Would sympy compute (nearly) for ever on ``s``? Exponent towers, huge exponents, factorials or literals."""
    if re.search(rf"\d{{{MAX_LITERAL_DIGITS + 1},}}", s):
        return True
    if any(int(m.group(1)) > MAX_EXPONENT for m in re.finditer(r"(\d+)\s*!", s)):
        return True
    for m in re.finditer(r"\^|\*\*", s):
        exp, end = _exponent_at(s, m.end())
        if "^" in exp or "**" in exp or re.match(r"\s*(\^|\*\*)", s[end:]):  # a tower: a^{b^c}, a^b^c
            return True
        num = re.fullmatch(r"\s*-?\s*(\d+)\s*", exp)
        if num and int(num.group(1)) > MAX_EXPONENT:
            return True
    return False


class NoTimeToVerify(Exception):
    """math-verify could not be run, or did not finish, within its deadline."""


class _MathVerifyPool:
    """Worker processes running ``math_verify_worker.py``; one request at a time each, killed past the deadline.

    Fork-safe: a forked child (e.g. a process pool) starts its own workers instead of sharing its parent's pipes;
    a worker that fails to start is retried after 30 s (meanwhile: "could not verify").
    """

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)  # a lock held by another thread at fork would stay held

    def reset(self) -> None:
        """A fresh, empty pool (in a forked child: the parent's workers and lock are the parent's)."""
        self.cond = threading.Condition()
        self.idle: list[subprocess.Popen] = []
        self.count = 0
        self.retry_at = 0.0  # after a worker failed to start, do not retry on every call

    def _acquire(self) -> subprocess.Popen | None:
        with self.cond:
            if time.monotonic() < self.retry_at:
                return None
            while not self.idle and self.count >= MV_MAX_WORKERS:
                self.cond.wait()
            if self.idle:
                return self.idle.pop()
            self.count += 1
        worker = self._start()
        if worker is None:
            self.retry_at = time.monotonic() + 30.0
            self._release(None)
        return worker

    def _release(self, worker: subprocess.Popen | None) -> None:
        with self.cond:
            if worker is None:
                self.count -= 1
            else:
                self.idle.append(worker)
            self.cond.notify()

    @staticmethod
    def _start() -> subprocess.Popen | None:
        worker_py = os.path.join(os.path.dirname(os.path.abspath(__file__)), "math_verify_worker.py")
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
        try:
            proc = subprocess.Popen([sys.executable, worker_py], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, env=env, cwd="/")  # fmt: skip
        except OSError:
            return None
        proc.buffer = b""  # type: ignore[attr-defined]  # bytes read past the last reply
        if _read_line(proc, time.monotonic() + 120.0) is None:  # importing sympy: slow on a loaded machine
            _kill(proc)
            return None
        return proc

    def judge(self, gold: str, answer: str) -> bool | None:
        """math-verify's verdict (``None``: the gold could not be parsed); raises ``NoTimeToVerify``."""
        worker = self._acquire()
        if worker is None:
            raise NoTimeToVerify("the math-verify worker could not be started")
        line = None
        try:
            worker.stdin.write((json.dumps({"gold": gold, "answer": answer, "timeout_s": MV_TIMEOUT_S}) + "\n").encode())
            worker.stdin.flush()
            line = _read_line(worker, time.monotonic() + MV_DEADLINE_S)
        except OSError:
            line = None
        if line is None:  # past the deadline or dead: kill it, the next call starts a fresh one
            _kill(worker)
            self._release(None)
            raise NoTimeToVerify(f"math-verify did not finish within {MV_DEADLINE_S:g} s")
        self._release(worker)
        try:
            reply = json.loads(line)
            result, timed_out = reply["result"], reply["timed_out"]
        except (ValueError, KeyError, TypeError):
            raise NoTimeToVerify("malformed reply from the math-verify worker") from None
        if timed_out:
            raise NoTimeToVerify(f"math-verify ran into its {MV_TIMEOUT_S} s timeout")
        return result if isinstance(result, bool) else None


def _read_line(proc: subprocess.Popen, deadline: float) -> bytes | None:
    fd = proc.stdout.fileno()
    while b"\n" not in proc.buffer:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            return None
        proc.buffer += chunk
    line, proc.buffer = proc.buffer.split(b"\n", 1)
    return line


def _kill(proc: subprocess.Popen) -> None:
    try:
        proc.send_signal(signal.SIGKILL)
    except OSError:
        pass
    proc.wait()


_POOL = _MathVerifyPool()


def _math_verify(gold: str, answer: str) -> bool | None:
    """``math-verify`` equivalence in a worker process; ``None`` if the gold cannot be parsed; raises
    ``NoTimeToVerify`` for an input refused as too costly or past the deadline."""
    if too_costly(gold) or too_costly(answer):
        raise NoTimeToVerify("refused before math-verify: an exponent tower or a giant number")
    return _POOL.judge(gold, answer)


def _balanced(s: str) -> bool:
    depth = 0
    for ch in s:
        depth += (ch == "{") - (ch == "}")
        if depth < 0:
            return False
    return depth == 0


def answers_equivalent(gold: str, answer: str) -> bool | None:
    """Is ``answer`` equivalent to ``gold``? ``None`` when the gold cannot be read or there was no time to decide."""
    return judge_answer(gold, answer)[0]


def judge_answer(gold: str, answer: str) -> tuple[bool | None, str]:
    """``(equivalent, why)``: ``why`` explains a ``None`` (empty otherwise)."""
    unreadable = (None, "gold answer could not be parsed")
    if len(gold) > MAX_ANSWER_CHARS or not _balanced(gold):
        return unreadable
    if len(answer) > MAX_ANSWER_CHARS:
        return False, f"answer longer than {MAX_ANSWER_CHARS} characters"
    gold_value, gold_unit, gold_exp = split_unit(gold)
    value, unit, exp = split_unit(answer)
    if gold_unit and unit and (not _same_unit(gold_unit, unit) or gold_exp != exp):
        return False, "different units"  # 864 inches^3 is not 864 inches^2
    g, a = normalize(gold_value), normalize(value)
    if not g:
        return unreadable
    gb, ab = base_number(g), base_number(a)
    if gb is not None or ab is not None:  # 52_8 is neither 52_9 nor 52
        plain = lambda s: (10, int(s)) if re.fullmatch(r"-?\d+", s) else None  # noqa: E731
        return (gb or plain(g)) == (ab or plain(a)) and (gb or plain(g)) is not None, ""
    if g == a:
        return True, ""
    gn, an = to_number(g), to_number(a)
    if gn is not None and an is not None:
        if isinstance(gn, Fraction) and isinstance(an, Fraction) and gn.denominator == an.denominator == 1:
            return gn == an, ""  # integers: exact (a relative tolerance would accept 1450001 for 1450000)
        return abs(float(gn) - float(an)) <= 1e-6 + 1e-9 * abs(float(gn)), ""  # rounded decimals (1/3 ≈ 0.333333)
    try:
        result = _math_verify(gold_value, value)
    except NoTimeToVerify as e:
        return None, f"could not verify in time: {e}"  # never a pass, never a negative
    if result is None and gn is not None:
        return False, ""  # a numeric gold is always readable: an answer math-verify could not handle is wrong
    return result, ("" if result is not None else unreadable[1])


def verify(problem: Problem, completion: str) -> Verdict:
    """Final-answer check of a math problem (the verifier of the ``math`` domain)."""
    extracted = extract_answer(completion)
    if problem.answer is None or not problem.answer.strip():
        return Verdict(rollout_id="", correct=None, extracted=extracted, detail="no gold answer", verifier="math")
    if extracted is None:
        return Verdict(rollout_id="", correct=False, extracted=None, detail="no final answer found", verifier="math")
    correct, detail = judge_answer(problem.answer, extracted)
    return Verdict(rollout_id="", correct=correct, extracted=extracted, detail=detail, verifier="math")
