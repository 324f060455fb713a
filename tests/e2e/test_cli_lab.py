"""End to end through the real CLI: a scenario stood up on real servers is diagnosed, pauses at
the approval step, and is finished from another process, with SQLite or PostgreSQL checkpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pexpect
import pytest
import yaml

from tests.support import approvals

pytestmark = [pytest.mark.lab, pytest.mark.slow]

BIN = Path(sys.executable).parent
SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def _env(state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    return env | {"DIAGNOSE_STATE_DIR": str(state_dir), "NO_COLOR": "1", **extra}


def _diagnose(
    *args: str, env: dict[str, str], timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "diagnose"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def _run_json(scenario: str, env: dict[str, str]) -> dict[str, Any]:
    done = _diagnose("run", "--scenario", str(SCENARIOS / scenario), "--json", env=env)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _approve_top(result: dict[str, Any], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    fix = result["fixes"][0]
    return _diagnose(
        "approve",
        result["run_id"],
        "--fix",
        fix["id"],
        "--checked",
        approvals.flag(result["hypotheses"][fix["hypothesis"]]),
        "--approver",
        "alice",
        "--reason",
        "errors began with the rollout",
        "--json",
        env=env,
    )


def test_bad_deploy_is_named_and_paused_for_approval(tmp_path: Path) -> None:
    result = _run_json("bad-deploy-5xx", _env(tmp_path))
    top = result["hypotheses"][0]
    assert (top["kind"], top["component"]) == ("deploy", "checkout")
    assert top["change"] and top["change"].startswith("deployment/checkout@")
    assert result["decision"] is None
    assert result["fixes"] and result["fixes"][0]["kind"] == "rollback"
    evidence_ids = {e["id"] for e in result["evidence"]}
    assert set(top["evidence"]) <= evidence_ids


def test_a_paused_run_is_approved_from_another_process_sqlite(tmp_path: Path) -> None:
    env = _env(tmp_path)
    result = _run_json("bad-deploy-5xx", env)
    done = _approve_top(result, env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["decision"]["approver"] == "alice"
    assert report["actions"][0]["executed"] is False
    trail = json.loads(_diagnose("audit", result["run_id"], "--json", env=env).stdout)
    kinds = [e["kind"] for e in trail]
    assert kinds[: len(result["fixes"])] == ["proposal"] * len(result["fixes"])
    assert kinds[len(result["fixes"]) :] == ["approval", "action", "decision"]
    assert trail[-1]["entry"]["approver"] == "alice"


def test_a_paused_run_is_approved_from_another_process_postgres(
    tmp_path: Path, postgres_cluster: Any
) -> None:
    env = _env(tmp_path, DIAGNOSE_DATABASE_URL=postgres_cluster.dsn())
    result = _run_json("bad-deploy-5xx", env)
    assert not (tmp_path / "runs.sqlite").exists()
    done = _approve_top(result, env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["decision"]["verdict"] == "approve"


def test_killed_at_the_prompt_the_run_is_finished_by_a_new_process(tmp_path: Path) -> None:
    env = _env(tmp_path)
    child = pexpect.spawn(
        str(BIN / "diagnose"),
        ["run", "--scenario", str(SCENARIOS / "bad-deploy-5xx")],
        env=env,
        encoding="utf-8",
        timeout=180,
        dimensions=(50, 250),
    )
    child.expect("Approve which fix")
    run_id = _run_id_from(tmp_path)
    child.kill(signal.SIGKILL)
    child.wait()
    shown = _diagnose("show", run_id, "--json", env=env)
    assert json.loads(shown.stdout)["waiting"] is True
    done = _diagnose(
        "approve", run_id, "--reject", "--approver", "bob", "--reason", "checking first", env=env
    )
    assert done.returncode == 0, done.stderr
    after = json.loads(_diagnose("show", run_id, "--json", env=env).stdout)
    assert after["waiting"] is False and after["decision"]["verdict"] == "reject"


def _run_id_from(state_dir: Path) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        runs = [p.name for p in (state_dir / "bundles").glob("run-*")]
        if runs:
            return runs[0]
        time.sleep(0.1)
    raise AssertionError("no run bundle was written")


def test_unreachable_prometheus_is_reported_and_exits_nothing_concluded(tmp_path: Path) -> None:
    env = _env(
        tmp_path,
        DIAGNOSE_PROMETHEUS_URL="http://127.0.0.1:9",
        DIAGNOSE_KUBERNETES_ENABLED="false",
        DIAGNOSE_PROMETHEUS_TIMEOUT_S="2",
    )
    done = _diagnose("run", "--service", "checkout", "-n", "shop", "--json", env=env)
    assert done.returncode == 3, done.stderr
    result = json.loads(done.stdout)
    assert any("prometheus" in note.lower() for note in result["notes"])
    assert {e["status"] for e in result["evidence"]} == {"error"}


def test_replay_of_a_bundle_gives_the_same_ranking(tmp_path: Path) -> None:
    env = _env(tmp_path)
    result = _run_json("deploy-decoy", env)
    replayed = _diagnose("replay", str(tmp_path / "bundles" / result["run_id"]), "--json", env=env)
    assert replayed.returncode == 0, replayed.stderr
    again = json.loads(replayed.stdout)
    strip = lambda hs: [(h["kind"], h["component"], h["change"]) for h in hs]  # noqa: E731
    assert strip(again["hypotheses"]) == strip(result["hypotheses"])


def _bundled() -> list[str]:
    return sorted(p.parent.name for p in SCENARIOS.glob("*/scenario.yaml"))


@pytest.mark.parametrize("scenario", _bundled())
def test_every_bundled_scenario_is_diagnosed_as_its_truth_says(
    tmp_path: Path, scenario: str
) -> None:
    """The top hypothesis matches the scenario's truth; where the truth has no root cause,
    the agent abstains. (Only the test reads truth; the agent is never given it. Whether the
    agent is confident enough not to abstain on the others is calibration, which `diagnose
    eval` reports.)"""
    truth = yaml.safe_load((SCENARIOS / scenario / "scenario.yaml").read_text())["truth"]
    result = _run_json(scenario, _env(tmp_path))
    cause = truth.get("root_cause")
    if cause is None:
        assert result["abstained"] is True
        return
    top = result["hypotheses"][0]
    assert (top["kind"], top["component"]) == (cause["kind"], cause["component"])
    if cause.get("change"):
        assert top["change"] == cause["change"]
    if (SCENARIOS / scenario / "traces").is_dir():  # an exemplar trace shows the cause
        queries = {e["id"]: e["query"] for e in result["evidence"]}
        assert any("/traces/" in queries.get(ev, "") for ev in top["evidence"])


def test_a_high_risk_database_fix_needs_two_different_approvers(tmp_path: Path) -> None:
    env = _env(tmp_path)
    result = _run_json("db-lock-contention", env)
    fix = result["fixes"][0]
    assert (fix["kind"], fix["risk"]) == ("cancel_query", "high")
    cited = approvals.flag(result["hypotheses"][fix["hypothesis"]])

    def approve(who: str) -> subprocess.CompletedProcess[str]:
        return _diagnose(
            "approve",
            result["run_id"],
            "--fix",
            fix["id"],
            "--checked",
            cited,
            "--approver",
            who,
            "--reason",
            "the migration blocks every writer",
            env=env,
        )

    assert approve("alice").returncode == 0
    assert json.loads(_diagnose("show", result["run_id"], "--json", env=env).stdout)["waiting"]
    assert approve("alice").returncode == 1  # the same person twice is not two approvers
    # bob typed at alice's OS account is still one person; test_approver_identity.py has bob
    # approve through the API and the run go on.
    assert approve("bob").returncode == 1
    assert json.loads(_diagnose("show", result["run_id"], "--json", env=env).stdout)["waiting"]


def test_a_rejection_is_shown_on_the_next_incident_on_the_same_component(tmp_path: Path) -> None:
    env = _env(tmp_path)
    first = _run_json("deploy-decoy", env)
    rejected = _diagnose(
        "approve",
        first["run_id"],
        "--reject",
        "--approver",
        "carol",
        "--reason",
        "cart 4.3.0 was already rolled back by hand",
        env=env,
    )
    assert rejected.returncode == 0, rejected.stderr
    second = _run_json("deploy-decoy", env)
    [past] = [p for p in second["rejected_before"] if p["component"] == "cart"]
    assert past["run_id"] == first["run_id"]
    assert past["approver"] == "carol" and "rolled back by hand" in past["reason"]
