"""A real PostgreSQL database holding data, traps and a checksum, and probes pointed at it.

The database ``sandbox`` has customer data (with secrets to redact), a sequence, an audit table
that a side-effect function ``evil()`` (and an operator ``===`` and a procedure built on it)
write to, and a large table for huge results. :func:`checksum` reads everything a successful
write would change; the tests compare it before and after.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from connectors import postgres as pgc
from diagnose.domain import database
from diagnose.lab import postgres
from sandbox import catalogue, probing

DATABASE = "sandbox"
ROLE = "diagnose"

SETUP = """
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE accounts (
    id bigserial PRIMARY KEY, name text NOT NULL, email text, api_key text, balance numeric
);
INSERT INTO accounts (name, email, api_key, balance)
SELECT 'customer ' || g, 'c' || g || '@example.com', md5(g::text), g * 10
FROM generate_series(1, 200) AS g;
CREATE TABLE audit (at timestamptz DEFAULT now(), what text);
CREATE TABLE big AS SELECT g AS id, repeat('x', 200) AS filler FROM generate_series(1, 50000) g;
CREATE FUNCTION evil() RETURNS int LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO audit (what) VALUES ('evil ran'); RETURN 1; END$$;
CREATE FUNCTION evil_plus(int, int) RETURNS int LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO audit (what) VALUES ('operator ran'); RETURN $1 + $2; END$$;
CREATE OPERATOR === (LEFTARG = int, RIGHTARG = int, FUNCTION = evil_plus);
CREATE PROCEDURE evil_proc() LANGUAGE sql AS $$INSERT INTO audit (what) VALUES ('proc')$$;
CREATE FUNCTION lower(int) RETURNS int LANGUAGE sql AS
  $$INSERT INTO audit (what) VALUES ('shadow') RETURNING 1$$;
CREATE VIEW account_names AS SELECT id, name FROM accounts;
GRANT SELECT ON accounts, audit, big, account_names TO PUBLIC;
"""

CHECKSUM = """
SELECT md5(concat_ws('|',
  (SELECT md5(string_agg(a::text, ',' ORDER BY id)) FROM accounts a),
  (SELECT count(*) FROM audit),
  (SELECT count(*) FROM big),
  (SELECT last_value || '/' || is_called FROM accounts_id_seq),
  (SELECT count(*) FROM pg_class),
  (SELECT count(*) FROM pg_proc),
  (SELECT string_agg(rolname || rolsuper || rolcanlogin, ',' ORDER BY rolname) FROM pg_roles),
  (SELECT count(*) FROM pg_db_role_setting),
  (SELECT count(*) FROM pg_largeobject_metadata),
  (SELECT count(*) FROM pg_prepared_xacts),
  (SELECT count(*) FROM pg_replication_slots),
  (SELECT string_agg(setting, ',' ORDER BY name) FROM pg_settings
     WHERE name IN ('default_transaction_read_only', 'statement_timeout', 'work_mem'))
))
"""


def checksum(dsn: str) -> str:
    """A digest of the data, the schema, roles, settings, slots and prepared transactions."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(CHECKSUM).fetchone()
    assert row is not None
    return str(row[0])


def probe_backends(dsn: str) -> list[tuple[int, str | None, str | None]]:
    """Probe sessions still running a statement or holding a lock (pid, state, query)."""
    sql = (
        "SELECT a.pid, a.state, a.query FROM pg_stat_activity a"
        " WHERE a.application_name = 'diagnose-probe' AND (a.state <> 'idle'"
        " OR EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.locktype <> 'virtualxid'"
        " AND NOT (l.locktype = 'relation' AND l.mode = 'AccessShareLock' AND false)))"
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [(int(r[0]), r[1], r[2]) for r in conn.execute(sql).fetchall()]


def held_advisory_locks(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()
    return int(row[0]) if row else 0


@pytest.fixture(scope="session")
def sandbox_db(
    postgres_cluster: postgres.PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """The superuser DSN of the seeded database; the least-privilege role exists too."""
    postgres_cluster.create_database(DATABASE)
    setup = tmp_path_factory.mktemp("sandbox") / "setup.sql"
    setup.write_text(SETUP)
    postgres_cluster.run_sql_file(setup, database=DATABASE)
    role_script = Path(__file__).resolve().parents[2] / "deploy" / "sql" / "diagnose-role.sql"
    postgres_cluster.run_sql_file(role_script, database=DATABASE)
    return postgres_cluster.dsn(DATABASE)


@pytest.fixture(scope="session")
def role_dsn(sandbox_db: str) -> str:
    """The same database, as the least-privilege role of deploy/sql/diagnose-role.sql."""
    return sandbox_db.replace("postgresql://postgres@", f"postgresql://{ROLE}@")


@pytest.fixture
def probes(sandbox_db: str) -> Iterator[pgc.PostgresProbes]:
    """Probes as a superuser: the gate and the read-only session alone must hold."""
    limits = database.Limits(timeout_s=3.0, max_rows=100, max_bytes=64_000)
    with pgc.PostgresProbes(sandbox_db, sandbox=probing.Sandbox(), limits=limits) as running:
        yield running


class ApproveEverything:
    """A sandbox whose gate approves anything (as a non-streaming statement): what the second
    and third gates hold on their own. Redaction and catalogue are the real ones."""

    def __init__(self) -> None:
        self._real = probing.Sandbox(catalogue.load())

    def check(self, sql: str) -> database.Approved:
        return database.Approved(text=sql, kind=database.StatementKind.SHOW)

    def generic_plan(self, statement: str, *, server_version: int) -> database.Approved:
        return database.Approved(text=statement, kind=database.StatementKind.SHOW)

    def __getattr__(self, name: str) -> object:
        return getattr(self._real, name)


@contextlib.contextmanager
def ungated(dsn: str, *, timeout_s: float = 3.0) -> Iterator[pgc.PostgresProbes]:
    limits = database.Limits(timeout_s=timeout_s)
    with pgc.PostgresProbes(dsn, sandbox=ApproveEverything(), limits=limits) as running:  # type: ignore[arg-type]
        yield running
