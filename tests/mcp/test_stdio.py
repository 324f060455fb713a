"""``diagnose mcp`` over stdio, driven by the MCP SDK's client: a lab diagnosis started through
it, then read back (the run, its evidence, its report), and nothing approved through it."""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests.mcp import support

pytestmark = [pytest.mark.lab, pytest.mark.slow]

TOOLS = {
    "start_diagnosis",
    "list_runs",
    "show_run",
    "read_evidence",
    "explain_playbook",
    "recent_incidents",
}


REASON = "the rollout was already undone by hand"


@dataclass(frozen=True)
class Started:
    state_dir: Path
    answer: dict[str, Any]


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Started:
    """One lab diagnosis (bad-deploy-5xx) started through the MCP server."""
    state_dir = tmp_path_factory.mktemp("mcp-state")
    client = support.stdio(state_dir, "--scenarios", str(support.SCENARIOS))

    async def body(c: Client) -> dict[str, Any]:
        return await support.call(c, "start_diagnosis", scenario="bad-deploy-5xx")

    return Started(state_dir=state_dir, answer=support.session(client, body))


def _client(started: Started) -> Client:
    return support.stdio(started.state_dir)


def test_the_tools_are_listed_with_descriptions_for_models(tmp_path: Path) -> None:
    """The six tools are listed, each saying when to use it and what it returns; none approves."""

    async def body(c: Client) -> Any:
        return (await c.list_tools()).tools

    tools = support.session(support.stdio(tmp_path), body)
    assert {t.name for t in tools} == TOOLS
    for tool in tools:
        assert "Use it" in (tool.description or ""), tool.name
        assert "Returns" in (tool.description or ""), tool.name
    assert not any("approve" in t.name for t in tools)


def test_a_lab_diagnosis_started_through_mcp_names_the_rollout(started: Started) -> None:
    """The run pauses for a person, names the bad rollout and cites evidence for it."""
    answer = started.answer
    top = answer["hypotheses"][0]
    assert answer["status"] == "waiting_for_approval"
    assert (top["kind"], top["component"]) == ("deploy", "checkout")
    assert top["evidence"] and all(e.startswith("ev-") for e in top["evidence"])
    assert answer["fixes"][0]["kind"] == "rollback"
    assert answer["fixes"][0]["dry_run"]["outcome"] == "accepted"


def test_the_answer_says_how_a_person_approves(started: Started) -> None:
    """A paused run's answer gives the CLI and API commands a person uses; MCP approves nothing."""
    how = started.answer["how_to_approve"]
    run_id = started.answer["run_id"]
    assert f"diagnose approve {run_id}" in how["cli"]
    assert f"/api/v1/runs/{run_id}/approve" in how["api"]


def test_runs_are_listed_and_shown_with_their_evidence(started: Started) -> None:
    """list_runs finds the run waiting; show_run lists every cited evidence id with its query."""
    run_id = started.answer["run_id"]

    async def body(c: Client) -> tuple[dict[str, Any], dict[str, Any]]:
        listed = await support.call(c, "list_runs", waiting_only=True)
        return listed, await support.call(c, "show_run", run_id=run_id)

    listed, shown = support.session(_client(started), body)
    assert [r["run_id"] for r in listed["runs"]] == [run_id]
    assert listed["runs"][0]["status"] == "waiting_for_approval"
    index = {e["id"]: e for e in shown["evidence"]}
    for cited in shown["hypotheses"][0]["evidence"]:
        assert index[cited]["query"], cited


def test_one_piece_of_evidence_is_read_with_its_query(started: Started) -> None:
    """read_evidence gives the cited item's source, status, re-runnable query and raw answer."""
    run_id = started.answer["run_id"]
    cited = started.answer["hypotheses"][0]["evidence"][0]

    async def body(c: Client) -> dict[str, Any]:
        return await support.call(c, "read_evidence", run_id=run_id, evidence_id=cited)

    evidence = support.session(_client(started), body)
    assert evidence["id"] == cited
    assert evidence["status"] == "ok"
    assert evidence["query"]
    assert len(evidence["raw"]) <= 4000


