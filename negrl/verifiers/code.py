"""The code verifier (HumanEval / MBPP style): run the completion plus the problem's tests in the sandbox.

The program sent to the sandbox (``negrl.verifiers.sandbox``) is a small harness:

1. it reads a random **nonce** from stdin (the nonce never appears in the script), prints
   ``NEGRL_STARTED <nonce>`` (without it the sandbox failed to start: ``correct=None``) and closes stdin;
2. it deletes its own script file and installs the audit-hook guard (no sockets, subprocesses, signals,
   ``ctypes``, or writes outside its directory);
3. it ``exec``\\ s the solution (as module ``__solution__``, so ``if __name__ == "__main__":`` demo blocks do not
   run), then each test case separately, counting passes (``SystemExit`` and every other exception in the
   solution or a test are caught: an early ``sys.exit(0)`` just means the tests fail);
4. only after the last test it writes ``NEGRL_DONE <nonce> {"passed": p, "total": t, "error": ...}`` straight to
   file descriptor 1 and leaves with ``os._exit`` (no ``atexit`` handler of the solution runs afterwards).

A rollout is correct iff that line with the right nonce arrives and ``passed == total``. A program that exits
early (``os._exit(0)``), kills its parent, crashes the interpreter or times out never prints the nonce, so it
fails. Test cases come from ``problem.meta["test_cases"]`` (one statement each, e.g. MBPP's asserts), run after
``problem.meta["test_setup"]``; without them ``problem.tests`` is one case (HumanEval's ``check(candidate)``).
"""

from __future__ import annotations

import json
import re
import secrets

from negrl.records import Problem, Verdict
from negrl.verifiers.sandbox import SandboxLimits, SandboxResult, run_python


DONE_MARK = "NEGRL_DONE"
STARTED_MARK = "NEGRL_STARTED"

# Installed before any untrusted code runs; `sys.addaudithook` hooks cannot be removed from Python.
GUARD = r'''
def _negrl_guard(cwd, harness):
    import os, sys
    blocked = ("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
               "os.forkpty", "os.kill", "os.killpg", "os.setuid", "os.setgid", "pty.", "ctypes.", "resource.setrlimit",
               "gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys._current_frames", "webbrowser.",
               "urllib.", "http.", "ftplib.", "smtplib.", "telnetlib.", "poplib.", "imaplib.", "nntplib.")
    mutating = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.link", "os.symlink",
                "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move"}
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    realpath, fspath, sep = os.path.realpath, os.fspath, os.sep

    def inside(path):
        try:
            p = realpath(fspath(path))
        except Exception:
            return False
        if isinstance(p, bytes):
            p = p.decode(errors="replace")
        return p == cwd or p.startswith(cwd + sep)

    def hook(event, args):
        if event == "open":
            path, mode, flags = args
            if isinstance(path, int):
                return
            if realpath(fspath(path)) == harness:
                raise PermissionError("sandbox: the harness file is off limits")
            writing = (isinstance(flags, int) and flags & write_flags) or (mode and any(c in mode for c in "wax+"))
            if writing and not inside(path):
                raise PermissionError(f"sandbox: writing outside the working directory is not allowed: {path!r}")
        elif event in mutating:
            for a in args:
                if isinstance(a, (str, bytes)) or hasattr(a, "__fspath__"):
                    if not inside(a):
                        raise PermissionError(f"sandbox: {event} outside the working directory is not allowed")
        elif event.startswith(blocked):
            raise PermissionError(f"sandbox: {event} is not allowed")

    sys.addaudithook(hook)
'''

