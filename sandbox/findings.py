"""What the probe evidence says, as structured findings. Pure functions over evidence.

- :class:`MissingIndex`: a generic plan scans a large table sequentially under a selective
  filter; with the ``CREATE INDEX CONCURRENTLY`` migration that would serve it (never run here).
- :class:`LockPileUp`: one backend at the root of a blocking chain, its query and its waiters;
  with the statement that would end it, which needs a human's approval.
- :class:`Saturation`: connections of the server, a database or a user near their limit.
- :class:`IdleInTransaction`: a session sitting in an open transaction, holding its locks.
- :class:`UnindexedForeignKey`: a foreign key no index leads with; a latent fault, not a cause on
  its own: the sweep lists them next to an index fix on a foreign key (sandbox/advising.py).

Each finding cites the evidence ids it was read from and converts to plain data (``to_dict``);
the graph turns findings into hypotheses and fixes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pglast import ast, enums, parser

from diagnose.domain.models import JSON, Evidence, Status

_EQUALITY = {"=", "IN"}
_RANGE = {"<", ">", "<=", ">=", "BETWEEN"}
_MAX_INDEX_COLUMNS = 3


@dataclass(frozen=True)
class Thresholds:
    """When evidence becomes a finding."""

    large_table_rows: int = 10_000
    """A sequential scan matters from this many live rows."""

    selective_fraction: float = 0.05
    """A filter is selective when it returns at most this fraction of the table's rows."""

    saturation_fraction: float = 0.8
    """Connections at this fraction of their limit are saturation."""

    idle_in_transaction_s: float = 5.0
    """An open transaction idle this long is worth naming."""


@dataclass(frozen=True)
class MissingIndex:
    database: str | None
    schema: str
    table: str
    columns: tuple[str, ...]
    statement: str
    table_rows: int
    rows_per_call: float | None
    calls: int | None
    mean_ms: float | None
    migration: str
    rollback: str
    evidence: tuple[str, ...]
    kind: str = "missing_index"

    def to_dict(self) -> dict[str, JSON]:
        return _plain(self)


@dataclass(frozen=True)
class LockPileUp:
    database: str | None
    blocking_pid: int
    blocking_query: str | None
    blocking_state: str | None
    blocking_user: str | None
    blocking_application: str | None
    blocking_xact_age_s: float | None
    waiters: int
    waiting_pids: tuple[int, ...]
    proposal: str
    proposal_note: str
    evidence: tuple[str, ...]
    needs_approval: bool = True
    kind: str = "lock_pile_up"

    def to_dict(self) -> dict[str, JSON]:
        return _plain(self)


@dataclass(frozen=True)
class Saturation:
    scope: str  # server | database | user
    name: str
    connections: int
    limit: int
    fraction: float
    evidence: tuple[str, ...]
    kind: str = "saturation"

    def to_dict(self) -> dict[str, JSON]:
        return _plain(self)


@dataclass(frozen=True)
class IdleInTransaction:
    database: str | None
    pid: int
    user: str | None
    application: str | None
    idle_s: float
    locks_held: int
    last_query: str | None
    evidence: tuple[str, ...]
    kind: str = "idle_in_transaction"

    def to_dict(self) -> dict[str, JSON]:
        return _plain(self)


@dataclass(frozen=True)
class UnindexedForeignKey:
    """A foreign key whose columns no valid, non-partial index on its table leads with."""

    database: str | None
    schema: str
    table: str
    constraint: str
    columns: tuple[str, ...]
    referenced_schema: str
    referenced_table: str
    partitioned: bool
    rows_estimate: int
    bytes_estimate: int
    seq_scan: int
    seq_tup_read: int
    idx_scan: int
    referenced_deletes: int | None
    migration: str | None
    """None on a partitioned table: CREATE INDEX CONCURRENTLY cannot build on one."""
    rollback: str | None
    evidence: tuple[str, ...]
    kind: str = "unindexed_foreign_key"

    def to_dict(self) -> dict[str, JSON]:
        return _plain(self)


Finding = MissingIndex | LockPileUp | Saturation | IdleInTransaction | UnindexedForeignKey


def find_all(
    evidence: Sequence[Evidence], *, thresholds: Thresholds | None = None
) -> list[Finding]:
    """Every finding the evidence supports, lock pile-ups first."""
    limits = thresholds or Thresholds()
    return [
        *find_lock_pile_ups(evidence),
        *find_missing_indexes(evidence, thresholds=limits),
        *find_saturation(evidence, thresholds=limits),
        *find_idle_in_transaction(evidence, thresholds=limits),
        *find_unindexed_foreign_keys(evidence),
    ]


