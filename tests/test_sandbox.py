"""Adversarial tests of the code sandbox: each attack is contained, reported as a failure, and the host unaffected.

Attacks that an OS layer must stop on its own (fork bomb, memory bomb, network, reading the parent's secrets) are
also run with the Python audit-hook guard switched off.
"""

from __future__ import annotations

import os
import socket
import textwrap
import threading

import pytest

from negrl.records import Problem
from negrl.verifiers import verify as verify_any
from negrl.verifiers.code import run_tests, verify
from negrl.verifiers.sandbox import SandboxLimits, run_python, sandbox_isolation


QUICK = SandboxLimits(wall_s=5.0, cpu_s=4, memory_mb=512, max_processes=16)


def _problem(cases: list[str] | None = None) -> Problem:
    return Problem(
        problem_id="sb", domain="code", prompt="", meta={"test_cases": cases or ["assert add(1, 2) == 3"]}
    )


def _run(code: str, guard: bool = True, limits: SandboxLimits = QUICK) -> tuple[dict | None, object]:
    return run_tests(_problem(), textwrap.dedent(code), limits=limits, python_guard=guard)


GOOD = "def add(a, b):\n    return a + b\n"


def test_honest_solution_passes_and_wrong_one_fails() -> None:
    assert verify_any(_problem(), GOOD).correct is True  # dispatched on domain='code'
    v = verify(_problem(["assert add(1, 2) == 3", "assert add(2, 2) == 5"]), GOOD)
    assert v.correct is False and v.detail.startswith("1/2 tests passed") and "AssertionError" in v.detail
    # A demo block that reads stdin does not run (the solution is not __main__), fenced chat answers are unwrapped.
    chat = "Here you go:\n```python\n" + GOOD + "if __name__ == '__main__':\n    print(add(int(input()), 1))\n```\n"
    assert verify(_problem(), chat).correct is True


def test_infinite_loop_is_killed_at_the_wall_clock_limit() -> None:
    report, result = _run(GOOD + "while True:\n    pass\n", limits=SandboxLimits(wall_s=2.0, cpu_s=30))
    assert report is None and result.timed_out
    assert verify(_problem(), GOOD + "while True:\n    pass\n", limits=SandboxLimits(wall_s=2.0)).correct is False


@pytest.mark.slow  # ~1 CPU second takes up to ~10 s of wall time on a loaded machine
def test_cpu_limit_kills_a_busy_loop_before_the_wall_clock() -> None:
    report, result = _run(GOOD + "while True:\n    pass\n", limits=SandboxLimits(wall_s=60.0, cpu_s=1))
    assert report is None and not result.timed_out and result.returncode != 0


@pytest.mark.parametrize("guard", [True, False])
def test_fork_bomb_is_contained(guard: bool) -> None:
    bomb = GOOD + "import os\nwhile True:\n    os.fork()\n"
    limits = SandboxLimits(wall_s=5.0, max_processes=8)
    report, result = _run(bomb, guard=guard, limits=limits)
    # Every copy dies on the process cap (or the guard) before reaching the tests: nothing passes.
    assert report is None or (report["passed"] == 0 and "solution" in report["error"])
    assert verify(_problem(), bomb, limits=limits).correct is False


@pytest.mark.parametrize("guard", [True, False])
def test_memory_bomb_hits_the_memory_cap(guard: bool) -> None:
    bomb = GOOD + "blob = bytearray(2 * 1024**3)\n"
    report, result = _run(bomb, guard=guard, limits=SandboxLimits(wall_s=10.0, memory_mb=256))
    assert report is not None and report["passed"] == 0 and "MemoryError" in report["error"]
    assert verify(_problem(), bomb, limits=SandboxLimits(memory_mb=256)).correct is False


def test_write_outside_the_working_directory_is_refused(tmp_path) -> None:
    target = tmp_path / "pwned.txt"
    tmp_target = f"/tmp/negrl_pwned_{os.getpid()}.txt"
    code = GOOD + textwrap.dedent(
        f"""
        for p in [{str(target)!r}, {tmp_target!r}]:
            with open(p, "w") as f:
                f.write("pwned")
        """
    )
    v = verify(_problem(), code, limits=QUICK)
    assert v.correct is False and "PermissionError" in v.detail
    assert not target.exists() and not os.path.exists(tmp_target)
    # Writing inside the throwaway working directory is fine.
    ok = GOOD + "open('scratch.txt', 'w').write('x')\nassert open('scratch.txt').read() == 'x'\n"
    assert verify(_problem(), ok, limits=QUICK).correct is True


