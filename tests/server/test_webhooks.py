"""The webhook receivers, over HTTP against uvicorn listening on loopback."""

from __future__ import annotations

import json
import statistics
import time

import httpx

from diagnose.server import app, intake
from tests.server import payloads
from tests.server.conftest import AM_TOKEN, SECRET, drain, make_worker


def _post(
    base_url: str, body: dict[str, object], *secrets: str, webhook_id: str = "wh-1"
) -> httpx.Response:
    raw, headers = payloads.signed(body, *secrets, webhook_id=webhook_id)
    return httpx.post(f"{base_url}/webhooks/pagerduty", content=raw, headers=headers)


def _triggered(incident_id: str = "PGR0VU2") -> dict[str, object]:
    return payloads.event("incident.triggered", payloads.incident(incident_id))


def test_a_signed_trigger_is_accepted_with_202_and_queues_one_diagnosis(
    base_url: str, service: app.Service
) -> None:
    response = _post(base_url, _triggered(), SECRET)
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    (job,) = service.queue.list_jobs()
    assert job.kind == "diagnose"
    assert job.payload["trigger"]["incident_id"] == "PGR0VU2"
    assert job.payload["trigger"]["service"] == "checkout"
    assert job.payload["trigger"]["at"] == "2026-03-01T12:00:00Z"


def test_a_wrong_signature_is_refused_with_403(base_url: str, service: app.Service) -> None:
    assert _post(base_url, _triggered(), "not-the-secret").status_code == 403
    assert service.queue.list_jobs() == []


def test_a_rotated_secret_signature_among_several_is_accepted(base_url: str) -> None:
    assert _post(base_url, _triggered(), "retired-secret", SECRET).status_code == 202


def test_a_missing_signature_is_refused_with_400(base_url: str) -> None:
    raw = json.dumps(_triggered()).encode()
    response = httpx.post(f"{base_url}/webhooks/pagerduty", content=raw)
    assert response.status_code == 400
    assert "X-PagerDuty-Signature" in response.json()["detail"]


def test_malformed_json_is_refused_with_400(base_url: str) -> None:
    raw = b'{"event": '
    headers = {"X-PagerDuty-Signature": payloads.signing.sign(raw, secret=SECRET)}
    assert (
        httpx.post(f"{base_url}/webhooks/pagerduty", content=raw, headers=headers).status_code
        == 400
    )


def test_json_of_the_wrong_shape_is_refused_with_400(base_url: str) -> None:
    assert _post(base_url, {"messages": []}, SECRET).status_code == 400


def test_an_oversized_body_is_refused_with_413(base_url: str, service: app.Service) -> None:
    big = payloads.incident()
    big["title"] = "x" * (service.settings.webhook_max_bytes + 1)
    assert _post(base_url, payloads.event("incident.triggered", big), SECRET).status_code == 413


def test_a_redelivered_webhook_id_creates_no_second_job(
    base_url: str, service: app.Service
) -> None:
    first = _post(base_url, _triggered(), SECRET, webhook_id="same")
    again = _post(base_url, _triggered(), SECRET, webhook_id="same")
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json()["status"] == "duplicate"
    assert len(service.queue.list_jobs()) == 1


def test_two_deliveries_of_one_incident_collapse_to_one_run(
    base_url: str, service: app.Service
) -> None:
    _post(base_url, _triggered(), SECRET, webhook_id="a")
    second = _post(base_url, _triggered(), SECRET, webhook_id="b")
    assert second.json()["status"] == "deduplicated"
    assert len(service.queue.list_jobs()) == 1


def test_a_reopened_incident_queues_a_new_run(base_url: str, service: app.Service) -> None:
    _post(base_url, _triggered(), SECRET, webhook_id="a")
    reopened = payloads.event("incident.reopened", payloads.incident(), event_id="ev-reopen")
    assert _post(base_url, reopened, SECRET, webhook_id="b").json()["status"] == "queued"
    assert len({j.run_id for j in service.queue.list_jobs()}) == 2


def test_the_reply_comes_well_inside_pagerdutys_five_seconds(base_url: str) -> None:
    took = []
    for n in range(10):
        began = time.perf_counter()
        response = _post(base_url, _triggered(f"PLAT{n}"), SECRET, webhook_id=f"lat-{n}")
        took.append(time.perf_counter() - began)
        assert response.status_code == 202
    assert statistics.median(took) < 0.25
    assert max(took) < 2.0


def test_a_note_we_posted_ourselves_is_ignored(base_url: str, service: app.Service) -> None:
    ours = payloads.event("incident.annotated", payloads.note("[diagnose] diagnosis run-1"))
    by_bot = payloads.event("incident.annotated", payloads.note("edited"), agent_id="PBOT123")
    for n, body in enumerate([ours, by_bot]):
        response = _post(base_url, body, SECRET, webhook_id=f"note-{n}")
        assert response.status_code == 202
        assert response.json() == {"status": "ignored", "reason": "our own note"}
    assert service.queue.list_jobs() == []


def test_a_resolved_incident_gets_a_postmortem_draft_from_its_run(
    base_url: str, service: app.Service
) -> None:
    _post(base_url, _triggered(), SECRET, webhook_id="t")
    resolved = payloads.event("incident.resolved", payloads.incident(), event_id="ev-res")
    assert _post(base_url, resolved, SECRET, webhook_id="r").status_code == 202
    assert drain(make_worker(service)) == 2
    (postmortem,) = service.queue.list_jobs(kind=intake.POSTMORTEM)
    assert postmortem.state == "done"
    assert postmortem.result is not None
    markdown = postmortem.result["markdown"]
    assert markdown.startswith("# Postmortem draft: checkout 5xx ratio above 5%")
    assert "2026-03-01T12:00:00Z: alert fired" in markdown
    assert postmortem.result["run_id"] == service.queue.list_jobs(kind="diagnose")[0].run_id


def test_alertmanager_firing_alerts_queue_one_run_per_fingerprint(
    base_url: str, service: app.Service
) -> None:
    body = payloads.alertmanager(
        payloads.am_alert("fp-a", service="checkout"),
        payloads.am_alert("fp-b", service="cart"),
        payloads.am_alert("fp-c", service="search", status="resolved"),
    )
    headers = {"Authorization": f"Bearer {AM_TOKEN}"}
    first = httpx.post(f"{base_url}/webhooks/alertmanager", json=body, headers=headers)
    repeat = httpx.post(f"{base_url}/webhooks/alertmanager", json=body, headers=headers)
    assert (first.status_code, repeat.status_code) == (202, 202)
    assert repeat.json()["status"] == "deduplicated"
    jobs = sorted(service.queue.list_jobs(), key=lambda j: j.ordering_key)
    assert [j.ordering_key for j in jobs] == ["alertmanager:fp-a", "alertmanager:fp-b"]
    trigger = jobs[0].payload["trigger"]
    assert (trigger["service"], trigger["namespace"]) == ("checkout", "shop")


def test_alertmanager_without_its_token_is_refused_with_401(base_url: str) -> None:
    body = payloads.alertmanager(payloads.am_alert("fp-a", service="checkout"))
    assert httpx.post(f"{base_url}/webhooks/alertmanager", json=body).status_code == 401


def test_health_readiness_and_metrics_answer(base_url: str) -> None:
    _post(base_url, _triggered(), SECRET)
    assert httpx.get(f"{base_url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{base_url}/readyz").json() == {"status": "ready"}
    metrics = httpx.get(f"{base_url}/metrics").text
    assert 'diagnose_webhooks_total{outcome="queued",source="pagerduty"} 1.0' in metrics
