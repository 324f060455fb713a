"""Attaching to the run a PagerDuty webhook started (``kubectl diagnose --incident``)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from diagnose.domain import errors
from diagnose.server import app, attaching
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
