"""The approval API: bearer tokens name the user, and the user is the approver recorded."""

from __future__ import annotations

import httpx
import pytest

from diagnose.server import app
from tests.server import payloads
from tests.server.conftest import SECRET, drain, make_worker

ALICE = {"Authorization": "Bearer alice-token-123"}


@pytest.fixture
def run_id(base_url: str, service: app.Service) -> str:
    """A PagerDuty-triggered run, diagnosed by a worker and waiting at the approval step."""
    raw, headers = payloads.signed(
        payloads.event("incident.triggered", payloads.incident()), SECRET
    )
    assert (
        httpx.post(f"{base_url}/webhooks/pagerduty", content=raw, headers=headers).status_code
        == 202
    )
    assert drain(make_worker(service)) == 1
    (job,) = service.queue.list_jobs()
    assert job.result is not None and job.result["waiting"] is True
    return str(job.run_id)


def test_without_a_token_the_api_answers_401(base_url: str, run_id: str) -> None:
    response = httpx.get(f"{base_url}/api/v1/runs")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_an_unknown_token_is_refused_with_401(base_url: str, run_id: str) -> None:
    headers = {"Authorization": "Bearer alice-token-12"}
    assert httpx.get(f"{base_url}/api/v1/runs/{run_id}", headers=headers).status_code == 401


def test_pending_runs_are_listed_and_shown(base_url: str, run_id: str) -> None:
    pending = httpx.get(f"{base_url}/api/v1/runs", headers=ALICE).json()["pending"]
    assert [p["run_id"] for p in pending] == [run_id]
    assert pending[0]["incident_id"] == "PGR0VU2"
    shown = httpx.get(f"{base_url}/api/v1/runs/{run_id}", headers=ALICE).json()
    assert shown["waiting"] is True
    assert shown["question"]["run_id"] == run_id


def test_a_body_naming_another_approver_is_refused(base_url: str, run_id: str) -> None:
    body = {"reason": "looks fine", "approver": "bob"}
    response = httpx.post(f"{base_url}/api/v1/runs/{run_id}/reject", json=body, headers=ALICE)
    assert response.status_code == 422
    shown = httpx.get(f"{base_url}/api/v1/runs/{run_id}", headers=ALICE).json()
    assert shown["waiting"] is True


def test_the_decision_records_the_authenticated_user(base_url: str, run_id: str) -> None:
    body = {"reason": "no evidence to act on"}
    response = httpx.post(f"{base_url}/api/v1/runs/{run_id}/reject", json=body, headers=ALICE)
    assert response.status_code == 200
    decision = response.json()["decision"]
    assert (decision["approver"], decision["verdict"]) == ("alice", "reject")
    assert httpx.get(f"{base_url}/api/v1/runs", headers=ALICE).json()["pending"] == []


def test_approving_a_fix_that_was_not_proposed_is_refused_with_422(
    base_url: str, run_id: str
) -> None:
    body = {"fix": "fix-9", "reason": "try it", "checked_evidence": []}
    response = httpx.post(f"{base_url}/api/v1/runs/{run_id}/approve", json=body, headers=ALICE)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("not accepted")


def test_answering_a_finished_run_again_conflicts(base_url: str, run_id: str) -> None:
    body = {"reason": "done"}
    url = f"{base_url}/api/v1/runs/{run_id}/reject"
    assert httpx.post(url, json=body, headers=ALICE).status_code == 200
    assert httpx.post(url, json=body, headers=ALICE).status_code == 409


def test_an_unknown_run_is_404(base_url: str) -> None:
    assert httpx.get(f"{base_url}/api/v1/runs/run-nope", headers=ALICE).status_code == 404
