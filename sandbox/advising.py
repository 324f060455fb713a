"""Database findings → root-cause hypotheses and the catalogue fixes that answer them.

Confidence is computed here, by code, from what the probes measured; the fixes are the
catalogue's database actions (``create_index``, ``cancel_query``) with their exact SQL. None of
them is ever executed by the agent: a migration is handed to a human, and cancelling a backend
needs a named human's approval like every other action.

The sweep lists the same fault elsewhere next to a fix, never as part of it: other tables
scanned for a selective filter, other blockers, and, when an index fix is on a foreign key, the
other foreign keys no index serves, each with its own migration for a separate proposal.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pglast import ast, parser

from diagnose.domain import models
from diagnose.domain.models import JSON
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


def sweep(
    fix: Mapping[str, Any],
    *,
    others: Sequence[Mapping[str, Any]],
    foreign_keys: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, str]]:
    """The same database fault elsewhere (never fixed here): other tables the probes found
    scanned sequentially for a selective filter, or other blocking sessions; and, when an index
    fix is on a foreign key's columns, the other unindexed foreign keys (:func:`foreign_key_sweep`).
    ``others`` are the run's database proposals (``{"summary", "fix"}``), ``foreign_keys`` the
    run's :func:`foreign_keys`."""
    if fix.get("kind") not in ("create_index", "cancel_query"):
        return []
    similar = [
        {"target": str(other["fix"]["target"]), "why": str(other["summary"])}
        for other in others
        if other["fix"].get("kind") == fix["kind"] and other["fix"]["target"] != fix["target"]
    ]
    proposed = {str(other["fix"].get("command")) for other in others}
    return similar + [
        item
        for item in foreign_key_sweep(fix, foreign_keys=foreign_keys)
        if item.get("command") not in proposed
    ]


def foreign_keys(
    findings: Sequence[found.Finding], *, default_database: str
) -> list[dict[str, JSON]]:
    """The unindexed foreign keys among the findings, as plain data for the sweep, each naming
    its database. They support no hypothesis on their own: an unindexed foreign key is a latent
    fault, and only a scan the diagnosis found on one makes it part of this incident."""
    return [
        f.to_dict() | {"database": f.database or default_database}
        for f in findings
        if isinstance(f, found.UnindexedForeignKey)
    ]


@dataclass(frozen=True)
class _Index:
    database: str | None
    schema: str
    table: str
    columns: tuple[str, ...]

    def serves(self, key: Mapping[str, Any]) -> bool:
        """Whether the index leads with exactly the key's columns (in any order)."""
        wanted = set(key["columns"])
        return self.on(key) and set(self.columns[: len(wanted)]) == wanted

    def on(self, key: Mapping[str, Any]) -> bool:
        same_database = None in (self.database, key.get("database")) or (
            self.database == key.get("database")
        )
        return same_database and (self.schema, self.table) == (key["schema"], key["table"])


def foreign_key_sweep(
    fix: Mapping[str, Any], *, foreign_keys: Sequence[Mapping[str, Any]]
) -> list[dict[str, str]]:
    """When an index fix is on a table and column of an unindexed foreign key (the scanned
    statement filters on it), the other foreign keys no index serves, the most sequentially
    scanned first, each with its own migration: listed for a separate proposal, never applied
    and never approved with this fix."""
    index = _index_of(fix)
    if index is None:
        return []
    if not any(index.on(key) and set(key["columns"]) & set(index.columns) for key in foreign_keys):
        return []
    rest = [key for key in foreign_keys if not index.serves(key)]
    rest.sort(key=lambda k: (-int(k.get("seq_scan") or 0), -int(k.get("rows_estimate") or 0)))
    return [
        _foreign_key_item(key, index=index, fix_id=str(fix.get("id") or "this fix")) for key in rest
    ]


def _index_of(fix: Mapping[str, Any]) -> _Index | None:
    """The table and leading plain columns of a ``create_index`` fix's migration."""
    if fix.get("kind") != "create_index":
        return None
    try:
        statements = parser.parse_sql(str(fix.get("command") or ""))
    except parser.ParseError:
        return None
    statement = statements[0].stmt if len(statements) == 1 else None
    if not isinstance(statement, ast.IndexStmt) or statement.relation is None:
        return None
    columns: list[str] = []
    for element in statement.indexParams or ():
        if not isinstance(element, ast.IndexElem) or not element.name:
            break  # an expression: the columns after it do not lead
        columns.append(str(element.name))
    parts = str(fix.get("target") or "").split("/")
    return _Index(
        database=parts[1] if len(parts) > 2 and parts[0] == "postgres" else None,
        schema=str(statement.relation.schemaname or "public"),
        table=str(statement.relation.relname),
        columns=tuple(columns),
    )


def _foreign_key_item(key: Mapping[str, Any], *, index: _Index, fix_id: str) -> dict[str, str]:
    columns = ", ".join(key["columns"])
    count = int(key.get("seq_scan") or 0)
    scans = (
        f"{count} sequential scan{'' if count == 1 else 's'}, "
        f"about {key.get('rows_estimate') or 0} rows"
    )
    deletes = key.get("referenced_deletes")
    if deletes:
        scans += f", {deletes} deletes on {key['referenced_table']} each checking it"
    why = (
        f"foreign key {key['constraint']} ({columns}) → {key['referenced_schema']}."
        f"{key['referenced_table']} has no index leading with its columns either: {scans}"
    )
    if index.on(key):
        why = f"also on this table: the proposed index does not lead with ({columns}); " + why
    item = {
        "target": f"postgres/{key['database']}/{key['schema']}.{key['table']}",
        "why": why,
        "kind": "create_index",
        "approval": f"listed only: not applied, and not approved with {fix_id}; "
        "propose it on its own",
    }
    if key.get("migration"):
        return item | {"command": str(key["migration"]), "rollback": str(key["rollback"])}
    return item | {
        "why": why + ". Partitioned: CREATE INDEX CONCURRENTLY cannot build on it; build the "
        "index on each partition concurrently and attach each to one created ON ONLY the table"
    }


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "an unknown time"
    return f"{seconds:.0f}s" if seconds < 120 else f"{seconds / 60:.0f} min"


def _short(text: str | None, limit: int = 160) -> str:
    flat = " ".join((text or "?").split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
