"""The code verifier's two sandboxed roles: the **worker** runs the program, the **judge** runs the tests.

Standard library only: ``negrl.verifiers.sandbox_init`` loads this file into both processes (outside the package).

Why two processes: a test that runs in the interpreter that ran the program can be forged by the program (replace
``exec`` or ``json.dumps``, return an object whose ``__eq__`` is always true, walk the stack and rewrite the
report, ``os._exit(0)``...). Here the program and the tests never share an interpreter:

- the **worker** (throwaway uid B) executes the solution and then serves requests: *call this object with these
  arguments*, *get this attribute*, *iterate*... Results go back **serialised as data** (type-tagged JSON:
  ``None``, ``bool``, ``int``, ``float``, ``complex``, ``str``, ``bytes``, lists, tuples, sets, dicts, ``range``,
  builtin types, ``Fraction``, ``Decimal``); anything else stays in the worker and the judge gets an opaque handle;
- the **judge** (uid C, a different uid: the worker cannot signal, trace or read it) executes the problem's test
  code, in which the solution's names are proxies. What comes back is decoded by the judge into genuine builtin
  values, so ``candidate(x) == 3`` is evaluated by the judge's own ``int.__eq__``. A handle compares by identity
  only (asking the worker would hand it the expected value); its attributes, calls, iteration, length and truth
  value (``assert re.search(...)``) come back as data, bits the program chooses as a solution would.
  Names the problem's own code defines (HumanEval's prompt: helpers such as ``poly``) and builtins are the judge's
  own: the program cannot redefine what the tests use to check it. The verdict goes to the parent through a pipe
  only the judge holds; nothing the worker prints is read.

The worst the worker can do is therefore to *answer with data of its choice*, which is what a solution does.

Names the tests take from the solution that are standard modules (MBPP's tests call ``math.isclose`` on the
solution's ``import math``) are the judge's own imports, whatever the program bound to them.

Time: the judge counts the program's **own time** (time waiting for a reply minus the time the worker's main
process spent runnable but waiting for a CPU, from ``/proc/<pid>/schedstat``); reaching ``wall_s`` of it is a
timeout (``False``), and so are ``cpu_s`` CPU seconds summed over all the program's processes (load it makes
itself is its own) and the worker dying on an rlimit. A run still unfinished at ``max_wall_s`` of real time
because the machine is loaded gives ``None`` ("could not verify"), never ``False``.
"""

from __future__ import annotations

import builtins
import json
import os
import re
import select
import sys
import time
import traceback


MAX_MESSAGE_BYTES = 32 * 1024 * 1024
MAX_DEPTH = 200
_INT_RE = re.compile(r"-?0x[0-9a-f]+")


class ProtocolError(Exception):
    """The worker sent something that is not a well-formed message."""


class WorkerGone(BaseException):
    """The worker exited or was killed (``os._exit``, a crash, its CPU / memory / file-size limit)."""


class Timeout(BaseException):
    """The judge gave up waiting: ``verdict`` is ``False`` (the program's own time ran out) or ``None`` (load)."""

    def __init__(self, verdict: bool | None, why: str) -> None:
        super().__init__(why)
        self.verdict, self.why = verdict, why


class RemoteError(Exception):
    """An exception raised in the worker that is not a builtin ``Exception`` subclass."""


# ---------------------------------------------------------------- values as data


