"""No route to an action but an approval of that exact fix, through the HTTP API and the CLI:
reading a run sends nothing, a forged or replayed answer is refused, and an approval sends the
approved patch once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from diagnose.lab import kubeapi, lab
from diagnose.server import app
from diagnose.settings import Settings
from graphs import diagnosis
from tests.approval.conftest import approval_of, lab_settings, writes
from tests.server.conftest import TOKENS, open_service, serving

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ALICE = {"Authorization": "Bearer alice-token-123"}
BIN = Path(sys.executable).parent


def test_verify_and_act_are_reachable_only_through_approve() -> None:
    edges: dict[str, set[str]] = {}
    for edge in diagnosis.build().get_graph().edges:
        edges.setdefault(edge.source, set()).add(edge.target)
    into = {target: {s for s, ts in edges.items() if target in ts} for target in ("act", "verify")}
    assert into == {"act": {"approve"}, "verify": {"act"}}


@pytest.fixture
def served(
    bad_deploy: lab.LabRun, kube: kubeapi.KubeApiServer, tmp_path: Path
) -> Iterator[tuple[str, app.Service]]:
    settings = lab_settings(
        bad_deploy, kube, state_dir=tmp_path / "s", execute=True, api_tokens=TOKENS
    )
    with open_service(settings) as service, serving(app.create_app(service)) as url:
        yield url, service


def _started(service: app.Service, trigger: Any) -> Any:
    return service.agent.start(trigger)


def test_api_reads_send_nothing_and_a_forged_body_is_refused(
    served: tuple[str, app.Service], bad_deploy: lab.LabRun, kube: kubeapi.KubeApiServer
) -> None:
    url, service = served
    paused = _started(service, bad_deploy.trigger)
    run = f"{url}/api/v1/runs/{paused.run_id}"
    shown = httpx.get(run, headers=ALICE).json()
    assert shown["waiting"] and shown["question"]["what_would_prove_it_wrong"]
    a, b = (f for f in paused.state["fixes"] if f.get("action"))
    forged = {
        "fix": b["id"],
        "fix_digest": a["digest"],
        "reason": "approving A's content under B's id",
        "checked_evidence": approval_of(paused, b["id"])["checked_evidence"],
    }
    refused = httpx.post(f"{run}/approve", json=forged, headers=ALICE)
    assert refused.status_code == 422 and "not the fix you read" in refused.json()["detail"]
    as_bob = forged | {"fix_digest": b["digest"], "approver": "bob"}
    assert httpx.post(f"{run}/approve", json=as_bob, headers=ALICE).status_code == 422
    assert httpx.get(run, headers=ALICE).json()["waiting"] is True
    assert writes(kube, dry_run=False) == []


def test_api_approval_sends_the_patch_once_and_a_replay_conflicts(
    served: tuple[str, app.Service], bad_deploy: lab.LabRun, kube: kubeapi.KubeApiServer
) -> None:
    url, service = served
    paused = _started(service, bad_deploy.trigger)
    fix = paused.state["fixes"][0]
    body = {
        "fix": fix["id"],
        "fix_digest": fix["digest"],
        "reason": "5xx began with rev 14",
        "checked_evidence": approval_of(paused, fix["id"])["checked_evidence"],
    }
    run = f"{url}/api/v1/runs/{paused.run_id}"
    done = httpx.post(f"{run}/approve", json=body, headers=ALICE, timeout=60)
    assert done.status_code == 200, done.text
    assert done.json()["report"]["actions"][0]["outcome"] == "accepted"
    replay = httpx.post(f"{run}/approve", json=body, headers=ALICE, timeout=60)
    assert replay.status_code == 409
    assert len(writes(kube, dry_run=False)) == 1


def _cli_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    return env | {
        "NO_COLOR": "1",
        "DIAGNOSE_STATE_DIR": str(settings.state_dir),
        "DIAGNOSE_PROMETHEUS_URL": str(settings.prometheus_url),
        "DIAGNOSE_KUBERNETES_URL": str(settings.kubernetes_url),
        "DIAGNOSE_KUBERNETES_WRITE_URL": str(settings.kubernetes_write_url),
        "DIAGNOSE_EXECUTE": "true",
        "DIAGNOSE_VERIFY_WATCH_S": "1",
        "DIAGNOSE_VERIFY_INTERVAL_S": "0.5",
    }


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "diagnose"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


def test_cli_refuses_forged_arguments_and_sends_the_approved_patch_once(
    bad_deploy: lab.LabRun, kube: kubeapi.KubeApiServer, agents: Any, tmp_path: Path
) -> None:
    settings = lab_settings(bad_deploy, kube, state_dir=tmp_path / "s", execute=True)
    paused = agents(settings).start(bad_deploy.trigger)
    env = _cli_env(settings)
    a, b = (f for f in paused.state["fixes"] if f.get("action"))
    checked = ",".join(approval_of(paused, b["id"])["checked_evidence"])
    common = ["--approver", "alice", "--reason", "why not", "--checked", checked]
    forged = _cli(
        "approve", paused.run_id, "--fix", b["id"], "--digest", a["digest"], *common, env=env
    )
    assert forged.returncode != 0 and "not the fix you read" in forged.stderr
    nothing = _cli("finish", paused.run_id, "--json", env=env)
    assert nothing.returncode == 0, nothing.stderr
    shown = json.loads(_cli("show", paused.run_id, "--json", env=env).stdout)
    assert shown["waiting"] is True
    assert writes(kube, dry_run=False) == []
    checked = ",".join(approval_of(paused, a["id"])["checked_evidence"])
    common = ["--approver", "alice", "--reason", "5xx began with rev 14", "--checked", checked]
    done = _cli(
        "approve",
        paused.run_id,
        "--fix",
        a["id"],
        "--digest",
        a["digest"],
        *common,
        "--json",
        env=env,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["actions"][0]["outcome"] == "accepted"
    again = _cli("approve", paused.run_id, "--fix", a["id"], *common, env=env)
    assert again.returncode != 0
    assert len(writes(kube, dry_run=False)) == 1
