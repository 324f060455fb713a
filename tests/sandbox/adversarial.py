"""The adversarial corpus: statements that try to change the database (or the session, or other
sessions), hang, or flood the agent, each with what the gate must do with it.

``DENY``: the gate must refuse it on its own, without a server (status ``denied``, with a
reason). ``RESOLVE``: the gate must refuse it once the server has said what its names resolve
to in the seeded database (a user's function or operator shadowing a built-in); it needs the
database. ``HARMLESS``: a trick that looks dangerous but only reads (a write inside a comment or
a string, a huge result); the gate may let it through and the database must still be unchanged,
and the agent's memory bounded. ``{port}`` in a statement is a TCP port the test listens on (is
the server calling out?).
"""

from __future__ import annotations

from dataclasses import dataclass

DENY = "deny"
RESOLVE = "resolve"
HARMLESS = "harmless"


@dataclass(frozen=True)
class Attempt:
    sql: str
    expect: str
    family: str


WRITES = [
    "INSERT INTO accounts (name) VALUES ('mallory')",
    "INSERT INTO accounts (name) SELECT name FROM accounts",
    "UPDATE accounts SET balance = 0",
    "UPDATE accounts SET email = NULL WHERE id = 1",
    "DELETE FROM accounts",
    "DELETE FROM accounts WHERE id IN (SELECT id FROM accounts LIMIT 1)",
    "MERGE INTO accounts a USING accounts b ON a.id = b.id WHEN MATCHED THEN DELETE",
    "TRUNCATE accounts",
    "TRUNCATE audit RESTART IDENTITY CASCADE",
    "DROP TABLE accounts",
    "DROP TABLE IF EXISTS audit CASCADE",
    "ALTER TABLE accounts ADD COLUMN owned boolean",
    "ALTER TABLE accounts RENAME TO accounts_old",
    "CREATE TABLE stolen AS SELECT * FROM accounts",
    "CREATE TABLE t (x int)",
    "CREATE TEMP TABLE t (x int)",
    "CREATE INDEX CONCURRENTLY i ON accounts (email)",
    "CREATE INDEX i ON accounts (email)",
    "CREATE VIEW v AS SELECT 1",
    "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'",
    "CREATE EXTENSION dblink",
    "CREATE ROLE attacker SUPERUSER LOGIN",
    "ALTER ROLE diagnose SUPERUSER",
    "ALTER SYSTEM SET work_mem = '1GB'",
    "ALTER DATABASE sandbox SET default_transaction_read_only = off",
    "GRANT ALL ON accounts TO PUBLIC",
    "REVOKE SELECT ON accounts FROM PUBLIC",
    "COMMENT ON TABLE accounts IS 'owned'",
    "VACUUM FULL accounts",
    "ANALYZE accounts",
    "REINDEX TABLE accounts",
    "CLUSTER accounts USING accounts_pkey",
    "LOCK TABLE accounts IN ACCESS EXCLUSIVE MODE",
    "COPY accounts FROM '/etc/passwd'",
    "COPY accounts TO '/tmp/accounts.csv'",
    "COPY (SELECT 1) TO PROGRAM 'touch /tmp/owned'",
    "COPY accounts TO STDOUT",
    "SELECT * INTO stolen FROM accounts",
    "SELECT * INTO TEMP stolen FROM accounts",
    "CHECKPOINT",
    "REFRESH MATERIALIZED VIEW account_names",
    "SECURITY LABEL ON TABLE accounts IS 'x'",
    "CREATE RULE r AS ON SELECT TO accounts DO INSTEAD NOTHING",
    "IMPORT FOREIGN SCHEMA public FROM SERVER s INTO public",
]

DML = [w for w in WRITES if w.split()[0] in {"INSERT", "UPDATE", "DELETE", "MERGE"}]

