"""Run untrusted Python in a sandbox isolated by the operating system, and test it without trusting it.

**What the operating system enforces** (mode ``"unshare-root"``: running as root with util-linux ``unshare``,
e.g. in a container; ``sandbox_isolation()`` reports the mode in use). Each run gets fresh namespaces:

- *mount*: an empty root (a tmpfs, read-only) holding only, read-only, the interpreter's standard library (its
  ``site-packages`` hidden), the system shared-library directory and ``/dev/{null,zero,random,urandom}``; a
  private, size-limited, writable ``/tmp`` (``SandboxLimits.tmp_mb``) that is the working directory. The host's
  file system is detached (``pivot_root``): no project source, no benchmark files, no answer keys, no ``/etc``,
  no home directories, whatever call (``open``, ``dir_fd``, ``_posixsubprocess``, raw syscalls) the program uses;
- *PID*, with a fresh ``/proc`` (``hidepid``): the program sees only its own processes, never the host's command
  lines or environments; everything it starts dies with the sandbox's first process;
- *network* (no interface but a down loopback), *IPC* and *UTS*;
- *credentials*: the program runs under a throwaway uid (a fresh number per run), no groups, no capabilities,
  ``no_new_privs``; the test judge under another one, so the program cannot signal, trace or read it;
- *rlimits*: CPU seconds, address space, processes (per fresh uid), file size, open files (64), no core dumps;
  output goes to files the file-size limit bounds; the parent kills the process group at a hard deadline.
  Memory is bounded per process (address space, plus at most 64 files of ``max_file_mb`` such as ``memfd``), not
  across processes: no cgroup is created (the host's cgroups belong to whoever runs this);
- *seccomp* (x86_64; ``"unshare-root+seccomp"``): a filter denying the system calls that would widen the kernel
  surface or the program's reach — new namespaces (``unshare``, ``setns``, ``clone`` with namespace flags; ``clone3``
  is refused so libc falls back to ``clone``), ``mount`` and the new mount API, ``chroot``, ``ptrace``,
  ``process_vm_*``, ``bpf``, ``perf_event_open``, ``io_uring``, ``userfaultfd``, keyrings, ``open_by_handle_at``,
  modules, ``kexec``, clocks, ``reboot``, x32 calls. No Landlock ruleset (the empty root leaves it little to deny).
  A kernel exploit remains out of scope: for hostile code at scale put a VM around the whole verifier.

**What the verdict rests on** (``negrl.verifiers.code_harness``): the tests run in a separate *judge* process that
never executes the program's code and receives its results as data; the verdict leaves through a pipe only the
judge holds. No output of the program is read to decide anything.

**What Python hooks add** (defence in depth, not relied on): an audit hook in the program's interpreter refusing
sockets, subprocesses, signals, ``ctypes`` and writes outside its directory.

**Without OS isolation** (``"none"``: not root, or no usable ``unshare``) only the rlimits, the seccomp filter,
the separate judge (same uid, not traceable: ``PR_SET_DUMPABLE`` 0) and the audit hook remain: the host's files
are readable, the network and processes depend on the hook, and a program running as root could still reach the
judge. Tests that need the OS layers skip there, saying so.
"""

from __future__ import annotations

import itertools
import json
import marshal
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path


