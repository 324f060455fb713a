"""Memory of past incidents: the two stores behave alike, recall ranks by evidence, a rejected
hypothesis is flagged on alike evidence only, and, in the lab, a rejection with its reason is
shown on the next similar incident (report, approval request and terminal)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors import memory
from diagnose import wiring
from diagnose.settings import Settings
from graphs import remembering

BIN = Path(sys.executable).parent
SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
_names = itertools.count()


def _correlation(*signals: str, change: str | None = "deployment/checkout@14") -> dict[str, Any]:
    components: dict[str, list[dict[str, str]]] = {}
    for item in signals:
        component, kind = item.split(":")
        components.setdefault(component, []).append({"kind": kind})
    return {
        "components": [
            {"component": c, "anomalous": True, "signals": s} for c, s in components.items()
        ],
        "hypotheses": [
            {
                "kind": "deploy",
                "component": "checkout",
                "change": change,
                "confidence": 0.8,
                "summary": "the checkout rollout",
            }
        ],
    }


def _state(run_id: str, correlation: dict[str, Any], **more: Any) -> dict[str, Any]:
    trigger = {"title": "5xx", "service": "frontend", "namespace": "shop", "at": "T"}
    now = f"2026-01-0{run_id[-1]}T00:00:00Z"
    return {"run_id": run_id, "now": now, "trigger": trigger, "correlation": correlation} | more


REJECT = {
    "verdict": "reject",
    "approver": "alice",
    "reason": "the payment provider is down",
    "at": "2026-01-01T00:05:00Z",
    "fix": None,
}


@pytest.fixture(params=["sqlite", "postgres"])
def store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[memory.SqliteMemory | memory.PostgresMemory]:
    if request.param == "sqlite":
        opened: Any = memory.SqliteMemory(tmp_path / "memory.sqlite")
    else:
        cluster = request.getfixturevalue("postgres_cluster")
        name = f"memory_{os.getpid()}_{next(_names)}"
        cluster.create_database(name)
        opened = memory.PostgresMemory(cluster.dsn(name))
    try:
        yield opened
    finally:
        opened.close()


def test_a_run_is_recalled_by_any_of_its_components_newest_first(store: Any) -> None:
    first = remembering.run_record(_state("run-1", _correlation("checkout:errors")))
    second = remembering.run_record(_state("run-2", _correlation("checkout:latency")))
    store.record(first)
    store.record(second)
    assert [r["run_id"] for r in store.recall(components=["checkout"], limit=10)] == [
        "run-2",
        "run-1",
    ]
    assert [r["run_id"] for r in store.recall(components=["frontend", "x"], limit=1)] == ["run-2"]
    assert store.recall(components=["payments"], limit=10) == []


def test_recording_a_run_again_replaces_it(store: Any) -> None:
    state = _state("run-1", _correlation("checkout:errors"))
    store.record(remembering.run_record(state))
    store.record(remembering.run_record(state | {"decision": REJECT}))
    (kept,) = store.recall(components=["checkout"], limit=10)
    assert kept["decision"]["reason"] == "the payment provider is down"


def test_a_rejected_hypothesis_is_flagged_on_alike_evidence_only(tmp_path: Path) -> None:
    store = memory.SqliteMemory(tmp_path / "m.sqlite")
    past = _state("run-1", _correlation("checkout:errors", "frontend:errors"), decision=REJECT)
    store.record(remembering.run_record(past))
    alike = remembering.recall(store, _state("run-2", _correlation("checkout:errors")))
    (flag,) = alike["rejected_again"]
    assert (flag["hypothesis"], flag["run_id"], flag["reason"]) == (0, "run-1", REJECT["reason"])
    assert "rejected on evidence this alike" in flag["note"]
    other = _correlation("payments:latency", "cart:cpu", "checkout:memory")
    unlike = remembering.recall(store, _state("run-3", other))
    assert unlike["rejected_again"] == []
    assert [p["run_id"] for p in unlike["similar"]] == ["run-1"]
    moved_on = remembering.recall(
        store, _state("run-4", _correlation("checkout:errors", change="deployment/checkout@15"))
    )
    assert moved_on["rejected_again"] == []
    store.close()


def test_what_turned_out_true_names_the_approved_hypothesis() -> None:
    state = _state(
        "run-1",
        _correlation("checkout:errors"),
        decision={
            "verdict": "approve",
            "approver": "bob",
            "reason": "errors began at 2.14",
            "at": "2026-01-01T00:05:00Z",
            "fix": None,
        }
        | {"fix": "fix-1"},
        fixes=[{"id": "fix-1", "hypothesis": 0}],
    )
    run = remembering.run_record(state)
    assert remembering.outcome(run) == (
        "deploy at checkout (deployment/checkout@14) was confirmed by bob (errors began at 2.14)"
    )


def test_what_turned_out_true_says_how_the_applied_fix_verified() -> None:
    """An approved fix that was applied and watched: its verification's outcome is part of
    what turned out true."""
    approve = REJECT | {"verdict": "approve", "approver": "bob", "reason": "2.14", "fix": "fix-1"}
    verification = {
        "query": "q",
        "watched_s": 300.0,
        "levels": {},
        "outcome": "recovered",
        "why": "back to its baseline",
        "samples": [],
    }
    state = _state(
        "run-1",
        _correlation("checkout:errors"),
        decision=approve,
        fixes=[{"id": "fix-1", "hypothesis": 0}],
        verification=verification,
    )
    assert remembering.outcome(remembering.run_record(state)).endswith("; verification: recovered")


# --- in the lab ---------------------------------------------------------------------------------


def _diagnose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "diagnose"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.lab
@pytest.mark.slow
def test_a_rejection_with_its_reason_is_shown_on_the_next_similar_incident(
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    env |= {"DIAGNOSE_STATE_DIR": str(tmp_path), "NO_COLOR": "1", "COLUMNS": "200"}
    scenario = str(SCENARIOS / "bad-deploy-5xx")
    first = json.loads(_diagnose("run", "--scenario", scenario, "--json", env=env).stdout)
    assert first["past_incidents"] == {"similar": [], "rejected_again": []}
    reason = "checkout 2.14 is innocent: the 500s come from the payment provider's outage"
    rejected = _diagnose(
        "approve", first["run_id"], "--reject", "--approver", "alice", "--reason", reason, env=env
    )
    assert rejected.returncode == 0, rejected.stderr

    second = json.loads(_diagnose("run", "--scenario", scenario, "--json", env=env).stdout)
    (flag,) = second["past_incidents"]["rejected_again"]
    top = second["hypotheses"][flag["hypothesis"]]
    assert (top["kind"], top["component"]) == ("deploy", "checkout")
    assert (flag["run_id"], flag["approver"], flag["reason"]) == (first["run_id"], "alice", reason)
    (similar,) = second["past_incidents"]["similar"]
    assert similar["outcome"].endswith(f"was rejected by alice: {reason}")

    shown = _diagnose("show", second["run_id"], env=env)
    assert f"in run {first['run_id']}: {reason}" in " ".join(shown.stdout.split())
    settings = Settings.from_env({"DIAGNOSE_STATE_DIR": str(tmp_path)})
    with wiring.open_agent(settings, progress=lambda _m: None) as agent:
        question = agent.status(second["run_id"]).question
    assert question is not None  # paused at the approval step
    assert question["past_incidents"]["rejected_again"][0]["reason"] == reason


@pytest.mark.lab
@pytest.mark.slow
def test_evaluation_runs_are_not_kept_as_past_incidents(tmp_path: Path) -> None:
    """``diagnose eval`` rejects every run to finish it: those are not people's decisions."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    env |= {"DIAGNOSE_STATE_DIR": str(tmp_path), "NO_COLOR": "1"}
    done = _diagnose("eval", str(SCENARIOS / "bad-deploy-5xx"), "--json", env=env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["summary"]["scenarios"] == 1
    kept = memory.SqliteMemory(tmp_path / "memory.sqlite")
    try:
        assert kept.recall(components=["frontend", "checkout"], limit=10) == []
    finally:
        kept.close()