SIDE_EFFECT_CALLS = [
    "pg_terminate_backend(pg_backend_pid())",
    "pg_cancel_backend(1)",
    "set_config('default_transaction_read_only', 'off', false)",
    "set_config('statement_timeout', '0', false)",
    "pg_sleep(60)",
    "pg_sleep_for('1 minute')",
    "pg_sleep_until(now() + interval '1 minute')",
    "pg_advisory_lock(42)",
    "pg_advisory_xact_lock(42)",
    "pg_try_advisory_lock(42)",
    "pg_advisory_lock_shared(42)",
    "lo_import('/etc/passwd')",
    "lo_export(1, '/tmp/x')",
    "lo_create(0)",
    "lo_unlink(1)",
    "pg_read_file('/etc/passwd')",
    "pg_read_binary_file('/etc/passwd')",
    "pg_ls_dir('.')",
    "pg_stat_file('postgresql.conf')",
    "dblink('dbname=postgres', 'DELETE FROM accounts')",
    "dblink_exec('DELETE FROM accounts')",
    "nextval('accounts_id_seq')",
    "setval('accounts_id_seq', 1)",
    "pg_notify('channel', 'x')",
    "pg_reload_conf()",
    "pg_rotate_logfile()",
    "pg_switch_wal()",
    "pg_create_restore_point('x')",
    "pg_create_logical_replication_slot('s', 'test_decoding')",
    "pg_create_physical_replication_slot('s')",
    "pg_drop_replication_slot('s')",
    "pg_logical_emit_message(true, 'x', 'y')",
    "txid_current()",
    "pg_current_xact_id()",
    "pg_stat_reset()",
    "pg_stat_statements_reset()",
    "query_to_xml('DELETE FROM accounts RETURNING 1', true, true, '')",
    "pg_promote()",
    "pg_log_backend_memory_contexts(pg_backend_pid())",
    "pg_export_snapshot()",
    "pg_import_system_collations('pg_catalog')",
    "evil()",
    "public.evil()",
    "PUBLIC.EVIL()",
    '"evil"()',
    "public.lower(1)",
    "pg_catalog.pg_terminate_backend(1)",
    "PG_TERMINATE_BACKEND(1)",
    "repeat('x', 100000000)",
    "generate_series(1, 100000000)",
]

POSITIONS = [
    "SELECT {f}",
    "SELECT count(*) FROM accounts WHERE {f} IS NOT NULL",
    "SELECT * FROM {f} AS x",
    "WITH c AS (SELECT {f} AS v) SELECT v FROM c",
    "SELECT (SELECT {f})",
    "EXPLAIN SELECT {f}",
]

LOCKING = [
    "SELECT * FROM accounts FOR UPDATE",
    "SELECT * FROM accounts FOR NO KEY UPDATE",
    "SELECT * FROM accounts FOR SHARE",
    "SELECT * FROM accounts FOR KEY SHARE",
    "SELECT * FROM accounts FOR UPDATE NOWAIT",
    "SELECT * FROM accounts FOR UPDATE SKIP LOCKED",
    "SELECT * FROM accounts WHERE id = 1 FOR UPDATE OF accounts",
    "SELECT * FROM (SELECT * FROM accounts FOR UPDATE) s",
    "WITH l AS (SELECT * FROM accounts FOR UPDATE) SELECT * FROM l",
    "SELECT id FROM accounts WHERE id IN (SELECT id FROM accounts FOR SHARE)",
    "EXPLAIN SELECT * FROM accounts FOR UPDATE",
]

SESSION = [
    "SET ROLE postgres",
    "SET ROLE NONE",
    "RESET ROLE",
    "SET SESSION AUTHORIZATION postgres",
    "SET SESSION AUTHORIZATION DEFAULT",
    "RESET SESSION AUTHORIZATION",
    "RESET ALL",
    "RESET statement_timeout",
    "SET default_transaction_read_only = off",
    "SET transaction_read_only = off",
    "SET TRANSACTION READ WRITE",
    "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
    "SET statement_timeout = 0",
    "SET LOCAL lock_timeout = 0",
    "SET search_path = public, pg_catalog",
    "SET plan_cache_mode = force_custom_plan",
    "set_config",
    "DISCARD ALL",
    "LOAD 'auto_explain'",
    "ALTER ROLE CURRENT_USER SET default_transaction_read_only = off",
]

TRANSACTIONS = [
    "BEGIN",
    "BEGIN READ WRITE",
    "START TRANSACTION READ WRITE",
    "START TRANSACTION ISOLATION LEVEL SERIALIZABLE",
    "COMMIT",
    "END",
    "ROLLBACK",
    "ABORT",
    "SAVEPOINT s",
    "RELEASE SAVEPOINT s",
    "ROLLBACK TO SAVEPOINT s",
    "PREPARE TRANSACTION 'owned'",
    "COMMIT PREPARED 'owned'",
    "ROLLBACK PREPARED 'owned'",
    "COMMIT AND CHAIN",
]

