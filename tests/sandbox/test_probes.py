"""The catalogue against a real cluster with seeded problems, and probes against servers that
hang: findings name the problems, every probe returns within its time limit."""

from __future__ import annotations

import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from connectors import postgres as pgc
from diagnose.domain import database
from diagnose.domain.models import Evidence, Status
from diagnose.lab import postgres
from sandbox import catalogue, findings, probing
from tests.sandbox import conftest

pytestmark = [pytest.mark.lab, pytest.mark.slow]

SHOP = """
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int NOT NULL, total numeric);
INSERT INTO orders (customer_id, total) SELECT g % 5000, g FROM generate_series(1, 100000) g;
ANALYZE orders;
CREATE ROLE probe_app LOGIN CONNECTION LIMIT 4;
GRANT SELECT ON orders TO probe_app;
GRANT SELECT ON orders TO diagnose;
"""


@pytest.fixture(scope="module")
def shop(
    postgres_cluster: postgres.PostgresCluster,
    tmp_path_factory: pytest.TempPathFactory,
    probe_role: str,
) -> str:
    """The superuser DSN of a shop whose statistics hold a selective unindexed query."""
    postgres_cluster.create_database("probes_shop")
    setup = tmp_path_factory.mktemp("shop") / "setup.sql"
    setup.write_text(SHOP)
    postgres_cluster.run_sql_file(setup, database="probes_shop")
    with psycopg.connect(postgres_cluster.dsn("probes_shop"), autocommit=True) as conn:
        for customer in range(40):
            conn.execute("SELECT * FROM orders WHERE customer_id = %s", [customer])
    return postgres_cluster.dsn("probes_shop")


@pytest.fixture
def eager_probes(shop: str) -> Iterator[pgc.PostgresProbes]:
    """Probes whose catalogue reports sessions from their first second."""
    now = {"min_age_s": 0}
    probes = catalogue.load(overrides={"idle_in_transaction": now, "long_running_queries": now})
    with pgc.PostgresProbes(
        conftest.as_role(shop),
        sandbox=probing.Sandbox(probes),
        limits=database.Limits(timeout_s=5.0),
    ) as running:
        yield running


def by_probe(evidence: list[Evidence]) -> dict[str, Evidence]:
    return {str(e.raw["probe"]): e for e in evidence}


def test_the_catalogue_finds_the_unindexed_selective_query(
    eager_probes: pgc.PostgresProbes,
) -> None:
    evidence = eager_probes.run_catalogue(database="probes_shop")
    probes = by_probe(evidence)
    assert {e.status for e in evidence} <= {Status.OK, Status.EMPTY}
    assert probes["sequential_scans"].status is Status.OK
    plan = probes["explain_generic"]
    assert plan.raw["statement"] == "SELECT * FROM orders WHERE customer_id = $1"
    assert "DEALLOCATE" in plan.query and "EXPLAIN (FORMAT JSON) EXECUTE" in plan.query
    missing = findings.find_missing_indexes(evidence, thresholds=findings.Thresholds())
    assert [(m.table, m.columns) for m in missing] == [("orders", ("customer_id",))]
    assert missing[0].migration == (
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_id_idx "
        "ON public.orders (customer_id);"
    )
    assert set(missing[0].evidence) <= {e.id for e in evidence}
    assert missing[0].to_dict()["columns"] == ["customer_id"]