def encode(x, handle_of, lenient: bool, depth: int = 0) -> list:
    """``x`` as type-tagged JSON-able data; ``handle_of(x)`` for anything else (it may raise).

    ``lenient`` (the worker's side) sends subclasses of the builtin containers as their base type (a ``Counter``
    as a dict, a namedtuple as a tuple), read through the base type's own methods.
    """
    if depth > MAX_DEPTH:
        raise ValueError("value nested too deeply to send")
    t, d = type(x), depth + 1
    if x is None:
        return ["N"]
    if t is bool:
        return ["b", x]
    if t is int:
        return ["i", hex(x)]  # hex is not bound by sys.int_max_str_digits
    if t is float:
        return ["f", repr(x)]
    if t is str:
        return ["s", x]
    if t is complex:
        return ["c", repr(x.real), repr(x.imag)]
    if t is bytes or t is bytearray:
        return ["y" if t is bytes else "Y", x.hex()]
    if t is list or t is tuple or t is set or t is frozenset:
        tag = {list: "l", tuple: "t", set: "S", frozenset: "F"}[t]
        return [tag, [encode(v, handle_of, lenient, d) for v in x]]
    if t is dict:
        return ["d", [[encode(k, handle_of, lenient, d), encode(v, handle_of, lenient, d)] for k, v in x.items()]]
    if t is type and getattr(builtins, x.__name__, None) is x:  # int, str, ... (MBPP: remove_datatype(t, int))
        return ["T", x.__name__]
    if t is range:
        return ["r", hex(x.start), hex(x.stop), hex(x.step)]
    if t.__module__ == "fractions" and t.__name__ == "Fraction":
        return ["q", hex(x.numerator), hex(x.denominator)]
    if t.__module__ == "decimal" and t.__name__ == "Decimal":
        return ["D", str(x)]
    if lenient:
        for base, conv in _BASES:
            if isinstance(x, base):
                return encode(conv(x), handle_of, lenient, depth)
    return handle_of(x)


_BASES = [
    (int, int.__int__), (float, float.__float__), (str, str.__str__), (bytes, bytes),
    (dict, lambda x: dict(dict.items(x))), (list, lambda x: list(list.__iter__(x))),
    (tuple, lambda x: tuple(tuple.__iter__(x))), (set, lambda x: set(set.__iter__(x))),
    (frozenset, lambda x: frozenset(frozenset.__iter__(x))),
]


def decode(v, handle, depth: int = 0):
    """Inverse of ``encode``, strict: every tag and field is checked; ``handle(n)`` for ``["h", n]``."""
    if depth > MAX_DEPTH + 1:
        raise ProtocolError("value nested too deeply")
    if type(v) is not list or not v or type(v[0]) is not str:
        raise ProtocolError("malformed value")
    tag, d = v[0], depth + 1
    try:
        if tag == "N" and len(v) == 1:
            return None
        if tag == "b" and len(v) == 2 and type(v[1]) is bool:
            return v[1]
        if tag == "i" and len(v) == 2 and type(v[1]) is str and _INT_RE.fullmatch(v[1]):
            return int(v[1], 16)
        if tag == "f" and len(v) == 2:
            return _float(v[1])
        if tag == "c" and len(v) == 3:
            return complex(_float(v[1]), _float(v[2]))
        if tag == "s" and len(v) == 2 and type(v[1]) is str:
            return v[1]
        if tag in ("y", "Y") and len(v) == 2 and type(v[1]) is str:
            return (bytes if tag == "y" else bytearray).fromhex(v[1])
        if tag in ("l", "t", "S", "F") and len(v) == 2 and type(v[1]) is list:
            items = [decode(x, handle, d) for x in v[1]]
            return {"l": list, "t": tuple, "S": set, "F": frozenset}[tag](items)
        if tag == "d" and len(v) == 2 and type(v[1]) is list:
            out = {}
            for pair in v[1]:
                if type(pair) is not list or len(pair) != 2:
                    raise ProtocolError("malformed dict item")
                out[decode(pair[0], handle, d)] = decode(pair[1], handle, d)
            return out
        if tag == "T" and len(v) == 2 and type(v[1]) is str and isinstance(getattr(builtins, v[1], None), type):
            return getattr(builtins, v[1])
        if tag == "r" and len(v) == 4 and all(type(s) is str and _INT_RE.fullmatch(s) for s in v[1:]):
            return range(int(v[1], 16), int(v[2], 16), int(v[3], 16))
        if tag == "q" and len(v) == 3 and all(type(s) is str and _INT_RE.fullmatch(s) for s in v[1:]):
            from fractions import Fraction

            return Fraction(int(v[1], 16), int(v[2], 16))
        if tag == "D" and len(v) == 2 and type(v[1]) is str:
            from decimal import Decimal

            return Decimal(v[1])
        if tag == "h" and len(v) == 2 and type(v[1]) is int:
            return handle(v[1])
    except ProtocolError:
        raise
    except (TypeError, ValueError, ArithmeticError) as e:  # e.g. an unhashable set element, a zero denominator
        raise ProtocolError(f"malformed {tag!r} value: {type(e).__name__}") from None
    raise ProtocolError(f"malformed {tag!r} value")


