"""The sandbox's first process (PID 1 of its namespaces): build an empty root, drop privileges, run the roles.

Started by ``negrl.verifiers.sandbox`` as ``python -I -S -B sandbox_init.py CONFIG`` (under ``unshare`` when
available). Standard library only: it runs outside the package (no site-packages, no project on ``sys.path``).

Steps, as root inside fresh mount / PID / network / IPC / UTS namespaces:

1. make every mount private (nothing propagates back to the host), mount a small tmpfs as the new root and
   bind into it, read-only, only what an interpreter needs: the standard library (its ``site-packages`` hidden
   under an empty tmpfs), the directory of the system's shared libraries and a few ``/dev`` nodes; a fresh
   ``/proc`` for the new PID namespace (``hidepid``: the untrusted uid sees only its own processes); a private,
   size-limited ``/tmp`` tmpfs (the only writable place); then ``pivot_root`` into it and detach the old root, so
   no host path is reachable at all;
2. fork the **worker** (untrusted code) under one throwaway uid and, for test runs, the **judge** (trusted test
   code) under another; each with no supplementary groups, no capabilities, ``no_new_privs`` and rlimits;
3. wait for the judge (or the worker, for a plain program) and exit: PID 1's exit kills everything left in the
   namespace.

The worker payload (the program) is read before forking; the judge's payload (the tests) is read only by the
judge, from a descriptor the worker closes before running anything, so it is never in the worker's memory.
"""

from __future__ import annotations

import ctypes
import errno
import json
import marshal
import os
import resource
import sys


MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_NO_NEW_PRIVS, PR_SET_DUMPABLE = 38, 4
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(os.uname().machine)

_libc = ctypes.CDLL(None, use_errno=True)
SECCOMP = False  # whether this process runs under the filter of install_seccomp()


def _check(rc: int, what: str) -> None:
    if rc != 0:
        e = ctypes.get_errno()
        raise OSError(e, f"{what}: {os.strerror(e)}")


def _encode(s: str | None) -> bytes | None:
    return s.encode() if s is not None else None