# --- missing indexes --------------------------------------------------------------------------


def find_missing_indexes(
    evidence: Sequence[Evidence], *, thresholds: Thresholds
) -> list[MissingIndex]:
    """Sequential scans with a selective filter on a large table, from generic plans."""
    tables = _by_table(_rows_of(evidence, "sequential_scans"))
    stats = _by_statement(evidence)
    found: dict[tuple[str, str, tuple[str, ...]], MissingIndex] = {}
    for item in _probe_evidence(evidence, "explain_generic"):
        statement = str(item.raw.get("statement") or "")
        for scan in _seq_scans(_plan_of(item)):
            finding = _missing_index(
                item, scan, statement=statement, table=tables.get(str(scan["Relation Name"])),
                stats=stats.get(statement), thresholds=thresholds,
            )  # fmt: skip
            if finding is not None:
                found.setdefault((finding.schema, finding.table, finding.columns), finding)
    return list(found.values())


def _missing_index(
    item: Evidence,
    scan: Mapping[str, Any],
    *,
    statement: str,
    table: tuple[Evidence, dict[str, JSON]] | None,
    stats: tuple[Evidence, dict[str, JSON]] | None,
    thresholds: Thresholds,
) -> MissingIndex | None:
    if table is None:
        return None
    table_item, table_row = table
    live = int(table_row.get("n_live_tup") or 0)
    columns = filter_columns(str(scan.get("Filter") or ""))
    if live < thresholds.large_table_rows or not columns:
        return None
    returned = _number(stats[1].get("rows_per_call")) if stats else None
    expected = returned if returned is not None else float(scan.get("Plan Rows") or 0)
    if expected > live * thresholds.selective_fraction:
        return None
    schema, name = str(table_row.get("schema") or "public"), str(scan["Relation Name"])
    cited = (item.id, table_item.id, *((stats[0].id,) if stats else ()))
    return MissingIndex(
        database=item.raw.get("database"), schema=schema, table=name, columns=columns,
        statement=statement, table_rows=live, rows_per_call=returned,
        calls=int(stats[1]["calls"]) if stats and stats[1].get("calls") is not None else None,
        mean_ms=_number(stats[1].get("mean_ms")) if stats else None,
        migration=create_index_statement(schema, name, columns),
        rollback=drop_index_statement(schema, name, columns),
        evidence=tuple(dict.fromkeys(cited)),
    )  # fmt: skip


def filter_columns(condition: str) -> tuple[str, ...]:
    """Columns a plan's ``Filter`` compares with a value: equalities first, then at most one
    range, as an index should list them."""
    if not condition:
        return ()
    try:
        statement = parser.parse_sql(f"SELECT 1 WHERE {condition}")[0].stmt
    except parser.ParseError:
        return ()
    equal: list[str] = []
    ranged: list[str] = []
    for node in _walk(statement):
        if isinstance(node, ast.A_Expr):
            column, operator = _compared_column(node)
            if column and operator in _EQUALITY and column not in equal:
                equal.append(column)
            elif column and operator in _RANGE and column not in ranged:
                ranged.append(column)
    chosen = equal + [c for c in ranged[:1] if c not in equal]
    return tuple(chosen[:_MAX_INDEX_COLUMNS])


def create_index_statement(schema: str, table: str, columns: Sequence[str]) -> str:
    """The migration a human would run (never run here): built without locking writes."""
    name = index_name(table, columns)
    column_list = ", ".join(_ident(c) for c in columns)
    return (
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {_ident(name)} "
        f"ON {_ident(schema)}.{_ident(table)} ({column_list});"
    )


def drop_index_statement(schema: str, table: str, columns: Sequence[str]) -> str:
    """The rollback of :func:`create_index_statement`."""
    return (
        f"DROP INDEX CONCURRENTLY IF EXISTS {_ident(schema)}.{_ident(index_name(table, columns))};"
    )


def index_name(table: str, columns: Sequence[str]) -> str:
    return f"{table}_{'_'.join(columns)}_idx"[:63]


def _compared_column(node: ast.A_Expr) -> tuple[str | None, str]:
    operator = str(node.name[-1].sval) if node.name else ""
    kind = node.kind
    if kind in (enums.A_Expr_Kind.AEXPR_IN, enums.A_Expr_Kind.AEXPR_OP_ANY) and operator == "=":
        operator = "IN"
    elif kind is enums.A_Expr_Kind.AEXPR_BETWEEN:
        operator = "BETWEEN"
    elif kind is not enums.A_Expr_Kind.AEXPR_OP:
        return None, operator
    columns = [c for c in (_column_of(node.lexpr), _column_of(node.rexpr)) if c]
    return (columns[0], operator) if len(columns) == 1 else (None, operator)


