"""Done when: a diagnosis started by a PagerDuty webhook appears in a Slack thread and its
high-risk fix is approved there by two different Slack users, end to end (the lab's
db-lock-contention scenario: Prometheus and PostgreSQL for real)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from diagnose import wiring
from diagnose.domain import models
from diagnose.lab import lab
from diagnose.server import app, slackblocks, slackjobs
from diagnose.settings import Settings
from tests.server import payloads
from tests.server.conftest import SECRET, drain
from tests.slack.conftest import (
    ALICE,
    BOB,
    CHANNEL,
    SIGNING_SECRET,
    slack_service,
    slack_settings,
    slack_worker,
)
from tests.support import slackapi

pytestmark = [pytest.mark.lab, pytest.mark.slow]

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "db-lock-contention"


@pytest.fixture(scope="module")
def standing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lab.LabRun]:
    workdir = tmp_path_factory.mktemp("lab")
    with lab.running(SCENARIO, now=datetime.now(UTC), workdir=workdir) as run:
        yield run


@pytest.fixture
def diagnosed(
    tmp_path: Path, standing: lab.LabRun, slack_api: slackapi.SlackApi
) -> Iterator[tuple[app.Service, str, Settings]]:
    """A PagerDuty webhook's run of the lab's incident, diagnosed and posted to Slack."""
    base = slack_settings(tmp_path / "state", api_url=slack_api.url, default_namespace="shop")
    settings = wiring.with_endpoints(base, standing.endpoints)
    with slack_service(settings) as (service, url):
        incident = payloads.incident("PLOCK1", service=standing.trigger.service)
        incident["created_at"] = models.format_time(standing.trigger.at)
        body = payloads.event("incident.triggered", incident)
        raw, headers = payloads.signed(body, SECRET)
        posted = httpx.post(f"{url}/webhooks/pagerduty", content=raw, headers=headers)
        assert posted.status_code == 202
        drain(slack_worker(service))
        yield service, url, settings


def _press(url: str, slack_api: slackapi.SlackApi, *, action: str, user: str) -> dict[str, Any]:
    """``user`` presses ``action`` on the thread's parent; the modal Slack was asked to open."""
    parent = slack_api.called("chat.postMessage")[0]
    (buttons,) = [b for b in parent.params["blocks"] if b["type"] == "actions"]
    (button,) = [e for e in buttons["elements"] if e["action_id"] == action]
    payload = slackapi.pressed(
        action, value=button["value"], user=user, channel=CHANNEL, message_ts="1700000000.000001"
    )
    assert slackapi.interact(url, payload, secret=SIGNING_SECRET).status_code == 200
    view: dict[str, Any] = slack_api.called("views.open")[-1].params["view"]
    return view


def _options(view: dict[str, Any], block: str) -> list[str]:
    found = [b for b in view["blocks"] if b.get("block_id") == block]
    return [o["value"] for o in found[0]["element"]["options"]] if found else []


def _approve(
    url: str, slack_api: slackapi.SlackApi, *, user: str, view_id: str, reason: str
) -> httpx.Response:
    view = _press(url, slack_api, action=slackblocks.APPROVE, user=user)
    values = {
        slackblocks.CHECKED: slackapi.checkboxes(_options(view, slackblocks.CHECKED)[0]),
        slackblocks.REASON: slackapi.text(reason),
    }
    if against := _options(view, slackblocks.COUNTER):
        values[slackblocks.COUNTER] = slackapi.checkboxes(against[0])
    payload = slackapi.submitted(view, user=user, values=values, view_id=view_id)
    return slackapi.interact(url, payload, secret=SIGNING_SECRET)


def test_two_slack_users_approve_the_high_risk_fix_and_the_run_proceeds(
    diagnosed: tuple[app.Service, str, Settings], slack_api: slackapi.SlackApi
) -> None:
    """Alice then Bob approve in modals; the run goes on exactly as after two CLI approvals,
    and the audit log holds both approvals bound to the fix's digest."""
    service, url, settings = diagnosed
    (parent,) = [c for c in slack_api.called("chat.postMessage") if not c.params.get("thread_ts")]
    said = json.dumps(parent.params["blocks"])
    assert "Likely cause" in said and "high risk" in said and "Proposed fix" in said
    view = _press(url, slack_api, action=slackblocks.APPROVE, user=ALICE)
    assert _options(view, slackblocks.CHECKED)

    first = _approve(
        url, slack_api, user=ALICE, view_id="VA", reason="the migration holds the lock"
    )
    assert first.json() == {"response_action": "clear"}
    drain(slack_worker(service))
    (job,) = service.queue.list_jobs(kind=slackjobs.DECIDE)
    run_id = str(job.payload["run_id"])
    assert (job.result or {})["outcome"] == "recorded"
    assert service.agent.status(run_id).waiting

    again = _approve(url, slack_api, user=ALICE, view_id="VA2", reason="me again")
    assert again.json()["response_action"] == "errors"
    assert "different person" in again.json()["errors"][slackblocks.REASON]

    second = _approve(url, slack_api, user=BOB, view_id="VB", reason="pg_locks shows it")
    assert second.json() == {"response_action": "clear"}
    drain(slack_worker(service))
    done = service.agent.status(run_id)
    assert done.finished and done.state["decision"]["approver"] == "bob"
    assert [a["approver"] for a in done.state["approvals"]] == ["alice", "bob"]
    (action,) = done.state["actions"]
    assert action["executed"] is False and action["command"]

    log = wiring.open_audit(settings)
    try:
        given = [e["entry"] for e in log.entries(run_id) if e["kind"] == "approval"]
    finally:
        log.close()
    digest = done.state["fixes"][0]["digest"]
    assert [(g["approver"], g["via"], g["fix_digest"]) for g in given] == [
        ("alice", "slack", digest),
        ("bob", "slack", digest),
    ]
    replies = [c.params["text"] for c in slack_api.called("chat.postMessage")[1:]]
    assert any("Approved by bob" in r for r in replies)


def test_a_reason_given_for_rejecting_in_slack_reaches_incident_memory(
    diagnosed: tuple[app.Service, str, Settings], slack_api: slackapi.SlackApi
) -> None:
    """The rejection is remembered with its reason, like any rejection."""
    service, url, settings = diagnosed
    view = _press(url, slack_api, action=slackblocks.REJECT, user=BOB)
    values = {slackblocks.REASON: slackapi.text("a migration is expected tonight")}
    payload = slackapi.submitted(view, user=BOB, values=values, view_id="VR")
    assert slackapi.interact(url, payload, secret=SIGNING_SECRET).status_code == 200
    drain(slack_worker(service))
    (job,) = service.queue.list_jobs(kind=slackjobs.DECIDE)
    run_id = str(job.payload["run_id"])
    memory = wiring.open_memory(settings)
    try:
        hypotheses = service.agent.status(run_id).state["correlation"]["hypotheses"]
        recalled = memory.recall(components=[h["component"] for h in hypotheses], limit=5)
    finally:
        memory.close()
    (remembered,) = [r for r in recalled if r["run_id"] == run_id]
    assert "a migration is expected tonight" in json.dumps(remembered)
