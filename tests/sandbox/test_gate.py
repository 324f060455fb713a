"""The first gate on its own: what PostgreSQL's parser and the allow-lists let through."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from connectors import postgres as pgc
from diagnose.domain import database
from sandbox import catalogue, gating
from tests.sandbox import adversarial

DENIED = [a for a in adversarial.corpus() if a.expect == adversarial.DENY]


def test_the_adversarial_corpus_holds_at_least_300_statements() -> None:
    assert len(adversarial.corpus()) >= 300
    assert len(DENIED) >= 300


@pytest.mark.parametrize("attempt", DENIED, ids=lambda a: f"{a.family}:{a.sql[:60]!r}")
def test_the_gate_refuses_every_write_attempt_and_says_why(attempt: adversarial.Attempt) -> None:
    with pytest.raises(database.StatementRefused) as refused:
        gating.check(attempt.sql)
    assert len(refused.value.reason) > 15


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("EXPLAIN ANALYZE SELECT 1", "EXPLAIN ANALYZE executes"),
        ("SELECT 1; SELECT 2", "2 statements"),
        ("SELECT pg_sleep(1)", "pg_sleep() names pg_sleep, a function that acts"),
        ("SELECT * FROM t FOR UPDATE", "FOR UPDATE/SHARE"),
        ("SELECT * INTO x FROM t", "SELECT … INTO"),
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "WITH DELETE modifies data"),
        ("SET ROLE postgres", "SET/RESET"),
        ("COPY t TO STDOUT", "COPY"),
        ("SELECT public.f()", "outside pg_catalog"),
        ("SELECT 1 OPERATOR(public.+) 2", "schema-qualified operator"),
        ("SELECT 'a'::public.t", "outside pg_catalog"),
        ("SELEC 1", "parser rejects it"),
    ],
)
def test_a_refusal_names_the_rule(sql: str, reason: str) -> None:
    with pytest.raises(
        database.StatementRefused, match=reason.replace("(", r"\(").replace(")", r"\)")
    ):
        gating.check(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "select count(*) filter (where state = 'active') from pg_stat_activity",
        "WITH a AS (SELECT 1 AS x) SELECT x FROM a",
        "EXPLAIN (FORMAT JSON, VERBOSE) SELECT * FROM orders WHERE id = $1",
        "SHOW max_connections",
        "SELECT pg_catalog.now(), extract(epoch FROM now() - interval '1 hour')",
        "SELECT x::int, y::text[], 'orders'::regclass, a IS DISTINCT FROM b, c BETWEEN 1 AND 2",
        "SELECT * FROM pg_stat_activity a CROSS JOIN LATERAL unnest(pg_blocking_pids(a.pid)) b(p)",
    ],
)
def test_plain_reads_pass(sql: str) -> None:
    assert gating.check(sql).text == sql


def test_a_select_is_read_through_a_cursor_over_exactly_that_statement() -> None:
    approved = gating.check("SELECT 1 -- trailing comment")
    assert approved.kind is database.StatementKind.SELECT
    assert approved.declare == (
        "DECLARE diagnose_probe NO SCROLL CURSOR FOR SELECT 1 -- trailing comment"
    )


def test_every_catalogue_probe_passes_the_gate() -> None:
    for entry in catalogue.load().entries:
        probe = entry.probe
        assert gating.check(pgc.render(probe.sql, params=probe.params)).text, probe.name


def test_generic_plans_use_generic_plan_from_16_and_prepare_before() -> None:
    statement = "SELECT * FROM orders WHERE customer_id = $1 AND total > $2"
    on_16 = gating.generic_plan(statement, server_version=160002)
    on_15 = gating.generic_plan(statement, server_version=150004)
    assert on_16.text == f"EXPLAIN (GENERIC_PLAN, FORMAT JSON) {statement}"
    assert on_15.setup[0] == "SET LOCAL plan_cache_mode = force_generic_plan"
    assert on_15.setup[1].endswith(f"AS {statement}")
    assert on_15.text.startswith("EXPLAIN (FORMAT JSON) EXECUTE diagnose_plan_")
    assert on_15.text.endswith("(NULL, NULL)")
    assert on_15.teardown[0].startswith("DEALLOCATE diagnose_plan_")


@pytest.mark.parametrize(
    "statement",
    ["UPDATE orders SET total = $1", "SELECT pg_sleep($1)", "SELECT 1; DELETE FROM orders"],
)
def test_generic_plans_are_refused_for_anything_but_an_allowed_select(statement: str) -> None:
    with pytest.raises(database.StatementRefused):
        gating.generic_plan(statement, server_version=150004)


def test_rendering_binds_literals_and_refuses_a_stray_percent() -> None:
    rendered = pgc.render("SELECT %(a)s, %(b)s, 'x%%'", params={"a": "it's", "b": 5})
    assert rendered == "SELECT 'it''s', 5, 'x%'"
    with pytest.raises(database.StatementRefused, match="placeholder"):
        pgc.render("SELECT 'x%'", params={})


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT (pid).pg_terminate_backend FROM pg_stat_activity", "refused in every form"),
        ("SELECT a.pg_cancel_backend FROM pg_stat_activity a", "refused in every form"),
        ("SELECT ('SELECT 1'::text).ts_stat", "refused in every form"),
        ("SELECT (4242::bigint).PG_ADVISORY_LOCK", "refused in every form"),
        ("SELECT query_to_xml('SELECT 1', true, true, '')", "refused in every form"),
        ('SELECT "LOWER"(name) FROM t', "a quoted name keeps its case"),
        ('SELECT "PG_CATALOG".lower(name) FROM t', "outside pg_catalog"),
        ("SELECT 1 === ANY (SELECT 2)", "operator === is not on the allow-list"),
        ("SELECT 1 ORDER BY 1 USING ===", "USING === is not on the allow-list"),
        ("SELECT 1 OPERATOR(public.+) 2", "only OPERATOR(pg_catalog.…)"),
    ],
)
def test_side_effect_names_are_refused_in_every_form_and_names_keep_their_case(
    sql: str, reason: str
) -> None:
    with pytest.raises(database.StatementRefused, match=re.escape(reason)):
        gating.check(sql)


def test_the_gate_lists_the_names_the_server_will_resolve() -> None:
    """Unqualified calls, field names and operators (written or implied by IN, LIKE, BETWEEN,
    CASE x WHEN, JOIN … USING); pg_catalog-qualified ones are left out."""
    approved = gating.check(
        "SELECT lower(a.name), pg_catalog.upper(b), (r).f, x + 1 OPERATOR(pg_catalog.-) 2,"
        " CASE k WHEN 1 THEN 2 END FROM t a JOIN u USING (id)"
        " WHERE y IN (1) AND z LIKE 'q' AND w BETWEEN 1 AND 2"
    )
    assert approved.names == database.Names(
        calls=frozenset({"lower"}),
        fields=frozenset({"name", "f"}),
        operators=frozenset({"+", "=", "~~", "<", ">", "<=", ">="}),
    )


def _function(schema: str, name: str, extension: str | None = None) -> database.Visible:
    return database.Visible(kind="function", schema=schema, name=name, extension=extension)


@pytest.mark.parametrize(
    ("sql", "visible", "reason"),
    [
        ("SELECT lower(1)", _function("public", "lower"), "write pg_catalog.lower"),
        ("SELECT (1).lower", _function("public", "lower"), "also defined in schema public"),
        ("SELECT a.evil FROM t a", _function("public", "evil"), "schema public"),
        (
            "SELECT name + 'x' FROM t",
            database.Visible(kind="operator", schema="public", name="+"),
            "write OPERATOR(pg_catalog.+)",
        ),
        ("SELECT (x).path FROM t", _function("pg_catalog", "path"), "path() is not on"),
        (
            "SELECT (c).gen_random_bytes FROM t",
            _function("pg_catalog", "gen_random_bytes", "pgcrypto"),
            "extension pgcrypto",
        ),
    ],
)
def test_a_name_the_database_resolves_to_anything_but_an_allowed_built_in_is_refused(
    sql: str, visible: database.Visible, reason: str
) -> None:
    with pytest.raises(database.StatementRefused, match=re.escape(reason)):
        gating.resolve(gating.check(sql), visible=[visible])


@pytest.mark.parametrize(
    ("sql", "visible"),
    [
        ("SELECT pg_catalog.lower(1)", _function("public", "lower")),
        ("SELECT lower(name) FROM t", _function("pg_catalog", "lower")),
        ("SELECT c.oid FROM pg_class c", _function("pg_catalog", "oid")),
        (
            "SELECT 1 OPERATOR(pg_catalog.+) 2",
            database.Visible(kind="operator", schema="public", name="+"),
        ),
    ],
)
def test_built_ins_and_qualified_names_resolve(sql: str, visible: database.Visible) -> None:
    gating.resolve(gating.check(sql), visible=[visible])


@pytest.mark.parametrize(
    "sql", ["select 1 AS n, 'x' AS s;", "SELECT 1 AS n, 'x' AS s -- trailing comment"]
)
def test_the_bounded_cursor_reads_exactly_the_approved_statement(sql: str) -> None:
    """Trailing semicolons and comments survive; each text value is cut, others nulled past
    their share of the row."""
    columns = [database.Column(name="n", type_oid=23), database.Column(name="s", type_oid=25)]
    limits = database.Limits(max_row_bytes=8_000)
    text = gating.bounded(gating.check(sql), columns=columns, limits=limits)
    assert text.startswith(f"DECLARE {database.CURSOR} NO SCROLL CURSOR FOR SELECT CASE WHEN")
    assert "pg_catalog.left(diagnose_row.c2::pg_catalog.text, 1000)" in text
    assert "OPERATOR(pg_catalog.<=) 4000 THEN diagnose_row.c1 END" in text
    assert ") AS diagnose_inner(c1, c2) OFFSET 0) AS diagnose_row" in text


def test_docs_give_the_adversarial_suite_size_by_class() -> None:
    """docs/database.md's table counts what the corpus holds, class by class."""
    docs = (Path(__file__).resolve().parents[2] / "docs" / "database.md").read_text()
    counts = adversarial.by_family(adversarial.corpus())
    rows = re.findall(r"^\| ([a-z, -]+) \| (\d+) \|", docs, flags=re.MULTILINE)
    documented = {name: int(count) for name, count in rows}
    for names, count in documented.items():
        assert sum(counts[name] for name in names.split(", ")) == count, names
    assert sorted(n for names in documented for n in names.split(", ")) == sorted(counts)
    total = f"holds {len(adversarial.corpus()):,} statements"
    assert total in docs


def test_a_user_defined_cast_in_the_database_refuses_every_statement() -> None:
    cast = database.Visible(kind="cast", schema="public", name="public.f(t), casting t to integer")
    with pytest.raises(
        database.StatementRefused, match=re.escape("user-defined cast backed by public.f(t)")
    ):
        gating.resolve(gating.check("SELECT 1"), visible=[cast])
