"""POST /slack/interactions and the thread, against the Slack Web API at the wire: runs here
have no metrics, so they reach the approval step with nothing to fix (rejections only)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from diagnose.server import app, slackblocks, slackjobs
from tests.server import payloads
from tests.server.conftest import SECRET, drain
from tests.slack.conftest import (
    ALICE,
    CHANNEL,
    MALLORY,
    SIGNING_SECRET,
    slack_service,
    slack_settings,
    slack_worker,
)
from tests.support import slackapi


@pytest.fixture
def served(tmp_path: Path, slack_api: slackapi.SlackApi) -> Iterator[tuple[app.Service, str]]:
    settings = slack_settings(tmp_path / "state", api_url=slack_api.url)
    with slack_service(settings) as opened:
        yield opened


def _triggered(url: str, *, incident: str = "PSLACK1", event: str = "incident.triggered") -> None:
    body = payloads.event(event, payloads.incident(incident), event_id=f"ev-{event}-{incident}")
    raw, headers = payloads.signed(body, SECRET, webhook_id=f"wh-{event}-{incident}")
    assert httpx.post(f"{url}/webhooks/pagerduty", content=raw, headers=headers).status_code == 202


def _posted(service: app.Service) -> list[dict[str, Any]]:
    return [dict(j.result or {}) for j in service.queue.list_jobs(kind=slackjobs.POST)]


def test_a_webhook_run_is_posted_as_the_incidents_thread_parent(
    served: tuple[app.Service, str], slack_api: slackapi.SlackApi
) -> None:
    """The run's findings go to the channel with Reject offered while it waits."""
    service, url = served
    _triggered(url)
    drain(slack_worker(service))
    (post,) = slack_api.called("chat.postMessage")
    assert post.params["channel"] == CHANNEL and post.token == "xoxb-test-token"
    assert post.params.get("thread_ts") is None
    (result,) = _posted(service)
    assert result["posted"] is True and result["parent"] == result["ts"]
    actions = [b for b in post.params["blocks"] if b["type"] == "actions"]
    assert [e["action_id"] for e in actions[0]["elements"]] == [slackblocks.REJECT]


def test_a_second_run_of_the_incident_updates_the_parent_and_replies_in_its_thread(
    served: tuple[app.Service, str], slack_api: slackapi.SlackApi
) -> None:
    """One parent per incident: a reopened incident's run is a reply under it."""
    service, url = served
    _triggered(url)
    drain(slack_worker(service))
    _triggered(url, event="incident.reopened")
    drain(slack_worker(service))
    first, second = slack_api.called("chat.postMessage")
    (update,) = slack_api.called("chat.update")
    parent = _posted(service)[-1]["parent"]
    assert second.params["thread_ts"] == parent == update.params["ts"]
    assert first.params.get("thread_ts") is None


def test_a_request_with_a_bad_signature_is_refused_with_401(
    served: tuple[app.Service, str],
) -> None:
    """A payload signed with another secret opens nothing."""
    _, url = served
    payload = slackapi.pressed("x", value="{}", user=ALICE, channel=CHANNEL, message_ts="1.1")
    answered = slackapi.interact(url, payload, secret="not-the-signing-secret")
    assert answered.status_code == 401


def test_a_request_signed_more_than_five_minutes_ago_is_refused(
    served: tuple[app.Service, str], slack_api: slackapi.SlackApi
) -> None:
    """A replayed request, even correctly signed, is stale after 5 minutes."""
    _, url = served
    payload = slackapi.pressed("x", value="{}", user=ALICE, channel=CHANNEL, message_ts="1.1")
    stale = int(time.time()) - 6 * 60
    answered = slackapi.interact(url, payload, secret=SIGNING_SECRET, timestamp=stale)
    assert answered.status_code == 401
    assert slack_api.calls == []


def _reject_pressed(
    service: app.Service, slack_api: slackapi.SlackApi, *, user: str
) -> dict[str, Any]:
    """The thread's parent, its Reject button pressed by ``user``: the modal Slack opened."""
    (post,) = slack_api.called("chat.postMessage")
    (actions,) = [b for b in post.params["blocks"] if b["type"] == "actions"]
    (button,) = actions["elements"]
    payload = slackapi.pressed(
        button["action_id"], value=button["value"], user=user, channel=CHANNEL, message_ts="1.5"
    )
    url = service.settings.public_url
    assert url
    assert slackapi.interact(url, payload, secret=SIGNING_SECRET).status_code == 200
    view: dict[str, Any] = slack_api.called("views.open")[-1].params["view"]
    return view


