"""Child processes the lab starts, and how it stops them, even from another process.

Each server runs in its own session (process group), so a Ctrl-C in the terminal reaches only
the lab's parent, which then stops the servers in order; ``stop`` ends the whole group, so
helpers a server forked (PostgreSQL backends) go too. A :class:`Child` records its pid and the
kernel's start time of that pid, so a detached ``lab down`` never signals a recycled pid.

Servers die with the process that started them, however it dies: on Linux each is started
with ``PR_SET_PDEATHSIG`` set to SIGKILL, so the kernel kills it the moment its parent is gone,
even a parent killed with SIGKILL between starting a server and writing its pid down. The
kernel ties that signal to the *thread* that forked the child, so every server is forked by
one thread that lives as long as the process (:class:`_Forker`), never by a worker thread
that ends when its start-up job does.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, Self

STOP_TIMEOUT_S = 10.0

# Popen objects of the children this process started and has not stopped yet: dropping one
# while its process runs makes Python warn, and keeping it lets ``stop`` reap the process.
_started: dict[int, subprocess.Popen[bytes]] = {}


@dataclass(frozen=True)
class Child:
    """A process the lab started, as a record that outlives the Python object that started it."""

    pid: int
    started: int  # /proc/<pid>/stat field 22: start time in clock ticks since boot
    stop_signal: int = signal.SIGTERM

    def alive(self) -> bool:
        """True while the very process we started runs (not a zombie, not a recycled pid)."""
        if (ours := _started.get(self.pid)) is not None:
            return ours.poll() is None  # exact: a leader thread can be a zombie before the rest
        _reap(self.pid)
        stat = _stat(self.pid)
        return stat is not None and stat[1] != "Z" and stat[2] == self.started

    def stop(self, *, timeout: float = STOP_TIMEOUT_S) -> None:
        """Send the stop signal, wait, then kill the whole process group."""
        if self.alive():
            _signal(self.pid, self.stop_signal)
            _wait_gone(self, timeout=timeout)
        leader = _stat(self.pid)
        ours = leader is None or leader[1] == "Z" or leader[2] == self.started
        if ours and group_members([self.pid]):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
            _wait_gone(self, timeout=timeout)
        _forget(self.pid)

    def to_dict(self) -> dict[str, int]:
        return {"pid": self.pid, "started": self.started, "stop_signal": int(self.stop_signal)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Child:
        return cls(int(data["pid"]), int(data["started"]), int(data["stop_signal"]))


def spawn(
    argv: Sequence[str],
    *,
    log: Path,
    stop_signal: int = signal.SIGTERM,
    env: Mapping[str, str] | None = None,
    stdout_pipe: bool = False,
    outlive: bool = False,
) -> tuple[Child, subprocess.Popen[bytes]]:
    """Start ``argv`` in its own session, output to ``log`` (stdout to a pipe if asked). It
    dies with this process unless ``outlive`` (the watchdog, which must clean up after it)."""

    def start() -> subprocess.Popen[bytes]:
        with log.open("ab") as sink:
            return subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if stdout_pipe else sink,
                stderr=sink,
                start_new_session=True,
                env=dict(env) if env is not None else None,
                # it only calls prctl and getppid, and runs in the child of the one forking thread
                preexec_fn=None if outlive else _dying_with(os.getpid()),  # noqa: PLW1509
            )

    process = start() if outlive else _Forker.get().run(start)
    _started[process.pid] = process
    stat = _stat(process.pid)
    started = stat[2] if stat else 0
    return Child(process.pid, started, stop_signal), process


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _dying_with(parent: int) -> Callable[[], None] | None:
    """What the child runs before exec on Linux: ask for SIGKILL when its parent dies, and
    die now if the parent is already gone (it died between the fork and this call)."""
    if not sys.platform.startswith("linux"):
        return None  # elsewhere the watchdog alone cleans up after a killed lab
    prctl = ctypes.CDLL(None, use_errno=True).prctl

    def ask() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return ask


DETACH_SIGNAL = signal.SIGUSR1
"""Sent to a process started by :func:`spawn` once it may outlive its parent (a detached
lab's keeper, after the state file records it); see :func:`allow_detach`."""


def allow_detach() -> None:
    """In a process started by :func:`spawn`: on :data:`DETACH_SIGNAL`, stop dying with the
    parent. Call it before the parent can send that signal (before telling it anything)."""

    def detach(_signum: int, _frame: FrameType | None) -> None:
        if sys.platform.startswith("linux"):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, 0)

    signal.signal(DETACH_SIGNAL, detach)


