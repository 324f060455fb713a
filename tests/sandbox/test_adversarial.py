"""Every attempt against a real PostgreSQL: refused or rolled back, the data's checksum unchanged,
no lock or running backend left behind, and each refusal says why."""

from __future__ import annotations

import time

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors import postgres as pgc
from diagnose.domain import database
from diagnose.domain.models import Status
from sandbox import gating
from tests.sandbox import adversarial, conftest

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_the_whole_corpus_is_refused_or_harmless_and_changes_nothing(
    probes: pgc.PostgresProbes, sandbox_db: str
) -> None:
    before = conftest.checksum(sandbox_db)
    wrong = []
    for attempt in adversarial.corpus():
        evidence = probes.run_probe("adversarial", attempt.sql)
        assert evidence.source == "postgres" and evidence.summary.startswith("adversarial: ")
        if attempt.expect == adversarial.DENY and evidence.status is not Status.DENIED:
            wrong.append((attempt.sql, evidence.status, evidence.summary))
        if evidence.status is Status.DENIED and len(evidence.summary) < 30:
            wrong.append((attempt.sql, evidence.status, "no reason given"))
    assert wrong == []
    assert conftest.checksum(sandbox_db) == before
    assert conftest.probe_backends(sandbox_db) == []
    assert conftest.held_advisory_locks(sandbox_db) == 0


def test_without_the_gate_the_read_only_session_and_the_role_still_hold(
    role_dsn: str, sandbox_db: str
) -> None:
    """Second and third gates alone: every write attempt runs as the least-privilege role in the
    read-only session, the first gate approving everything."""
    before = conftest.checksum(sandbox_db)
    with psycopg.connect(sandbox_db, autocommit=True, application_name="sentinel") as sentinel:
        with conftest.ungated(role_dsn, timeout_s=1.0) as probes:
            outcomes = [
                probes.run_probe("ungated", a.sql)
                for a in adversarial.corpus()
                if a.expect == adversarial.DENY and a.sql.strip(" ;") and "\x00" not in a.sql
            ]
        assert sentinel.execute("SELECT 1").fetchone() == (1,)
    assert conftest.checksum(sandbox_db) == before
    assert conftest.probe_backends(sandbox_db) == []
    assert conftest.held_advisory_locks(sandbox_db) == 0
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
    assert evidence.status is not Status.DENIED or "read-only" in evidence.summary
    assert conftest.checksum(sandbox_db) == before
    assert conftest.held_advisory_locks(sandbox_db) == 0
