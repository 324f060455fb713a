"""Unindexed foreign keys: the catalogue probe on a real PostgreSQL (as the least-privilege
role, through the gate), and the sweep that lists them next to an index fix on one of them,
each with its own migration, shown to the approver and in the report, never part of the fix."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from rich.console import Console

from connectors import bundle
from connectors import postgres as pgc
from diagnose import rendering
from diagnose.domain import database
from diagnose.domain.models import JSON, Evidence, Status
from diagnose.lab import postgres
from graphs import acting, approval, reporting
from graphs.state import Context, DiagnosisState
from sandbox import advising, catalogue, findings, probing
from tests.sandbox import conftest

# Two unindexed foreign keys (orders.customer_id, payments.order_id) and one served by an
# index that leads with it (order_notes.order_id).
SCHEMA = """
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL);
CREATE TABLE orders (
    id bigint PRIMARY KEY, customer_id bigint NOT NULL REFERENCES customers (id), total numeric
);
CREATE TABLE payments (
    id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders (id), amount numeric
);
CREATE TABLE order_notes (
    id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders (id), note text
);
CREATE INDEX order_notes_by_order ON order_notes (order_id, id);
INSERT INTO customers SELECT g, 'c' || g || '@example.com' FROM generate_series(1, 2000) g;
INSERT INTO orders SELECT g, 1 + g % 2000, g FROM generate_series(1, 20000) g;
INSERT INTO payments SELECT g, g, g FROM generate_series(1, 5000) g;
INSERT INTO order_notes SELECT g, g, 'note' FROM generate_series(1, 100) g;
ANALYZE;
"""

PAYMENTS_INDEX = (
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS payments_order_id_idx ON public.payments (order_id);"
)


def _create(cluster: postgres.PostgresCluster, name: str, *, folder: Path) -> str:
    cluster.create_database(name)
    setup = folder / f"{name}.sql"
    setup.write_text(SCHEMA + f"GRANT SELECT ON orders TO {conftest.ROLE};\n")
    cluster.run_sql_file(setup, database=name)
    return cluster.dsn(name)


def _as_role(dsn: str) -> str:
    return dsn.replace("postgresql://postgres@", f"postgresql://{conftest.ROLE}@")


def _scan(dsn: str) -> None:
    """The workload: orders read by customer 40 times (sequentially), payments 3 times; then
    wait until the statistics show it."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for customer in range(40):
            conn.execute("SELECT * FROM orders WHERE customer_id = %s", [customer])
        for _ in range(3):
            conn.execute("SELECT count(*) FROM payments")
    deadline = time.monotonic() + 30
    with psycopg.connect(dsn, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'payments'"
            ).fetchone()
            if row and row[0] >= 3:
                return
            time.sleep(0.2)
    raise AssertionError("the workload's scans never reached pg_stat_user_tables")


@pytest.fixture(scope="module")
def shop(
    postgres_cluster: postgres.PostgresCluster,
    role_dsn: str,  # the least-privilege role exists
    tmp_path_factory: pytest.TempPathFactory,
) -> str:
    dsn = _create(postgres_cluster, "fk_shop", folder=tmp_path_factory.mktemp("fk"))
    _scan(dsn)
    return dsn


@pytest.fixture
def role_probes(shop: str) -> Iterator[pgc.PostgresProbes]:
    limits = database.Limits(timeout_s=5.0)
    with pgc.PostgresProbes(_as_role(shop), sandbox=probing.Sandbox(), limits=limits) as running:
        yield running


def _probe(probes: pgc.PostgresProbes, *, database_name: str) -> Evidence:
    entry = catalogue.load().probe("unindexed_foreign_keys")
    return probes.run_probe(entry.name, entry.sql, params=entry.params, database=database_name)


@pytest.mark.lab
@pytest.mark.slow
def test_the_probe_finds_exactly_the_unindexed_foreign_keys_most_scanned_first(
    role_probes: pgc.PostgresProbes,
) -> None:
    item = _probe(role_probes, database_name="fk_shop")
    assert item.status is Status.OK, item.summary
    found = findings.find_unindexed_foreign_keys([item])
    assert [(f.table, f.columns, f.referenced_table) for f in found] == [
        ("orders", ("customer_id",), "customers"),
        ("payments", ("order_id",), "orders"),
    ]
    orders, payments = found
    assert orders.seq_scan >= 40 > payments.seq_scan >= 3
    assert orders.rows_estimate == 20000 and orders.bytes_estimate > 0
    assert payments.migration == PAYMENTS_INDEX
    assert payments.rollback == "DROP INDEX CONCURRENTLY IF EXISTS public.payments_order_id_idx;"
    assert payments.evidence == (item.id,) and not payments.partitioned