def _float(s) -> float:
    if type(s) is not str:
        raise ProtocolError("malformed float")
    f = float(s)
    if repr(f) != s:  # only the canonical spelling (no whitespace, underscores or other tricks)
        raise ProtocolError("malformed float")
    return f


# ---------------------------------------------------------------- framing


def send(fd: int, obj) -> None:
    data = json.dumps(obj).encode()
    if len(data) > MAX_MESSAGE_BYTES:
        raise ValueError(f"message of {len(data)} bytes exceeds {MAX_MESSAGE_BYTES}")
    view = memoryview(len(data).to_bytes(8, "big") + data)
    while view:
        view = view[os.write(fd, view) :]


def recv_exact(fd: int, n: int, wait) -> bytes:
    """``n`` bytes from ``fd``; ``wait()`` blocks until it is readable (or raises)."""
    chunks, got = [], 0
    while got < n:
        wait()
        b = os.read(fd, min(n - got, 1 << 20))
        if not b:
            raise WorkerGone()
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


def recv(fd: int, wait=lambda: None):
    n = int.from_bytes(recv_exact(fd, 8, wait), "big")
    if n > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {n} bytes exceeds {MAX_MESSAGE_BYTES}")
    try:
        return json.loads(recv_exact(fd, n, wait))
    except (ValueError, RecursionError):
        raise ProtocolError("malformed message") from None


def describe(e: BaseException) -> str:
    return (type(e).__name__ + (": " + str(e) if str(e) else ""))[:300]


# ---------------------------------------------------------------- the worker (untrusted side)


def install_guard(cwd: str) -> None:
    """Defence in depth, in the worker only: an audit hook (it cannot be removed from Python) that refuses
    sockets, subprocesses, signals, ``ctypes`` and writes outside ``cwd``. The OS layers do not rely on it."""
    blocked = ("socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
               "os.forkpty", "os.kill", "os.killpg", "os.setuid", "os.setgid", "pty.", "ctypes.", "resource.setrlimit",
               "webbrowser.", "urllib.", "http.", "ftplib.", "smtplib.", "telnetlib.", "poplib.", "imaplib.", "nntplib.")  # fmt: skip
    mutating = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.link", "os.symlink",
                "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move"}  # fmt: skip
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    realpath, fspath, sep = os.path.realpath, os.fspath, os.sep

    def inside(path) -> bool:
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
            writing = (isinstance(flags, int) and flags & write_flags) or (mode and any(c in mode for c in "wax+"))
            if writing and not inside(path):
                raise PermissionError(f"sandbox: writing outside the working directory is not allowed: {path!r}")
        elif event in mutating:
            for a in args:
                if (isinstance(a, (str, bytes)) or hasattr(a, "__fspath__")) and not inside(a):
                    raise PermissionError(f"sandbox: {event} outside the working directory is not allowed")
        elif event.startswith(blocked):
            raise PermissionError(f"sandbox: {event} is not allowed")

    sys.addaudithook(hook)


