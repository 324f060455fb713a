"""The lab stands a whole scenario up in seconds and leaves no process behind, however it ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from diagnose.domain import errors
from diagnose.lab import lab, processes
from tests.conftest import LabRunFactory
from tests.lab import conftest

pytestmark = pytest.mark.lab


def _gone(pids: tuple[int, ...] | list[int], *, timeout: float = 10.0) -> bool:
    """True once no process of these process groups, nor a child of them, is left (in time).

    Children count apart because PostgreSQL backends start sessions of their own.
    """
    deadline = time.monotonic() + timeout
    while processes.group_members(list(pids)) or any(_children_of(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_the_whole_scenario_is_up_within_a_few_seconds(
    small_scenario: Path, tmp_path: Path
) -> None:
    lines: list[str] = []
    began = time.perf_counter()
    with lab.running(
        small_scenario, now=datetime.now(UTC), workdir=tmp_path / "lab", progress=lines.append
    ) as run:
        elapsed = time.perf_counter() - began
        assert run.endpoints.prometheus_url and run.endpoints.kubernetes_url
        assert run.endpoints.postgres_dsn and run.endpoints.postgres_dsn.endswith("/shop")
        assert set(run.children) == {"prometheus", "kubernetes", "postgres", "sessions"}
    assert elapsed < 10, lines
    assert any(line.startswith("prometheus: listening on http://127.0.0.1:") for line in lines)
    assert _gone(run.pids)


def test_the_trigger_lands_three_minutes_before_now(
    lab_run: LabRunFactory, small_scenario: Path
) -> None:
    run = lab_run(small_scenario)
    ago = datetime.now(UTC) - run.trigger.at
    assert 180 <= ago.total_seconds() < 200
    assert run.scenario.trigger.at == run.trigger.at
    assert run.scenario.truth is not None  # kept for eval; the agent gets only the trigger


def test_without_shifting_the_recorded_times_are_kept(
    lab_run: LabRunFactory, small_scenario: Path
) -> None:
    run = lab_run(small_scenario, shift=False)
    assert run.offset.total_seconds() == 0
    assert run.trigger.at == datetime(2026, 1, 9, 8, 50, tzinfo=UTC)


def test_only_the_servers_the_scenario_needs_are_started(
    lab_run: LabRunFactory, tmp_path: Path
) -> None:
    run = lab_run(conftest.write_scenario(tmp_path / "s", postgres=False, kubernetes=False))
    assert set(run.children) == {"prometheus"}
    assert run.endpoints.kubernetes_url is None and run.endpoints.postgres_dsn is None


def test_an_exception_inside_the_lab_still_stops_everything(
    small_scenario: Path, tmp_path: Path
) -> None:
    pids: tuple[int, ...] = ()
    with (
        pytest.raises(RuntimeError, match="agent crashed"),
        lab.running(small_scenario, now=datetime.now(UTC), workdir=tmp_path / "lab") as run,
    ):
        pids = run.pids
        raise RuntimeError("agent crashed")
    assert len(pids) == 4 and _gone(pids)


def test_a_server_that_fails_to_start_stops_the_others(tmp_path: Path) -> None:
    folder = conftest.write_scenario(tmp_path / "s", kubernetes=False)
    (folder / "postgres" / "setup.sql").write_text("SELECT * FROM no_such_table;\n")
    before = set(_children_of(os.getpid()))
    with (
        pytest.raises(errors.LabError, match="no_such_table"),
        lab.running(folder, now=datetime.now(UTC), workdir=tmp_path / "lab"),
    ):
        pass  # never reached
    assert not any(p for p in _children_of(os.getpid()) if p not in before), (
        "a server outlived the failed start"
    )


def _children_of(parent: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            if int(fields[1]) == parent and fields[0] != "Z":
                found.append(int(entry.name))
    return found


_CHILD = """
import json, signal, sys, time
from datetime import UTC, datetime
from pathlib import Path
from diagnose.lab import lab
# as started from a terminal: whatever the test runner's process ignores or blocks, Ctrl-C is
# Python's KeyboardInterrupt here (an ignored SIGINT would be inherited through exec)
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
with lab.running(Path(sys.argv[1]), now=datetime.now(UTC)) as run:
    print(json.dumps({"pids": run.pids, "workdir": str(run.workdir)}), flush=True)
    time.sleep(120)
"""


@pytest.mark.slow
@pytest.mark.parametrize(
    "signum", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["SIGINT", "SIGTERM", "SIGKILL"]
)
def test_a_signal_to_the_diagnosing_process_stops_every_server(  # SIGKILL: by the watchdog
    small_scenario: Path, signum: int
) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(small_scenario)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        started = json.loads(child.stdout.readline())
        assert len(started["pids"]) == 4 and processes.group_members(started["pids"])
        child.send_signal(signum)
        # each server gets its stop signal, then SIGKILL, each with STOP_TIMEOUT_S to go: on a
        # loaded machine a server slow to stop is waited for, not a failure of this test
        child.wait(timeout=len(started["pids"]) * 2 * processes.STOP_TIMEOUT_S + 30)
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert _gone(started["pids"])
    deadline = time.monotonic() + 10
    while Path(started["workdir"]).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(started["workdir"]).exists()


@pytest.mark.slow
def test_a_detached_lab_is_listed_then_taken_down(small_scenario: Path, tmp_path: Path) -> None:
    state = tmp_path / "state"
    status = lab.up(small_scenario, state_dir=state, now=datetime.now(UTC))
    record = json.loads((state / lab.STATE_FILE).read_text())["small-lab"]
    pids = [child["pid"] for child in record["children"].values()]
    try:
        assert status.name == "small-lab" and not status.dead
        assert status.endpoints.postgres_dsn is not None
        with psycopg.connect(status.endpoints.postgres_dsn) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == ("shop",)
        with pytest.raises(errors.LabError, match="already up"):
            lab.up(small_scenario, state_dir=state, now=datetime.now(UTC))
        assert [s.name for s in lab.status(state_dir=state)] == ["small-lab"]
    finally:
        assert lab.down(None, state_dir=state) == ["small-lab"]
    assert _gone(pids)
    assert lab.status(state_dir=state) == []
    assert not any(Path(folder).exists() for folder in record["dirs"])


@pytest.mark.slow
def test_status_notices_a_server_that_died(tmp_path: Path) -> None:
    folder = conftest.write_scenario(tmp_path / "s", postgres=False)
    state = tmp_path / "state"
    status = lab.up(folder, state_dir=state, now=datetime.now(UTC))
    record = json.loads((state / lab.STATE_FILE).read_text())["small-lab"]
    os.kill(record["children"]["kubernetes"]["pid"], signal.SIGKILL)
    try:
        assert _gone([record["children"]["kubernetes"]["pid"]])
        (seen,) = lab.status(state_dir=state)
        assert seen.dead == ["kubernetes"]
        assert "NOT RUNNING: kubernetes" in str(seen)
    finally:
        lab.down(status.name, state_dir=state)
    assert _gone([child["pid"] for child in record["children"].values()])


def test_down_of_an_unknown_lab_names_the_running_ones(tmp_path: Path) -> None:
    with pytest.raises(errors.LabError, match="no lab named 'nope'"):
        lab.down("nope", state_dir=tmp_path)