@pytest.mark.parametrize("guard", [True, False])
def test_network_socket_cannot_reach_the_host(guard: bool) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(1)
    port = server.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        try:
            accepted.append(server.accept())
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    code = GOOD + f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'leak')\n"
    try:
        if not guard and sandbox_isolation() == "none":
            pytest.skip("no network namespace available: only the audit-hook guard blocks sockets here")
        report, _ = _run(code, guard=guard)
        assert report is not None and report["passed"] == 0 and "solution" in report["error"]
    finally:
        t.join()
        server.close()
    assert accepted == []


@pytest.mark.parametrize("guard", [True, False])
def test_parent_environment_secrets_are_not_visible(monkeypatch, guard: bool) -> None:
    monkeypatch.setenv("NEGRL_FAKE_SECRET", "hunter2-do-not-leak")
    code = GOOD + textwrap.dedent(
        f"""
        import os
        found = os.environ.get("NEGRL_FAKE_SECRET", "")
        try:
            found += open("/proc/{os.getpid()}/environ", "rb").read().decode(errors="replace")
        except OSError:
            pass
        print(found)
        assert "hunter2" in found
        """
    )
    report, result = _run(code, guard=guard)
    assert report is not None and report["passed"] == 0
    assert "hunter2" not in result.stdout + result.stderr
    assert verify(_problem(), code, limits=QUICK).correct is False


def test_early_exit_does_not_count_as_a_pass() -> None:
    for code in ["import sys\nsys.exit(0)\n" + GOOD, "import os\nos._exit(0)\n" + GOOD, GOOD + "raise SystemExit(0)\n"]:
        v = verify(_problem(), code, limits=QUICK)
        assert v.correct is False, (code, v.detail)
    # Exiting from inside a test case instead of failing it.
    v = verify(_problem(["import os; os._exit(0)", "assert add(1, 2) == 3"]), GOOD, limits=QUICK)
    assert v.correct is False


def test_killing_the_parent_is_contained() -> None:
    parent = os.getpid()
    code = GOOD + textwrap.dedent(
        f"""
        import os, signal
        for pid in [os.getppid(), {parent}, 1]:
            try:
                os.kill(pid, signal.SIGKILL)
            except Exception:
                pass
        os._exit(0)
        """
    )
    v = verify(_problem(), code, limits=QUICK)
    assert v.correct is False
    assert os.getpid() == parent  # we are still alive


def test_forged_report_without_the_nonce_is_rejected() -> None:
    code = "import os\nos.write(1, b'\\nNEGRL_DONE 0000 {\"passed\": 1, \"total\": 1, \"error\": null}\\n')\nos._exit(0)\n"
    assert verify(_problem(), code, limits=QUICK).correct is False


def test_run_python_reports_output_and_isolation() -> None:
    result = run_python("import os\nprint('hi', os.getcwd().startswith('/') )\n", limits=QUICK)
    assert result.returncode == 0 and result.stdout.strip() == "hi True"
    assert result.isolation == sandbox_isolation()


def test_output_flood_is_bounded() -> None:
    flood = GOOD + "while True:\n    print('x' * 100_000)\n"
    limits = SandboxLimits(wall_s=5.0, max_file_mb=4, max_output_chars=1000)
    report, result = _run(flood, limits=limits)
    assert report is None and len(result.stdout) <= 1000  # killed at the file-size cap; only the tail is kept
    assert verify(_problem(), flood, limits=limits).correct is False


def test_without_namespaces_the_guard_still_blocks_the_network() -> None:
    from negrl.verifiers.code import GUARD

    result = run_python(GUARD + "\nimport os\n_negrl_guard(os.getcwd(), '')\nimport socket\nsocket.socket()\n",
                        limits=QUICK, isolation="none")  # fmt: skip
    assert result.returncode != 0 and "socket.__new__ is not allowed" in result.stderr
