"""A lab killed with SIGKILL while it starts leaves no server running: every server dies with
the process that started it, even one started a moment before the kill and not yet written
down anywhere.

The lab runs under a small process that makes itself the subreaper of what the lab starts
(``PR_SET_CHILD_SUBREAPER``): whatever the killed lab leaves behind becomes that process's
child instead of PID 1's, so it can list exactly the survivors.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.lab import conftest

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]

_LAB = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from diagnose.lab import lab
scenario, workdir, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
if mode == "running":
    with lab.running(scenario, now=datetime.now(UTC), workdir=workdir):
        time.sleep(120)
else:
    lab.up(scenario, state_dir=workdir, now=datetime.now(UTC))
"""

_SUBREAPER = """
import ctypes, json, os, subprocess, sys, time
ctypes.CDLL(None, use_errno=True).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER
lab = subprocess.Popen([sys.executable, "-c", sys.argv[1], *sys.argv[2:]])
print(json.dumps({"lab": lab.pid}), flush=True)
lab.wait()

def children():
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                break
        except ChildProcessError:
            break
    found = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read().rpartition(")")[2].split()
                cmdline = open(f"/proc/{entry}/cmdline", "rb").read()
            except OSError:
                continue
            if int(stat[1]) == os.getpid() and stat[0] != "Z":
                found[entry] = cmdline.replace(b"\\0", b" ").decode(errors="replace")
    return found

began = time.monotonic()
servers_at_2s = None
while True:
    left = children()
    servers = {p: c for p, c in left.items() if "diagnose.lab.watchdog" not in c}
    if servers_at_2s is None and (time.monotonic() - began > 2 or not servers):
        servers_at_2s = servers
    if not left or time.monotonic() - began > 20:
        break
    time.sleep(0.05)
print(json.dumps({"servers_after_2s": servers_at_2s, "left_after_20s": left}), flush=True)
"""


def _descendants(root: int) -> dict[int, str]:
    """Pid → command line of every live process under ``root``."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rpartition(")")[2].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if stat[0] != "Z":
            parents[int(entry.name)] = int(stat[1])
            commands[int(entry.name)] = command
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found:
                found[pid] = commands[pid]
                frontier.append(pid)
    return found


def _when(word: str) -> Callable[[dict[int, str], float], bool]:
    """Kill as soon as a process whose command line holds ``word`` runs under the lab."""
    return lambda found, _elapsed: any(word in command for command in found.values())


def _after(seconds: float) -> Callable[[dict[int, str], float], bool]:
    return lambda _found, elapsed: elapsed >= seconds


rng = random.Random(7)
POINTS = {
    "prometheus-started": _when("prometheus --config.file"),
    "postgres-started": _when("postgres -D"),
    "kubernetes-api-started": _when("diagnose.lab.kubeapi"),
    "sessions-started": _when("diagnose.lab.sessions"),
    "initdb-running": _when("initdb"),
    "random-early": _after(rng.uniform(0.2, 1.0)),
    "random-late": _after(rng.uniform(1.0, 3.0)),
}


CASES = [("running", point) for point in sorted(POINTS)]
CASES += [("up", point) for point in sorted(POINTS) if point != "random-late"]  # up is done by then


@pytest.mark.parametrize(("mode", "point"), CASES, ids=[f"{m}-{p}" for m, p in CASES])
def test_a_lab_killed_while_starting_leaves_no_server_running(
    tmp_path: Path, mode: str, point: str
) -> None:
    """SIGKILL of the lab's process at a point of its start-up: every server it started is
    gone within two seconds (the kernel kills them), and nothing at all is left after the
    watchdog has cleaned up."""
    scenario = conftest.write_scenario(tmp_path / "small-lab")
    reaper = subprocess.Popen(
        [sys.executable, "-c", _SUBREAPER, _LAB, str(scenario), str(tmp_path / "lab"), mode],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reaper.stdout is not None
    try:
        lab_pid = int(json.loads(reaper.stdout.readline())["lab"])
        began = time.monotonic()
        seen: dict[int, str] = {}
        while time.monotonic() - began < 60:
            found = _descendants(lab_pid)
            seen |= found
            if POINTS[point](found, time.monotonic() - began):
                break
            time.sleep(0.003)
        else:
            pytest.fail(f"the lab never reached {point}; it ran {sorted(seen.values())}")
        os.kill(lab_pid, signal.SIGKILL)
        report = json.loads(reaper.stdout.readline())
        assert reaper.wait(timeout=30) == 0
    finally:
        reaper.kill()
        reaper.wait()
        reaper.stdout.close()
    assert report["servers_after_2s"] == {}, report
    assert report["left_after_20s"] == {}, report
