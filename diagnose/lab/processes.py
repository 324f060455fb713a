"""Child processes the lab starts, and how it stops them, even from another process.

Each server runs in its own session (process group), so a Ctrl-C in the terminal reaches only
the lab's parent, which then stops the servers in order; ``stop`` ends the whole group, so
helpers a server forked (PostgreSQL backends) go too. A :class:`Child` records its pid and the
kernel's start time of that pid, so a detached ``lab down`` never signals a recycled pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
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
) -> tuple[Child, subprocess.Popen[bytes]]:
    """Start ``argv`` in its own session, output to ``log`` (stdout to a pipe if asked)."""
    with log.open("ab") as sink:
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else sink,
            stderr=sink,
            start_new_session=True,
            env=dict(env) if env is not None else None,
        )
    _started[process.pid] = process
    stat = _stat(process.pid)
    started = stat[2] if stat else 0
    return Child(process.pid, started, stop_signal), process


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
    """Run a short-lived tool to completion, capturing its output as text."""
    return subprocess.run(
        list(argv),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
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