UTILITY = [
    "LISTEN channel",
    "NOTIFY channel, 'x'",
    "UNLISTEN *",
    "CALL evil_proc()",
    "DO $$BEGIN DELETE FROM accounts; END$$",
    "DO $x$BEGIN EXECUTE 'TRUNCATE accounts'; END$x$",
    "DO LANGUAGE plpgsql $$BEGIN PERFORM evil(); END$$",
    "DECLARE c CURSOR FOR SELECT * FROM accounts",
    "DECLARE c CURSOR WITH HOLD FOR SELECT evil()",
    "FETCH ALL FROM c",
    "MOVE NEXT IN c",
    "CLOSE c",
    "PREPARE p AS SELECT 1",
    "EXECUTE p",
    "DEALLOCATE p",
    "DEALLOCATE ALL",
    "EXPLAIN EXECUTE p",
    "EXPLAIN ANALYZE EXECUTE p",
    "CREATE SERVER s FOREIGN DATA WRAPPER dblink_fdw",
    "CREATE PUBLICATION p FOR ALL TABLES",
    "CREATE SUBSCRIPTION s CONNECTION 'dbname=x' PUBLICATION p",
    "VALUES (evil())",
    "TABLE accounts; DELETE FROM accounts",
    "SHOW ALL; DELETE FROM accounts",
    "EXPLAIN (FORMAT JSON, ANALYZE) SELECT 1",
    "EXPLAIN ANALYSE SELECT evil()",
    "EXPLAIN (ANALYZE off) SELECT 1",
    "EXPLAIN (WAL) SELECT 1",
    "EXPLAIN VERBOSE INSERT INTO accounts (name) VALUES ('x')",
    "SELECT 1 === 2",
    "SELECT 1 <-> 2",
    "SELECT 1 OPERATOR(public.===) 2",
    "SELECT 1::regclass::evil_type",
    "SELECT '1'::public.mytype",
    "SELECT * FROM accounts TABLESAMPLE SYSTEM (50)",
    "SELECT * FROM XMLTABLE('/a' PASSING '<a/>' COLUMNS x int)",
    "SELECT xmlparse(document '<!DOCTYPE a SYSTEM \"file:///etc/passwd\"><a/>')",
    "SELECT * FROM otherdb.public.accounts",
    "SELECT 1\x00; DELETE FROM accounts",
    "",
    "   ",
    ";",
    "-- only a comment",
    "SELECT FROM WHERE",
    "DELETE",
]

TRICKS_DENY = [
    "SELECT 1; DELETE FROM accounts",
    "SELECT 1;DELETE FROM accounts",
    "select 1;\ndelete from accounts",
    "SELECT 1 /* comment */; DROP TABLE accounts",
    "SELECT 1 -- comment\n; DROP TABLE accounts",
    "/* SELECT */ DELETE FROM accounts",
    "-- SELECT 1\nDELETE FROM accounts",
    "DeLeTe FrOm accounts",
    "dElEtE/**/fRoM/**/accounts",
    "SELECT $$x$$; TRUNCATE accounts",
    "SELECT $a$ $$ ; $a$; TRUNCATE accounts",
    "SELECT 'it''s'; DROP TABLE accounts; --'",
    "SELECT E'\\''; DROP TABLE accounts; --'",
    "SELECT U&'\\0041'; DROP TABLE accounts",
    "WITH x AS (SELECT 1) DELETE FROM accounts",
    "WITH x AS (SELECT 1) UPDATE accounts SET balance = 0",
    "WITH RECURSIVE r AS (SELECT 1) INSERT INTO audit SELECT now(), 'x' FROM r",
    "WITH a AS (SELECT 1), b AS (DELETE FROM accounts RETURNING id) SELECT * FROM a",
    "WITH a AS MATERIALIZED (UPDATE accounts SET balance = 0 RETURNING 1) SELECT 1",
    "WITH a AS NOT MATERIALIZED (DELETE FROM audit RETURNING 1) SELECT 1",
    "SELECT * FROM (WITH d AS (DELETE FROM accounts RETURNING 1) SELECT * FROM d) s",
    "SELECT (WITH d AS (DELETE FROM accounts RETURNING 1) SELECT count(*) FROM d)",
    "EXPLAIN WITH d AS (DELETE FROM accounts RETURNING 1) SELECT * FROM d",
    "SELECT pg_terminate_backend/**/(1)",
    'SELECT "pg_terminate_backend"(1)',
    "SELECT pg_catalog . pg_sleep(60)",
    "SELECT count(*) FROM accounts a, LATERAL (SELECT evil()) e",
    "SELECT id FROM accounts ORDER BY evil()",
    "SELECT id FROM accounts GROUP BY id HAVING evil() > 0",
    "SELECT evil() OVER ()",
    "SELECT array_agg(x) FROM (SELECT evil() AS x) s",
    "SELECT CASE WHEN true THEN evil() END",
    "SELECT coalesce(NULL, evil())",
    "SELECT greatest(1, evil())",
    "SELECT 1 WHERE EXISTS (SELECT evil())",
    "SELECT ROW(evil())",
    "SELECT ARRAY[evil()]",
    "SELECT count(*) FILTER (WHERE evil() > 0) FROM accounts",
    "SELECT 1 UNION SELECT evil()",
    "SELECT * FROM ROWS FROM (evil()) AS r",
    "SELECT * FROM accounts a JOIN LATERAL evil() e ON true",
    "SELECT * FROM account_names WHERE id = evil()",
]

