"""Findings and redaction as pure functions over evidence built by hand."""

from __future__ import annotations

from diagnose.domain import database
from diagnose.domain.models import JSON, Evidence, Status
from sandbox import findings, redacting


def probe(name: str, columns: list[str], rows: list[list[JSON]], **extra: JSON) -> Evidence:
    raw: dict[str, JSON] = {
        "probe": name, "database": "shop", "statement": None, "columns": columns,
        "rows": rows, "truncated": False, "redacted": 0, **extra,
    }  # fmt: skip
    return Evidence.make(
        source="postgres", query=f"-- {name} {rows}", window=None, status=Status.OK,
        summary=name, raw=raw,
    )  # fmt: skip


CHAIN = ["waiting_pid", "blocking_pid", "blocking_state", "blocker_is_root", "blocking_query"]


def test_a_pile_up_counts_waiters_behind_waiters_and_cancels_an_active_blocker() -> None:
    evidence = [
        probe("blocking_chains", CHAIN, [
            [20, 10, "active", True, "UPDATE orders SET total = 0"],
            [30, 20, "active", False, "SELECT * FROM orders FOR UPDATE"],
            [31, 10, "active", True, "UPDATE orders SET total = 0"],
        ]),
    ]  # fmt: skip
    (pile_up,) = findings.find_lock_pile_ups(evidence)
    assert (pile_up.blocking_pid, pile_up.waiters, pile_up.waiting_pids) == (10, 3, (20, 30, 31))
    assert pile_up.proposal == "SELECT pg_cancel_backend(10);"
    assert pile_up.needs_approval


def test_an_idle_blocker_is_ended_not_cancelled() -> None:
    evidence = [probe("blocking_chains", CHAIN, [[2, 1, "idle in transaction", True, "LOCK t"]])]
    (pile_up,) = findings.find_lock_pile_ups(evidence)
    assert pile_up.proposal == "SELECT pg_terminate_backend(1);"
    assert "pg_cancel_backend(1) would not release its locks" in pile_up.proposal_note


def test_saturation_is_named_per_server_database_and_user() -> None:
    columns = ["database", "user", "connections", "all_connections", "max_connections",
               "reserved_connections", "database_limit", "user_limit"]  # fmt: skip
    rows: list[list[JSON]] = [
        ["shop", "app", 85, 95, 103, 3, -1, -1],
        ["shop", "ro", 10, 95, 103, 3, -1, 12],
    ]
    found = findings.find_saturation(
        [probe("connection_saturation", columns, rows)], thresholds=findings.Thresholds()
    )
    assert [(f.scope, f.name, f.connections, f.limit) for f in found] == [
        ("server", "all", 95, 100), ("database", "shop", 95, 100),
        ("user", "app", 85, 100), ("user", "ro", 10, 12),
    ]  # fmt: skip


def test_a_missing_index_needs_a_large_table_and_a_selective_filter() -> None:
    plan = [{"Plan": {"Node Type": "Seq Scan", "Relation Name": "Orders", "Plan Rows": 20,
                      "Filter": "((customer_id = $1) AND (created_at > $2))"}}]  # fmt: skip
    statement = 'SELECT * FROM "Orders" WHERE customer_id = $1 AND created_at > $2'
    explain = probe("explain_generic", ["QUERY PLAN"], [[plan]], statement=statement)
    tables = probe(
        "sequential_scans", ["schema", "table", "n_live_tup"], [["shop", "Orders", 10**6]]
    )
    small = probe("sequential_scans", ["schema", "table", "n_live_tup"], [["shop", "Orders", 500]])
    thresholds = findings.Thresholds()
    (found,) = findings.find_missing_indexes([explain, tables], thresholds=thresholds)
    assert found.columns == ("customer_id", "created_at")
    assert found.migration == (
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "Orders_customer_id_created_at_idx" '
        'ON shop."Orders" (customer_id, created_at);'
    )
    assert found.rollback.startswith("DROP INDEX CONCURRENTLY IF EXISTS shop.")
    assert findings.find_missing_indexes([explain, small], thresholds=thresholds) == []


def test_redaction_masks_secrets_keeps_shapes_and_caps() -> None:
    limits = database.Limits(max_rows=2, max_cell_chars=40)
    table = redacting.redact_table(
        ["query", "password", "note"],
        [
            ["SELECT * FROM users WHERE email = 'a@b.io'", "hunter2", "card 4111-1111-1111-1111"],
            ["UPDATE t SET token = 'x'", None, "Bearer abcdefghijklmnop and x" * 5],
            ["SELECT 1", "x", "third row"],
        ],
        limits=limits,
    )
    assert table.rows[0] == ["SELECT * FROM users WHERE email = '?'", "<redacted>", "card <card>"]
    assert table.rows[1][1] is None and table.rows[1][2].endswith("…")
    assert table.truncated and len(table.rows) == 2


def test_numbers_that_fail_the_luhn_check_stay() -> None:
    assert redacting.redact_text("order 1234567890123 shipped") == (
        "order 1234567890123 shipped",
        0,
    )