@pytest.mark.lab
@pytest.mark.slow
def test_an_index_fix_on_a_foreign_key_lists_the_other_one_with_its_own_migration(
    role_probes: pgc.PostgresProbes, tmp_path: Path
) -> None:
    evidence = role_probes.run_catalogue(database="fk_shop")
    advice = advising.advise(findings.find_all(evidence), default_database="fk_shop")
    hypotheses = [a.hypothesis for a in advice]
    assert all("payments" not in h.summary for h in hypotheses), "an FK alone is no cause"
    fix = next(a.fix for a in advice if a.fix and a.fix.kind == "create_index")
    assert fix.target == "postgres/fk_shop/public.orders"
    state: DiagnosisState = {
        "run_id": "run-fk",
        "trigger": {"title": "orders-api latency", "service": "orders-api", "namespace": "shop"},
        "correlation": {"hypotheses": [h.to_dict() for h in hypotheses], "abstained": False},
        "db_fixes": [
            {"summary": a.hypothesis.summary, "fix": a.fix.to_dict()} for a in advice if a.fix
        ],
        "evidence": [e.to_dict(with_raw=False) for e in evidence],
    }
    context = Context(store=bundle.FileEvidenceStore(tmp_path), database_name="fk_shop")
    proposed = [fix.to_dict() | {"id": "fix-1", "hypothesis": 0}]
    (prepared,), _ = acting.prepare(proposed, state=state, context=context, evidence=evidence)

    listed = [s for s in prepared["sweep"] if s.get("command")]
    assert [(s["target"], s["command"]) for s in listed] == [
        ("postgres/fk_shop/public.payments", PAYMENTS_INDEX)
    ]
    assert "payments_order_id_fkey" in listed[0]["why"]
    assert "not approved with fix-1" in listed[0]["approval"]
    assert prepared["command"] == fix.command  # the fix itself is unchanged: orders only
    assert prepared["digest"] == approval.digest(prepared | {"sweep": []}, run_id="run-fk")

    state["fixes"] = [prepared]
    assert approval.request(state)["fixes"][0]["sweep"] == prepared["sweep"]
    assert reporting.build(state)["fixes"][0]["sweep"] == prepared["sweep"]
    console = Console(file=io.StringIO(), record=True, width=200, color_system=None)
    rendering.show(console, state, bundle_dir=tmp_path)
    screen = console.export_text()
    assert "same pattern elsewhere" in screen and "postgres/fk_shop/public.payments" in screen
    assert PAYMENTS_INDEX in screen and "not approved with fix-1" in screen


@pytest.mark.lab
@pytest.mark.slow
def test_the_listed_migration_is_one_the_probe_then_counts_as_indexed(
    postgres_cluster: postgres.PostgresCluster, role_dsn: str, tmp_path: Path
) -> None:
    dsn = _create(postgres_cluster, "fk_migrated", folder=tmp_path)
    with pgc.PostgresProbes(_as_role(dsn), sandbox=probing.Sandbox()) as probes:
        before = findings.find_unindexed_foreign_keys([_probe(probes, database_name="fk_migrated")])
        with psycopg.connect(dsn, autocommit=True) as conn:  # a human applying it
            conn.execute(str(next(f.migration for f in before if f.table == "payments")))
        after = findings.find_unindexed_foreign_keys([_probe(probes, database_name="fk_migrated")])
    assert {f.table for f in before} == {"orders", "payments"}
    assert [f.table for f in after] == ["orders"]


SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "db-missing-index"

MORE_KEYS = """
CREATE TABLE payments (
    id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders (id), amount integer
);
INSERT INTO payments SELECT g, g, 100 FROM generate_series(1, 5000) AS g;
CREATE TABLE order_notes (
    id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders (id), note text
);
CREATE INDEX order_notes_by_order ON order_notes (order_id);
ANALYZE payments;
ANALYZE order_notes;
"""


@pytest.mark.lab
@pytest.mark.slow
def test_the_missing_index_scenario_with_another_unindexed_key_lists_it_in_the_proposal(
    tmp_path: Path,
) -> None:
    """The bundled scenario, with a second unindexed foreign key and an indexed one added: the
    diagnosis is the same, and its index fix lists the other key with its own migration."""
    scenario = tmp_path / "db-missing-index"
    shutil.copytree(SCENARIO, scenario)
    with (scenario / "postgres" / "setup.sql").open("a", encoding="utf-8") as setup:
        setup.write(MORE_KEYS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "diagnose"), "run", "--scenario", str(scenario),
         "--json"],
        env=env | {"DIAGNOSE_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1"},
        capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    top = result["hypotheses"][0]
    assert (top["kind"], top["component"]) == ("database", "postgres/shop")
    fix = result["fixes"][0]
    assert fix["kind"] == "create_index" and "public.orders (customer_id)" in fix["command"]
    listed = [(s["target"], s.get("command")) for s in fix["sweep"]]
    assert listed == [
        (
            "postgres/shop/public.payments",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS payments_order_id_idx "
            "ON public.payments (order_id);",
        )
    ]