def _column_of(node: object) -> str | None:
    while isinstance(node, ast.TypeCast):
        node = node.arg
    if isinstance(node, ast.ColumnRef) and node.fields:
        last = node.fields[-1]
        return str(last.sval) if isinstance(last, ast.String) else None
    return None


def _seq_scans(plan: Mapping[str, Any] | None) -> Iterator[Mapping[str, Any]]:
    if not plan:
        return
    if plan.get("Node Type") == "Seq Scan" and plan.get("Filter") and plan.get("Relation Name"):
        yield plan
    for child in plan.get("Plans") or ():
        yield from _seq_scans(child)


def _plan_of(item: Evidence) -> Mapping[str, Any] | None:
    rows = item.raw.get("rows") or []
    document = rows[0][0] if rows and rows[0] else None
    if isinstance(document, list) and document and isinstance(document[0], dict):
        plan = document[0].get("Plan")
        return plan if isinstance(plan, dict) else None
    return None


def _by_table(
    rows: Sequence[tuple[Evidence, dict[str, JSON]]],
) -> dict[str, tuple[Evidence, dict[str, JSON]]]:
    tables: dict[str, tuple[Evidence, dict[str, JSON]]] = {}
    for item, row in rows:
        tables.setdefault(str(row.get("table")), (item, row))
    return tables


def _by_statement(evidence: Sequence[Evidence]) -> dict[str, tuple[Evidence, dict[str, JSON]]]:
    stats: dict[str, tuple[Evidence, dict[str, JSON]]] = {}
    for probe in ("top_statements_by_mean_time", "top_statements_by_total_time"):
        for item, row in _rows_of(evidence, probe):
            stats.setdefault(str(row.get("query")), (item, row))
    return stats


# --- unindexed foreign keys ------------------------------------------------------------------


def find_unindexed_foreign_keys(evidence: Sequence[Evidence]) -> list[UnindexedForeignKey]:
    """Every foreign key the ``unindexed_foreign_keys`` probe reported, the most sequentially
    scanned tables first, then the largest."""
    found = [_unindexed(item, row) for item, row in _rows_of(evidence, "unindexed_foreign_keys")]
    return sorted(found, key=lambda f: (-f.seq_scan, -f.rows_estimate, f.schema, f.table))


def _unindexed(item: Evidence, row: dict[str, JSON]) -> UnindexedForeignKey:
    schema, table = str(row["schema"]), str(row["table"])
    listed = row.get("columns")
    columns = tuple(str(c) for c in listed) if isinstance(listed, list) else ()
    partitioned = row.get("relkind") == "p"
    return UnindexedForeignKey(
        database=item.raw.get("database"), schema=schema, table=table,
        constraint=str(row["constraint"]), columns=columns,
        referenced_schema=str(row["referenced_schema"]),
        referenced_table=str(row["referenced_table"]), partitioned=partitioned,
        rows_estimate=int(row.get("rows_estimate") or 0),
        bytes_estimate=int(row.get("table_bytes_estimate") or 0),
        seq_scan=int(row.get("seq_scan") or 0), seq_tup_read=int(row.get("seq_tup_read") or 0),
        idx_scan=int(row.get("idx_scan") or 0),
        referenced_deletes=_integer(row.get("referenced_deletes")),
        migration=None if partitioned else create_index_statement(schema, table, columns),
        rollback=None if partitioned else drop_index_statement(schema, table, columns),
        evidence=(item.id,),
    )  # fmt: skip


# --- lock pile-ups ----------------------------------------------------------------------------


def find_lock_pile_ups(evidence: Sequence[Evidence]) -> list[LockPileUp]:
    """Root blockers of blocking chains, each with every backend waiting on it (directly or
    not), the most waiters first."""
    rows = _rows_of(evidence, "blocking_chains")
    blocked_by: dict[int, set[int]] = defaultdict(set)
    for _, row in rows:
        blocked_by[int(row["waiting_pid"])].add(int(row["blocking_pid"]))
    roots = {int(r["blocking_pid"]): (item, r) for item, r in rows if r.get("blocker_is_root")}
    found = [
        _pile_up(item, row, waiting=_waiting_on(pid, blocked_by))
        for pid, (item, row) in roots.items()
    ]
    return sorted(found, key=lambda f: -f.waiters)


def _waiting_on(root: int, blocked_by: Mapping[int, set[int]]) -> tuple[int, ...]:
    waiting: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {w for w, bs in blocked_by.items() if bs & frontier and w not in waiting}
        waiting |= frontier
    return tuple(sorted(waiting - {root}))


