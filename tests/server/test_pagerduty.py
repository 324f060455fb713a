"""The PagerDuty client against a local server that answers as PagerDuty's REST API documents
(wrapped entities, error objects, 429 with rate-limit headers), and the note's content."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from connectors import pagerduty
from diagnose.domain import errors
from diagnose.server import intake, jobs
from tests.server.conftest import serving
from tests.server.pagerduty_api import TOKEN, FakePagerDuty, log_entry


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
            retry=dataclasses.replace(pagerduty.RETRY, backoff_s=0.01),
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
            retry=dataclasses.replace(pagerduty.RETRY, attempts=3, backoff_s=0.01),
        )
        with pytest.raises(errors.SourceUnavailable, match="429"):
            client.create_note("PGR0VU2", "x")
        client.close()


def test_retry_waits_at_least_what_the_server_asks() -> None:
    retry = dataclasses.replace(pagerduty.RETRY, backoff_s=0.5, max_wait_s=30)
    assert retry.delay_s(1, asked_s=20) == 20
    assert retry.delay_s(3, asked_s=None) == 2.0
    assert retry.delay_s(1, asked_s=300) == 30


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


def test_the_note_of_an_abstaining_run_calls_its_leader_a_lead_not_a_cause() -> None:
    state: Any = {
        "run_id": "run-2",
        "trigger": {"title": "t", "service": "frontend", "namespace": "shop"},
        "correlation": {
            "hypotheses": [
                {
                    "kind": "resource",
                    "component": "frontend",
                    "change": None,
                    "confidence": 0.2,
                    "summary": "frontend latency up, nothing explains it",
                    "evidence": ["ev-a"],
                    "counter_evidence": [],
                    "onset": None,
                }
            ],
            "abstained": True,
        },
        "fixes": [],
    }
    lines = jobs.note_text(state, run_id="run-2", public_url=None).splitlines()
    assert "No confident root cause: the evidence is too weak to name one." in lines
    assert "Best lead, not confident (20%): frontend latency up, nothing explains it" in lines
    assert not any(line.startswith("Likely cause") for line in lines)


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


def _timeline_of(entries: int) -> list[dict[str, Any]]:
    """An incident's log: triggered, then acknowledged and escalated in turn, then resolved."""
    kinds = ("acknowledge_log_entry", "escalate_log_entry", "notify_log_entry")
    made = [log_entry("R0TRIG", "trigger_log_entry", "2026-03-01T12:00:00Z", summary="Triggered")]
    for n in range(entries - 2):
        kind = kinds[n % len(kinds)]
        at = f"2026-03-01T12:{1 + n // 60:02d}:{n % 60:02d}Z"
        made.append(log_entry(f"R{n:04d}", kind, at, summary=f"{kind} {n}"))
    made.append(
        log_entry("R0RES", "resolve_log_entry", "2026-03-01T14:00:00Z", summary="Resolved by Ann")
    )
    return made


def test_log_entries_are_read_page_by_page_after_waiting_as_a_429_asks() -> None:
    fake = FakePagerDuty(log_entries=_timeline_of(230), busy_log=1, retry_after="7")
    waits: list[float] = []
    with serving(fake.app) as url:
        client = pagerduty.PagerDutyClient(
            token=TOKEN,
            base_url=url,
            retry=dataclasses.replace(pagerduty.RETRY, backoff_s=0.01),
            sleep=waits.append,
        )
        entries = client.list_log_entries("PGR0VU2")
        client.close()
    assert len(entries) == 230 and len({e["id"] for e in entries}) == 230
    assert waits == [7.0]  # Retry-After, not our 10 ms backoff
    pages = [(r["params"]["offset"], r["params"]["limit"]) for r in fake.requests]
    assert pages == [("0", "100"), ("0", "100"), ("100", "100"), ("200", "100")]
    headers = fake.requests[-1]["headers"]
    assert headers["accept"] == "application/vnd.pagerduty+json;version=2"
    assert headers["authorization"] == f"Token token={TOKEN}"


def test_log_entries_stop_at_the_cap_asked_for() -> None:
    fake = FakePagerDuty(log_entries=_timeline_of(60))
    with serving(fake.app) as url:
        client = pagerduty.PagerDutyClient(token=TOKEN, base_url=url)
        entries = client.list_log_entries("PGR0VU2", max_entries=30)
        client.close()
    assert len(entries) == 30
    assert [r["params"]["limit"] for r in fake.requests] == ["30"]


