"""`kubectl diagnose --incident ID` attaches to the run a PagerDuty webhook started in the
service, and `kubectl diagnose approve` records the decision, both run by kubectl itself."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from benchmarks import webhooks
from diagnose.domain import models
from diagnose.lab import lab, postgres
from diagnose.server import signing
from tests.support import approvals

BIN = Path(sys.executable).parent
SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "bad-deploy-5xx"
INCIDENT = "PKUBE42"


def _kubectl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "diagnose", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )


def _triggered(incident_id: str, *, at: str) -> bytes:
    incident = {
        "id": incident_id,
        "type": "incident",
        "html_url": f"https://acme.pagerduty.com/incidents/{incident_id}",
        "number": 42,
        "status": "triggered",
        "created_at": at,
        "title": "checkout: 5xx ratio above 5% for 5m",
        "service": {"id": "PSVC42", "summary": "checkout", "type": "service_reference"},
        "urgency": "high",
    }
    event = {
        "id": "ev-kube-42",
        "event_type": "incident.triggered",
        "resource_type": "incident",
        "occurred_at": at,
        "agent": None,
        "data": incident,
    }
    return json.dumps({"event": event}).encode()


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_plugin_list_finds_the_installed_plugin() -> None:
    env = os.environ | {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    listed = subprocess.run(
        ["kubectl", "plugin", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert str(BIN / "kubectl-diagnose") in listed.stdout.splitlines()


@pytest.mark.lab
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_attaches_to_the_webhooks_run_and_approves_it(
    tmp_path: Path, postgres_cluster: postgres.PostgresCluster
) -> None:
    database = "kubectl_" + uuid.uuid4().hex[:8]
    postgres_cluster.create_database(database)
    base = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    base |= {"PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    lab_env = base | {"DIAGNOSE_STATE_DIR": str(tmp_path / "lab-state")}
    up = subprocess.run(
        [str(BIN / "diagnose"), "lab", "up", str(SCENARIO)],
        env=lab_env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert up.returncode == 0, up.stderr
    try:
        [held] = lab.status(state_dir=tmp_path / "lab-state" / "lab")
        shared = base | {
            "DIAGNOSE_DATABASE_URL": postgres_cluster.dsn(database),
            "DIAGNOSE_PROMETHEUS_URL": str(held.endpoints.prometheus_url),
            "DIAGNOSE_KUBERNETES_URL": str(held.endpoints.kubernetes_url),
            "DIAGNOSE_DEFAULT_NAMESPACE": "shop",
        }
        service_env = shared | {
            "DIAGNOSE_STATE_DIR": str(tmp_path / "service"),
            "DIAGNOSE_PAGERDUTY_WEBHOOK_SECRET": webhooks.SECRET,
        }
        user_env = shared | {"DIAGNOSE_STATE_DIR": str(tmp_path / "user")}
        at = models.format_time(held.trigger.at)
        result = _attach_and_approve(service_env, user_env, at=at)
    finally:
        subprocess.run([str(BIN / "diagnose"), "lab", "down"], env=lab_env, timeout=60)
    decision = result["decision"]
    assert (decision["verdict"], decision["approver"]) == ("approve", "alice")


def _attach_and_approve(
    service_env: dict[str, str], user_env: dict[str, str], *, at: str
) -> dict[str, Any]:
    """Serve, deliver the incident, follow it with kubectl, approve it with kubectl."""
    port = webhooks.free_port()
    log = Path(service_env["DIAGNOSE_STATE_DIR"]) / "serve.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(BIN / "diagnose"), "serve", "--workers", "1", "--port", str(port)],
            env=service_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            webhooks.wait_ready(url, server=server, log=log)
            body = _triggered(INCIDENT, at=at)
            headers = {
                "Content-Type": "application/json",
                "X-Webhook-Id": "wh-kube-42",
                signing.HEADER: signing.sign(body, secret=webhooks.SECRET),
            }
            posted = httpx.post(f"{url}/webhooks/pagerduty", content=body, headers=headers)
            assert posted.status_code == 202 and posted.json()["status"] == "queued"
            return _follow_and_approve(user_env)
        finally:
            server.terminate()
            server.wait(timeout=30)


def _follow_and_approve(env: dict[str, str]) -> dict[str, Any]:
    followed = _kubectl("--incident", INCIDENT, "--timeout", "180", "--json", env=env)
    assert followed.returncode == 0, followed.stderr
    assert "waiting for approval" in followed.stderr
    run = json.loads(followed.stdout)
    assert run["incident_id"] == INCIDENT and run["waiting"] is True
    assert run["job"]["state"] == "done" and run["job"]["run_id"] == run["run_id"]
    top = run["hypotheses"][0]
    assert (top["kind"], top["component"]) == ("deploy", "checkout")
    fix = run["fixes"][0]
    approved = _kubectl(
        "approve",
        run["run_id"],
        "--fix",
        fix["id"],
        "--checked",
        approvals.flag(run["hypotheses"][fix["hypothesis"]]),
        "--approver",
        "alice",
        "--reason",
        "5xx began with the rollout",
        env=env,
    )
    assert approved.returncode == 0, approved.stderr
    again = _kubectl("--incident", INCIDENT, "--no-follow", "--json", env=env)
    assert again.returncode == 0, again.stderr
    after = json.loads(again.stdout)
    assert after["run_id"] == run["run_id"] and after["waiting"] is False
    return dict(after)