def test_the_catalogue_names_the_lock_pile_up_idle_transactions_and_saturation(
    eager_probes: pgc.PostgresProbes, shop: str
) -> None:
    app = shop.replace("postgres@", "probe_app@")
    with psycopg.connect(shop, autocommit=True, application_name="migration") as locker, \
            psycopg.connect(shop, autocommit=True, application_name="idler") as idler:  # fmt: skip
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        idler.execute("BEGIN")
        idler.execute("SELECT 1")
        blocked = _blocked_readers(app, count=4)
        try:
            evidence = eager_probes.run_catalogue(database="probes_shop")
        finally:
            locker.execute("ROLLBACK")
            for thread in blocked:
                thread.join(timeout=10)
        locker_pid, idler_pid = locker.info.backend_pid, idler.info.backend_pid
    found = findings.find_all(evidence, thresholds=findings.Thresholds(idle_in_transaction_s=0))
    pile_ups = [f for f in found if isinstance(f, findings.LockPileUp)]
    assert [(p.blocking_pid, p.waiters) for p in pile_ups] == [(locker_pid, 4)]
    assert pile_ups[0].blocking_query == "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"
    assert pile_ups[0].proposal == f"SELECT pg_terminate_backend({locker_pid});"
    idle = {f.pid for f in found if isinstance(f, findings.IdleInTransaction)}
    assert {locker_pid, idler_pid} <= idle
    saturated = [(f.scope, f.name) for f in found if isinstance(f, findings.Saturation)]
    assert ("user", "probe_app") in saturated
    assert by_probe(evidence)["sequential_scans"].status is Status.ERROR  # sizes wait on the lock


def _blocked_readers(dsn: str, *, count: int) -> list[threading.Thread]:
    def read() -> None:
        with psycopg.connect(dsn, autocommit=True, application_name="reader") as conn:
            conn.execute("SELECT count(*) FROM orders")

    threads = [threading.Thread(target=read, daemon=True) for _ in range(count)]
    for thread in threads:
        thread.start()
    time.sleep(0.5)
    return threads


def test_a_probe_waiting_on_a_lock_returns_in_time_and_leaves_no_backend(shop: str) -> None:
    limits = database.Limits(timeout_s=2.0, lock_timeout_s=30.0)
    with psycopg.connect(shop, autocommit=True) as locker:
        locker.execute("BEGIN")
        locker.execute("LOCK TABLE orders IN ACCESS EXCLUSIVE MODE")
        with pgc.PostgresProbes(
            conftest.as_role(shop), sandbox=probing.Sandbox(), limits=limits
        ) as probes:
            started = time.monotonic()
            evidence = probes.run_probe("count", "SELECT count(*) FROM orders")
            elapsed = time.monotonic() - started
            assert conftest.probe_backends(shop) == []
        locker.execute("ROLLBACK")
    assert evidence.status is Status.ERROR
    assert "lock" in evidence.summary
    assert elapsed < 2.0


def test_a_server_that_accepts_and_never_answers_costs_one_timeout() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        limits = database.Limits(timeout_s=1.5)
        dsn = f"postgresql://diagnose@127.0.0.1:{port}/shop"
        with pgc.PostgresProbes(dsn, sandbox=probing.Sandbox(), limits=limits) as probes:
            started = time.monotonic()
            evidence = probes.run_probe("hang", "SELECT 1")
            elapsed = time.monotonic() - started
    assert evidence.status is Status.ERROR
    assert "could not connect" in evidence.summary
    assert elapsed < 1.5 + 1.0


def test_a_refused_statement_never_needs_the_server() -> None:
    dsn = "postgresql://diagnose@127.0.0.1:1/none"
    with pgc.PostgresProbes(dsn, sandbox=probing.Sandbox(), timeout_s=1.0) as probes:
        evidence = probes.run_probe("write", "DELETE FROM orders")
    assert evidence.status is Status.DENIED
    assert evidence.query == "DELETE FROM orders"
    assert "DELETE is not allowed" in evidence.summary


def test_probe_evidence_has_the_port_shape(shop: str) -> None:
    with pgc.PostgresProbes(
        conftest.as_role(shop), sandbox=probing.Sandbox(), timeout_s=3.0
    ) as probes:
        evidence = probes.run_probe("one", "SELECT %(n)s::int AS n, 'a%%' AS pct", params={"n": 7})
        leftovers = probes.run_probe("prepared", "SELECT count(*) FROM pg_prepared_statements")
    assert evidence.source == "postgres"
    assert evidence.query == "SELECT 7::int AS n, 'a%' AS pct"
    assert evidence.raw == {
        "probe": "one", "database": None, "statement": None, "columns": ["n", "pct"],
        "rows": [[7, "a%"]], "truncated": False, "redacted": 0,
    }  # fmt: skip
    assert leftovers.raw["rows"] == [[0]]


