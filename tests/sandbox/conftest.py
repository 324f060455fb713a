"""A real PostgreSQL database holding data, traps and a checksum, and probes pointed at it.

The database ``sandbox`` has customer data (with secrets to redact), a sequence, an audit table
that user code writes to (a side-effect function ``evil()``, an operator ``===`` and a procedure
built on it, functions that shadow built-ins by overload (``lower(int)``), by case
(``"LOWER"(text)``) and by field selection (``evil_row(accounts)``), a ``+`` on text), and a
large table for huge results; dblink when the server has it, its functions revoked from PUBLIC
as ``deploy/sql/diagnose-role.sql`` does. Calls of user functions are counted
(``track_functions``). :func:`checksum` reads everything a successful write, a call of user
code, a statistics reset or a role or settings change would change; the tests compare it
before and after.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
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
CREATE FUNCTION "LOWER"(text) RETURNS text LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO audit (what) VALUES ('LOWER ran'); RETURN lower($1); END$$;
CREATE FUNCTION evil_row(accounts) RETURNS int LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO audit (what) VALUES ('evil_row ran'); RETURN 1; END$$;
CREATE FUNCTION evil_any(anyelement) RETURNS int LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO audit (what) VALUES ('evil_any ran'); RETURN 1; END$$;
CREATE FUNCTION text_plus(text, text) RETURNS text LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO audit (what) VALUES ('+ ran'); RETURN $1 || $2; END$$;
CREATE OPERATOR + (LEFTARG = text, RIGHTARG = text, FUNCTION = text_plus);
CREATE FUNCTION text_like(text, int) RETURNS bool LANGUAGE plpgsql AS
  $$BEGIN INSERT INTO audit (what) VALUES ('~~ ran'); RETURN true; END$$;
CREATE OPERATOR ~~ (LEFTARG = text, RIGHTARG = int, FUNCTION = text_like);
CREATE VIEW account_names AS SELECT id, name FROM accounts;
GRANT SELECT ON accounts, audit, big, account_names TO PUBLIC;
ALTER DATABASE sandbox SET track_functions = 'all';
"""

DBLINK = """
CREATE EXTENSION IF NOT EXISTS dblink;
CREATE ROLE app LOGIN PASSWORD 'app-secret';
GRANT INSERT ON accounts TO app;
"""
"""dblink and a role it could write as (revoked by the role script's lock-down step)."""

USER_CALLS = "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions"
"""How often user-defined functions ran (only the statement gate keeps them from running: the
read-only session stops their writes, not the calls)."""

CHECKSUM = """
SELECT md5(concat_ws('|',
  (SELECT string_agg(relname || n_tup_ins || '/' || n_tup_upd || '/' || n_tup_del, ','
     ORDER BY relname) FROM pg_stat_user_tables),
  (SELECT string_agg(coalesce(stats_reset::text, '-'), ',' ORDER BY datname)
     FROM pg_stat_database WHERE datname IS NOT NULL),
  (SELECT stats_reset FROM pg_stat_bgwriter),
  (SELECT stats_reset FROM pg_stat_archiver),
  (SELECT md5(string_agg(a::text, ',' ORDER BY id)) FROM accounts a),
  (SELECT count(*) FROM audit),
  (SELECT count(*) FROM big),
  (SELECT last_value || '/' || is_called FROM accounts_id_seq),
  (SELECT count(*) FROM pg_class),
  (SELECT count(*) FROM pg_proc),
  (SELECT string_agg(rolname || rolsuper || rolcanlogin, ',' ORDER BY rolname) FROM pg_roles),
  (SELECT string_agg(roleid || '>' || member, ',' ORDER BY roleid, member) FROM pg_auth_members),
  (SELECT count(*) FROM pg_largeobject),
  (SELECT count(*) FROM pg_db_role_setting),
  (SELECT count(*) FROM pg_largeobject_metadata),
  (SELECT count(*) FROM pg_prepared_xacts),
  (SELECT count(*) FROM pg_replication_slots),
  (SELECT string_agg(setting, ',' ORDER BY name) FROM pg_settings
     WHERE name IN ('default_transaction_read_only', 'statement_timeout', 'work_mem')),
  (SELECT string_agg(setconfig::text, ',' ORDER BY setdatabase, setrole)
     FROM pg_db_role_setting),
  (SELECT count(*) FROM accounts_id_seq)
))
"""