def worker_main(cfg: dict, rfd: int, wfd: int) -> None:
    """Run ``cfg["program"]`` as ``__main__`` (a plain run), or ``cfg["solution"]`` and then serve the judge."""
    if cfg.get("guard"):
        install_guard(os.path.realpath(os.getcwd()))
    if "program" in cfg:
        _run_main(cfg["program"])
        return
    objects: list = []

    def handle_of(x) -> list:
        objects.append(x)
        return ["h", len(objects) - 1]

    def value(x) -> list:
        try:
            return encode(x, handle_of, lenient=True)
        except (ValueError, RecursionError):
            return handle_of(x)

    scope = {"__name__": "__solution__", "__builtins__": builtins}
    try:
        exec(compile(cfg["solution"], "<solution>", "exec"), scope)
        names = {}
        for k, v in list(scope.items()):
            if not (k.startswith("__") and k.endswith("__")):
                names[k] = ["m", v.__name__] if type(v).__name__ == "module" else value(v)
        hello = {"names": names}
    except BaseException as e:  # SystemExit too: an early sys.exit(0) means the tests fail
        hello = {"error": "solution: " + describe(e)}
    send(wfd, hello)
    arg = lambda v: decode(v, objects.__getitem__)  # noqa: E731
    while True:
        req = recv(rfd)
        op = req[0]
        try:
            target, args = objects[req[1]], [arg(a) for a in req[2:]]
            if op == "call":
                result = target(*args[0], **args[1])
            elif op == "getattr":
                result = getattr(target, args[0])
            elif op == "setattr":
                setattr(target, args[0], args[1])
                result = None
            elif op == "iter":
                result = handle_of(iter(target))
            elif op == "next":
                try:
                    result = next(target)
                except StopIteration:
                    send(wfd, ["stop"])
                    continue
            elif op == "getitem":
                result = target[args[0]]
            elif op == "len":
                result = len(target)
            elif op == "bool":
                result = bool(target)
            else:
                raise ValueError(f"unknown request {op!r}")
            reply = ["ok", result if op == "iter" else value(result)]
        except BaseException as e:  # SystemExit / KeyboardInterrupt raised by the program are just exceptions
            reply = ["raise", type(e).__name__, describe(e)]
        send(wfd, reply)