@pytest.fixture
def waiting(tmp_path: Path, slack_api: slackapi.SlackApi) -> Iterator[tuple[app.Service, str]]:
    """A webhook's run waiting at the approval step, posted to Slack."""
    settings = slack_settings(tmp_path / "state", api_url=slack_api.url)
    with slack_service(settings) as (service, url):
        service.settings = settings.model_copy(update={"public_url": url})
        _triggered(url)
        drain(slack_worker(service))
        yield service, url


def test_an_unmapped_slack_user_is_told_who_may_decide(
    waiting: tuple[app.Service, str], slack_api: slackapi.SlackApi
) -> None:
    """A user the approver map does not name gets a notice, not the decision modal."""
    service, _ = waiting
    view = _reject_pressed(service, slack_api, user=MALLORY)
    said = json.dumps(view)
    assert view.get("callback_id") is None and "alice, bob" in said


def test_an_unmapped_user_submitting_a_modal_is_refused_in_the_modal(
    waiting: tuple[app.Service, str], slack_api: slackapi.SlackApi
) -> None:
    """A submission from an unmapped user answers Slack's errors shape; nothing is queued."""
    service, url = waiting
    view = _reject_pressed(service, slack_api, user=ALICE)
    values = {slackblocks.REASON: slackapi.text("not convinced")}
    payload = slackapi.submitted(view, user=MALLORY, values=values)
    answered = slackapi.interact(url, payload, secret=SIGNING_SECRET).json()
    assert answered["response_action"] == "errors"
    assert "alice, bob" in answered["errors"][slackblocks.REASON]
    assert service.queue.list_jobs(kind=slackjobs.DECIDE) == []


def test_a_rejection_in_slack_is_decided_once_however_often_slack_delivers_it(
    waiting: tuple[app.Service, str], slack_api: slackapi.SlackApi
) -> None:
    """The same view submitted twice (a retry) queues one decision; the run is rejected by
    the mapped name, through Slack, and the thread says so."""
    service, url = waiting
    view = _reject_pressed(service, slack_api, user=ALICE)
    values = {slackblocks.REASON: slackapi.text("the database is fine, look elsewhere")}
    payload = slackapi.submitted(view, user=ALICE, values=values, view_id="VREJECT")
    first = slackapi.interact(url, payload, secret=SIGNING_SECRET)
    again = slackapi.interact(url, payload, secret=SIGNING_SECRET, retry=1)
    assert first.json() == {"response_action": "clear"} == again.json()
    assert len(service.queue.list_jobs(kind=slackjobs.DECIDE)) == 1
    drain(slack_worker(service))
    (job,) = service.queue.list_jobs(kind=slackjobs.DECIDE)
    run = service.agent.status(str(job.payload["run_id"]))
    decision = run.state["decision"]
    assert (decision["verdict"], decision["approver"], decision.get("via")) == (
        "reject",
        "alice",
        "slack",
    )
    assert decision["reason"] == "the database is fine, look elsewhere"
    reply = slack_api.called("chat.postMessage")[-1]
    assert reply.params["thread_ts"] == "1.5" and "Rejected by alice" in reply.params["text"]


def test_a_retried_button_press_opens_no_second_modal(
    waiting: tuple[app.Service, str], slack_api: slackapi.SlackApi
) -> None:
    """Slack's retry of a block action (X-Slack-Retry-Num) is acknowledged and ignored."""
    service, url = waiting
    _reject_pressed(service, slack_api, user=ALICE)
    (post,) = slack_api.called("chat.postMessage")
    (actions,) = [b for b in post.params["blocks"] if b["type"] == "actions"]
    (button,) = actions["elements"]
    payload = slackapi.pressed(
        button["action_id"], value=button["value"], user=ALICE, channel=CHANNEL, message_ts="1.5"
    )
    assert slackapi.interact(url, payload, secret=SIGNING_SECRET, retry=1).status_code == 200
    assert len(slack_api.called("views.open")) == 1


def test_slack_down_does_not_fail_the_run(tmp_path: Path) -> None:
    """With Slack unreachable the diagnosis job succeeds; the post job notes why nothing was
    posted."""
    settings = slack_settings(tmp_path / "state", api_url="http://127.0.0.1:9/api/")
    with slack_service(settings) as (service, url):
        _triggered(url)
        drain(slack_worker(service))
        (diagnosis,) = service.queue.list_jobs(kind="diagnose")
        (post,) = service.queue.list_jobs(kind=slackjobs.POST)
    assert diagnosis.state == "done" and (diagnosis.result or {})["waiting"] is True
    assert post.state == "done"
    assert (post.result or {})["posted"] is False
    assert "did not answer" in str((post.result or {})["why"])