def test_the_report_resource_is_the_runs_report(started: Started) -> None:
    """diagnose://runs/RUN_ID/report is the run's JSON report, with its status."""
    run_id = started.answer["run_id"]

    async def body(c: Client) -> str:
        return await support.read(c, f"diagnose://runs/{run_id}/report")

    report = support.json_of(support.session(_client(started), body))
    assert report["run_id"] == run_id
    assert report["status"] == "waiting_for_approval"
    assert report["hypotheses"][0]["component"] == "checkout"


def test_a_live_diagnosis_with_prometheus_refusing_is_an_answer_with_notes(
    tmp_path: Path,
) -> None:
    """A service diagnosed live while Prometheus refuses: an abstention saying so, not a crash."""

    async def body(c: Client) -> dict[str, Any]:
        return await support.call(
            c, "start_diagnosis", service="checkout", namespace="shop", title="checkout 5xx"
        )

    refused = {"DIAGNOSE_PROMETHEUS_URL": f"http://127.0.0.1:{_closed_port()}"}
    answer = support.session(support.stdio(tmp_path, env=refused), body)
    assert answer["trigger"]["service"] == "checkout"
    assert answer["abstained"] is True
    assert any("refused the connection" in note for note in answer["notes"])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unknown_run_is_an_error_that_says_what_to_do(tmp_path: Path) -> None:
    """Asking for a run that does not exist is a tool error naming list_runs."""

    async def body(c: Client) -> dict[str, Any]:
        return await support.call(c, "show_run", run_id="run-nope")

    assert "list_runs" in support.session(support.stdio(tmp_path), body)["error"]


def test_a_scenario_is_named_never_given_as_a_path(tmp_path: Path) -> None:
    """A scenario outside the --scenarios folder is refused, with the names there are."""

    async def body(c: Client) -> dict[str, Any]:
        return await support.call(c, "start_diagnosis", scenario="../scenarios/bad-deploy-5xx")

    client = support.stdio(tmp_path, "--scenarios", str(support.SCENARIOS))
    error = support.session(client, body)["error"]
    assert "no scenario" in error
    assert "bad-deploy-5xx" in error


def test_the_playbook_an_alert_would_run_is_explained(tmp_path: Path) -> None:
    """An error-rate alert is explained as the http-5xx-ratio playbook, with its queries."""

    async def body(c: Client) -> dict[str, Any]:
        return await support.call(
            c, "explain_playbook", title="checkout 5xx ratio above 5%", service="checkout"
        )

    explained = support.session(support.stdio(tmp_path), body)
    assert explained["playbook"]["name"] == "http-5xx-ratio"
    assert explained["playbook"]["matched_by"] == "title"
    assert explained["playbook"]["queries"]


def test_a_rejected_run_is_a_recent_incident_with_its_reason(started: Started) -> None:
    """Once a person rejects the fix (CLI), recent_incidents lists the run with their reason;
    the postmortem resource drafts it."""
    run_id = started.answer["run_id"]
    done = subprocess.run(
        [
            *support.COMMAND,
            "approve",
            run_id,
            "--reject",
            "--approver",
            "alice",
            "--reason",
            REASON,
        ],
        env=support.environment(started.state_dir),
        cwd=support.ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr

    async def body(c: Client) -> tuple[dict[str, Any], str]:
        recent = await support.call(c, "recent_incidents", services=["checkout"])
        return recent, await support.read(c, f"diagnose://runs/{run_id}/postmortem")

    recent, draft = support.session(_client(started), body)
    incident = recent["incidents"][0]
    assert incident["run_id"] == run_id
    assert incident["decision"]["verdict"] == "reject"
    assert incident["decision"]["reason"] == REASON
    assert "checkout" in draft