def _run_main(src: str) -> None:
    code = 0
    try:
        exec(compile(src, "main.py", "exec"), {"__name__": "__main__", "__builtins__": builtins})
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        if not isinstance(e.code, int) and e.code is not None:
            print(e.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    os._exit(code)


# ---------------------------------------------------------------- the judge (trusted side)


class Channel:
    """The judge's end of the pipe pair, with the time accounting of the module docstring."""

    def __init__(self, rfd: int, wfd: int, worker_pid: int, worker_uid: int | None, wall_s: float, cpu_s: float,
                 max_wall_s: float) -> None:  # fmt: skip
        self.rfd, self.wfd, self.worker_pid, self.worker_uid = rfd, wfd, worker_pid, worker_uid
        self.wall_s, self.cpu_s, self.max_wall_s = wall_s, cpu_s, max_wall_s
        os.set_blocking(wfd, False)
        self.start, self.own, self.waited = time.monotonic(), 0.0, 0.0  # waited: real time spent in wait()

    def _worker_stats(self) -> tuple[float, float]:
        """(seconds the worker's main process spent runnable but waiting for a CPU, CPU seconds of all the worker
        uid's live processes and their reaped children; without a uid of its own: the main process only)."""
        cpu = delay = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        pids = [str(self.worker_pid)] if self.worker_uid is None else os.listdir("/proc")
        for name in pids:
            if not name.isdigit():
                continue
            try:
                if self.worker_uid is not None and os.stat(f"/proc/{name}").st_uid != self.worker_uid:
                    continue
                if name == str(self.worker_pid):
                    with open(f"/proc/{name}/schedstat") as f:
                        delay = int(f.read().split()[1]) / 1e9
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                cpu += sum(int(x) for x in fields[11:15]) / tick  # utime stime cutime cstime
            except (OSError, IndexError, ValueError):
                continue
        return delay, cpu

    def wait(self, fd: int | None = None, write: bool = False) -> None:
        """Block until ``fd`` (default: the reply pipe) is readable (``write``: writable), or raise ``Timeout``.

        Time counts against the program only while the judge waits for it, less the time its main process was
        runnable but had no CPU (machine load). Its CPU time (all its processes) is bounded by ``cpu_s``: load it
        causes itself (busy threads or children) is its own.
        """
        t0 = time.monotonic()
        try:
            self._wait(self.rfd if fd is None else fd, write)
        finally:
            self.waited += time.monotonic() - t0

    def _wait(self, fd: int, write: bool) -> None:
        sets = ([], [fd], []) if write else ([fd], [], [])
        t0 = time.monotonic()
        if any(select.select(*sets, 0.05)):
            self.own += time.monotonic() - t0
            if self.own >= self.wall_s:  # e.g. an endless stream of quick replies (an infinite generator)
                raise Timeout(False, f"time limit: {self.wall_s:g} s of the program's own time")
            return
        d0, _ = self._worker_stats()
        t1 = time.monotonic()
        base = self.own + (t1 - t0)
        while True:
            ready = any(select.select(*sets, 0.1))
            now = time.monotonic()
            delay, cpu = self._worker_stats()
            own = base + (now - t1) - max(0.0, delay - d0)
            if ready:
                self.own = own
                return
            if cpu >= self.cpu_s:
                raise Timeout(False, f"CPU limit: {cpu:.1f} s of CPU (limit {self.cpu_s:g} s)")
            if own >= self.wall_s:
                raise Timeout(False, f"time limit: {self.wall_s:g} s of the program's own time ({cpu:.1f} s CPU)")
            if now - self.start >= self.max_wall_s:
                raise Timeout(None, f"could not verify: {now - self.start:.0f} s of real time on a loaded machine "
                                    f"({own:.1f} s of the program's own time, {cpu:.1f} s CPU)")  # fmt: skip

    def receive(self, decoder=None):
        """The next message (``decoder`` applied); the time spent reading and decoding it, on top of waiting, is
        charged to the program too: replies made to be slow to decode cannot push the run into "could not verify"."""
        t0, waited0 = time.monotonic(), self.waited
        msg = recv(self.rfd, self.wait)
        if decoder is not None:
            msg = decoder(msg)
        self.own += max(0.0, (time.monotonic() - t0) - (self.waited - waited0))
        return msg

    def send(self, msg) -> None:
        """Non-blocking: a worker that stops reading cannot block the judge past its deadlines."""
        data = json.dumps(msg).encode()
        view = memoryview(len(data).to_bytes(8, "big") + data)
        while view:
            self.wait(self.wfd, write=True)
            try:
                view = view[os.write(self.wfd, view) :]
            except BlockingIOError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                raise WorkerGone() from None

    def op(self, name: str, ref: int, *args):
        self.send([name, ref, *[encode(a, _handle_ref, lenient=False) for a in args]])
        reply = self.receive(self._decode_reply)
        if reply[0] == "ok":
            return reply[1]
        if reply[0] == "stop":
            raise StopIteration
        if reply[0] == "raise" and len(reply) == 3 and all(type(s) is str for s in reply[1:]):
            exc = getattr(builtins, reply[1], None)
            if isinstance(exc, type) and issubclass(exc, Exception) and not issubclass(exc, StopIteration):
                raise exc(reply[2][len(reply[1]) + 2 :] if reply[2].startswith(reply[1] + ": ") else "")
            raise RemoteError(reply[2])
        raise ProtocolError("malformed reply")

    def _decode_reply(self, reply) -> list:
        if type(reply) is not list or not reply or type(reply[0]) is not str:
            raise ProtocolError("malformed reply")
        if reply[0] == "ok" and len(reply) == 2:
            return ["ok", decode(reply[1], lambda n: Remote(self, n))]
        if (reply[0] == "stop" and len(reply) == 1) or (reply[0] == "raise" and len(reply) == 3):
            return reply
        raise ProtocolError("malformed reply")


def _handle_ref(x) -> list:
    if type(x) is Remote:
        return ["h", object.__getattribute__(x, "_ref")]
    raise TypeError(f"a {type(x).__name__} cannot be passed to the program under test")


class Remote:
    """The judge's proxy for an object that lives in the worker (a function, a class, an instance...)."""

    __slots__ = ("_ch", "_ref")

    def __init__(self, ch: Channel, ref: int) -> None:
        object.__setattr__(self, "_ch", ch)
        object.__setattr__(self, "_ref", ref)

    def __call__(self, *args, **kwargs):
        return self._ch.op("call", self._ref, args, kwargs)

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return self._ch.op("getattr", self._ref, name)

    def __setattr__(self, name: str, value) -> None:
        self._ch.op("setattr", self._ref, name, value)

    def __iter__(self):
        return self._ch.op("iter", self._ref)

    def __next__(self):
        return self._ch.op("next", self._ref)

    def __getitem__(self, key):
        return self._ch.op("getitem", self._ref, key)

    def __len__(self) -> int:
        n = self._ch.op("len", self._ref)
        if type(n) is not int:
            raise TypeError("len() of an object of the program under test is not an int")
        return n

    def __bool__(self) -> bool:
        # Asked of the worker: a bit of its choosing, as returning True / False would be. Equality is never asked
        # (that would hand it the expected value and let it say "equal").
        b = self._ch.op("bool", self._ref)
        if type(b) is not bool:
            raise TypeError("the truth value of an object of the program under test is not a bool")
        return b

    def __repr__(self) -> str:
        return f"<object #{self._ref} of the program under test>"


def bind_names(ns: dict, names: dict, entry: str | None, ch: Channel) -> None:
    """Put the solution's names into the test namespace: never over a builtin or a name the problem's own code
    defined, except the entry point (HumanEval's prompt defines it as a stub). Modules (and any name that is a
    standard module's) are the judge's own imports: tests rely on the solution's ``import math``."""
    import importlib

    for name, v in names.items():
        if type(name) is not str or (name != entry and (name in ns or hasattr(builtins, name))):
            continue
        if name in sys.stdlib_module_names and name != entry:  # `math.isclose` in a test is the real one, whatever
            try:  # the program bound to `math`
                ns[name] = importlib.import_module(name)
            except Exception:
                pass
            continue
        if type(v) is list and len(v) == 2 and v[0] == "m" and type(v[1]) is str:
            if v[1].partition(".")[0] not in sys.stdlib_module_names:
                continue
            try:
                ns[name] = importlib.import_module(v[1])  # the judge's own copy of the module
            except Exception:
                continue
        else:
            ns[name] = decode(v, lambda n: Remote(ch, n))


def judge_main(payload: dict, rfd: int, wfd: int, report_fd: int, worker_pid: int, worker_uid: int | None) -> int:
    """Run the tests against the worker; write ``{"passed", "total", "error", "verdict"}`` to ``report_fd``."""
    cases = list(payload["cases"])
    ch = Channel(rfd, wfd, worker_pid, worker_uid, payload["wall_s"], payload["cpu_s"], payload["max_wall_s"])
    passed, error, verdict = 0, None, "tests"
    try:
        hello = ch.receive()
        if type(hello) is not dict or not (type(hello.get("names")) is dict or type(hello.get("error")) is str):
            raise ProtocolError("malformed first message")
        if "error" in hello:
            error, verdict = hello["error"][:300], False
        else:
            ns = {"__name__": "__test__", "__builtins__": builtins}
            if payload["prefix"]:
                try:
                    exec(compile(payload["prefix"], "<problem code>", "exec"), ns)
                except Exception as e:
                    error, verdict = "the problem's own code failed: " + describe(e), None
            if verdict is not None:
                bind_names(ns, hello["names"], payload["entry"], ch)
                if payload["setup"]:
                    exec(compile(payload["setup"], "<test setup>", "exec"), ns)
                for i, case in enumerate(cases):
                    try:
                        exec(compile(case, f"<test {i}>", "exec"), ns)
                        passed += 1
                    except (Exception, AssertionError) as e:
                        error = error or f"test {i}: {describe(e)}"
    except Timeout as t:
        error, verdict = t.why, t.verdict
    except WorkerGone:
        error, verdict = error or "the program exited or was killed (early exit, crash, or its CPU/memory/output limit)", False
    except ProtocolError as e:
        error, verdict = f"the program's process sent a malformed message ({e})", False
    except Exception as e:  # the test setup failed (e.g. it uses a class the solution does not define)
        error, verdict = error or "test setup: " + describe(e), False
    if verdict == "tests":
        verdict = passed == len(cases) and len(cases) > 0
    report = {"passed": passed, "total": len(cases), "error": error, "verdict": verdict}
    os.write(report_fd, (json.dumps(report) + "\n").encode())
    return 0