TRICKS_HARMLESS = [
    "SELECT 1 /* ; DELETE FROM accounts */",
    "SELECT 1 -- ; DELETE FROM accounts",
    "SELECT 1 +++ 2",
    "SELECT '; DELETE FROM accounts; --'",
    "SELECT $$; TRUNCATE accounts; $$",
    "SELECT $x$ $$; DROP TABLE accounts; $$ $x$",
    "SELECT E'\\'; DROP TABLE accounts; --'",
    'SELECT 1 AS "; DROP TABLE accounts"',
    "select 1;",
    "SeLeCt count(*) FrOm accounts",
    "SELECT id, name FROM accounts WHERE name LIKE '%DELETE%'",
    "SELECT * FROM accounts",
    "SELECT * FROM big",
    "SELECT a.* FROM big a, big b",
    "SELECT count(*) FROM big a, big b, big c",
    "SELECT string_agg(filler, '') FROM big",
    "SELECT * FROM pg_class a, pg_class b",
    "TABLE accounts",
    "VALUES (1), (2)",
    "SHOW default_transaction_read_only",
    "SHOW ALL",
    "EXPLAIN SELECT * FROM accounts",
    "EXPLAIN (VERBOSE, COSTS, FORMAT JSON) SELECT * FROM accounts WHERE id = 1",
    "SELECT * FROM account_names",
    "SELECT current_setting('transaction_read_only')",
    "SELECT email, api_key FROM accounts LIMIT 3",
    "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r",
]


# --- field selection: PostgreSQL reads (x).f and rel.f as f(x) -------------------------------

FIELD_CALLS = [
    ("pid", "pg_terminate_backend"),
    ("pid", "pg_cancel_backend"),
    ("4242::bigint", "pg_advisory_lock"),
    ("4242::bigint", "pg_advisory_xact_lock"),
    ("4242::bigint", "pg_try_advisory_lock"),
    ("4242::bigint", "pg_advisory_lock_shared"),
    ("1e6::float8", "pg_sleep"),
    ("'1 minute'::interval", "pg_sleep_for"),
    ("now() + interval '1 minute'", "pg_sleep_until"),
    ("'SELECT to_tsvector(name) FROM accounts'::text", "ts_stat"),
    (
        "'WITH d AS (DELETE FROM accounts RETURNING 1) SELECT to_tsvector(''x'') FROM d'::text",
        "ts_stat",
    ),
    ("'/etc/passwd'::text", "pg_read_file"),
    ("'/etc/passwd'::text", "pg_read_binary_file"),
    ("'.'::text", "pg_ls_dir"),
    ("'postgresql.conf'::text", "pg_stat_file"),
    ("'accounts'::regclass::oid", "pg_stat_reset_single_table_counters"),
    ("'bgwriter'::text", "pg_stat_reset_shared"),
    ("'/etc/passwd'::text", "lo_import"),
    ("0::oid", "lo_create"),
    ("1::oid", "lo_unlink"),
    ("1::oid", "lo_get"),
    ("'accounts_id_seq'::regclass", "nextval"),
    ("pg_backend_pid()", "pg_log_backend_memory_contexts"),
    ("'x'::text", "pg_create_restore_point"),
    ("true", "pg_promote"),
    ("'host=127.0.0.1 port={port} dbname=sandbox user=app password=app-secret'::text",
     "dblink_connect"),
    ("'INSERT INTO accounts (name) VALUES (''dblink'')'::text", "dblink_exec"),
    ("'SELECT 1'::text", "dblink"),
]  # fmt: skip