ROLE_CHECK = """
CREATE ROLE probe_signaller LOGIN IN ROLE pg_monitor, pg_signal_backend;
CREATE ROLE probe_files LOGIN IN ROLE pg_read_server_files;
CREATE ROLE probe_inherits LOGIN;
GRANT probe_files TO probe_inherits;
"""


@pytest.fixture(scope="module")
def risky_roles(
    postgres_cluster: postgres.PostgresCluster, tmp_path_factory: pytest.TempPathFactory
) -> None:
    setup = tmp_path_factory.mktemp("roles") / "roles.sql"
    setup.write_text(ROLE_CHECK)
    postgres_cluster.run_sql_file(setup, database="postgres")


@pytest.mark.parametrize(
    ("role", "says"),
    [
        ("postgres", "it is a superuser"),
        ("probe_signaller", "REVOKE pg_signal_backend FROM probe_signaller;"),
        ("probe_files", "REVOKE pg_read_server_files FROM probe_files;"),
        ("probe_inherits", "REVOKE pg_read_server_files FROM probe_inherits;"),
    ],
)
def test_probing_as_a_role_that_can_do_more_than_read_is_refused_with_what_to_revoke(
    shop: str, risky_roles: None, role: str, says: str
) -> None:
    """A superuser or a member (even indirect) of a role that reads server files or signals
    backends: every probe is denied evidence naming the fix and the role script; nothing ran."""
    with pgc.PostgresProbes(
        conftest.as_role(shop, role), sandbox=probing.Sandbox(), timeout_s=3.0
    ) as probes:
        evidence = probes.run_probe("one", "SELECT 1")
        catalogue_run = probes.run_catalogue(database="probes_shop")
    assert evidence.status is Status.DENIED and evidence.raw["rows"] == []
    assert says in evidence.summary
    assert "deploy/sql/diagnose-role.sql" in evidence.summary
    assert [e.status for e in catalogue_run] == [Status.DENIED]


@pytest.mark.parametrize(
    ("extension", "named"),
    [
        (
            "dblink",
            ["REVOKE EXECUTE ON FUNCTION public.dblink(text), ", " public.dblink_connect(text), "],
        ),
        (
            "postgres_fdw",
            ["public.postgres_fdw_handler()", "public.postgres_fdw_validator(text[], oid)"],
        ),
    ],
)
def test_a_role_that_can_execute_an_outbound_extension_is_refused_until_the_lock_down(
    postgres_cluster: postgres.PostgresCluster, probe_role: str, extension: str, named: list[str]
) -> None:
    """dblink or postgres_fdw installed as they come (EXECUTE to PUBLIC): refused, naming the
    functions to revoke; after the role script's lock-down step in that database, the same
    probe runs."""
    if not conftest.available(postgres_cluster.dsn(), extension):
        pytest.skip(f"{extension}'s files are not installed (Debian: postgresql-contrib)")
    database_name = f"outbound_{extension}"
    postgres_cluster.create_database(database_name)
    dsn = postgres_cluster.dsn(database_name)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")
    with pgc.PostgresProbes(
        conftest.as_role(dsn), sandbox=probing.Sandbox(), timeout_s=3.0
    ) as probes:
        refused = probes.run_probe("one", "SELECT 1")
    assert refused.status is Status.DENIED
    assert all(name in refused.summary for name in named)
    assert " FROM PUBLIC, diagnose; " in refused.summary
    assert "-v lockdown=on" in refused.summary
    postgres_cluster.run_sql_file(_lock_down_script(), database=database_name)
    with pgc.PostgresProbes(
        conftest.as_role(dsn), sandbox=probing.Sandbox(), timeout_s=3.0
    ) as probes:
        allowed = probes.run_probe("one", "SELECT 1")
    assert allowed.status is Status.OK


def _lock_down_script() -> Path:
    script = Path(tempfile.mkdtemp()) / "lock-down.sql"
    script.write_text(f"\\set lockdown on\n\\i {conftest.ROLE_SCRIPT}\n")
    return script
