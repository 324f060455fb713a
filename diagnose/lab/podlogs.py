"""A scenario's ``logs/<pod>.log`` files, read as the Kubernetes API and Loki serve logs.

Each line of a log file is one record, its RFC 3339 timestamp first (``2026-01-10T10:07:01.2Z
ERROR …``); lines without one continue the record before them (a stack trace). ``<pod>.log`` is
the running container; ``<pod>.previous.log``, when present, its last terminated instance
(``previous=true``). :func:`pod_log` answers ``GET …/pods/<pod>/log`` with the API's parameters,
:func:`streams` gives what a Loki ``query_range`` selects. Pure functions over the folder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from diagnose.domain import models

PREVIOUS = ".previous"
_STAMP = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d))(\s?)(.*)$")
_POD_HASH = re.compile(r"-[a-z0-9]{5,10}$")


def records(path: Path) -> list[tuple[float, str, str]]:
    """(time, timestamp text, line) of every line, oldest first as written; an untimed line
    takes the time of the line before it."""
    out: list[tuple[float, str, str]] = []
    at, stamp = 0.0, ""
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        match = _STAMP.match(line)
        if match:
            stamp = match.group(1)
            at = models.parse_time(stamp).timestamp()
        out.append((at, stamp, line))
    return out


def pod_log(folder: Path | None, *, pod: str, params: Mapping[str, str]) -> tuple[int, str]:
    """The HTTP status and body the API server sends for a pod's log (``sinceTime``,
    ``sinceSeconds`` is not served, ``tailLines``, ``limitBytes``, ``timestamps``,
    ``previous``)."""
    previous = params.get("previous", "false") == "true"
    path = (folder / f"{pod}{PREVIOUS if previous else ''}.log") if folder else None
    if path is None or not path.is_file():
        if previous:
            return 400, f'previous terminated container in pod "{pod}" not found'
        return 200, ""
    lines = records(path)
    since = params.get("sinceTime")
    if since:
        start = models.parse_time(since).timestamp()
        lines = [r for r in lines if r[0] >= start]
    tail = params.get("tailLines")
    if tail is not None:
        lines = lines[-int(tail) :] if int(tail) > 0 else []
    stamped = params.get("timestamps", "false") == "true"
    text = "".join((line if stamped else _unstamped(line)) + "\n" for _, _, line in lines)
    limit = params.get("limitBytes")
    if limit is not None:
        text = text.encode("utf-8")[: int(limit)].decode("utf-8", errors="ignore")
    return 200, text


def _unstamped(line: str) -> str:
    match = _STAMP.match(line)
    return match.group(3) if match else line


def pods(folder: Path) -> list[str]:
    """The pods the folder has a running container's log for."""
    return sorted(
        p.name[: -len(".log")]
        for p in folder.glob("*.log")
        if not p.name.endswith(f"{PREVIOUS}.log")
    )


def workload(pod: str) -> str:
    """The workload a pod's name implies (its ReplicaSet and pod suffixes cut)."""
    return _POD_HASH.sub("", _POD_HASH.sub("", pod))


def streams(
    folder: Path, *, namespace: str, start: datetime, end: datetime
) -> list[tuple[dict[str, str], list[tuple[float, str]]]]:
    """Every pod's stream (labels ``namespace``, ``pod``, ``app``, ``container``) with its
    lines in [start, end]: what Loki holds for the namespace."""
    low, high = start.timestamp(), end.timestamp()
    out = []
    for pod in pods(folder):
        name = workload(pod)
        labels = {"namespace": namespace, "pod": pod, "app": name, "container": name}
        lines = [(at, line) for at, _, line in records(folder / f"{pod}.log") if low <= at <= high]
        out.append((labels, lines))
    return out