FIELD_FORMS = [
    "SELECT ({arg}).{f}",
    "SELECT (({arg})).{f}",
    "SELECT ({arg}).{F}",
    'SELECT ({arg})."{f}"',
    "SELECT count(*) FROM pg_stat_activity WHERE ({arg}).{f} IS NOT NULL",
    "WITH c AS (SELECT ({arg}).{f} AS v) SELECT v FROM c",
    "SELECT x.v FROM (SELECT ({arg}) AS v) s, LATERAL (SELECT (s.v).{f} AS v) x",
    "SELECT s.v.{f} FROM (SELECT ({arg}) AS v) s",
    "SELECT CASE WHEN true THEN ({arg}).{f} END",
    "EXPLAIN SELECT ({arg}).{f}",
]

ROW_FIELDS = [
    "SELECT (pid).pg_terminate_backend FROM pg_stat_activity WHERE application_name = 'sentinel'",
    "SELECT (a.pid).pg_cancel_backend FROM pg_stat_activity a"
    " WHERE a.application_name = 'sentinel'",
    "SELECT a.pg_terminate_backend FROM pg_stat_activity a",
    "SELECT pg_stat_activity.pg_terminate_backend FROM pg_stat_activity",
    "SELECT pg_catalog.pg_stat_activity.pg_cancel_backend FROM pg_stat_activity",
    "SELECT accounts.lo_unlink FROM accounts",
    "SELECT CASE WHEN (c).dblink_connect = 'OK' THEN "
    "('INSERT INTO accounts (name) VALUES (''x'')'::text).dblink_exec END FROM (SELECT "
    "'host=127.0.0.1 port={port} dbname=sandbox user=app password=app-secret'::text AS c) s",
]

USER_FIELDS = [
    "SELECT a.evil_row FROM accounts a",
    "SELECT (a).evil_row FROM accounts a",
    "SELECT accounts.evil_row FROM accounts",
    "SELECT public.accounts.evil_row FROM public.accounts",
    "SELECT (1).evil_any",
    "SELECT (name).evil_any FROM accounts",
    "SELECT (1).lower",
    "SELECT count(*) FROM accounts a WHERE a.evil_row > 0",
    "SELECT (x).path FROM (SELECT 1 AS x) s",
]
"""Field selection that only the server can tell from a column: user functions and built-ins
off the allow-list (refused once the server says what the name is)."""

# --- functions that run SQL held in a string ---------------------------------------------------

SQL_IN_STRING = [
    "ts_stat('SELECT to_tsvector(name) FROM accounts')",
    "ts_stat('WITH d AS (DELETE FROM accounts RETURNING 1) SELECT to_tsvector(''x'') FROM d')",
    "ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery')",
    "query_to_xml('DELETE FROM accounts RETURNING 1', true, true, '')",
    "query_to_xmlschema('SELECT 1', true, true, '')",
    "query_to_xml_and_xmlschema('SELECT 1', true, true, '')",
    "cursor_to_xml('c'::refcursor, 1, true, true, '')",
    "cursor_to_xmlschema('c'::refcursor, true, true, '')",
    "table_to_xml('accounts'::regclass, true, true, '')",
    "table_to_xmlschema('accounts'::regclass, true, true, '')",
    "schema_to_xml('public', true, true, '')",
    "database_to_xml(true, true, '')",
    "database_to_xml_and_xmlschema(true, true, '')",
]

# --- extensions: dblink and postgres_fdw ---------------------------------------------------------

EXTENSION_CALLS = [
    "dblink_connect('host=127.0.0.1 port={port} dbname=sandbox user=app password=app-secret')",
    "dblink_connect('c', 'host=127.0.0.1 port={port} dbname=sandbox')",
    "dblink_connect_u('host=127.0.0.1 port={port} dbname=sandbox')",
    "dblink_exec('host=127.0.0.1 port={port} dbname=sandbox user=app password=app-secret', "
    "'INSERT INTO accounts (name) VALUES (''x'')')",
    "dblink('host=127.0.0.1 port={port} dbname=sandbox', 'SELECT 1')",
    "dblink_send_query('c', 'DELETE FROM accounts')",
    "dblink_get_connections()",
    "dblink_disconnect()",
    "public.dblink_connect('host=127.0.0.1 port={port}')",
    "\"dblink_connect\"('host=127.0.0.1 port={port}')",
    "PUBLIC.DBLINK_EXEC('DELETE FROM accounts')",
    "postgres_fdw_handler()",
    "postgres_fdw_get_connections()",
    "postgres_fdw_disconnect_all()",
]