def test_a_resolved_incident_s_draft_shows_its_acknowledgements_and_escalations(
    settings: Any,
) -> None:
    """Through the webhook: each PagerDuty line cites a log entry stored with the job."""
    import httpx

    from diagnose.server import app
    from tests.server import payloads
    from tests.server.conftest import SECRET, drain, make_worker, open_service

    entries = [
        log_entry("R1ACK", "acknowledge_log_entry", "2026-03-01T12:04:00Z", summary=""),
        log_entry("R2ESC", "escalate_log_entry", "2026-03-01T12:09:00Z", summary="Escalated"),
        log_entry("R3NOTE", "annotate_log_entry", "2026-03-01T12:10:00Z", summary="Note added"),
        log_entry("R4RES", "resolve_log_entry", "2026-03-01T12:29:59Z", summary="Resolved by Ann"),
    ]
    fake = FakePagerDuty(log_entries=entries, busy_log=1)
    incident = payloads.incident()
    with serving(fake.app) as pd_url, open_service(settings) as service:
        client = pagerduty.PagerDutyClient(
            token=TOKEN,
            base_url=pd_url,
            from_email="bot@acme.test",
            retry=dataclasses.replace(pagerduty.RETRY, backoff_s=0.01),
        )
        with serving(app.create_app(service)) as url:
            for kind, webhook_id in (("incident.triggered", "t-1"), ("incident.resolved", "r-1")):
                body = payloads.event(kind, incident, event_id=f"ev-{webhook_id}")
                raw, headers = payloads.signed(body, SECRET, webhook_id=webhook_id)
                posted = httpx.post(f"{url}/webhooks/pagerduty", content=raw, headers=headers)
                assert posted.status_code == 202
        worker = make_worker(service)
        worker.tools.pagerduty = client
        assert drain(worker) == 3  # the diagnosis, its note, then the draft
        (job,) = service.queue.list_jobs(kind=intake.POSTMORTEM)
        client.close()
    assert job.state == "done" and job.result is not None
    stored = {
        f"queue-job:{job.id}#log-entry:{e['id']}" for e in job.result["pagerduty_log_entries"]
    }
    assert len(stored) == 4
    text = job.result["markdown"]
    timeline = text.split("## Timeline (UTC)\n", 1)[1].split("\n## ", 1)[0].splitlines()
    logged = [line for line in timeline if "PagerDuty:" in line]
    assert [line.split(": ", 1)[0] for line in logged] == [
        "- 2026-03-01T12:04:00Z",
        "- 2026-03-01T12:09:00Z",
        "- 2026-03-01T12:29:59Z",
    ]
    assert "PagerDuty: acknowledged by Laura Haley" in logged[0]
    assert "PagerDuty: Escalated" in logged[1]
    assert "PagerDuty: Resolved by Ann" in logged[2]
    assert not any("incident.resolved" in line for line in timeline)  # one resolution line
    for line in logged:
        ref = line.rsplit("[", 1)[1].split("]", 1)[0]
        assert ref in stored
        assert f"`{ref}`: " in text  # described under "Evidence cited"
    assert "Note added" not in text


def test_a_draft_says_when_pagerduty_s_log_could_not_be_read(settings: Any) -> None:
    from tests.server import payloads
    from tests.server.conftest import drain, make_worker, open_service

    fake = FakePagerDuty(busy_log=10)
    with serving(fake.app) as pd_url, open_service(settings) as service:
        for kind in ("incident.triggered", "incident.resolved"):
            found = intake.pagerduty_event(
                payloads.event(kind, payloads.incident(), event_id=kind), naming=service.naming
            )
            service.queue.enqueue(found.jobs)
        worker = make_worker(service)
        worker.tools.pagerduty = pagerduty.PagerDutyClient(
            token=TOKEN,
            base_url=pd_url,
            from_email="bot@acme.test",
            retry=dataclasses.replace(pagerduty.RETRY, attempts=2, backoff_s=0.01),
        )
        assert drain(worker) == 3  # the diagnosis, its note, the draft
        (job,) = service.queue.list_jobs(kind=intake.POSTMORTEM)
        worker.tools.pagerduty.close()
    assert job.state == "done" and job.result is not None
    assert job.result["pagerduty_log_entries"] == []
    text = job.result["markdown"]
    assert "The incident's own log could not be read (PagerDuty:" in text
    assert "429" in text
