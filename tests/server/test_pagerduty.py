"""The PagerDuty client against a local server that answers as PagerDuty's REST API documents
(wrapped entities, error objects, 429 with rate-limit headers), and the note's content."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import fastapi
import pytest
from fastapi import responses

from connectors import pagerduty
from diagnose.domain import errors
from diagnose.server import intake, jobs
from tests.server.conftest import serving

TOKEN = "y_NbAkKc66ryYTWUXYEu"


class FakePagerDuty:
    """Records requests; fails the first ``busy`` note attempts with 429."""

    def __init__(self, *, busy: int = 0) -> None:
        self.busy = busy
        self.requests: list[dict[str, Any]] = []
        self.app = fastapi.FastAPI()
        self.app.get("/incidents/{incident_id}/alerts")(self.alerts)
        self.app.post("/incidents/{incident_id}/notes")(self.notes)

    def _auth(self, request: fastapi.Request) -> responses.JSONResponse | None:
        if request.headers.get("authorization") != f"Token token={TOKEN}":
            error = {"message": "Authentication failed", "code": 2006}
            return responses.JSONResponse({"error": error}, status_code=401)
        return None

    async def alerts(self, incident_id: str, request: fastapi.Request) -> Any:
        self.requests.append({"path": request.url.path, "headers": dict(request.headers)})
        alert = {
            "id": "PT4KHLK",
            "type": "alert",
            "status": "triggered",
            "body": {
                "type": "alert_body",
                "contexts": [],
                "details": {"labels": {"service": "cart", "namespace": "shop"}},
            },
        }
        return self._auth(request) or {
            "alerts": [alert],
            "limit": 25,
            "offset": 0,
            "more": False,
            "total": None,
        }

    async def notes(self, incident_id: str, request: fastapi.Request) -> Any:
        body = await request.json()
        self.requests.append(
            {"path": request.url.path, "headers": dict(request.headers), "body": body}
        )
        if self.busy:
            self.busy -= 1
            error = {"message": "Rate Limit Exceeded", "code": 2020}
            return responses.JSONResponse(
                {"error": error}, status_code=429, headers={"ratelimit-reset": "0"}
            )
        if not request.headers.get("from"):
            error = {
                "message": "Invalid Input Provided",
                "code": 2001,
                "errors": ["Requester User Not Found"],
            }
            return responses.JSONResponse({"error": error}, status_code=400)
        note = {
            "id": "PWL7QXS",
            "content": body["note"]["content"],
            "created_at": "2026-03-01T12:05:00Z",
            "user": {"id": "PBOT123"},
        }
        return self._auth(request) or responses.JSONResponse({"note": note}, status_code=201)


@pytest.fixture
def fake() -> FakePagerDuty:
    return FakePagerDuty(busy=2)


@pytest.fixture
def client(fake: FakePagerDuty) -> Iterator[pagerduty.PagerDutyClient]:
    with serving(fake.app) as url:
        made = pagerduty.PagerDutyClient(
            token=TOKEN,
            base_url=url,
            from_email="bot@acme.test",
            retry=pagerduty.Retry(backoff_s=0.01),
        )
        yield made
        made.close()


def test_a_note_is_posted_with_the_documented_headers_after_rate_limits(
    client: pagerduty.PagerDutyClient, fake: FakePagerDuty
) -> None:
    note = client.create_note("PGR0VU2", "[diagnose] hello")
    assert note["id"] == "PWL7QXS"
    assert len(fake.requests) == 3  # two 429s, then 201
    headers = fake.requests[-1]["headers"]
    assert headers["accept"] == "application/vnd.pagerduty+json;version=2"
    assert headers["from"] == "bot@acme.test"
    assert fake.requests[-1]["body"] == {"note": {"content": "[diagnose] hello"}}


def test_alerts_are_read_and_their_labels_enrich_the_trigger(
    client: pagerduty.PagerDutyClient,
) -> None:
    alerts = client.list_alerts("PGR0VU2")
    labels = intake.alert_labels(alerts)
    assert (labels["service"], labels["namespace"]) == ("cart", "shop")
    from tests.server import payloads

    trigger = intake.pagerduty_trigger(payloads.incident(), naming=intake.Naming())
    enriched = intake.enrich(trigger, labels=labels, naming=intake.Naming())
    assert (enriched.service, enriched.namespace) == ("cart", "shop")


def test_a_bad_token_is_rejected_without_retrying(fake: FakePagerDuty) -> None:
    with serving(fake.app) as url:
        client = pagerduty.PagerDutyClient(token="wrong", base_url=url)
        with pytest.raises(errors.SourceRejected, match=r"401.*DIAGNOSE_PAGERDUTY_API_TOKEN"):
            client.list_alerts("PGR0VU2")
        client.close()
    assert len(fake.requests) == 1


def test_a_server_that_stays_busy_becomes_source_unavailable() -> None:
    busy = FakePagerDuty(busy=10)
    with serving(busy.app) as url:
        client = pagerduty.PagerDutyClient(
            token=TOKEN,
            base_url=url,
            from_email="b@acme.test",
            retry=pagerduty.Retry(attempts=3, backoff_s=0.01),
        )
        with pytest.raises(errors.SourceUnavailable, match="429"):
            client.create_note("PGR0VU2", "x")
        client.close()


def test_retry_waits_at_least_what_the_server_asks() -> None:
    retry = pagerduty.Retry(backoff_s=0.5, max_wait_s=30)
    assert retry.wait_s(1, asked_s=20) == 20
    assert retry.wait_s(3, asked_s=None) == 2.0
    assert retry.wait_s(1, asked_s=300) == 30


def test_the_note_is_short_and_links_to_the_run() -> None:
    state = {
        "run_id": "run-1",
        "correlation": {
            "hypotheses": [
                {
                    "kind": "deploy",
                    "component": "checkout",
                    "change": None,
                    "confidence": 0.82,
                    "summary": "checkout rollout 14 raised 5xx",
                    "evidence": ["ev-a", "ev-b"],
                    "counter_evidence": [],
                    "onset": None,
                }
            ],
            "abstained": False,
        },
        "fixes": [{"id": "fix-1", "kind": "rollback", "target": "deployment/checkout"}],
    }
    text = jobs.note_text(state, run_id="run-1", public_url="https://diagnose.acme.test/")
    lines = text.splitlines()
    assert lines[0] == "[diagnose] diagnosis run-1"
    assert "Likely cause (82%): checkout rollout 14 raised 5xx" in lines
    assert "needs approval" in text
    assert lines[-1] == "Details and approval: https://diagnose.acme.test/api/v1/runs/run-1"
    assert max(len(line) for line in lines) < 120


def test_a_worker_diagnoses_then_posts_the_findings_on_the_incident(
    client: pagerduty.PagerDutyClient, fake: FakePagerDuty, settings: Any
) -> None:
    from connectors import queue
    from tests.server import payloads
    from tests.server.conftest import drain, make_worker, open_service

    with open_service(settings) as service:
        found = intake.pagerduty_event(
            payloads.event("incident.triggered", payloads.incident()), naming=service.naming
        )
        service.queue.enqueue(found.jobs)
        worker = make_worker(service)
        worker.tools.pagerduty = client
        assert drain(worker) == 2
        diagnosis, note = sorted(service.queue.list_jobs(), key=lambda j: j.id)
        assert diagnosis.kind == queue.DIAGNOSE and note.kind == intake.NOTE
        assert note.result is not None and note.result["posted"] is True
    trigger = diagnosis.payload["trigger"]
    assert trigger["service"] == "checkout"  # the payload as queued; the run saw the alerts
    posted = fake.requests[-1]["body"]["note"]["content"]
    assert posted.startswith(f"[diagnose] diagnosis {diagnosis.run_id}")
