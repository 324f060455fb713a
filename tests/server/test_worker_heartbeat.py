"""``diagnose worker`` keeps a heartbeat file fresh while its job threads work, and
``diagnose worker --check-heartbeat`` (the chart's liveness probe) fails once it is stale."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from diagnose.domain import errors
from diagnose.lab import postgres
from diagnose.server import heartbeat

BIN = Path(sys.executable).parent


def _env(state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    return env | {
        "DIAGNOSE_STATE_DIR": str(state_dir),
        "DIAGNOSE_KUBERNETES_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
        **extra,
    }


def _check(env: dict[str, str], max_age_s: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "diagnose"), "worker", "--check-heartbeat", f"{max_age_s:g}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _until(condition: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.lab
@pytest.mark.timeout(180)
def test_the_heartbeat_goes_stale_while_the_worker_is_stopped(
    tmp_path: Path, postgres_cluster: postgres.PostgresCluster
) -> None:
    name = "hb_" + uuid.uuid4().hex[:8]
    postgres_cluster.create_database(name)
    beat = tmp_path / "beats" / "worker.heartbeat"
    env = _env(
        tmp_path / "state",
        DIAGNOSE_DATABASE_URL=postgres_cluster.dsn(name),
        DIAGNOSE_WORKER_HEARTBEAT_FILE=str(beat),
    )
    log = (tmp_path / "worker.log").open("wb")
    child = subprocess.Popen(
        # One thread: on a fresh database, threads creating the schema at once can collide.
        [str(BIN / "diagnose"), "worker", "--concurrency", "1"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _until(lambda: _check(env, 3).returncode == 0, timeout_s=60, what="no fresh heartbeat")
        assert "worker heartbeat" in _check(env, 3).stdout
        child.send_signal(signal.SIGSTOP)
        _until(lambda: _check(env, 3).returncode == 1, timeout_s=30, what="never went stale")
        stale = _check(env, 3)
        assert "heartbeat" in stale.stderr and "stuck or dead" in stale.stderr
        child.send_signal(signal.SIGCONT)
        _until(lambda: _check(env, 3).returncode == 0, timeout_s=30, what="did not recover")
    finally:
        child.send_signal(signal.SIGCONT)
        child.terminate()
        child.wait(timeout=30)
        log.close()
    assert child.returncode == 0, (tmp_path / "worker.log").read_text()


def test_a_missing_heartbeat_fails_the_check_naming_the_file(tmp_path: Path) -> None:
    done = _check(_env(tmp_path), 60)
    assert done.returncode == 1
    assert f"no worker heartbeat at {tmp_path / 'worker.heartbeat'}" in done.stderr


def test_a_heartbeat_is_fresh_until_it_is_older_than_asked(tmp_path: Path) -> None:
    path = tmp_path / "hb" / "worker.heartbeat"
    heartbeat.write(path, threads=2)
    assert 0 <= heartbeat.age_s(path) < 60
    assert _check(_env(tmp_path, DIAGNOSE_WORKER_HEARTBEAT_FILE=str(path)), 60).returncode == 0
    path.write_text('{"at": 0}', encoding="utf-8")  # written long ago
    old = _check(_env(tmp_path, DIAGNOSE_WORKER_HEARTBEAT_FILE=str(path)), 60)
    assert old.returncode == 1 and "more than 60 s" in old.stderr
    path.write_text("{", encoding="utf-8")
    with pytest.raises(errors.ConfigurationError, match="unreadable worker heartbeat"):
        heartbeat.age_s(path)


def test_a_thread_that_stops_coming_back_is_reported_stale() -> None:
    liveness = heartbeat.Liveness()
    liveness.mark(0)
    liveness.mark(1)
    assert liveness.stale(count=2, within_s=60) == []
    time.sleep(0.05)
    liveness.mark(1)
    assert liveness.stale(count=2, within_s=0.04) == [0]
    assert liveness.stale(count=3, within_s=60) == [2]  # never started