def _mount(src: str | None, dst: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = _encode
    _check(_libc.mount(enc(src), enc(dst), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {dst}")


def _bind_ro(src: str, root: str) -> None:
    """Bind ``src`` at the same path under ``root``, read-only, no setuid, no devices."""
    dst = root + src
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        open(dst, "a").close()
    _mount(src, dst, None, MS_BIND | MS_REC)
    _mount(None, dst, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def build_root(cfg: dict) -> None:
    """Steps 1 of the module docstring; afterwards ``/`` is the new root and the cwd is ``/tmp``."""
    root = cfg["root"]
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("negrl-root", root, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=755")
    for path in cfg["binds"]:
        _bind_ro(path, root)
    for path in cfg["hide"]:  # e.g. site-packages inside the bound standard library: an empty read-only dir
        if os.path.isdir(root + path):
            _mount("negrl-empty", root + path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=4k")
    for dev in ("null", "zero", "random", "urandom"):
        _bind_dev("/dev/" + dev, root)
    os.makedirs(root + "/proc")
    proc_opts = f"hidepid=invisible,gid={cfg['judge_uid']}"
    try:  # subset=pid (Linux >= 5.8): only process directories, none of the kernel's files
        _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, proc_opts + ",subset=pid")
    except OSError:
        _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, proc_opts)
    os.makedirs(root + "/tmp")
    _mount("negrl-tmp", root + "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={cfg['tmp_mb']}m,mode=700,uid={cfg['worker_uid']},gid={cfg['worker_uid']}")  # fmt: skip
    if SYS_PIVOT_ROOT is None:  # an architecture without a known syscall number: chroot (no caps survive setuid)
        os.chroot(root)
    else:
        os.chdir(root)
        _check(_libc.syscall(SYS_PIVOT_ROOT, b".", b"."), "pivot_root")
        _check(_libc.umount2(b".", MNT_DETACH), "detach the old root")
    os.chdir("/")
    _mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)
    os.chdir("/tmp")


def _bind_dev(dev: str, root: str) -> None:
    os.makedirs(root + "/dev", exist_ok=True)
    open(root + dev, "a").close()
    _mount(dev, root + dev, None, MS_BIND)
    _mount(None, root + dev, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID)


def drop_privileges(uid: int | None, limits: dict) -> None:
    """A throwaway uid (as root), no groups, no new privileges, the rlimits; the ordering matters: rlimits need
    root to raise nothing (they only lower), the uid change drops every capability."""
    lim = {
        resource.RLIMIT_AS: limits["memory_mb"] * 1024 * 1024,
        resource.RLIMIT_CPU: limits["cpu_s"],
        resource.RLIMIT_FSIZE: limits["max_file_mb"] * 1024 * 1024,
        resource.RLIMIT_CORE: 0,
        resource.RLIMIT_NOFILE: 64,  # with RLIMIT_FSIZE, bounds memory held in memfd / tmpfs files
    }
    if limits.get("max_processes"):
        lim[resource.RLIMIT_NPROC] = limits["max_processes"]
    for res, value in lim.items():
        hard = value + 1 if res == resource.RLIMIT_CPU else value  # SIGXCPU at the soft limit, SIGKILL a second later
        resource.setrlimit(res, (value, hard))
    if uid is not None:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)  # no ptrace / /proc/<pid>/mem by the same uid
    global SECCOMP
    SECCOMP = install_seccomp()


# seccomp (x86_64 only; elsewhere the filter is skipped): system calls an untrusted program has no use for and that
# widen the kernel surface or the program's reach. Denied with EPERM (ENOSYS for clone3, so libc falls back to clone,
# whose flags a filter can inspect: no new namespaces).
_DENIED_X86_64 = {
    "unshare": 272, "setns": 308, "mount": 165, "umount2": 166, "pivot_root": 155, "chroot": 161, "ptrace": 101,
    "process_vm_readv": 310, "process_vm_writev": 311, "kexec_load": 246, "kexec_file_load": 320, "bpf": 321,
    "perf_event_open": 298, "keyctl": 250, "add_key": 248, "request_key": 249, "name_to_handle_at": 303,
    "open_by_handle_at": 304, "userfaultfd": 323, "init_module": 175, "finit_module": 313, "delete_module": 176,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "swapon": 167, "swapoff": 168,
    "reboot": 169, "acct": 163, "settimeofday": 164, "clock_settime": 227, "adjtimex": 159, "clock_adjtime": 305,
    "iopl": 172, "ioperm": 173, "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432,
    "fspick": 433, "mount_setattr": 442, "quotactl": 179, "syslog": 103, "vhangup": 153, "lookup_dcookie": 212,
}  # fmt: skip
_SYS_CLONE, _SYS_CLONE3 = 56, 435
_CLONE_NEW_FLAGS = 0x7E020080  # CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET|NEWTIME
_AUDIT_ARCH_X86_64 = 0xC000003E


def install_seccomp() -> bool:
    """Load the filter above into this process (inherited by its children); ``False`` where unavailable."""
    if os.uname().machine != "x86_64":
        return False
    ld, jeq, jset, jge, ret = 0x20, 0x15, 0x45, 0x35, 0x06
    allow, kill = 0x7FFF0000, 0x80000000
    eperm, enosys = 0x00050000 | errno.EPERM, 0x00050000 | errno.ENOSYS
    prog = [(ld, 0, 0, 4), (jeq, 1, 0, _AUDIT_ARCH_X86_64), (ret, 0, 0, kill), (ld, 0, 0, 0),
            (jge, 0, 1, 0x40000000), (ret, 0, 0, eperm)]  # x32 system calls: none  # fmt: skip
    for nr in sorted(_DENIED_X86_64.values()):
        prog += [(jeq, 0, 1, nr), (ret, 0, 0, eperm)]
    prog += [(jeq, 0, 1, _SYS_CLONE3), (ret, 0, 0, enosys)]
    prog += [(jeq, 0, 3, _SYS_CLONE), (ld, 0, 0, 16), (jset, 0, 1, _CLONE_NEW_FLAGS), (ret, 0, 0, eperm)]
    prog += [(ret, 0, 0, allow)]

    class SockFilter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

    filters = (SockFilter * len(prog))(*[SockFilter(*ins) for ins in prog])
    fprog = SockFprog(len(prog), filters)
    return _libc.prctl(22, 2, ctypes.byref(fprog), 0, 0) == 0  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER


def _close_fds_except(keep: set[int]) -> None:
    for fd in range(3, 1024):
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _scrub_env(home: str) -> None:
    os.environ.clear()
    os.environ.update({"PATH": "/usr/bin:/bin", "HOME": home, "TMPDIR": home, "LANG": "C.UTF-8", "TZ": "UTC"})


def main(config_path: str) -> int:
    with open(config_path, encoding="utf-8") as f:
        cfg = json.load(f)
    roles: dict = {"__name__": "negrl_sandbox_roles"}
    with open(cfg["roles_code"], "rb") as f:  # code_harness.py compiled once by the parent (same interpreter)
        exec(marshal.load(f), roles)
    judge_fd = os.open(cfg["judge_payload"], os.O_RDONLY) if cfg.get("judge_payload") else None
    report_fd = cfg["report_fd"]
    try:
        if cfg["isolated"]:
            build_root(cfg)
    except OSError as e:
        os.write(report_fd, (json.dumps({"sandbox_error": f"building the sandbox's root failed: {e}"}) + "\n").encode())
        return 97
    home = "/tmp" if cfg["isolated"] else cfg["workdir"]
    worker_in, judge_out = os.pipe()  # judge -> worker
    judge_in, worker_out = os.pipe()  # worker -> judge
    worker = os.fork()
    if worker == 0:  # the untrusted side: nothing of the judge's (payload, report channel) stays reachable
        try:
            _close_fds_except({worker_in, worker_out})
            os.dup2(os.open("/dev/null", os.O_RDONLY), 0)
            os.chdir(home)
            _scrub_env(home)
            drop_privileges(cfg["worker_uid"], cfg["limits"])
            roles["worker_main"](cfg["worker"], worker_in, worker_out)
        finally:
            os._exit(0)
    os.close(worker_in)
    os.close(worker_out)
    if judge_fd is None:  # a plain program: its exit status is the report
        status = _wait_for(worker)
        os.write(report_fd, (json.dumps({"returncode": _returncode(status)}) + "\n").encode())
        return 0
    judge = os.fork()
    if judge == 0:
        code = 1
        try:
            _close_fds_except({judge_in, judge_out, judge_fd, report_fd})
            payload = json.loads(_read_all(judge_fd))
            os.close(judge_fd)
            os.chdir("/")
            _scrub_env("/")
            drop_privileges(cfg["judge_uid"], cfg["judge_limits"])
            worker_uid = cfg["worker_uid"] if cfg["isolated"] else None  # None: count the worker's pid only
            code = roles["judge_main"](payload, judge_in, judge_out, report_fd, worker, worker_uid)
        finally:
            os._exit(code)
    os.close(judge_fd)
    os.close(judge_in)
    os.close(judge_out)
    os.close(report_fd)
    _wait_for(judge)
    return 0


def _read_all(fd: int) -> bytes:
    chunks = []
    while True:
        b = os.read(fd, 1 << 20)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def _returncode(status: int) -> int:
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def _wait_for(pid: int) -> int:
    """Reap every child (PID 1 inherits orphans) until ``pid`` has exited; its wait status."""
    while True:
        try:
            got, status = os.wait()
        except ChildProcessError:
            return 0
        except InterruptedError:
            continue
        if got == pid:
            return status


if __name__ == "__main__":
    try:
        rc = main(sys.argv[1])
    except BaseException as e:  # noqa: BLE001 - PID 1 must report and exit, whatever happened
        print(f"negrl sandbox init failed: {type(e).__name__}: {e}", file=sys.stderr)
        rc = 98 if not isinstance(e, OSError) or e.errno != errno.EPERM else 99
    os._exit(rc)