HARNESS = r'''
import os as _negrl_os, sys as _negrl_sys
{guard}
def _negrl_main(solution, setup, cases, use_guard):
    os, sys, json = _negrl_os, _negrl_sys, __import__("json")
    nonce = sys.stdin.readline().strip()
    os.write(1, ("{started} " + nonce + "\n").encode())
    sys.stdin.close()
    try:
        os.close(0)
    except OSError:
        pass
    write, exit_now = os.write, os._exit
    cwd, harness = os.path.realpath(os.getcwd()), os.path.realpath(__file__)
    os.remove(harness)
    if use_guard:
        _negrl_guard(cwd, harness)
    import builtins
    scope = {{"__name__": "__solution__", "__builtins__": builtins}}  # `if __name__ == "__main__":` blocks do not run
    passed, error = 0, None

    def run(src, name):
        exec(compile(src, name, "exec"), scope)

    def describe(e):
        return (type(e).__name__ + (": " + str(e) if str(e) else ""))[:300]

    try:
        run(solution, "<solution>")
    except BaseException as e:
        error = "solution: " + describe(e)
    if error is None and setup:
        try:
            run(setup, "<test setup>")
        except BaseException as e:
            error = "test setup: " + describe(e)
    if error is None:
        for i, case in enumerate(cases):
            try:
                run(case, "<test %d>" % i)
                passed += 1
            except BaseException as e:
                error = "test %d: %s" % (i, describe(e))
    report = json.dumps({{"passed": passed, "total": len(cases), "error": error}})
    try:
        sys.stdout.flush()
    except BaseException:
        pass
    write(1, ("\n{mark} " + nonce + " " + report + "\n").encode())
    exit_now(0)


_negrl_main({solution!r}, {setup!r}, {cases!r}, {use_guard!r})
'''

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
    """Run the harness and parse its report.

    Returns ``(report, result)``: ``report`` is ``{"passed", "total", "error"}``, or ``None`` if no report with the
    right nonce arrived. Raises ``OSError`` when the interpreter never started (a sandbox failure, not the program's).
    """
    solution, setup, cases = build_program(problem, completion)
    nonce = secrets.token_hex(16)
    program = HARNESS.format(guard=GUARD, mark=DONE_MARK, started=STARTED_MARK, solution=solution, setup=setup, cases=cases,
                             use_guard=python_guard)  # fmt: skip
    result = run_python(program, limits=limits, stdin=nonce + "\n")
    if f"{STARTED_MARK} {nonce}" not in result.stdout_head:
        raise OSError(f"the sandboxed interpreter did not start: {_last_error_line(result) or result.returncode}")
    report = None
    for line in reversed(result.stdout.splitlines()):
        if line.startswith(f"{DONE_MARK} {nonce} "):
            try:
                report = json.loads(line[len(DONE_MARK) + len(nonce) + 2 :])
            except json.JSONDecodeError:
                report = None
            break
    return report, result


def _last_error_line(result: SandboxResult) -> str:
    lines = [ln.strip() for ln in result.stderr.splitlines() if ln.strip()]
    return lines[-1][:300] if lines else ""


def verify(problem: Problem, completion: str, limits: SandboxLimits | None = None) -> Verdict:
    """Correct iff every test case passes inside the sandbox and the harness reports with the right nonce.

    ``detail`` is ``"p/t tests passed"`` plus the last error; a sandbox that cannot start gives ``correct=None``.
    """
    try:
        report, result = run_tests(problem, completion, limits=limits)
    except OSError as e:  # the sandbox itself failed (not the program): could not verify
        return Verdict(rollout_id="", correct=None, detail=f"sandbox error: {e}", verifier="code")
    if report is None:
        why = "timeout" if result.timed_out else f"exit code {result.returncode}"
        err = _last_error_line(result)
        detail = f"no test report ({why}; early exit, crash or tampering)" + (f"; {err}" if err else "")
        return Verdict(rollout_id="", correct=False, detail=detail, verifier="code")
    passed, total = int(report["passed"]), int(report["total"])
    detail = f"{passed}/{total} tests passed" + (f"; {report['error']}" if report.get("error") else "")
    return Verdict(rollout_id="", correct=passed == total and total > 0, detail=detail, verifier="code")
