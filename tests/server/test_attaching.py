"""Attaching to the run a PagerDuty webhook started (``kubectl diagnose --incident``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from connectors import queue
from diagnose import cli
from diagnose.domain import errors
from diagnose.server import app, attaching, intake
from diagnose.settings import Settings
from tests.server import payloads
from tests.server.conftest import SECRET, drain, make_settings, make_worker


def _trigger(base_url: str, incident_id: str) -> None:
    body = payloads.event("incident.triggered", payloads.incident(incident_id))
    raw, headers = payloads.signed(body, SECRET, webhook_id=f"wh-{incident_id}")
    response = httpx.post(f"{base_url}/webhooks/pagerduty", content=raw, headers=headers)
    assert response.status_code == 202


def test_following_an_incident_reports_each_state_until_the_run_waits_for_approval(
    base_url: str, service: app.Service
) -> None:
    _trigger(base_url, "PFOLLOW1")
    said: list[str] = []
    found = attaching.follow(
        service.queue,
        service.agent,
        incident_id="PFOLLOW1",
        timeout_s=60,
        progress=said.append,
        sleep=lambda _s: drain(make_worker(service)),
    )
    assert found.settled and found.paused is not None and found.paused.waiting
    (job,) = service.queue.list_jobs()
    assert found.job.run_id == job.run_id == found.paused.run_id
    assert found.paused.state["trigger"]["incident_id"] == "PFOLLOW1"
    assert said == [f"{job.run_id}: queued", f"{job.run_id}: waiting for approval"]


def test_a_queued_run_is_shown_as_queued_when_the_wait_runs_out(
    base_url: str, service: app.Service
) -> None:
    _trigger(base_url, "PSLOW1")
    ticks = iter(range(100))
    found = attaching.follow(
        service.queue,
        service.agent,
        incident_id="PSLOW1",
        timeout_s=3,
        progress=lambda _m: None,
        clock=lambda: float(next(ticks)),
        sleep=lambda _s: None,
    )
    assert not found.settled and found.paused is None
    assert found.job.state == "queued" and found.job.run_id


def test_the_newest_diagnosis_of_a_reopened_incident_is_the_one_followed(
    base_url: str, service: app.Service
) -> None:
    _trigger(base_url, "PREOPEN1")
    reopened = payloads.event(
        "incident.reopened", payloads.incident("PREOPEN1"), event_id="ev-reopen"
    )
    raw, headers = payloads.signed(reopened, SECRET, webhook_id="wh-reopen")
    assert httpx.post(f"{base_url}/webhooks/pagerduty", content=raw, headers=headers).is_success
    newest = max(service.queue.list_jobs(), key=lambda j: j.id)
    found = attaching.look(service.queue, service.agent, incident_id="PREOPEN1")
    assert found.job.id == newest.id


def test_an_incident_no_webhook_started_is_a_clear_error(service: app.Service) -> None:
    with pytest.raises(errors.RunNotFound, match="no diagnosis for PagerDuty incident PNONE"):
        attaching.look(service.queue, service.agent, incident_id="PNONE")


def test_a_missing_sqlite_queue_is_refused_not_created(tmp_path: Path) -> None:
    settings: Settings = make_settings(tmp_path / "empty")
    with pytest.raises(errors.RunNotFound, match="DIAGNOSE_DATABASE_URL"):
        attaching.open_queue(settings)
    assert not (tmp_path / "empty" / "queue.sqlite").exists()


def _cli(state_dir: Path, *args: str) -> Any:
    env = {"DIAGNOSE_STATE_DIR": str(state_dir), "DIAGNOSE_KUBERNETES_ENABLED": "false"}
    return CliRunner().invoke(cli.app, list(args), env=env)


def _job(incident_id: str) -> queue.NewJob:
    trigger = payloads.event("incident.triggered", payloads.incident(incident_id))
    found = intake.pagerduty_event(trigger, naming=intake.Naming())
    (job,) = found.jobs
    return job


def test_the_command_says_a_run_still_queued_when_the_wait_runs_out(tmp_path: Path) -> None:
    store = queue.SqliteQueue(tmp_path / "queue.sqlite")
    try:
        store.enqueue([_job("PCLI1")])
    finally:
        store.close()
    done = _cli(tmp_path, "--incident", "PCLI1", "--timeout", "0")
    assert done.exit_code == cli.EXIT_NOTHING_CONCLUDED
    assert "still queued" in done.stderr and "queued" in done.stderr


def test_the_command_fails_with_the_workers_error_when_the_job_failed(tmp_path: Path) -> None:
    store = queue.SqliteQueue(tmp_path / "queue.sqlite", max_attempts=1)
    try:
        store.enqueue([_job("PCLI2")])
        claimed = store.claim("w", lease_s=30, max_running=4)
        assert claimed is not None
        store.fail(claimed.id, worker="w", error="Prometheus refused", retry_in_s=0)
    finally:
        store.close()
    done = _cli(tmp_path, "--incident", "PCLI2", "--json")
    assert done.exit_code == cli.EXIT_UNUSABLE
    shown = json.loads(done.stdout)
    assert shown["job"]["state"] == "failed" and shown["job"]["error"] == "Prometheus refused"
    assert "failed after 1 attempts: Prometheus refused" in done.stderr


def test_incident_with_a_command_is_refused(tmp_path: Path) -> None:
    done = _cli(tmp_path, "--incident", "P1", "show", "run-x")
    assert done.exit_code == cli.EXIT_UNUSABLE
    assert "without a command" in done.stderr
