"""A throwaway PostgreSQL runs a scenario's setup and workload and holds its sessions open."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from diagnose.domain import errors
from diagnose.lab import postgres, sessions
from tests.lab import conftest

pytestmark = pytest.mark.lab


def test_a_cluster_starts_serves_a_new_database_and_leaves_nothing(tmp_path: Path) -> None:
    with postgres.PostgresCluster.start(workdir=tmp_path) as cluster:
        cluster.create_database("shop")
        with psycopg.connect(cluster.dsn("shop")) as conn:
            row = conn.execute("SHOW shared_preload_libraries").fetchone()
        assert row == ("pg_stat_statements",)
    assert not cluster.child.alive()
    assert not cluster.data_dir.exists()


def test_setup_and_workload_fill_pg_stat_statements(
    postgres_cluster: postgres.PostgresCluster, tmp_path: Path
) -> None:
    folder = conftest.write_scenario(tmp_path / "s", kubernetes=False) / "postgres"
    sessions.prepare_database(postgres_cluster, folder, database="workload", repeat=20)
    with psycopg.connect(postgres_cluster.dsn("workload")) as conn:
        calls = conn.execute(
            "SELECT calls FROM pg_stat_statements WHERE query LIKE '%customer_id = $1%'"
        ).fetchone()
    assert calls == (20,)


def test_a_failing_setup_names_the_file(
    postgres_cluster: postgres.PostgresCluster, tmp_path: Path
) -> None:
    bad = tmp_path / "setup.sql"
    bad.write_text("SELECT * FROM no_such_table;\n")
    with pytest.raises(errors.LabError, match=r"setup\.sql.*no_such_table"):
        postgres_cluster.run_sql_file(bad, database="postgres")


def test_held_sessions_keep_a_lock_that_a_probe_sees_in_pg_locks(
    postgres_cluster: postgres.PostgresCluster, tmp_path: Path
) -> None:
    folder = conftest.write_scenario(tmp_path / "s", kubernetes=False) / "postgres"
    sessions.prepare_database(postgres_cluster, folder, database="locks", repeat=1)
    dsn = postgres_cluster.dsn("locks")
    held = folder / "sessions.yaml"
    with (
        sessions.SessionHolder.start(held, dsn=dsn, workdir=tmp_path),
        psycopg.connect(dsn) as probe,
    ):
        waiting = probe.execute(
            "SELECT a.application_name, l.mode FROM pg_locks l JOIN pg_stat_activity a"
            " USING (pid) WHERE NOT l.granted AND l.relation = 'orders'::regclass"
        ).fetchall()
        blockers = probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE cardinality(pg_blocking_pids(pid)) > 0"
        ).fetchone()
    assert waiting == [("blocked-reader", "AccessShareLock")]
    assert blockers == (1,)


def test_sessions_naming_an_unknown_predecessor_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "sessions.yaml"
    path.write_text("sessions:\n  - name: a\n    sql: [SELECT 1]\n    after: nobody\n")
    with pytest.raises(errors.ScenarioError, match="'after'"):
        sessions.load_sessions(path)
