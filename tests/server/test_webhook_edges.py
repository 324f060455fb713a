"""Webhook bodies at the edges of the format: what PagerDuty may leave out is not a reason to
refuse a signed event, and a body built to crash the parser is a 400."""

from __future__ import annotations

import httpx

from diagnose.server import app
from tests.server import payloads
from tests.server.conftest import SECRET


def _post(base_url: str, raw: bytes) -> httpx.Response:
    headers = {
        "X-PagerDuty-Signature": payloads.signing.sign(raw, secret=SECRET),
        "Content-Type": "application/json",
    }
    return httpx.post(f"{base_url}/webhooks/pagerduty", content=raw, headers=headers)


def _signed(body: dict[str, object]) -> bytes:
    return payloads.signed(body, SECRET)[0]


def test_an_incident_without_created_at_fires_at_the_events_occurred_at(
    base_url: str, service: app.Service
) -> None:
    """The trigger falls back to event.occurred_at; the event is queued, not refused."""
    incident = payloads.incident()
    del incident["created_at"]
    response = _post(base_url, _signed(payloads.event("incident.triggered", incident)))
    assert response.status_code == 202, response.text
    (job,) = service.queue.list_jobs()
    assert job.payload["trigger"]["at"] == "2026-03-01T12:30:00Z"


def test_an_unparseable_created_at_also_falls_back_to_occurred_at(
    base_url: str, service: app.Service
) -> None:
    """A created_at that is not a time is treated as absent."""
    incident = payloads.incident() | {"created_at": "yesterday"}
    assert (
        _post(base_url, _signed(payloads.event("incident.triggered", incident))).status_code == 202
    )
    (job,) = service.queue.list_jobs()
    assert job.payload["trigger"]["at"] == "2026-03-01T12:30:00Z"


def test_an_event_with_no_time_at_all_is_refused_with_a_reason(base_url: str) -> None:
    """Without created_at and occurred_at there is no moment to diagnose around: 400, said so."""
    incident = payloads.incident()
    del incident["created_at"]
    body = payloads.event("incident.triggered", incident)
    del body["event"]["occurred_at"]  # type: ignore[attr-defined]
    response = _post(base_url, _signed(body))
    assert response.status_code == 400 and "occurred_at" in response.json()["detail"]


def test_an_incident_without_an_id_is_refused(base_url: str) -> None:
    """The incident id is the one identifier a diagnosis cannot do without."""
    incident = payloads.incident()
    del incident["id"]
    assert (
        _post(base_url, _signed(payloads.event("incident.triggered", incident))).status_code == 400
    )


def test_an_event_type_not_acted_on_is_accepted_whatever_its_data(base_url: str) -> None:
    """A signed ping-like event with no data object is ignored with 202, not refused."""
    body = payloads.event("pagey.ping", {})
    del body["event"]["data"]  # type: ignore[attr-defined]
    response = _post(base_url, _signed(body))
    assert response.status_code == 202 and response.json()["status"] == "ignored"


def test_a_signed_body_of_deeply_nested_brackets_is_a_400(base_url: str) -> None:
    """100,000 nested brackets exhaust the parser's recursion: that is a bad body, not a 500."""
    response = _post(base_url, b"[" * 100_000 + b"]" * 100_000)
    assert response.status_code == 400 and "nests too deeply" in response.json()["detail"]
    assert _post(base_url, b'{"event": ' * 20_000 + b"1" + b"}" * 20_000).status_code == 400


def test_a_deeply_nested_approval_body_is_a_client_error(base_url: str) -> None:
    """The approval API's own JSON parsing refuses it too, with a 4xx."""
    response = httpx.post(
        f"{base_url}/api/v1/runs/r-1/approve",
        content=b"[" * 100_000,
        headers={"Authorization": "Bearer alice-token-123", "Content-Type": "application/json"},
    )
    assert 400 <= response.status_code < 500
