"""Memory of past incidents: one row per finished run, recalled by component.

Two stores, one behaviour, as for the audit log (``connectors/audit.py``): SQLite in the state
directory by default, a PostgreSQL table when ``DIAGNOSE_DATABASE_URL`` is set. A run is kept
whole as JSON (its evidence summary, hypotheses and the decision with its reason), with the
components it involved in a second table so recall is one indexed lookup. Recording a run again
(a resumed run reaching its report twice) replaces its row.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from connectors import _schema

_SQLITE = """
CREATE TABLE IF NOT EXISTS incidents (
    run_id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    run TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS incident_components (
    run_id TEXT NOT NULL REFERENCES incidents (run_id) ON DELETE CASCADE,
    component TEXT NOT NULL,
    PRIMARY KEY (run_id, component)
);
CREATE INDEX IF NOT EXISTS incident_components_by_component
    ON incident_components (component);
"""

_POSTGRES = """
CREATE TABLE IF NOT EXISTS diagnose_incidents (
    run_id text PRIMARY KEY,
    at timestamptz NOT NULL,
    run jsonb NOT NULL
);
CREATE TABLE IF NOT EXISTS diagnose_incident_components (
    run_id text NOT NULL REFERENCES diagnose_incidents (run_id) ON DELETE CASCADE,
    component text NOT NULL,
    PRIMARY KEY (run_id, component)
);
CREATE INDEX IF NOT EXISTS diagnose_incident_components_by_component
    ON diagnose_incident_components (component);
"""


def _components(run: Mapping[str, Any]) -> list[str]:
    return sorted({str(c) for c in run.get("components", [])})


class SqliteMemory:
    """Past incidents in one SQLite file."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._conn.execute("PRAGMA foreign_keys = ON")
        self._conn.executescript(_SQLITE)

    def record(self, run: Mapping[str, Any]) -> None:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.execute("DELETE FROM incidents WHERE run_id = ?", (run["run_id"],))
                self._conn.execute(
                    "INSERT INTO incidents (run_id, at, run) VALUES (?, ?, ?)",
                    (run["run_id"], run["at"], json.dumps(run, sort_keys=True)),
                )
                self._conn.executemany(
                    "INSERT INTO incident_components (run_id, component) VALUES (?, ?)",
                    [(run["run_id"], c) for c in _components(run)],
                )
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def recall(self, *, components: Sequence[str], limit: int) -> list[dict[str, Any]]:
        if not components or limit < 1:
            return []
        marks = ",".join("?" * len(components))
        sql = (
            "SELECT run FROM incidents WHERE run_id IN (SELECT run_id FROM incident_components "
            f"WHERE component IN ({marks})) ORDER BY at DESC, run_id LIMIT ?"
        )
        with self._lock:
            rows = self._conn.execute(sql, (*components, limit)).fetchall()
        return [dict(json.loads(row[0])) for row in rows]

    def close(self) -> None:
        self._conn.close()


class PostgresMemory:
    """Past incidents in PostgreSQL tables (``diagnose_incidents``)."""

    def __init__(self, dsn: str) -> None:
        self._conn = psycopg.connect(dsn, autocommit=True, row_factory=dict_row)
        self._lock = threading.Lock()
        with self._lock:
            _schema.create(self._conn, _POSTGRES, store="memory")

    def record(self, run: Mapping[str, Any]) -> None:
        with self._lock, self._conn.transaction():
            self._conn.execute("DELETE FROM diagnose_incidents WHERE run_id = %s", (run["run_id"],))
            self._conn.execute(
                "INSERT INTO diagnose_incidents (run_id, at, run) VALUES (%s, %s, %s)",
                (run["run_id"], run["at"], Jsonb(dict(run))),
            )
            with self._conn.cursor() as cursor:
                cursor.executemany(
                    "INSERT INTO diagnose_incident_components (run_id, component) VALUES (%s, %s)",
                    [(run["run_id"], c) for c in _components(run)],
                )

    def recall(self, *, components: Sequence[str], limit: int) -> list[dict[str, Any]]:
        if not components or limit < 1:
            return []
        with self._lock:
            rows = self._conn.execute(
                "SELECT run FROM diagnose_incidents WHERE run_id IN (SELECT run_id FROM "
                "diagnose_incident_components WHERE component = ANY(%s)) "
                "ORDER BY at DESC, run_id LIMIT %s",
                (list(components), limit),
            ).fetchall()
        return [dict(row["run"]) for row in rows]

    def close(self) -> None:
        self._conn.close()
