"""Through the real CLI, the kubectl plugin and the HTTP API: a high-risk fix needs two people,
not two spellings of one name nor two names typed at one OS account; each approval records the
accounts it came from."""

from __future__ import annotations

import json
import os
import pwd
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from diagnose.server import app
from tests.server.conftest import make_settings, open_service, serving
from tests.support import approvals

pytestmark = [pytest.mark.lab, pytest.mark.slow]

BIN = Path(sys.executable).parent
SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
BOB = {"Authorization": "Bearer bob-token-4567"}


def _env(state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    return env | {"DIAGNOSE_STATE_DIR": str(state_dir), "NO_COLOR": "1", **extra}


def _cli(program: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / program), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


def _kubeconfig(path: Path) -> Path:
    """A kubeconfig whose current context uses the credentials named ``alice-admin``."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "prod", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "alice-admin", "user": {"token": "not-a-real-token-0123"}}],
        "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "alice-admin"}}],
        "current-context": "prod",
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_one_person_cannot_approve_a_high_risk_fix_twice_by_any_path(tmp_path: Path) -> None:
    """Spellings of alice and bob typed at alice's OS account are refused; bob through the API
    completes the rule; the audit log shows the accounts behind each approval."""
    env = _env(tmp_path / "state")
    done = _cli(
        "diagnose", "run", "--scenario", str(SCENARIOS / "db-lock-contention"), "--json", env=env
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    fix = result["fixes"][0]
    assert fix["risk"] == "high"
    cited = approvals.flag(result["hypotheses"][fix["hypothesis"]])
    run_id = result["run_id"]

    def approve(program: str, who: str, **extra: str) -> subprocess.CompletedProcess[str]:
        args = ("approve", run_id, "--fix", fix["id"], "--checked", cited, "--approver", who)
        return _cli(
            program, *args, "--reason", "the migration blocks every writer", env=env | extra
        )

    first = approve("kubectl-diagnose", "alice", KUBECONFIG=str(_kubeconfig(tmp_path / "kc")))
    assert first.returncode == 0 and "still waits" in first.stderr, first.stderr
    for spelling in ("alice ", "ALICE", "ａｌｉｃｅ"):
        again = approve("diagnose", spelling)
        assert again.returncode == 1 and "different person" in again.stderr, again.stderr
    as_bob = approve("diagnose", "bob")
    assert as_bob.returncode == 1 and "OS account" in " ".join(as_bob.stderr.split())

    settings = make_settings(tmp_path / "state")
    with open_service(settings) as service, serving(app.create_app(service)) as url:
        body = {
            "fix": fix["id"],
            "checked_evidence": cited.split(","),
            "reason": "checked the locks",
        }
        answered = httpx.post(f"{url}/api/v1/runs/{run_id}/approve", json=body, headers=BOB)
    assert answered.status_code == 200, answered.text
    assert answered.json()["waiting"] is False

    trail = json.loads(_cli("diagnose", "audit", run_id, "--json", env=env).stdout)
    given = [e["entry"] for e in trail if e["kind"] == "approval"]
    me = f"{pwd.getpwuid(os.getuid()).pw_name}@{socket.gethostname()}"
    assert [(g["approver"], g.get("via"), g.get("os_user"), g.get("kube_user")) for g in given] == [
        ("alice", "kubectl", me, "alice-admin"),
        ("bob", "api", None, None),
    ]
