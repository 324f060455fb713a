"""Every attempt against a real PostgreSQL, as the least-privilege role: refused or rolled back,
the checksum of data, sequences, statistics counters, user-code calls, roles and settings
unchanged, no session ended, no lock or running backend left behind, no connection made out of
the server, the agent's memory bounded, and each refusal says why."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import postgres as pgc
from diagnose.domain import database
from diagnose.domain.models import Status
from diagnose.lab import postgres
from sandbox import gating, probing
from tests.sandbox import adversarial, conftest

pytestmark = [pytest.mark.lab, pytest.mark.slow]


REFUSED = (adversarial.DENY, adversarial.RESOLVE)
MEMORY_BOUND_KB = 64_000
"""How far the agent's resident memory may rise above where it started while probes run."""


@contextlib.contextmanager
def sentinels(sandbox_db: str, role_dsn: str) -> Iterator[Callable[[], None]]:
    """An application session and one of the probe role itself (the role may signal its own
    sessions), both named ``sentinel``; the check raises if either was ended."""
    name = "sentinel"
    with psycopg.connect(sandbox_db, autocommit=True, application_name=name) as app, \
            psycopg.connect(role_dsn, autocommit=True, application_name=name) as own:  # fmt: skip

        def check() -> None:
            for conn in (app, own):
                assert conn.execute("SELECT 1").fetchone() == (1,), "a session was ended"

        yield check


@contextlib.contextmanager
def peak_memory() -> Iterator[Callable[[], int]]:
    """The rise of this process's peak resident memory (kB) over its resident memory at the
    start (Linux: the peak is reset first)."""
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")
    start = _status_kb("VmRSS")
    yield lambda: _status_kb("VmHWM") - start


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"{field} not in /proc/self/status")


def test_the_whole_corpus_is_refused_or_harmless_and_changes_nothing(
    probes: pgc.PostgresProbes, sandbox_db: str, role_dsn: str, listener: conftest.Listener
) -> None:
    before = conftest.checksum(sandbox_db)
    wrong = []
    with sentinels(sandbox_db, role_dsn) as alive, peak_memory() as grown:
        for attempt in adversarial.corpus(port=listener.port):
            evidence = probes.run_probe("adversarial", attempt.sql)
            assert evidence.source == "postgres" and evidence.summary.startswith("adversarial: ")
            if attempt.expect in REFUSED and evidence.status is not Status.DENIED:
                wrong.append((attempt.sql, evidence.status, evidence.summary))
            if evidence.status is Status.DENIED and len(evidence.summary) < 30:
                wrong.append((attempt.sql, evidence.status, "no reason given"))
        alive()
        assert grown() < MEMORY_BOUND_KB
    conftest.close_and_settle(probes, dsn=sandbox_db)
    assert wrong == []
    assert conftest.checksum(sandbox_db) == before
    assert conftest.probe_backends(sandbox_db) == []
    assert conftest.held_locks(sandbox_db) == []
    assert listener.accepted == 0


@pytest.mark.parametrize("family", sorted({a.family for a in adversarial.corpus()} - {"write"}))
def test_each_class_holds_on_its_own(
    family: str,
    probes: pgc.PostgresProbes,
    sandbox_db: str,
    role_dsn: str,
    listener: conftest.Listener,
) -> None:
    """One class at a time: refused (or harmless), nothing changed, no session ended, no lock
    left, no connection out of the server, memory bounded."""
    if family == "extension" and not conftest.available(sandbox_db, "dblink"):
        pytest.skip("dblink's files are not installed (Debian: postgresql-contrib)")
    attempts = [a for a in adversarial.corpus(port=listener.port) if a.family == family]
    before = conftest.checksum(sandbox_db)
    with sentinels(sandbox_db, role_dsn) as alive, peak_memory() as grown:
        outcomes = [(a, probes.run_probe(family, a.sql)) for a in attempts]
        alive()
        assert grown() < MEMORY_BOUND_KB
    conftest.close_and_settle(probes, dsn=sandbox_db)
    assert [
        a.sql for a, e in outcomes if a.expect in REFUSED and e.status is not Status.DENIED
    ] == []
    assert conftest.checksum(sandbox_db) == before
    assert conftest.held_locks(sandbox_db) == []
    assert listener.accepted == 0


def test_with_dblink_installed_the_role_cannot_call_out_even_without_the_gate(
    role_dsn: str, sandbox_db: str, listener: conftest.Listener
) -> None:
    """dblink is installed and locked down by the role script: with the first gate approving
    everything, the server still opens no connection and writes nothing."""
    if not conftest.available(sandbox_db, "dblink"):
        pytest.skip("dblink's files are not installed (Debian: postgresql-contrib)")
    before = conftest.checksum(sandbox_db)
    calls = [a for a in adversarial.corpus(port=listener.port) if a.family == "extension"]
    with conftest.ungated(role_dsn, timeout_s=2.0) as probes:
        outcomes = [probes.run_probe("ungated", a.sql) for a in calls]
    assert {e.status for e in outcomes} <= {Status.DENIED, Status.ERROR}
    assert any("permission denied" in e.summary for e in outcomes)
    assert listener.accepted == 0
    assert conftest.checksum(sandbox_db) == before


