"""The code verifier (HumanEval / MBPP style): run the completion in the sandbox, the problem's tests in its judge.

The completion (``meta["code_prefix"]`` + the completion's code) runs in the sandbox's worker; the test code runs
in a separate judge process (``negrl.verifiers.code_harness``) in which the solution's names are proxies whose
results come back as data, so nothing the program does in its own interpreter can make a test pass (see
``negrl.verifiers.sandbox`` for the isolation). Test cases come from ``problem.meta["test_cases"]`` (one statement
each, e.g. MBPP's asserts), run after ``problem.meta["test_setup"]``; without them ``problem.tests`` is one case
(HumanEval's ``check(candidate)``). HumanEval's prompt (``code_prefix``) also runs in the judge, so the helpers it
defines (e.g. ``poly``) are the problem's own, not the program's.

Verdicts: ``True`` iff every case passes; ``False`` for a failing case, an exception, an early exit, a crash, the
program's own time or CPU running out; ``None`` ("could not verify") when the sandbox could not start or the
machine was too loaded to finish within ``load_factor * wall_s`` seconds.
"""

from __future__ import annotations

import re

from negrl.records import Problem, Verdict
from negrl.verifiers.sandbox import SandboxLimits, SandboxResult, run_judged


_FENCE_RE = re.compile(r"```(?:python|py|Python3?|)?[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code(completion: str) -> str:
    """The code in a completion: the first fenced block when there is one (chat models), else the raw text.

    A block that is cut off by the token limit (no closing fence) is still taken.
    """
    m = _FENCE_RE.search(completion)
    return m.group(1) if m else completion


def build_program(problem: Problem, completion: str) -> tuple[str, str, list[str]]:
    """``(solution, setup, cases)`` for a problem and a completion.

    The solution is ``meta["code_prefix"]`` (HumanEval: the prompt with the signature and docstring) followed by the
    completion's code. If the completion re-defines ``meta["entry_point"]`` in full, it is appended after the prefix
    (the prefix's function, a docstring only, stays valid and is overridden).
    """
    meta = problem.meta
    code = extract_code(completion)
    prefix = meta.get("code_prefix", "") or ""
    entry = meta.get("entry_point")
    if prefix and entry and re.search(rf"^def\s+{re.escape(entry)}\s*\(", code, re.MULTILINE):
        body = "    pass\n" if prefix.rstrip().endswith(":") else ""  # a bare signature needs a body
        solution = prefix.rstrip("\n") + "\n" + body + "\n" + code
    else:
        solution = prefix + code
    if "test_cases" in meta:
        cases = list(meta["test_cases"])
        setup = meta.get("test_setup", "") or ""
    else:
        if not problem.tests:
            raise ValueError(f"code problem {problem.problem_id!r} has neither tests nor meta['test_cases']")
        setup, cases = "", [problem.tests]
    return solution, setup, cases


def run_tests(
    problem: Problem, completion: str, limits: SandboxLimits | None = None, python_guard: bool = True
) -> tuple[dict | None, SandboxResult]:
    """Run the completion against the problem's tests: ``(report, result)``.

    ``report`` is the judge's ``{"passed", "total", "error", "verdict"}``, or ``None`` if it never reported.
    """
    solution, setup, cases = build_program(problem, completion)
    prefix = problem.meta.get("code_prefix", "") or ""
    result = run_judged(solution, prefix, problem.meta.get("entry_point"), setup, cases, limits=limits,
                        python_guard=python_guard)  # fmt: skip
    return result.report, result


def verify(problem: Problem, completion: str, limits: SandboxLimits | None = None) -> Verdict:
    """The judge's verdict; ``detail`` is ``"p/t tests passed"`` plus the first error, or why it could not verify."""
    try:
        report, result = run_tests(problem, completion, limits=limits)
    except OSError as e:  # the sandbox itself failed (not the program): could not verify
        return Verdict(rollout_id="", correct=None, detail=f"sandbox error: {e}", verifier="code")
    if report is None or "verdict" not in report:
        why = (report or {}).get("sandbox_error") or (
            "the sandbox did not finish in time" if result.timed_out else f"exit code {result.returncode}")
        return Verdict(rollout_id="", correct=None, detail=f"could not verify: {why}", verifier="code")
    detail = f"{report['passed']}/{report['total']} tests passed" + (f"; {report['error']}" if report["error"] else "")
    return Verdict(rollout_id="", correct=report["verdict"], detail=detail, verifier="code")
