"""The audit log: every proposal, decision and action, appended and never changed.

Two stores, one behaviour: SQLite in the state directory by default, a PostgreSQL table when
``DIAGNOSE_DATABASE_URL`` is set. The agent's code can only append and read. The database
itself refuses ``UPDATE`` and ``DELETE`` on the table (a trigger), so a bug in our code cannot
rewrite history either. Each entry has a key unique within its run: a graph step re-run after a
crash appends nothing twice.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from connectors import _schema
from diagnose.domain import models

_SQLITE = """
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    entry TEXT NOT NULL,
    UNIQUE (run_id, key)
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""

_POSTGRES = """
CREATE TABLE IF NOT EXISTS diagnose_audit (
    seq bigserial PRIMARY KEY,
    at timestamptz NOT NULL,
    run_id text NOT NULL,
    kind text NOT NULL,
    key text NOT NULL,
    entry jsonb NOT NULL,
    UNIQUE (run_id, key)
);
CREATE OR REPLACE FUNCTION diagnose_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
DROP TRIGGER IF EXISTS diagnose_audit_append_only ON diagnose_audit;
CREATE TRIGGER diagnose_audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE
ON diagnose_audit FOR EACH STATEMENT EXECUTE FUNCTION diagnose_audit_append_only();
"""


_COLUMNS = ("seq", "at", "run_id", "kind", "key", "entry")


class SqliteAudit:
    """The audit log in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._conn.executescript(_SQLITE)

    def append(self, run_id: str, *, kind: str, key: str, entry: Mapping[str, Any]) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT OR IGNORE INTO audit (at, run_id, kind, key, entry) VALUES (?, ?, ?, ?, ?)",
                (_now(), run_id, kind, key, json.dumps(entry, sort_keys=True)),
            )

    def entries(self, run_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT seq, at, run_id, kind, key, entry FROM audit"
        args: tuple[str, ...] = ()
        if run_id:
            sql, args = sql + " WHERE run_id = ?", (run_id,)
        with self._lock:
            rows = self._conn.execute(sql + " ORDER BY seq", args).fetchall()
        return [dict(zip(_COLUMNS, (*row[:5], json.loads(row[5])), strict=True)) for row in rows]

    def close(self) -> None:
        self._conn.close()


class PostgresAudit:
    """The audit log in a PostgreSQL table (``diagnose_audit``)."""

    def __init__(self, dsn: str) -> None:
        self._conn = psycopg.connect(dsn, autocommit=True, row_factory=dict_row)
        self._lock = threading.Lock()
        with self._lock:
            _schema.create(self._conn, _POSTGRES, store="audit")

    def append(self, run_id: str, *, kind: str, key: str, entry: Mapping[str, Any]) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO diagnose_audit (at, run_id, kind, key, entry) "
                "VALUES (now(), %s, %s, %s, %s) ON CONFLICT (run_id, key) DO NOTHING",
                (run_id, kind, key, Jsonb(dict(entry))),
            )

    def entries(self, run_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT seq, at, run_id, kind, key, entry FROM diagnose_audit"
        with self._lock:
            if run_id:
                rows = self._conn.execute(sql + " WHERE run_id = %s ORDER BY seq", (run_id,))
            else:
                rows = self._conn.execute(sql + " ORDER BY seq")
            found = rows.fetchall()
        return [dict(r) | {"at": models.format_time(r["at"])} for r in found]

    def close(self) -> None:
        self._conn.close()


def _now() -> str:
    return models.format_time(datetime.now(UTC))