def test_a_statement_of_hundreds_of_megabytes_costs_the_agent_a_small_bounded_amount(
    role_dsn: str,
) -> None:
    """SELECT format('%400000000s','x') under the default time limit: cut on the server, the
    row arrives small."""
    with pgc.PostgresProbes(role_dsn, sandbox=probing.Sandbox()) as probes, peak_memory() as grown:
        evidence = probes.run_probe("huge cell", "SELECT format('%400000000s', 'x') AS cell")
        assert grown() < MEMORY_BOUND_KB
    assert evidence.status is Status.OK
    assert evidence.raw["truncated"] is True
    assert 0 < len(str(evidence.raw["rows"][0][0])) <= 4_001


def test_values_the_server_cut_keep_their_types_and_say_so(probes: pgc.PostgresProbes) -> None:
    """Small values come back as they are, typed; a large non-text value becomes NULL and the
    result says it was truncated."""
    small = probes.run_probe("small", "SELECT 7 AS n, 'x'::varchar AS s, ARRAY[1, 2] AS a")
    assert small.raw["rows"] == [[7, "x", [1, 2]]] and small.raw["truncated"] is False
    large = probes.run_probe("large", "SELECT 1 AS n, ARRAY[format('%1000000s', 'x')] AS a")
    assert large.raw["rows"] == [[1, None]] and large.raw["truncated"] is True


def test_without_the_gate_the_read_only_session_and_the_role_still_hold(
    role_dsn: str, sandbox_db: str, listener: conftest.Listener
) -> None:
    """Second and third gates alone: every write attempt runs as the least-privilege role in the
    read-only session, the first gate approving everything. (User functions do run here: the
    session stops their writes; keeping them from running at all is the first gate's job.)"""
    before = conftest.checksum(sandbox_db, user_calls=False)
    with sentinels(sandbox_db, role_dsn) as alive:
        with conftest.ungated(role_dsn, timeout_s=1.0) as probes:
            outcomes = [
                probes.run_probe("ungated", a.sql)
                for a in adversarial.corpus(port=listener.port)
                if a.expect in REFUSED
                and a.sql.strip(" ;")
                and "\x00" not in a.sql
                and "sentinel" not in a.sql  # the role may end its own sessions: gate one's job
            ]
        alive()
    assert conftest.checksum(sandbox_db, user_calls=False) == before
    assert conftest.probe_backends(sandbox_db) == []
    assert conftest.held_advisory_locks(sandbox_db) == 0
    assert listener.accepted == 0
    refused = [e for e in outcomes if e.status in (Status.DENIED, Status.ERROR)]
    assert len(refused) > len(outcomes) / 2  # most writes are refused outright by the server


def test_a_huge_result_is_capped_in_rows_and_bytes(probes: pgc.PostgresProbes) -> None:
    started = time.monotonic()
    evidence = probes.run_probe("huge", "SELECT a.* FROM big a, big b")
    assert evidence.status is Status.OK
    assert evidence.raw["truncated"] is True
    assert 0 < len(evidence.raw["rows"]) <= 100
    assert len(str(evidence.raw["rows"])) <= 64_000 * 1.1
    assert time.monotonic() - started < 3.0


def test_a_slow_statement_that_passes_the_gate_is_cut_by_the_statement_timeout(
    probes: pgc.PostgresProbes, sandbox_db: str
) -> None:
    started = time.monotonic()
    evidence = probes.run_probe("slow", "SELECT count(*) FROM big a, big b, big c")
    assert evidence.status is Status.ERROR
    assert "statement_timeout" in evidence.summary or "no answer" in evidence.summary
    assert time.monotonic() - started < 3.0 + 2.5
    assert conftest.probe_backends(sandbox_db) == []


def test_results_are_redacted_before_they_become_evidence(probes: pgc.PostgresProbes) -> None:
    evidence = probes.run_probe("secrets", "SELECT name, email, api_key FROM accounts LIMIT 2")
    assert evidence.raw["rows"] == [
        ["customer 1", "<email>", "<redacted>"],
        ["customer 2", "<email>", "<redacted>"],
    ]
    assert evidence.raw["redacted"] == 4


# --- property-based: random reads with injected write fragments -------------------------------

SELECT_ITEMS = ["1", "id", "name", "count(*)", "now()", "'x'", "$$x$$", "lower(name)", "NULL"]
FROMS = ["accounts", "accounts a", "(SELECT 1 AS id, 'n' AS name) s", "account_names", "audit"]
WHERES = ["", "WHERE id = 1", "WHERE name LIKE 'c%%'", "WHERE id IN (SELECT 1)", "WHERE true"]
INJECTIONS = [
    "",
    "; DELETE FROM accounts",
    "; DROP TABLE accounts --",
    " FOR UPDATE",
    " INTO stolen",
    "/* */ ; TRUNCATE audit",
    " UNION SELECT evil()",
    " -- \n; UPDATE accounts SET balance = 0",
    "' ; DROP TABLE accounts; --",
    "$$; TRUNCATE accounts; $$",
    " WHERE evil() > 0",
    " ORDER BY setval('accounts_id_seq', 1)",
    " LIMIT nextval('accounts_id_seq')",
    " OFFSET pg_advisory_lock(1)",
    ", pg_terminate_backend(pg_backend_pid())",
    ", 1 === 2",
    ", public.lower(1)",
]
PREFIXES = [
    "",
    "WITH d AS (DELETE FROM audit RETURNING 1) ",
    "EXPLAIN ",
    "EXPLAIN ANALYZE ",
    "/**/",
]


