"""The audit log only grows: the database itself refuses changes, and keys are idempotent."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import psycopg
import pytest

from connectors import audit


def test_sqlite_appends_once_per_key_and_reads_in_order(tmp_path: Path) -> None:
    log = audit.SqliteAudit(tmp_path / "audit.sqlite")
    log.append("run-1", kind="proposal", key="proposal:fix-1", entry={"command": "a"})
    log.append("run-1", kind="proposal", key="proposal:fix-1", entry={"command": "b"})
    log.append("run-2", kind="decision", key="decision", entry={"verdict": "reject"})
    assert [e["entry"] for e in log.entries("run-1")] == [{"command": "a"}]
    assert [e["run_id"] for e in log.entries()] == ["run-1", "run-2"]
    log.close()


def test_sqlite_refuses_updates_and_deletes_even_from_outside(tmp_path: Path) -> None:
    path = tmp_path / "audit.sqlite"
    audit.SqliteAudit(path).append("run-1", kind="decision", key="decision", entry={})
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE audit SET entry = '{}'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM audit")


@pytest.mark.lab
def test_postgres_refuses_updates_deletes_and_truncate(postgres_cluster: Any) -> None:
    postgres_cluster.create_database("audit_test")
    dsn = postgres_cluster.dsn("audit_test")
    log = audit.PostgresAudit(dsn)
    log.append("run-1", kind="decision", key="decision", entry={"verdict": "approve"})
    log.append("run-1", kind="decision", key="decision", entry={"verdict": "reject"})
    assert [e["entry"]["verdict"] for e in log.entries("run-1")] == ["approve"]
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in (
            "UPDATE diagnose_audit SET kind = 'x'",
            "DELETE FROM diagnose_audit",
            "TRUNCATE diagnose_audit",
        ):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                conn.execute(statement)
    log.close()
