"""``diagnose run`` posts its finished diagnosis to Slack too, through the workers' code: with
the checkpoint in this machine's SQLite the message says how to approve with ``diagnose
approve``; with it in PostgreSQL, the service's store, the buttons work and the service
resumes the run. Slack failing is a note, never a failed run (the lab's oomkill-memory-limit
scenario, whose fix has counter-evidence against it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from diagnose.lab import postgres
from diagnose.server import slackblocks, slackjobs
from tests.server.conftest import drain
from tests.slack.conftest import (
    ALICE,
    CHANNEL,
    SIGNING_SECRET,
    slack_service,
    slack_settings,
    slack_worker,
)
from tests.support import slackapi

pytestmark = [pytest.mark.lab, pytest.mark.slow]

BIN = Path(sys.executable).parent
SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "oomkill-memory-limit"


def _run(state_dir: Path, *, api_url: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    env |= {
        "NO_COLOR": "1",
        "DIAGNOSE_STATE_DIR": str(state_dir),
        "DIAGNOSE_SLACK_BOT_TOKEN": "xoxb-test-token",
        "DIAGNOSE_SLACK_CHANNEL": CHANNEL,
        "DIAGNOSE_SLACK_API_URL": api_url,
        "DIAGNOSE_SLACK_TIMEOUT_S": "2",
        **extra,
    }
    return subprocess.run(
        [str(BIN / "diagnose"), "run", "--scenario", str(SCENARIO), "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def _said(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks)


def test_a_cli_run_on_a_local_store_is_posted_with_the_commands_to_approve(
    tmp_path: Path, slack_api: slackapi.SlackApi
) -> None:
    """No buttons (the service cannot resume it): diagnose approve with the ids to check."""
    done = _run(tmp_path / "state", api_url=slack_api.url)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    (post,) = slack_api.called("chat.postMessage")
    assert post.params["channel"] == CHANNEL and post.params.get("thread_ts") is None
    blocks = post.params["blocks"]
    assert [b for b in blocks if b["type"] == "actions"] == []
    fix = result["fixes"][0]
    said = _said(blocks)
    assert f"diagnose approve {result['run_id']} --fix {fix['id']}" in said
    assert f"diagnose approve {result['run_id']} --reject" in said
    against = result["hypotheses"][fix["hypothesis"]]["counter_evidence"]
    assert against and f"at least one of the counter-evidence `{against[0]}`" in said


def test_a_cli_run_in_the_services_store_is_approved_with_its_slack_buttons(
    tmp_path: Path, slack_api: slackapi.SlackApi, postgres_cluster: postgres.PostgresCluster
) -> None:
    """Checkpoints in PostgreSQL: Approve opens the modal at the service, and the submitted
    decision resumes the CLI's run there, replying in the CLI's thread; a submission naming no
    counter-evidence (a view without its counter block) is refused by the approval step."""
    name = f"cli_{uuid.uuid4().hex[:8]}"
    postgres_cluster.create_database(name)
    dsn = postgres_cluster.dsn(name)
    done = _run(tmp_path / "cli", api_url=slack_api.url, DIAGNOSE_DATABASE_URL=dsn)
    assert done.returncode == 0, done.stderr
    run_id = json.loads(done.stdout)["run_id"]
    (post,) = slack_api.called("chat.postMessage")
    (buttons,) = [b for b in post.params["blocks"] if b["type"] == "actions"]
    (approve,) = [e for e in buttons["elements"] if e["action_id"] == slackblocks.APPROVE]

    settings = slack_settings(tmp_path / "service", api_url=slack_api.url, database_url=dsn)
    with slack_service(settings) as (service, url):
        pressed = slackapi.pressed(
            slackblocks.APPROVE,
            value=approve["value"],
            user=ALICE,
            channel=CHANNEL,
            message_ts="1700000000.000001",
        )
        assert slackapi.interact(url, pressed, secret=SIGNING_SECRET).status_code == 200
        view: dict[str, Any] = slack_api.called("views.open")[-1].params["view"]
        options = {
            b["block_id"]: [o["value"] for o in b["element"]["options"]]
            for b in view["blocks"]
            if b.get("block_id") in (slackblocks.CHECKED, slackblocks.COUNTER)
        }
        cited = {
            slackblocks.CHECKED: slackapi.checkboxes(options[slackblocks.CHECKED][0]),
            slackblocks.REASON: slackapi.text("memory grew until the kill"),
        }
        stripped = view | {"blocks": [b for b in view["blocks"] if b.get("block_id") != "counter"]}
        _submit(url, slackapi.submitted(stripped, user=ALICE, values=cited, view_id="V0"))
        drain(slack_worker(service))
        (refused,) = service.queue.list_jobs(kind=slackjobs.DECIDE)
        assert (refused.result or {})["outcome"] == "refused"
        assert options[slackblocks.COUNTER][0] in " ".join(refused.result["problems"])

        counter = slackapi.checkboxes(options[slackblocks.COUNTER][0])
        _submit(url, slackapi.submitted(view, user=ALICE, values=cited | {"counter": counter}))
        drain(slack_worker(service))
        job = service.queue.list_jobs(kind=slackjobs.DECIDE)[0]
        assert (job.result or {})["outcome"] == "accepted", job.result
        status = service.agent.status(run_id)
    assert not status.waiting
    decision = status.state.get("decision") or {}
    assert decision.get("approver") == "alice" and decision.get("via") == "slack"
    replies = [c for c in slack_api.called("chat.postMessage") if c.params.get("thread_ts")]
    assert [r.params["thread_ts"] for r in replies] == ["1700000000.000001"] * 2
    assert "Not accepted" in replies[0].params["text"] and "Approved" in replies[1].params["text"]


def _submit(url: str, payload: dict[str, Any]) -> None:
    answered = slackapi.interact(url, payload, secret=SIGNING_SECRET)
    assert answered.json() == {"response_action": "clear"}


def test_slack_unreachable_is_a_note_and_the_run_still_succeeds(tmp_path: Path) -> None:
    """A refused connection to Slack's Web API: exit 0, the result printed, a note on stderr."""
    done = _run(tmp_path / "state", api_url="http://127.0.0.1:9/api/")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["fixes"]
    assert "not posted to Slack" in done.stderr and "the run is unaffected" in done.stderr