# --- names: quoted, schema-qualified, shadowing ------------------------------------------------

NAMES_DENY = [
    'SELECT "LOWER"(name) FROM accounts',
    'SELECT "Lower"(name) FROM accounts',
    'SELECT public."LOWER"(name) FROM accounts',
    'SELECT pg_catalog."LOWER"(name) FROM accounts',
    'SELECT "PG_CATALOG".lower(name) FROM accounts',
    'SELECT "pg_catalog".pg_sleep(1)',
    "SELECT sandbox.pg_catalog.lower(name) FROM accounts",
    "SELECT public.lower(1)",
    'SELECT "public"."evil_row"(a) FROM accounts a',
    "SELECT evil_row(a) FROM accounts a",
    "SELECT evil_any(1)",
    "SELECT 'x'::\"TEXT\"",
    "SELECT 'x'::public.text",
    'SELECT "NOW"()',
    "SELECT Pg_Catalog.PG_SLEEP(1)",
]

NAMES_RESOLVE = [
    "SELECT lower(1)",
    "SELECT lower(name) FROM accounts",
    "SELECT id FROM accounts WHERE lower(id::int) = 1",
]
"""``public.lower(int)`` shadows the built-in by overload: an unqualified ``lower`` is refused
in this database (``pg_catalog.lower`` is the way to mean the built-in)."""

# --- user-defined operators -----------------------------------------------------------------------

OPERATORS_DENY = [
    "SELECT 1 === 2",
    "SELECT 1 OPERATOR(public.===) 2",
    "SELECT 'a' OPERATOR(public.+) 'b'",
    "SELECT 1 === ANY (SELECT 2)",
    "SELECT 1 === ALL (ARRAY[2])",
    "SELECT id FROM accounts ORDER BY id USING ===",
    "SELECT id FROM accounts ORDER BY name USING OPERATOR(public.+)",
    "SELECT (1, 2) === (3, 4)",
    "SELECT 1 WHERE 1 === ANY (SELECT 2)",
]

OPERATORS_RESOLVE = [
    "SELECT name + 'x' FROM accounts",
    "SELECT 'a' + 'b'",
    "SELECT * FROM accounts WHERE name + 'x' = 'y'",
    "SELECT CASE WHEN name + 'x' = 'y' THEN 1 END FROM accounts",
    "SELECT count(*) FROM accounts WHERE name LIKE 1",
    "SELECT name ~~ 1 FROM accounts",
    "SELECT 1 FROM accounts ORDER BY name + 'x'",
    "SELECT (SELECT 'a' + 'b')",
]
"""A user's ``+`` on text and ``~~`` on (text, int): an unqualified ``+`` or ``LIKE`` is
refused in this database, ``OPERATOR(pg_catalog.+)`` is not."""

# --- oversized results: the agent's memory stays bounded -----------------------------------------

OVERSIZED = [
    "SELECT format('%400000000s', 'x')",
    "SELECT lpad('x', 300000000)",
    "SELECT format('%2000000s', 'x') AS a, format('%2000000s', 'y') AS b FROM big",
    "SELECT format('%1000000s', filler) FROM big",
    "SELECT ARRAY[format('%100000000s', 'x')]",
    "SELECT to_jsonb(format('%100000000s', 'x'))",
    "SELECT jsonb_build_object('k', format('%100000000s', 'x'))",
    "SELECT array_agg(filler) FROM big",
    "SELECT string_agg(filler, '') FROM big",
    "SELECT row_to_json(b) FROM big b",
    "SELECT ROW(format('%100000000s', 'x'), 1)",
    "SELECT format('%50000s', 'x') AS a, format('%50000s', 'x') AS b, format('%50000s', 'x') AS c"
    " FROM big",
]

HARMLESS_NAMES = [
    "SELECT pg_catalog.lower(name) FROM accounts LIMIT 1",
    "SELECT name OPERATOR(pg_catalog.||) 'x' FROM accounts LIMIT 1",
    "SELECT 1 OPERATOR(pg_catalog.+) 2",
    "SELECT c.relname, c.oid FROM pg_class c LIMIT 1",
]