INIT_SCRIPT = Path(__file__).with_name("sandbox_init.py")
ROLES_SCRIPT = Path(__file__).with_name("code_harness.py")


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one sandboxed run.

    Attributes:
        wall_s: Seconds of the program's own time (waiting for it, minus the time it waited for a CPU) before a
            test run is a timeout; for a plain ``run_python``, wall-clock seconds before it is killed.
        cpu_s: CPU seconds of each of the program's processes (``RLIMIT_CPU``: SIGXCPU, then SIGKILL); in a test
            run also of all of them together (the judge's budget).
        memory_mb: Address-space cap in MiB (``RLIMIT_AS``) of each process.
        max_processes: Process cap (``RLIMIT_NPROC``) of the program's uid.
        max_file_mb: Largest file the program may write (``RLIMIT_FSIZE``; also bounds its stdout / stderr).
        max_output_chars: stdout / stderr kept (each), to bound the parent's memory.
        tmp_mb: Size of the private writable ``/tmp`` (isolated mode).
        load_factor: A test run still unfinished after ``load_factor * wall_s`` seconds of real time (a loaded
            machine: the program's own time has not run out) gives "could not verify".
    """

    wall_s: float = 10.0
    cpu_s: int = 10
    memory_mb: int = 1024
    max_processes: int = 16
    max_file_mb: int = 16
    max_output_chars: int = 100_000
    tmp_mb: int = 64
    load_factor: float = 4.0


@dataclass
class SandboxResult:
    """Outcome of a sandboxed run. ``returncode`` is negative for a signal (``-9`` = killed).

    ``stdout`` / ``stderr`` are the last ``max_output_chars`` of each stream (never used for a verdict);
    ``report`` is what the sandbox's trusted side wrote (``None`` if it wrote nothing).
    """

    returncode: int | None
    stdout: str
    stderr: str
    timed_out: bool
    wall_s: float
    isolation: str
    report: dict | None = None


# Fresh uids per run (as root): rlimits on processes and signal / ptrace permissions are per uid, so concurrent
# sandboxes cannot starve or touch each other, and the program cannot touch its judge. Far above real accounts.
_UID_BASE = 200_000
_uid_counter = itertools.count()
_uid_lock = threading.Lock()


def _next_uids() -> tuple[int, int]:
    with _uid_lock:
        n = next(_uid_counter) % 500
    base = _UID_BASE + (os.getpid() % 1000) * 1000 + 2 * n
    return base, base + 1


def _prefix(isolation: str) -> list[str]:
    if isolation == "none":
        return []
    return [shutil.which("unshare") or "unshare", "--mount", "--pid", "--net", "--ipc", "--uts", "--fork",
            "--kill-child", "--"]  # fmt: skip


def _interpreter() -> str:
    """The base interpreter (a venv's ``python`` is a symlink; its standard library is the base one)."""
    return os.path.realpath(getattr(sys, "_base_executable", "") or sys.executable)


@lru_cache(maxsize=1)
def _root_layout() -> tuple[list[str], list[str]]:
    """``(binds, hidden)``: host paths bound read-only into the empty root, and directories hidden inside them."""
    stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
    binds = [stdlib]
    libc_dirs = set()
    with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
        for line in f:
            path = line.split(maxsplit=5)[-1].strip() if line.count(" ") >= 5 else ""
            name = os.path.basename(path)
            if name.startswith(("libc.so", "libc-", "libm.so")):
                libc_dirs.add(os.path.dirname(os.path.realpath(path)))
    binds += sorted(libc_dirs)  # where the system's shared libraries are (extension modules load them lazily)
    hidden = [os.path.join(stdlib, "site-packages"), os.path.join(stdlib, "dist-packages")]
    return binds, hidden


@lru_cache(maxsize=1)
def _roles_code() -> bytes:
    """``code_harness.py`` compiled once, marshalled (the sandbox runs the base interpreter of this one)."""
    return marshal.dumps(compile(ROLES_SCRIPT.read_text(encoding="utf-8"), str(ROLES_SCRIPT), "exec"))


def _limits_dict(limits: SandboxLimits) -> dict:
    return {"memory_mb": limits.memory_mb, "cpu_s": limits.cpu_s, "max_file_mb": limits.max_file_mb,
            "max_processes": limits.max_processes}  # fmt: skip


def _launch(worker: dict, judge: dict | None, limits: SandboxLimits, isolation: str, hard_wall_s: float) -> SandboxResult:
    """Start ``sandbox_init.py`` (in fresh namespaces unless ``isolation == "none"``) and collect its report."""
    # Throwaway uids only inside the empty root: without it the interpreter may live where they cannot read.
    worker_uid, judge_uid = _next_uids() if isolation != "none" else (None, None)
    tmp = tempfile.mkdtemp(prefix="negrl_sandbox_")  # 0700: configs and outputs, never visible to the program
    try:
        workdir = os.path.join(tmp, "work")
        os.mkdir(workdir)
        if worker_uid is not None:
            os.chown(workdir, worker_uid, worker_uid)
            os.chmod(tmp, 0o711)  # the program (another uid) may enter `work`, but not list or read the rest
        os.mkdir(os.path.join(tmp, "root"))
        binds, hidden = _root_layout()
        report_r, report_w = os.pipe()
        cfg = {
            "isolated": isolation != "none", "root": os.path.join(tmp, "root"), "binds": binds, "hide": hidden,
            "workdir": workdir, "worker_uid": worker_uid, "judge_uid": judge_uid, "tmp_mb": limits.tmp_mb,
            "roles_code": os.path.join(tmp, "roles.bin"), "report_fd": report_w, "limits": _limits_dict(limits),
            "judge_limits": {"memory_mb": max(limits.memory_mb, 1024), "cpu_s": int(hard_wall_s) + 10,
                             "max_file_mb": 16, "max_processes": 1},
            "worker": worker, "judge_payload": None,
        }  # fmt: skip
        if judge is not None:
            cfg["judge_payload"] = os.path.join(tmp, "judge.json")
            with open(cfg["judge_payload"], "w", encoding="utf-8") as f:
                json.dump(judge, f)
        with open(cfg["roles_code"], "wb") as f:
            f.write(_roles_code())
        cfg_path = os.path.join(tmp, "config.json")
        with open(cfg_path, "w", encoding="utf-8") as f:
            json.dump(cfg, f)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        with open(os.path.join(tmp, "out"), "w+b") as out_f, open(os.path.join(tmp, "err"), "w+b") as err_f:
            start = time.monotonic()
            try:
                proc = subprocess.Popen(
                    _prefix(isolation) + [_interpreter(), "-I", "-S", "-B", str(INIT_SCRIPT), cfg_path],
                    cwd="/", env=env, stdin=subprocess.DEVNULL, stdout=out_f, stderr=err_f, pass_fds=(report_w,),
                    start_new_session=True,
                )  # fmt: skip
            finally:
                os.close(report_w)
            timed_out = False
            try:
                proc.wait(timeout=hard_wall_s)
            except subprocess.TimeoutExpired:
                timed_out = True
            _kill_group(proc)  # anything that left the group dies with the PID namespace; this gets the rest
            proc.wait()
            wall = time.monotonic() - start
            report = _read_report(report_r)
            n = limits.max_output_chars
            return SandboxResult(
                returncode=proc.returncode if report is None else report.get("returncode", proc.returncode),
                stdout=_tail(out_f, n), stderr=_tail(err_f, n), timed_out=timed_out, wall_s=wall,
                isolation=isolation, report=report,
            )  # fmt: skip
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _read_report(fd: int) -> dict | None:
    """The one JSON line the trusted side wrote (the write end is closed everywhere once the sandbox is gone)."""
    try:
        os.set_blocking(fd, False)
        chunks = []
        while True:
            try:
                b = os.read(fd, 1 << 16)
            except BlockingIOError:
                break
            if not b:
                break
            chunks.append(b)
    finally:
        os.close(fd)
    try:
        report = json.loads(b"".join(chunks).split(b"\n", 1)[0])
    except ValueError:
        return None
    return report if isinstance(report, dict) else None


def _tail(f, n_chars: int) -> str:
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - 4 * n_chars))
    return f.read().decode("utf-8", errors="replace")[-n_chars:]


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@lru_cache(maxsize=1)
def sandbox_isolation() -> str:
    """``"unshare-root+seccomp"`` / ``"unshare-root"`` (the OS isolation of the module docstring works here, with or
    without the seccomp filter) or ``"none"`` (cached probe; a warning says why)."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return _no_isolation("not running as root" if os.geteuid() != 0 else "util-linux `unshare` not found")
    probe = ("import os\nassert not os.path.exists('/etc') and os.getcwd() == '/tmp'\n"
             "print('Seccomp:\\t2' in open('/proc/self/status').read())\n")  # fmt: skip
    try:
        result = _launch({"program": probe}, None, SandboxLimits(), "unshare-root", hard_wall_s=30.0)
        why = (result.report or {}).get("sandbox_error") or result.stderr.strip()[-300:] or f"exit {result.returncode}"
    except OSError as e:
        result, why = None, str(e)
    if result is not None and result.returncode == 0:
        return "unshare-root+seccomp" if result.stdout.strip() == "True" else "unshare-root"
    return _no_isolation(why)


def _no_isolation(why: str) -> str:
    warnings.warn(f"code sandbox: OS isolation unavailable ({why}); only rlimits, seccomp (x86_64), the separate "
                  "judge and Python hooks guard untrusted code", RuntimeWarning, stacklevel=3)  # fmt: skip
    return "none"


def run_python(
    program: str, limits: SandboxLimits | None = None, isolation: str | None = None, python_guard: bool = False
) -> SandboxResult:
    """Run ``program`` (Python source, as ``__main__``) in the sandbox; killed after ``limits.wall_s`` seconds.

    Args:
        program: Source of the whole script.
        limits: Time, memory and process limits.
        isolation: Force a mode (``"none"`` disables the OS layers; for tests); default: the best available.
        python_guard: Install the audit hook of ``code_harness.install_guard`` first.

    Thread-safe. Never raises for anything the program does; raises ``OSError`` if the sandbox cannot start.
    """
    limits = limits or SandboxLimits()
    return _launch({"program": program, "guard": python_guard}, None, limits, isolation or sandbox_isolation(),
                   hard_wall_s=limits.wall_s)  # fmt: skip


def run_judged(
    solution: str, prefix: str, entry: str | None, setup: str, cases: list[str],
    limits: SandboxLimits | None = None, python_guard: bool = True, isolation: str | None = None,
) -> SandboxResult:  # fmt: skip
    """Execute ``solution`` in the sandbox's worker and ``prefix`` + ``setup`` + each of ``cases`` in its judge.

    ``result.report`` is the judge's ``{"passed", "total", "error", "verdict"}`` (``verdict``: ``True``,
    ``False`` or ``None`` = could not verify), or ``None`` if the judge never reported.
    """
    limits = limits or SandboxLimits()
    max_wall = limits.wall_s * limits.load_factor
    judge = {"prefix": prefix, "entry": entry, "setup": setup, "cases": cases, "wall_s": limits.wall_s,
             "cpu_s": limits.cpu_s, "max_wall_s": max_wall}  # fmt: skip
    return _launch({"solution": solution, "guard": python_guard}, judge, limits, isolation or sandbox_isolation(),
                   hard_wall_s=max_wall + 15.0)  # fmt: skip