# --- the sweep over findings built by hand --------------------------------------------------

COLUMNS = ["schema", "table", "relkind", "constraint", "columns", "referenced_schema",
           "referenced_table", "rows_estimate", "table_bytes_estimate", "n_live_tup", "seq_scan",
           "seq_tup_read", "idx_scan", "referenced_deletes"]  # fmt: skip


def _key(table: str, columns: list[str], *, scans: int, kind: str = "r") -> list[JSON]:
    constraint = f"{table}_{'_'.join(columns)}_fkey"
    return ["public", table, kind, constraint, list(columns), "public", "parent", 1000, 8192,
            1000, scans, scans * 1000, 0, None]  # fmt: skip


def _probed(*rows: list[JSON], database: str | None = None) -> Evidence:
    raw: dict[str, JSON] = {
        "probe": "unindexed_foreign_keys", "database": database, "statement": None,
        "columns": list(COLUMNS), "rows": list(rows), "truncated": False, "redacted": 0,
    }  # fmt: skip
    return Evidence.make(
        source="postgres", query="-- unindexed_foreign_keys", window=None, status=Status.OK,
        summary="unindexed foreign keys", raw=raw,
    )  # fmt: skip


def _keys(*rows: list[JSON]) -> list[dict[str, JSON]]:
    found = findings.find_unindexed_foreign_keys([_probed(*rows)])
    return advising.foreign_keys(found, default_database="shop")


def _index_fix(table: str, columns: list[str]) -> dict[str, Any]:
    return {
        "id": "fix-1",
        "kind": "create_index",
        "target": f"postgres/shop/public.{table}",
        "command": findings.create_index_statement("public", table, columns),
    }


def test_the_other_unindexed_foreign_keys_are_listed_most_scanned_first() -> None:
    keys = _keys(
        _key("orders", ["customer_id"], scans=50),
        _key("refunds", ["order_id"], scans=2),
        _key("payments", ["order_id"], scans=9),
    )
    listed = advising.sweep(
        _index_fix("orders", ["customer_id", "status"]), others=[], foreign_keys=keys
    )
    assert [s["target"] for s in listed] == [
        "postgres/shop/public.payments",
        "postgres/shop/public.refunds",
    ]
    assert listed[0]["command"] == findings.create_index_statement(
        "public", "payments", ["order_id"]
    )


def test_an_index_fix_on_no_foreign_key_column_lists_none() -> None:
    keys = _keys(_key("orders", ["customer_id"], scans=50), _key("payments", ["order_id"], scans=9))
    assert advising.sweep(_index_fix("orders", ["status"]), others=[], foreign_keys=keys) == []
    assert (
        advising.sweep(_index_fix("invoices", ["customer_id"]), others=[], foreign_keys=keys) == []
    )
    cancel = {"id": "fix-2", "kind": "cancel_query", "target": "postgres/shop/pid/7", "command": ""}
    assert advising.sweep(cancel, others=[], foreign_keys=keys) == []


def test_a_filter_on_the_key_behind_another_column_leaves_the_key_listed() -> None:
    """The scanned statement filters on the foreign key, but the proposed index leads with
    another column: the key stays unindexed, and the sweep says so."""
    keys = _keys(_key("orders", ["customer_id"], scans=50), _key("payments", ["order_id"], scans=9))
    listed = advising.sweep(
        _index_fix("orders", ["status", "customer_id"]), others=[], foreign_keys=keys
    )
    assert [s["target"] for s in listed] == [
        "postgres/shop/public.orders",
        "postgres/shop/public.payments",
    ]
    assert listed[0]["why"].startswith("also on this table")


def test_a_partitioned_table_gets_no_concurrent_migration() -> None:
    keys = _keys(
        _key("orders", ["customer_id"], scans=50), _key("events", ["order_id"], scans=1, kind="p")
    )
    (listed,) = advising.sweep(_index_fix("orders", ["customer_id"]), others=[], foreign_keys=keys)
    assert "command" not in listed and "ON ONLY" in listed["why"]


def test_an_unindexed_foreign_key_alone_supports_no_hypothesis() -> None:
    found = findings.find_all([_probed(_key("orders", ["customer_id"], scans=50), database="shop")])
    assert [f.kind for f in found] == ["unindexed_foreign_key"]
    assert advising.advise(found, default_database="shop") == []
