"""The job queue: diagnoses, postmortem drafts and PagerDuty notes waiting for a worker.

Two stores with one behaviour:

- :class:`PostgresQueue` (``DIAGNOSE_DATABASE_URL`` set): any number of worker processes claim
  jobs with ``SELECT … FOR UPDATE SKIP LOCKED`` and own them under a lease they renew
  (:meth:`heartbeat`). A worker that dies stops renewing; once its lease expires the job is
  claimable again, and the next worker continues the same run id (LangGraph resumes the run
  from its last checkpoint).
- :class:`SqliteQueue` (one machine): the same table in the state directory, claims serialised
  by ``BEGIN IMMEDIATE``; meant for the workers of one ``diagnose serve`` process.

Both keep three rules: a job is owned by one worker at a time (completion is fenced on the
lease owner, so a worker that lost its lease cannot overwrite the new owner's result); jobs
sharing an ``ordering_key`` (one incident) run one at a time in arrival order; and at most
``max_running`` diagnoses run at once across all workers. Webhook deliveries are recorded in
the same transaction as the jobs they create, so a retried delivery never creates a job twice.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool, PoolTimeout

from connectors import _schema
from diagnose.domain import errors
from diagnose.domain.queue import DIAGNOSE, Accepted, Job, NewJob  # the port's values

_CLAIM_LOCK = 0x6469_6167
"""Advisory lock id serialising claims, so the running-diagnoses count cannot race."""


_POSTGRES_SCHEMA = """
CREATE TABLE IF NOT EXISTS diagnose_jobs (
    id bigserial PRIMARY KEY,
    kind text NOT NULL,
    ordering_key text NOT NULL,
    dedup_key text NOT NULL UNIQUE,
    payload jsonb NOT NULL,
    run_id text,
    state text NOT NULL DEFAULT 'queued',
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    not_before timestamptz NOT NULL DEFAULT now(),
    lease_owner text,
    lease_expires_at timestamptz,
    result jsonb,
    error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS diagnose_jobs_open ON diagnose_jobs (ordering_key, id)
    WHERE state IN ('queued', 'running');
CREATE TABLE IF NOT EXISTS diagnose_deliveries (
    delivery text PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now()
);
"""

_POSTGRES_EXPIRE = """
UPDATE diagnose_jobs SET state = 'failed', updated_at = now(),
    error = 'its worker stopped renewing the lease ' || attempts || ' times'
WHERE state = 'running' AND lease_expires_at < now() AND attempts >= max_attempts
"""

_POSTGRES_CLAIM = """
WITH candidate AS (
    SELECT j.id FROM diagnose_jobs j
    WHERE (j.state = 'queued' OR (j.state = 'running' AND j.lease_expires_at < now()))
      AND j.not_before <= now()
      AND NOT EXISTS (
          SELECT 1 FROM diagnose_jobs e
          WHERE e.ordering_key = j.ordering_key AND e.id < j.id
            AND e.state IN ('queued', 'running'))
      AND (j.kind <> %(diagnose)s OR (
          SELECT count(*) FROM diagnose_jobs r
          WHERE r.kind = %(diagnose)s AND r.state = 'running'
            AND r.lease_expires_at >= now()) < %(max_running)s)
    ORDER BY j.id
    LIMIT 1
    FOR UPDATE OF j SKIP LOCKED
)
UPDATE diagnose_jobs j
SET state = 'running', lease_owner = %(worker)s, attempts = j.attempts + 1,
    lease_expires_at = now() + make_interval(secs => %(lease_s)s), updated_at = now()
FROM candidate WHERE j.id = candidate.id
RETURNING j.*
"""


class PostgresQueue:
    """The queue in PostgreSQL, shared by every worker process and replica."""

    def __init__(self, dsn: str, *, max_attempts: int = 3, pool_size: int = 8) -> None:
        self.max_attempts = max_attempts
        self._pool: ConnectionPool[psycopg.Connection[DictRow]] = ConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_size,
            kwargs={"row_factory": dict_row, "autocommit": True},
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=10)
        except PoolTimeout as exc:
            self._pool.close()
            raise errors.SourceUnavailable(
                "cannot reach the queue database; check DIAGNOSE_DATABASE_URL"
            ) from exc
        with self._pool.connection() as conn:
            _schema.create(conn, _POSTGRES_SCHEMA, store="queue")

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Connection[DictRow]]:
        with self._pool.connection() as conn, conn.transaction():
            yield conn

    def enqueue(self, jobs: Sequence[NewJob], *, delivery: str | None = None) -> Accepted:
        with self._transaction() as conn:
            if delivery is not None and not _pg_first_delivery(conn, delivery):
                return Accepted(duplicate=True)
            return Accepted(
                duplicate=False,
                jobs=tuple(_pg_insert(conn, job, max_attempts=self.max_attempts) for job in jobs),
            )

    def claim(self, worker: str, *, lease_s: float, max_running: int) -> Job | None:
        with self._transaction() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CLAIM_LOCK,))
            conn.execute(_POSTGRES_EXPIRE)
            params = {
                "worker": worker,
                "lease_s": lease_s,
                "max_running": max_running,
                "diagnose": DIAGNOSE,
            }
            row = conn.execute(_POSTGRES_CLAIM, params).fetchone()
        return _job(row) if row else None

    def heartbeat(self, job_id: int, *, worker: str, lease_s: float) -> bool:
        sql = """UPDATE diagnose_jobs SET updated_at = now(),
                     lease_expires_at = now() + make_interval(secs => %s)
                 WHERE id = %s AND lease_owner = %s AND state = 'running' RETURNING id"""
        return self._changed(sql, (lease_s, job_id, worker))

    def finish(self, job_id: int, *, worker: str, result: Mapping[str, Any]) -> bool:
        sql = """UPDATE diagnose_jobs SET state = 'done', result = %s, updated_at = now(),
                     lease_expires_at = NULL
                 WHERE id = %s AND lease_owner = %s AND state = 'running' RETURNING id"""
        return self._changed(sql, (Jsonb(dict(result)), job_id, worker))

    def fail(self, job_id: int, *, worker: str, error: str, retry_in_s: float) -> bool:
        sql = """UPDATE diagnose_jobs SET error = %s, updated_at = now(), lease_expires_at = NULL,
                     state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
                     not_before = now() + make_interval(secs => %s)
                 WHERE id = %s AND lease_owner = %s AND state = 'running' RETURNING id"""
        return self._changed(sql, (error, retry_in_s, job_id, worker))

    def _changed(self, sql: str, params: Sequence[Any]) -> bool:
        with self._transaction() as conn:
            return conn.execute(sql, params).fetchone() is not None

    def get(self, job_id: int) -> Job | None:
        with self._transaction() as conn:
            row = conn.execute("SELECT * FROM diagnose_jobs WHERE id = %s", (job_id,)).fetchone()
        return _job(row) if row else None

    def list_jobs(
        self, *, kind: str | None = None, ordering_key: str | None = None, limit: int = 100
    ) -> list[Job]:
        sql = """SELECT * FROM diagnose_jobs
                 WHERE (%(kind)s::text IS NULL OR kind = %(kind)s)
                   AND (%(key)s::text IS NULL OR ordering_key = %(key)s)
                 ORDER BY id DESC LIMIT %(limit)s"""
        with self._transaction() as conn:
            rows = conn.execute(sql, {"kind": kind, "key": ordering_key, "limit": limit})
            return [_job(row) for row in rows.fetchall()]

    def counts(self) -> dict[str, int]:
        with self._transaction() as conn:
            rows = conn.execute("SELECT state, count(*) AS n FROM diagnose_jobs GROUP BY state")
            return {str(row["state"]): int(row["n"]) for row in rows.fetchall()}

    def ping(self) -> None:
        try:
            with self._transaction() as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError as exc:
            raise errors.SourceUnavailable(f"the queue database does not answer: {exc}") from exc

    def close(self) -> None:
        self._pool.close()


def _pg_first_delivery(conn: psycopg.Connection[DictRow], delivery: str) -> bool:
    sql = "INSERT INTO diagnose_deliveries (delivery) VALUES (%s) ON CONFLICT DO NOTHING"
    return conn.execute(sql, (delivery,)).rowcount == 1


def _pg_insert(
    conn: psycopg.Connection[DictRow], job: NewJob, *, max_attempts: int
) -> tuple[int, bool]:
    sql = """INSERT INTO diagnose_jobs (kind, ordering_key, dedup_key, payload, run_id,
                                        max_attempts)
             VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (dedup_key) DO NOTHING RETURNING id"""
    params = (
        job.kind,
        job.ordering_key,
        job.dedup_key,
        Jsonb(dict(job.payload)),
        job.run_id,
        max_attempts,
    )
    row = conn.execute(sql, params).fetchone()
    if row is not None:
        return int(row["id"]), True
    found = conn.execute("SELECT id FROM diagnose_jobs WHERE dedup_key = %s", (job.dedup_key,))
    existing = found.fetchone()
    assert existing is not None, "a dedup conflict names a row that exists"
    return int(existing["id"]), False


def _job(row: Mapping[str, Any]) -> Job:
    def plain(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    return Job(
        id=int(row["id"]),
        kind=str(row["kind"]),
        ordering_key=str(row["ordering_key"]),
        dedup_key=str(row["dedup_key"]),
        payload=plain(row["payload"]),
        run_id=row["run_id"],
        state=str(row["state"]),
        attempts=int(row["attempts"]),
        lease_owner=row["lease_owner"],
        result=plain(row["result"]),
        error=row["error"],
    )


_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS diagnose_jobs (
    id integer PRIMARY KEY AUTOINCREMENT,
    kind text NOT NULL,
    ordering_key text NOT NULL,
    dedup_key text NOT NULL UNIQUE,
    payload text NOT NULL,
    run_id text,
    state text NOT NULL DEFAULT 'queued',
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    not_before real NOT NULL,
    lease_owner text,
    lease_expires_at real,
    result text,
    error text,
    created_at real NOT NULL,
    updated_at real NOT NULL
);
CREATE TABLE IF NOT EXISTS diagnose_deliveries (
    delivery text PRIMARY KEY,
    received_at real NOT NULL
);
"""

_SQLITE_CLAIM = """
SELECT j.* FROM diagnose_jobs j
WHERE (j.state = 'queued' OR (j.state = 'running' AND j.lease_expires_at < :now))
  AND j.not_before <= :now
  AND NOT EXISTS (
      SELECT 1 FROM diagnose_jobs e
      WHERE e.ordering_key = j.ordering_key AND e.id < j.id AND e.state IN ('queued', 'running'))
  AND (j.kind <> :diagnose OR (
      SELECT count(*) FROM diagnose_jobs r
      WHERE r.kind = :diagnose AND r.state = 'running' AND r.lease_expires_at >= :now)
      < :max_running)
ORDER BY j.id LIMIT 1
"""


class SqliteQueue:
    """The queue in one SQLite file: the workers of one process on one machine."""

    def __init__(self, path: Path, *, max_attempts: int = 3) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.max_attempts = max_attempts
        self._lock = threading.Lock()
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.executescript(_SQLITE_SCHEMA)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def enqueue(self, jobs: Sequence[NewJob], *, delivery: str | None = None) -> Accepted:
        now = time.time()
        with self._transaction() as conn:
            if delivery is not None:
                sql = "INSERT OR IGNORE INTO diagnose_deliveries VALUES (?, ?)"
                if conn.execute(sql, (delivery, now)).rowcount == 0:
                    return Accepted(duplicate=True)
            return Accepted(duplicate=False, jobs=tuple(self._insert(conn, j, now) for j in jobs))

    def _insert(self, conn: sqlite3.Connection, job: NewJob, now: float) -> tuple[int, bool]:
        found = conn.execute("SELECT id FROM diagnose_jobs WHERE dedup_key = ?", (job.dedup_key,))
        existing = found.fetchone()
        if existing is not None:
            return int(existing["id"]), False
        sql = """INSERT INTO diagnose_jobs (kind, ordering_key, dedup_key, payload, run_id,
                     max_attempts, not_before, created_at, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"""
        params = (
            job.kind,
            job.ordering_key,
            job.dedup_key,
            json.dumps(dict(job.payload)),
            job.run_id,
            self.max_attempts,
            now,
            now,
            now,
        )
        cursor = conn.execute(sql, params)
        assert cursor.lastrowid is not None
        return cursor.lastrowid, True

    def claim(self, worker: str, *, lease_s: float, max_running: int) -> Job | None:
        now = time.time()
        with self._transaction() as conn:
            conn.execute(
                """UPDATE diagnose_jobs SET state = 'failed', updated_at = ?,
                       error = 'its worker stopped renewing the lease ' || attempts || ' times'
                   WHERE state = 'running' AND lease_expires_at < ? AND attempts >= max_attempts""",
                (now, now),
            )
            params = {"now": now, "diagnose": DIAGNOSE, "max_running": max_running}
            row = conn.execute(_SQLITE_CLAIM, params).fetchone()
            if row is None:
                return None
            conn.execute(
                """UPDATE diagnose_jobs SET state = 'running', lease_owner = ?, updated_at = ?,
                       attempts = attempts + 1, lease_expires_at = ? WHERE id = ?""",
                (worker, now, now + lease_s, row["id"]),
            )
            claimed = conn.execute("SELECT * FROM diagnose_jobs WHERE id = ?", (row["id"],))
            return _job(dict(claimed.fetchone()))

    def heartbeat(self, job_id: int, *, worker: str, lease_s: float) -> bool:
        now = time.time()
        sql = """UPDATE diagnose_jobs SET lease_expires_at = ?, updated_at = ?
                 WHERE id = ? AND lease_owner = ? AND state = 'running'"""
        return self._changed(sql, (now + lease_s, now, job_id, worker))

    def finish(self, job_id: int, *, worker: str, result: Mapping[str, Any]) -> bool:
        sql = """UPDATE diagnose_jobs SET state = 'done', result = ?, updated_at = ?,
                     lease_expires_at = NULL
                 WHERE id = ? AND lease_owner = ? AND state = 'running'"""
        return self._changed(sql, (json.dumps(dict(result)), time.time(), job_id, worker))

    def fail(self, job_id: int, *, worker: str, error: str, retry_in_s: float) -> bool:
        now = time.time()
        sql = """UPDATE diagnose_jobs SET error = ?, updated_at = ?, lease_expires_at = NULL,
                     state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
                     not_before = ?
                 WHERE id = ? AND lease_owner = ? AND state = 'running'"""
        return self._changed(sql, (error, now, now + retry_in_s, job_id, worker))

    def _changed(self, sql: str, params: Sequence[Any]) -> bool:
        with self._transaction() as conn:
            return conn.execute(sql, params).rowcount == 1

    def get(self, job_id: int) -> Job | None:
        with self._transaction() as conn:
            row = conn.execute("SELECT * FROM diagnose_jobs WHERE id = ?", (job_id,)).fetchone()
        return _job(dict(row)) if row else None

    def list_jobs(
        self, *, kind: str | None = None, ordering_key: str | None = None, limit: int = 100
    ) -> list[Job]:
        sql = """SELECT * FROM diagnose_jobs
                 WHERE (:kind IS NULL OR kind = :kind) AND (:key IS NULL OR ordering_key = :key)
                 ORDER BY id DESC LIMIT :limit"""
        with self._transaction() as conn:
            rows = conn.execute(sql, {"kind": kind, "key": ordering_key, "limit": limit})
            return [_job(dict(row)) for row in rows.fetchall()]

    def counts(self) -> dict[str, int]:
        with self._transaction() as conn:
            rows = conn.execute("SELECT state, count(*) AS n FROM diagnose_jobs GROUP BY state")
            return {str(row["state"]): int(row["n"]) for row in rows.fetchall()}

    def ping(self) -> None:
        with self._transaction() as conn:
            conn.execute("SELECT 1")

    def close(self) -> None:
        self._conn.close()
