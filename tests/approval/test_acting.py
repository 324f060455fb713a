"""The act step on its own, with the cluster writer faked at its port: database fixes are
never executed, and nothing is sent without an approval on record for that exact fix."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors import audit, bundle
from diagnose.domain import models
from graphs import acting, approval
from graphs.state import Context, ExecutionPolicy

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class RecordingWriter:
    """A ClusterWriter port that records what it is asked and accepts everything."""

    def __init__(self) -> None:
        self.sent: list[tuple[Any, bool, str]] = []

    def resolve(self, action: Any) -> models.Evidence:
        raise AssertionError("act never resolves: it sends the patch approved")

    def patch(self, request: Any, *, dry_run: bool, marker: str) -> models.Evidence:
        self.sent.append((request, dry_run, marker))
        return models.Evidence.make(
            source="kubernetes",
            query="kubectl patch",
            window=None,
            status=models.Status.OK,
            summary="applied",
            raw={"outcome": "accepted", "code": 200, "message": "applied", "result": {}},
        )

    def marker(self, request: Any) -> str | None:
        return None


def _fix(fix_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": fix_id,
        "kind": "rollback",
        "target": "deployment/checkout",
        "command": "kubectl rollout undo deployment/checkout -n shop",
        "rollback": "kubectl rollout undo deployment/checkout -n shop --to-revision=14",
        "verify": "",
        "risk": "medium",
        "hypothesis": 0,
        "action": {"op": "rollback", "kind": "deployment", "namespace": "shop", "name": "checkout"},
        "patch": {"path": "/apis/apps/v1/namespaces/shop/deployments/checkout", "body": []},
    } | extra


INDEX = _fix(
    "fix-2",
    kind="create_index",
    target="postgres/shop/public.orders",
    command="CREATE INDEX CONCURRENTLY orders_customer_id_idx ON public.orders (customer_id);",
    risk="low",
    action=None,
    patch=None,
)


@pytest.fixture
def log(tmp_path: Path) -> Iterator[audit.SqliteAudit]:
    opened = audit.SqliteAudit(tmp_path / "audit.sqlite")
    yield opened
    opened.close()


def _context(tmp_path: Path, log: audit.SqliteAudit, writer: RecordingWriter) -> Context:
    return Context(
        store=bundle.FileEvidenceStore(tmp_path / "bundles"),
        audit=log,
        executor=writer,
        execution=ExecutionPolicy(enabled=True, watch_s=1, interval_s=1),
        clock=lambda: NOW,
    )


def _approved(
    fix: dict[str, Any], log: audit.SqliteAudit, *, record: bool = True, risk: str = "medium"
) -> Any:
    """A run's state in which ``fix`` was proposed and approved by alice (and recorded in the
    audit log, if asked); the rollback proposed with ``risk``."""
    fixes = [_fix("fix-1", risk=risk), INDEX]
    state: Any = {"run_id": "run-1", "fixes": fixes}
    for f in fixes:
        f["digest"] = approval.digest(f, run_id="run-1")
        log.append("run-1", kind="proposal", key=f"proposal:{f['id']}", entry={"fix": f})
    decision = models.Decision(
        verdict=models.Verdict.APPROVE,
        approver="alice",
        reason="checked",
        at=NOW,
        fix=fix["id"],
        checked_evidence=("ev-1",),
        fix_digest=approval.digest(next(f for f in fixes if f["id"] == fix["id"]), run_id="run-1"),
    ).to_dict()
    if record:
        log.append("run-1", kind="approval", key=f"approval:{fix['id']}:alice", entry=decision)
    return state | {"decision": decision, "approvals": [decision]}


def test_an_approved_database_fix_is_handed_over_even_in_execution_mode(
    tmp_path: Path, log: audit.SqliteAudit
) -> None:
    writer = RecordingWriter()
    update = acting.act(_approved(INDEX, log), context=_context(tmp_path, log, writer))
    (action,) = update["actions"]
    assert (action["executed"], action["outcome"]) == (False, "handed over")
    assert action["command"] == INDEX["command"]
    assert "never writes to the database" in action["why_not_executed"]
    assert writer.sent == []


def test_an_approval_missing_from_the_audit_log_sends_nothing(
    tmp_path: Path, log: audit.SqliteAudit
) -> None:
    writer = RecordingWriter()
    state = _approved(_fix("fix-1"), log, record=False)
    update = acting.act(state, context=_context(tmp_path, log, writer))
    (action,) = update["actions"]
    assert (
        action["outcome"] == "refused"
        and "audit log holds no approval" in (action["why_not_executed"])
    )
    assert writer.sent == []


def test_a_recorded_approval_sends_the_patch_once_with_its_key(
    tmp_path: Path, log: audit.SqliteAudit
) -> None:
    writer = RecordingWriter()
    context = _context(tmp_path, log, writer)
    state = _approved(_fix("fix-1"), log)
    first = acting.act(state, context=context)["actions"][0]
    again = acting.act(state, context=context)["actions"][0]
    ((request, dry_run, marker),) = writer.sent
    fix = state["fixes"][0]
    assert (request, dry_run) == (fix["patch"], False)
    assert marker == approval.action_key(fix, run_id="run-1") == first["key"]
    assert again["resumed"] is True and again["key"] == first["key"]


def test_a_high_risk_fix_with_one_recorded_approver_sends_nothing(
    tmp_path: Path, log: audit.SqliteAudit
) -> None:
    writer = RecordingWriter()
    state = _approved(_fix("fix-1"), log, risk="high")
    update = acting.act(state, context=_context(tmp_path, log, writer))
    (action,) = update["actions"]
    assert action["outcome"] == "refused" and "high risk" in action["why_not_executed"]
    assert writer.sent == []