def _pile_up(item: Evidence, row: dict[str, JSON], *, waiting: tuple[int, ...]) -> LockPileUp:
    pid = int(row["blocking_pid"])
    state = row.get("blocking_state")
    if state == "active":
        proposal = f"SELECT pg_cancel_backend({pid});"
        note = "cancels the blocker's running statement; its transaction rolls back"
    else:
        proposal = f"SELECT pg_terminate_backend({pid});"
        note = (
            f"the blocker is {state or 'not running a statement'}: pg_cancel_backend({pid}) "
            "would not release its locks, ending the session does (its transaction rolls back)"
        )
    return LockPileUp(
        database=row.get("database"), blocking_pid=pid, blocking_query=row.get("blocking_query"),
        blocking_state=state, blocking_user=row.get("blocking_user"),
        blocking_application=row.get("blocking_application"),
        blocking_xact_age_s=_number(row.get("blocking_xact_age_s")), waiters=len(waiting),
        waiting_pids=waiting, proposal=proposal, proposal_note=note, evidence=(item.id,),
    )  # fmt: skip


# --- saturation and idle transactions ---------------------------------------------------------


def find_saturation(evidence: Sequence[Evidence], *, thresholds: Thresholds) -> list[Saturation]:
    """The server, a database or a user at ``saturation_fraction`` of its connection limit."""
    rows = _rows_of(evidence, "connection_saturation")
    if not rows:
        return []
    item, first = rows[0]
    usable = int(first["max_connections"]) - int(first.get("reserved_connections") or 0)
    totals: list[tuple[str, str, int, int]] = [
        ("server", "all", int(first["all_connections"]), usable)
    ]
    totals += _grouped(rows, key="database", limit_column="database_limit", usable=usable)
    totals += _grouped(rows, key="user", limit_column="user_limit", usable=usable)
    return [
        Saturation(scope, name, count, limit, round(count / limit, 3), (item.id,))
        for scope, name, count, limit in totals
        if limit > 0 and count >= limit * thresholds.saturation_fraction
    ]


def _grouped(
    rows: Sequence[tuple[Evidence, dict[str, JSON]]], *, key: str, limit_column: str, usable: int
) -> list[tuple[str, str, int, int]]:
    counts: dict[str, int] = defaultdict(int)
    limits: dict[str, int] = {}
    for _, row in rows:
        name = str(row.get(key) or "")
        counts[name] += int(row["connections"])
        own = int(row.get(limit_column) or -1)
        limits[name] = own if own >= 0 else usable
    return [(key, name, counts[name], limits[name]) for name in counts if name]


def find_idle_in_transaction(
    evidence: Sequence[Evidence], *, thresholds: Thresholds
) -> list[IdleInTransaction]:
    return [
        IdleInTransaction(
            database=row.get("database"),
            pid=int(row["pid"]),
            user=row.get("user"),
            application=row.get("application_name"),
            idle_s=float(row.get("idle_s") or 0),
            locks_held=int(row.get("locks_held") or 0),
            last_query=row.get("last_query"),
            evidence=(item.id,),
        )
        for item, row in _rows_of(evidence, "idle_in_transaction")
        if float(row.get("idle_s") or 0) >= thresholds.idle_in_transaction_s
    ]


# --- reading evidence -------------------------------------------------------------------------


def _probe_evidence(evidence: Sequence[Evidence], probe: str) -> list[Evidence]:
    return [
        item
        for item in evidence
        if item.status is Status.OK
        and isinstance(item.raw, dict)
        and item.raw.get("probe") == probe
    ]


def _rows_of(evidence: Sequence[Evidence], probe: str) -> list[tuple[Evidence, dict[str, JSON]]]:
    """Rows of a probe's evidence as dicts, with the evidence they came from."""
    return [
        (item, dict(zip(item.raw["columns"], row, strict=True)))
        for item in _probe_evidence(evidence, probe)
        for row in item.raw["rows"]
    ]


def _number(value: JSON) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _integer(value: JSON) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _ident(name: str) -> str:
    simple = name.isidentifier() and name == name.lower() and name.isascii()
    return name if simple else '"' + name.replace('"', '""') + '"'


def _walk(node: object) -> Iterator[ast.Node]:
    if isinstance(node, tuple | list):
        for item in node:
            yield from _walk(item)
    elif isinstance(node, ast.Node):
        yield node
        for attribute in node:
            yield from _walk(getattr(node, attribute))


def _plain(finding: object) -> dict[str, JSON]:
    data: dict[str, JSON] = asdict(finding)  # type: ignore[call-overload]
    return {key: list(value) if isinstance(value, tuple) else value for key, value in data.items()}