def checksum(dsn: str, *, user_calls: bool = True) -> str:
    """A digest of the data, sequences, statistics counters, the schema, roles, settings, slots
    and prepared transactions, and (``user_calls``) of how often user code ran."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(CHECKSUM).fetchone()
        calls = conn.execute(USER_CALLS).fetchone() if user_calls else ("-",)
    assert row is not None and calls is not None
    return f"{row[0]}/{calls[0]}"


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


def close_and_settle(probes: pgc.PostgresProbes, *, dsn: str) -> None:
    """Close the probes' connections and wait until their backends are gone: a backend reports
    its statistics (user-function calls included) when it exits."""
    probes.close()
    sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'diagnose-probe'"
    deadline = time.monotonic() + 10
    with psycopg.connect(dsn, autocommit=True) as conn:
        while (conn.execute(sql).fetchone() or (0,))[0] and time.monotonic() < deadline:
            time.sleep(0.05)
    time.sleep(0.2)


def held_advisory_locks(dsn: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'").fetchone()
    return int(row[0]) if row else 0


def held_locks(dsn: str) -> list[tuple[str, str, int]]:
    """Locks held by anyone but the sessions asking (kind, mode, pid), advisory ones included."""
    sql = (
        "SELECT l.locktype, l.mode, l.pid FROM pg_locks l JOIN pg_stat_activity a"
        " ON a.pid = l.pid WHERE l.locktype NOT IN ('virtualxid', 'transactionid')"
        " AND a.backend_type = 'client backend' AND l.pid <> pg_backend_pid()"
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        return [(str(r[0]), str(r[1]), int(r[2])) for r in conn.execute(sql).fetchall()]


def available(dsn: str, extension: str) -> bool:
    """Whether the server has the extension's files (Debian: postgresql-contrib)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        sql = "SELECT 1 FROM pg_available_extensions WHERE name = %s"
        return conn.execute(sql, [extension]).fetchone() is not None


ROLE_SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "sql" / "diagnose-role.sql"


def as_role(dsn: str, role: str = ROLE) -> str:
    """The same database, as another role."""
    return dsn.replace("postgresql://postgres@", f"postgresql://{role}@")


@pytest.fixture(scope="session")
def probe_role(postgres_cluster: postgres.PostgresCluster) -> str:
    """The least-privilege role of deploy/sql/diagnose-role.sql, in the test cluster."""
    postgres_cluster.run_sql_file(ROLE_SCRIPT, database="postgres")
    return ROLE


@pytest.fixture(scope="session")
def sandbox_db(
    postgres_cluster: postgres.PostgresCluster,
    tmp_path_factory: pytest.TempPathFactory,
    probe_role: str,
) -> str:
    """The superuser DSN of the seeded database (dblink in it when the server has it, locked
    down by the role script); the least-privilege role exists too."""
    postgres_cluster.create_database(DATABASE)
    folder = tmp_path_factory.mktemp("sandbox")
    setup = folder / "setup.sql"
    setup.write_text(SETUP + (DBLINK if available(postgres_cluster.dsn(), "dblink") else ""))
    postgres_cluster.run_sql_file(setup, database=DATABASE)
    lock_down = folder / "lock-down.sql"
    lock_down.write_text(f"\\set lockdown on\n\\i {ROLE_SCRIPT}\n")
    postgres_cluster.run_sql_file(lock_down, database=DATABASE)
    return postgres_cluster.dsn(DATABASE)


@pytest.fixture(scope="session")
def role_dsn(sandbox_db: str) -> str:
    """The same database, as the least-privilege role of deploy/sql/diagnose-role.sql."""
    return as_role(sandbox_db)


@pytest.fixture
def probes(role_dsn: str) -> Iterator[pgc.PostgresProbes]:
    """Probes as the least-privilege role (the connector refuses a superuser)."""
    limits = database.Limits(timeout_s=3.0, max_rows=100, max_bytes=64_000)
    with pgc.PostgresProbes(role_dsn, sandbox=probing.Sandbox(), limits=limits) as running:
        yield running


class Listener:
    """A TCP port that counts the connections made to it (is the server calling out?)."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.port = int(self._socket.getsockname()[1])
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._socket.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    running = Listener()
    try:
        yield running
    finally:
        running.close()


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