def corpus(*, port: int = 1) -> list[Attempt]:
    """Every attempt, each once; ``{port}`` is a port the caller watches for connections."""
    attempts: list[Attempt] = []
    attempts += [Attempt(w, DENY, "write") for w in WRITES]
    attempts += [_variant(w, how) for w in WRITES for how in ("lower", "comment", "semicolon")]
    attempts += [Attempt(f"SELECT 1; {w}", DENY, "multi") for w in WRITES[:20]]
    attempts += [Attempt(f"{w}; SELECT 1", DENY, "multi") for w in WRITES[:10]]
    attempts += [Attempt(f"WITH x AS ({d} RETURNING *) SELECT * FROM x", DENY, "cte") for d in DML]
    attempts += [Attempt(f"EXPLAIN ANALYZE {w}", DENY, "explain") for w in WRITES[:20]]
    attempts += [Attempt(f"EXPLAIN (ANALYZE true, BUFFERS) {d}", DENY, "explain") for d in DML]
    attempts += [Attempt(f"EXPLAIN {d}", DENY, "explain") for d in DML]
    attempts += [Attempt(f"PREPARE p AS {d}", DENY, "prepare") for d in DML]
    attempts += [Attempt(f"DO $$BEGIN {w}; END$$", DENY, "do") for w in WRITES[:10]]
    attempts += [
        Attempt(position.format(f=call), DENY, "function")
        for call in SIDE_EFFECT_CALLS
        for position in POSITIONS
    ]
    attempts += [Attempt(s, DENY, "locking") for s in LOCKING]
    attempts += [Attempt(s, DENY, "session") for s in SESSION]
    attempts += [Attempt(s, DENY, "transaction") for s in TRANSACTIONS]
    attempts += [Attempt(s, DENY, "utility") for s in UTILITY]
    attempts += [Attempt(s, DENY, "trick") for s in TRICKS_DENY]
    attempts += [Attempt(s, HARMLESS, "harmless") for s in TRICKS_HARMLESS]
    attempts += field_selection()
    attempts += [Attempt(s, RESOLVE, "field-selection") for s in USER_FIELDS]
    attempts += [
        Attempt(position.format(f=call), DENY, "sql-in-string")
        for call in SQL_IN_STRING
        for position in POSITIONS
    ]
    attempts += extension_calls()
    attempts += [Attempt(s, DENY, "names") for s in NAMES_DENY]
    attempts += [Attempt(s, RESOLVE, "names") for s in NAMES_RESOLVE]
    attempts += [Attempt(s, DENY, "operators") for s in OPERATORS_DENY]
    attempts += [Attempt(s, RESOLVE, "operators") for s in OPERATORS_RESOLVE]
    attempts += [Attempt(s, HARMLESS, "oversized") for s in OVERSIZED]
    attempts += [Attempt(s, HARMLESS, "harmless") for s in HARMLESS_NAMES]
    unique = list({a.sql: a for a in attempts}.values())
    return [Attempt(a.sql.replace("{port}", str(port)), a.expect, a.family) for a in unique]


def field_selection() -> list[Attempt]:
    """Every side-effect function of :data:`FIELD_CALLS` in every form of :data:`FIELD_FORMS`."""
    attempts = [
        Attempt(form.format(arg=arg, f=f, F=f.upper()), DENY, "field-selection")
        for arg, f in FIELD_CALLS
        for form in FIELD_FORMS
    ]
    return attempts + [Attempt(s, DENY, "field-selection") for s in ROW_FIELDS]


def extension_calls() -> list[Attempt]:
    """dblink and postgres_fdw functions as calls in every position."""
    return [
        Attempt(position.format(f=call), DENY, "extension")
        for call in EXTENSION_CALLS
        for position in POSITIONS
    ]


def by_family(attempts: list[Attempt]) -> dict[str, int]:
    """How many attempts each family holds."""
    counts: dict[str, int] = {}
    for attempt in attempts:
        counts[attempt.family] = counts.get(attempt.family, 0) + 1
    return counts


def _variant(sql: str, how: str) -> Attempt:
    if how == "lower":
        return Attempt(sql.lower(), DENY, "casing")
    if how == "comment":
        return Attempt(f"/* read-only, promise */ {sql} -- SELECT", DENY, "comment")
    return Attempt(f"{sql};", DENY, "semicolon")