def detach(child: Child) -> None:
    """Let ``child`` (which called :func:`allow_detach`) outlive this process."""
    _signal(child.pid, DETACH_SIGNAL)


class _Forker:
    """The one thread that forks this process's servers, alive as long as the process (the
    kernel's parent-death signal follows the forking thread, not the process)."""

    _current: _Forker | None = None
    _lock = threading.Lock()

    def __init__(self) -> None:
        self.pid = os.getpid()
        self._calls: queue.SimpleQueue[tuple[Callable[[], Any], futures.Future[Any]]]
        self._calls = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="lab-forker", daemon=True).start()

    @classmethod
    def get(cls) -> _Forker:
        with cls._lock:
            if cls._current is None or cls._current.pid != os.getpid():  # none, or forked
                cls._current = cls()
            return cls._current

    def run(self, call: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
        done: futures.Future[subprocess.Popen[bytes]] = futures.Future()
        self._calls.put((call, done))
        return done.result()

    def _serve(self) -> None:
        while True:
            call, done = self._calls.get()
            try:
                done.set_result(call())
            except BaseException as exc:  # handed to the caller, raised in its thread
                done.set_exception(exc)


def adopt(process: subprocess.Popen[bytes], *, stop_signal: int = signal.SIGTERM) -> Child:
    """A record for a child started elsewhere (by its own module), so it can be stopped later."""
    _started[process.pid] = process
    stat = _stat(process.pid)
    return Child(process.pid, stat[2] if stat else 0, stop_signal)


def group_members(pgids: Sequence[int]) -> list[int]:
    """Pids of live (non-zombie) processes in any of these process groups."""
    wanted = set(pgids)
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _full_stat(int(entry.name))
            if stat is not None and stat[2] != "Z" and int(stat[4]) in wanted:
                found.append(int(entry.name))
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def tail(path: Path, *, lines: int = 15) -> str:
    """The end of a log file, for error messages."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _wait_gone(child: Child, *, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not child.alive() and not group_members([child.pid]):
            return
        time.sleep(0.05)


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signum)


def _forget(pid: int) -> None:
    process = _started.pop(pid, None)
    if process is not None:
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    _reap(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _full_stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses
    head, _, rest = raw.rpartition(")")
    return [head.split(" (", 1)[0], head.split(" (", 1)[-1], *rest.split()]


def _stat(pid: int) -> tuple[int, str, int] | None:
    """(pid, state, start time) of a process, or None when there is none."""
    fields = _full_stat(pid)
    if fields is None:
        return None
    # fields: pid, comm, state(3), ppid(4), pgrp(5), ... starttime is field 22 overall
    return int(fields[0]), fields[2], int(fields[21])


def run_tool(argv: Sequence[str], *, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    """Run a short-lived tool to completion, capturing its output as text. It dies with this
    process too (the calling thread waits for it, so it cannot end first)."""
    return subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        preexec_fn=_dying_with(os.getpid()),
    )


def read_line(stream: IO[bytes], *, timeout: float) -> str:
    """One line from a child's stdout, or "" when none comes in time."""
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(stream.readline().decode()), daemon=True)
    reader.start()
    reader.join(timeout)
    return found[0] if found else ""


class Server:
    """What every lab server shares: ``stop()``, also on leaving a ``with`` block."""

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