@st.composite
def statements(draw: st.DrawFn) -> str:
    items = draw(st.lists(st.sampled_from(SELECT_ITEMS), min_size=1, max_size=3))
    text = f"{draw(st.sampled_from(PREFIXES))}SELECT {', '.join(items)}"
    text += f" FROM {draw(st.sampled_from(FROMS))} {draw(st.sampled_from(WHERES))}"
    position = draw(st.integers(min_value=0, max_value=len(text)))
    injection = draw(st.sampled_from(INJECTIONS))
    return text[:position] + injection + text[position:]


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sql=statements())
def test_no_generated_statement_changes_the_database(
    sql: str, probes: pgc.PostgresProbes, sandbox_db: str
) -> None:
    before = conftest.checksum(sandbox_db)
    try:
        gating.check(sql)
    except database.StatementRefused:
        return
    evidence = probes.run_probe("generated", sql)
    reasons = ("read-only", "search_path")  # the session, or a user's name shadowing a built-in
    assert evidence.status is not Status.DENIED or any(r in evidence.summary for r in reasons)
    assert conftest.checksum(sandbox_db) == before
    assert conftest.held_advisory_locks(sandbox_db) == 0


def test_the_listener_sees_the_server_call_out_when_dblink_runs_unchecked(
    sandbox_db: str, listener: conftest.Listener
) -> None:
    """The control for "no outbound connection": run directly by a superuser, outside the
    agent, dblink_connect does make the server connect to the watched port."""
    if not conftest.available(sandbox_db, "dblink"):
        pytest.skip("dblink's files are not installed (Debian: postgresql-contrib)")
    target = f"host=127.0.0.1 port={listener.port} dbname=x connect_timeout=2"
    with psycopg.connect(sandbox_db, autocommit=True) as conn, contextlib.suppress(psycopg.Error):
        conn.execute("SELECT dblink_connect(%s)", [target])
    deadline = time.monotonic() + 3
    while listener.accepted == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert listener.accepted >= 1


def test_the_memory_check_sees_a_large_value_read_without_the_agent(sandbox_db: str) -> None:
    """The control for "memory bounded": 100 MB read by psycopg directly, not through the
    agent, raises the peak well past the bound."""
    with psycopg.connect(sandbox_db, autocommit=True) as conn, peak_memory() as grown:
        row = conn.execute("SELECT format('%100000000s', 'x')").fetchone()
        assert row is not None and len(row[0]) == 100_000_000
        assert grown() > MEMORY_BOUND_KB


CAST_TRAP = """
CREATE TABLE items (id int, name text);
INSERT INTO items VALUES (1, 'one');
GRANT SELECT ON items TO PUBLIC;
CREATE FUNCTION item_to_int(items) RETURNS int LANGUAGE plpgsql AS
  $$BEGIN RAISE NOTICE 'user code ran'; RETURN 1; END$$;
CREATE CAST (items AS int) WITH FUNCTION item_to_int(items) AS IMPLICIT;
"""


def test_a_database_with_a_user_defined_cast_is_not_probed(
    postgres_cluster: postgres.PostgresCluster, probe_role: str, tmp_path: Path
) -> None:
    """A user's cast can run wherever a value of its type needs converting, named or not: in
    a database that holds one the role could run, every statement is refused, saying what to
    drop or revoke, and the cast's function never runs."""
    postgres_cluster.create_database("casts")
    setup = tmp_path / "casts.sql"
    setup.write_text(CAST_TRAP + "ALTER DATABASE casts SET track_functions = 'all';\n")
    postgres_cluster.run_sql_file(setup, database="casts")
    dsn = postgres_cluster.dsn("casts")
    limits = database.Limits(timeout_s=3.0)
    with pgc.PostgresProbes(
        conftest.as_role(dsn), sandbox=probing.Sandbox(), limits=limits
    ) as probes:
        outcomes = [
            probes.run_probe("cast", sql)
            for sql in ("SELECT i::int FROM items i", "SELECT abs(i) FROM items i", "SELECT 1")
        ]
        conftest.close_and_settle(probes, dsn=dsn)
    assert [e.status for e in outcomes] == [Status.DENIED] * 3
    assert "public.item_to_int(items), casting items to integer" in outcomes[0].summary
    with psycopg.connect(dsn, autocommit=True) as conn:
        calls = conn.execute("SELECT count(*) FROM pg_stat_user_functions").fetchone()
    assert calls == (0,)
