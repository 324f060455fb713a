"""Database findings → root-cause hypotheses and the catalogue fixes that answer them.

Confidence is computed here, by code, from what the probes measured; the fixes are the
catalogue's database actions (``create_index``, ``cancel_query``) with their exact SQL. None of
them is ever executed by the agent: a migration is handed to a human, and cancelling a backend
needs a named human's approval like every other action.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from diagnose.domain import models
from sandbox import findings as found

WAITING_LOCKS = "SELECT count(*) AS waiting FROM pg_stat_activity WHERE wait_event_type = 'Lock'"


@dataclass(frozen=True)
class Advice:
    """One hypothesis a finding supports, and the fix that would answer it (if any)."""

    hypothesis: models.Hypothesis
    fix: models.Fix | None


def advise(findings: Sequence[found.Finding], *, default_database: str) -> list[Advice]:
    """Hypotheses and fixes for every finding, strongest first."""
    advice = [a for f in findings if (a := _advise_one(f, default=default_database))]
    return sorted(advice, key=lambda a: -a.hypothesis.confidence)


def _advise_one(finding: found.Finding, *, default: str) -> Advice | None:
    if isinstance(finding, found.LockPileUp):
        return _lock_pile_up(finding, default=default)
    if isinstance(finding, found.MissingIndex):
        return _missing_index(finding, default=default)
    if isinstance(finding, found.IdleInTransaction):
        return _idle(finding, default=default)
    if isinstance(finding, found.Saturation):
        return _saturation(finding, default=default)
    return None


def _component(database: str | None, *, default: str) -> str:
    return f"postgres/{database or default}"


def _lock_pile_up(finding: found.LockPileUp, *, default: str) -> Advice:
    confidence = min(0.9, 0.5 + 0.1 * min(finding.waiters, 4))
    idle = (finding.blocking_state or "").startswith("idle in transaction")
    hypothesis = models.Hypothesis(
        kind=models.CauseKind.DATABASE,
        component=_component(finding.database, default=default),
        confidence=confidence,
        summary=(
            f"backend {finding.blocking_pid} ({finding.blocking_state or 'unknown state'}, "
            f"{_age(finding.blocking_xact_age_s)} in its transaction) blocks "
            f"{finding.waiters} session(s): {_short(finding.blocking_query)}"
        ),
        evidence=finding.evidence,
    )
    # An idle-in-transaction blocker runs no statement: cancelling does nothing, only ending
    # its session releases the locks. That is riskier, and said so.
    function = "pg_terminate_backend" if idle else "pg_cancel_backend"
    fix = models.Fix(
        id="",
        kind="cancel_query",
        target=f"{hypothesis.component}/pid/{finding.blocking_pid}",
        command=f"SELECT {function}({finding.blocking_pid});",
        dry_run=(
            "SELECT pid, state, now() - xact_start AS in_transaction, query "
            f"FROM pg_stat_activity WHERE pid = {finding.blocking_pid};"
        ),
        rollback="none: the blocker's transaction is rolled back by PostgreSQL; its client "
        "must retry it",
        verify=WAITING_LOCKS,
        risk=models.Risk.HIGH if idle else models.Risk.MEDIUM,
        blast_radius=f"one backend (pid {finding.blocking_pid}, user "
        f"{finding.blocking_user or '?'}, application {finding.blocking_application or '?'})",
        hypothesis=0,
    )
    return Advice(hypothesis, fix)


def _missing_index(finding: found.MissingIndex, *, default: str) -> Advice:
    calls = finding.calls or 0
    weight = min(1.0, math.log10(1 + calls) / 3) * min(1.0, (finding.mean_ms or 0.0) / 50)
    hypothesis = models.Hypothesis(
        kind=models.CauseKind.DATABASE,
        component=_component(finding.database, default=default),
        confidence=round(0.4 + 0.4 * weight, 4),
        summary=(
            f"{finding.schema}.{finding.table} ({finding.table_rows} rows) is scanned "
            f"sequentially for a selective filter on {', '.join(finding.columns)}: "
            f"{calls} calls, {finding.mean_ms or 0:.1f} ms mean: {_short(finding.statement)}"
        ),
        evidence=finding.evidence,
    )
    fix = models.Fix(
        id="",
        kind="create_index",
        target=f"{hypothesis.component}/{finding.schema}.{finding.table}",
        command=finding.migration,
        dry_run=f"EXPLAIN {finding.statement}  -- after the index, expect an index scan",
        rollback=finding.rollback,
        verify=(
            "SELECT calls, mean_exec_time FROM pg_stat_statements WHERE query = "
            + _literal(finding.statement)
        ),
        risk=models.Risk.LOW,
        blast_radius=f"builds an index on {finding.schema}.{finding.table} without blocking "
        "writes (CONCURRENTLY); costs I/O while it builds",
        hypothesis=0,
    )
    return Advice(hypothesis, fix)


def _idle(finding: found.IdleInTransaction, *, default: str) -> Advice:
    hypothesis = models.Hypothesis(
        kind=models.CauseKind.DATABASE,
        component=_component(finding.database, default=default),
        confidence=0.35 if finding.locks_held else 0.25,
        summary=(
            f"backend {finding.pid} idle in transaction for {_age(finding.idle_s)}, holding "
            f"{finding.locks_held} lock(s): {_short(finding.last_query)}"
        ),
        evidence=finding.evidence,
    )
    return Advice(hypothesis, None)


def _saturation(finding: found.Saturation, *, default: str) -> Advice:
    database = finding.name if finding.scope == "database" else None
    hypothesis = models.Hypothesis(
        kind=models.CauseKind.DATABASE,
        component=_component(database, default=default),
        confidence=round(min(0.85, 0.6 * finding.fraction), 4),
        summary=(
            f"connections of {finding.scope} {finding.name} at {finding.connections}/"
            f"{finding.limit} ({finding.fraction:.0%}): new clients will be refused"
        ),
        evidence=finding.evidence,
    )
    return Advice(hypothesis, _connection_limit(finding, component=hypothesis.component))


def _connection_limit(finding: found.Saturation, *, component: str) -> models.Fix | None:
    """Room for more connections where PostgreSQL allows it without a restart: a database's or
    a role's own limit. The server's max_connections needs a restart: no fix offered."""
    if finding.scope not in ("database", "user") or finding.limit <= 0:
        return None
    what = "DATABASE" if finding.scope == "database" else "ROLE"
    name = '"' + finding.name.replace('"', '""') + '"'
    counted = "datname" if finding.scope == "database" else "usename"
    return models.Fix(
        id="",
        kind="raise_limits",
        target=f"{component}/{finding.scope}/{finding.name}",
        command=f"ALTER {what} {name} CONNECTION LIMIT {finding.limit * 2};",
        dry_run=f"SELECT count(*) FROM pg_stat_activity WHERE {counted} = "
        f"{_literal(finding.name)};  -- {finding.connections} of {finding.limit} now",
        rollback=f"ALTER {what} {name} CONNECTION LIMIT {finding.limit};",
        verify=f"SELECT count(*) FROM pg_stat_activity WHERE {counted} = {_literal(finding.name)}",
        risk=models.Risk.MEDIUM,
        blast_radius=f"new connections to {finding.scope} {finding.name} only; the server's "
        "max_connections still caps the total. Find the sessions that leak (idle in "
        "transaction) too: more room only buys time",
        hypothesis=0,
    )


def sweep(fix: Mapping[str, Any], *, others: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The same database fault elsewhere (never fixed here): other tables the probes found
    scanned sequentially for a selective filter, or other blocking sessions. ``others`` are the
    run's database proposals (``{"summary", "fix"}``)."""
    if fix.get("kind") not in ("create_index", "cancel_query"):
        return []
    return [
        {"target": str(other["fix"]["target"]), "why": str(other["summary"])}
        for other in others
        if other["fix"].get("kind") == fix["kind"] and other["fix"]["target"] != fix["target"]
    ]


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "an unknown time"
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _short(text: str | None, limit: int = 160) -> str:
    flat = " ".join((text or "?").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
