"""Worker liveness: which job threads are working, and the heartbeat file a probe reads.

Kept apart from the rest of the service (standard library only) so that
``diagnose worker --check-heartbeat`` starts quickly inside a liveness probe.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from diagnose.domain import errors


@dataclass
class Liveness:
    """When each worker thread last showed it is working, on the monotonic clock."""

    marks: dict[int, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def mark(self, index: int) -> None:
        with self._lock:
            self.marks[index] = time.monotonic()

    def stale(self, *, count: int, within_s: float) -> list[int]:
        """The threads of ``range(count)`` that showed nothing for longer than ``within_s``."""
        now = time.monotonic()
        with self._lock:
            return [i for i in range(count) if now - self.marks.get(i, -float("inf")) > within_s]


def write(path: Path, *, threads: int) -> None:
    """Replace the heartbeat file in one step (a probe never reads half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"at": time.time(), "pid": os.getpid(), "threads": threads}
    partial = path.with_name(f".{path.name}.{os.getpid()}")
    partial.write_text(json.dumps(body), encoding="utf-8")
    os.replace(partial, path)


def age_s(path: Path) -> float:
    """Seconds since the heartbeat in ``path`` was written; ConfigurationError when there is
    none to read (the worker never started, or writes elsewhere)."""
    try:
        at = float(json.loads(path.read_text(encoding="utf-8"))["at"])
    except FileNotFoundError as exc:
        raise errors.ConfigurationError(
            f"no worker heartbeat at {path}: the worker has not started its job threads yet, "
            "or DIAGNOSE_WORKER_HEARTBEAT_FILE differs between the worker and this check"
        ) from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise errors.ConfigurationError(f"unreadable worker heartbeat {path}: {exc}") from exc
    return time.time() - at
