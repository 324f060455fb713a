"""Stops a lab's servers when the process that started them dies without stopping them.

``lab.running`` cleans up on exceptions, Ctrl-C and SIGTERM, but a SIGKILL gives it no chance.
So it also starts ``python -m diagnose.lab.watchdog PARENT_PID RECORD``: a small process that
polls its parent and, once the parent is gone, stops every server listed in ``RECORD`` (a JSON
file the lab rewrites as servers start) and deletes the folders listed there.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from diagnose.lab import processes

POLL_S = 0.5


def start(record: Path) -> processes.Child:
    """Start a watchdog for this process; it reads ``record`` when this process dies."""
    argv = [sys.executable, "-m", "diagnose.lab.watchdog", str(os.getpid()), str(record)]
    child, _ = processes.spawn(argv, log=record.with_suffix(".log"), outlive=True)
    return child


def write_record(record: Path, *, children: dict[str, processes.Child], dirs: list[Path]) -> None:
    """Atomically rewrite what the watchdog must clean up."""
    data = {
        "children": {name: child.to_dict() for name, child in children.items()},
        "dirs": [str(d) for d in dirs],
    }
    partial = record.with_suffix(".tmp")
    partial.write_text(json.dumps(data), encoding="utf-8")
    partial.replace(record)


def _clean_up(record: Path) -> None:
    if not record.is_file():
        return
    data = json.loads(record.read_text(encoding="utf-8"))
    for child in data["children"].values():
        processes.Child.from_dict(child).stop()
    for folder in data["dirs"]:
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    parent, record = (argv or sys.argv[1:])[:2]
    while os.getppid() == int(parent):  # re-parented once the parent is gone
        time.sleep(POLL_S)
    _clean_up(Path(record))
    return 0


if __name__ == "__main__":
    sys.exit(main())
