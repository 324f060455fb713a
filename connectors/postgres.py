"""PostgreSQL: the only module that imports psycopg.

Two things live here: the connection the checkpoint store needs, and the read-only probe
connector (:class:`AsyncPostgresProbes`, with the sync facade :class:`PostgresProbes` that the
graph's nodes call). The probe connector is one choke point. Every statement is rendered and
handed to the sandbox's gate (a :class:`~diagnose.domain.database.ProbeSandbox`, handed in by
the composition root: ``connectors`` and ``sandbox`` never import each other); only what the
gate approved runs, and it runs in the second gate, owned here: a session started read-only,
with statement, lock and idle timeouts, inside ``BEGIN READ ONLY`` that is always rolled back,
on a connection that goes back to the pool through ``DISCARD ALL``. Results are capped and
redacted by the sandbox before they become evidence. Server errors, timeouts and refusals are
evidence with a status; our own bugs still raise.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping, Sequence
from concurrent import futures
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from psycopg import sql as pgsql
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from connectors import _schema
from diagnose import settings as config
from diagnose.domain import database as dbport
from diagnose.domain import errors
from diagnose.domain.models import JSON, Evidence, Status

T = TypeVar("T")
_PLACEHOLDER = re.compile(r"%\((?P<name>[A-Za-z_][A-Za-z0-9_]*)\)s|%%|%")
_CLEANUP_S = 2.0
"""How long a rollback or a pool shutdown may take before the connection is dropped instead."""

BEGIN = "BEGIN TRANSACTION READ ONLY"
ROLLBACK = "ROLLBACK"
RESET = "DISCARD ALL"
"""Run on every connection going back to the pool: prepared statements, advisory locks,
LISTEN registrations, temporary objects and session settings cannot outlive a probe."""
READ_ONLY_CHECK = "SELECT current_setting('transaction_read_only')"

DANGEROUS_ROLES = (
    "pg_read_server_files",
    "pg_write_server_files",
    "pg_execute_server_program",
    "pg_signal_backend",
)
"""Built-in roles a probe role must not belong to, directly or not."""

OUTBOUND_EXTENSIONS = ("dblink", "postgres_fdw")
"""Extensions whose functions make the server connect elsewhere, as someone else."""

ROLE_CHECK = f"""
SELECT pg_catalog.format('%I', current_user), r.rolsuper,
  ARRAY(SELECT g FROM pg_catalog.unnest(ARRAY[{", ".join(f"'{r}'" for r in DANGEROUS_ROLES)}])
        AS g WHERE pg_catalog.pg_has_role(current_user, g, 'MEMBER')),
  ARRAY(SELECT pg_catalog.format('%I.%I(%s)', n.nspname, p.proname,
                                 pg_catalog.pg_get_function_identity_arguments(p.oid))
        FROM pg_catalog.pg_proc p
        JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
             AND d.objid = p.oid AND d.deptype = 'e'
        JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
        WHERE e.extname IN ({", ".join(f"'{x}'" for x in OUTBOUND_EXTENSIONS)})
          AND pg_catalog.has_function_privilege(p.oid, 'EXECUTE')
        ORDER BY 1)
FROM pg_catalog.pg_roles r WHERE r.rolname = current_user
"""
"""Who the probe session is and what it can do beyond reading (see ``_check_role``)."""

VISIBLE = """
SELECT 'function', n.nspname::text, p.proname::text, e.extname::text
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
     AND d.objid = p.oid AND d.deptype = 'e'
LEFT JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
WHERE n.nspname = ANY (pg_catalog.current_schemas(false))
  AND (p.proname = ANY (%(fields)s::text[]) OR p.proname = ANY (%(calls)s::text[]))
UNION ALL
SELECT 'operator', n.nspname::text, o.oprname::text, NULL
FROM pg_catalog.pg_operator o
JOIN pg_catalog.pg_namespace n ON n.oid = o.oprnamespace
WHERE n.nspname = ANY (pg_catalog.current_schemas(false)) AND n.nspname <> 'pg_catalog'
  AND o.oprname = ANY (%(operators)s::text[])
UNION ALL
SELECT 'cast', n.nspname::text,
       pg_catalog.format('%%I.%%I(%%s), casting %%s to %%s', n.nspname, p.proname,
                         pg_catalog.pg_get_function_identity_arguments(p.oid),
                         c.castsource::pg_catalog.regtype, c.casttarget::pg_catalog.regtype),
       NULL
FROM pg_catalog.pg_cast c
JOIN pg_catalog.pg_proc p ON p.oid = c.castfunc
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname <> 'pg_catalog'
  AND pg_catalog.has_function_privilege(p.oid, 'EXECUTE')
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_cast'::pg_catalog.regclass
                    AND d.objid = c.oid AND d.deptype = 'e')
"""
"""The functions and operators on the probe session's search_path that a statement's names
can resolve to (``current_schemas`` leaves out schemas the role may not use), and the casts a
user defined with a function the role can execute (PostgreSQL applies a cast wherever a value
of its type needs one, named or not; casts of installed extensions are left to the
extensions)."""


@contextmanager
def checkpoint_connection(
    dsn: str, *, behind_pgbouncer: bool = False, connect_timeout_s: int = 10
) -> Iterator[psycopg.Connection[DictRow]]:
    """A connection as LangGraph's Postgres saver needs it: autocommit, rows as dicts, and no
    server-side prepared statements (``prepare_threshold=0``; ``None`` behind PgBouncer in
    transaction mode, which cannot keep them)."""
    try:
        conn = psycopg.connect(
            dsn,
            autocommit=True,
            prepare_threshold=None if behind_pgbouncer else 0,
            row_factory=dict_row,
            connect_timeout=connect_timeout_s,
        )
    except psycopg.OperationalError as exc:
        raise errors.SourceUnavailable(
            f"cannot reach the checkpoint database: {exc}".strip()
            + "; check DIAGNOSE_DATABASE_URL, or unset it to keep checkpoints in SQLite"
        ) from exc
    with conn:
        yield conn


schema_lock = _schema.held
"""Hold while LangGraph's saver creates its tables, so workers starting together do not race."""


# --- the probe connector ----------------------------------------------------------------------


class _ProbeError(Exception):
    """The server or the session said no to something a probe needs (mapped to evidence)."""

    def __init__(self, status: Status, summary: str) -> None:
        super().__init__(summary)
        self.status = status
        self.summary = summary


class AsyncPostgresProbes:
    """Read-only probes over a small connection pool per database (asyncio).

    ``dsn`` names the server and the default database; ``limits`` bound each probe in time and
    size. Use as an async context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        dsn: str,
        *,
        sandbox: dbport.ProbeSandbox,
        limits: dbport.Limits | None = None,
        pool_size: int = 2,
    ) -> None:
        self._dsn = dsn
        self._sandbox = sandbox
        self._limits = limits or dbport.Limits()
        self._pool_size = pool_size
        self._pools: dict[str | None, AsyncConnectionPool[psycopg.AsyncConnection[Any]]] = {}
        self._versions: dict[str | None, int] = {}
        self._roles_checked: set[str | None] = set()

    @property
    def limits(self) -> dbport.Limits:
        return self._limits

    async def run_probe(
        self,
        name: str,
        sql: str,
        *,
        params: Mapping[str, JSON] | None = None,
        database: str | None = None,
    ) -> Evidence:
        """Render, gate and run one statement (see ``DatabaseSource.run_probe``)."""
        call = _Call(name, database=database)
        try:
            text = sql if params is None else render(sql, params=params)
            approved = self._sandbox.check(text)
        except dbport.StatementRefused as exc:
            return call.failed(sql, status=Status.DENIED, summary=exc.reason)
        return await self._run_approved(call, approved)

    async def explain_generic(self, statement: str, *, database: str | None = None) -> Evidence:
        """The generic plan of a normalised statement (``$n`` parameters), never ANALYZE."""
        call = _Call("explain_generic", database=database, statement=statement)
        try:
            version = await self.server_version(database=database)
            approved = self._sandbox.generic_plan(statement, server_version=version)
        except _ProbeError as exc:
            return call.failed(statement, status=exc.status, summary=exc.summary)
        except dbport.StatementRefused as exc:
            return call.failed(statement, status=Status.DENIED, summary=exc.reason)
        return await self._run_approved(call, approved)

    async def run_catalogue(self, *, database: str) -> list[Evidence]:
        """Every catalogue probe that fits the server, then generic plans of the suspects."""
        try:
            version = await self.server_version(database=database)
        except _ProbeError as exc:
            call = _Call("server", database=database)
            return [call.failed("-- connect", status=exc.status, summary=exc.summary)]
        runs = [
            self.run_probe(p.name, p.sql, params=p.params, database=database)
            for p in self._sandbox.probes(server_version=version)
        ]
        found = list(await asyncio.gather(*runs))
        suspects = self._sandbox.suspects(found)
        plans = [self.explain_generic(s, database=database) for s in suspects]
        return found + list(await asyncio.gather(*plans))

    async def server_version(self, *, database: str | None = None) -> int:
        """``server_version_num`` of the server behind ``database`` (cached)."""
        if database not in self._versions:
            async with self._connection(database) as conn:
                self._versions[database] = conn.info.server_version
        return self._versions[database]

    async def close(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.close(timeout=_CLEANUP_S)

    async def __aenter__(self) -> AsyncPostgresProbes:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # --- running ------------------------------------------------------------------------------

    async def _run_approved(self, call: _Call, approved: dbport.Approved) -> Evidence:
        shown = _shown(approved)
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._limits.timeout_s):
                table = await self._fetch(approved, database=call.database)
        except TimeoutError:
            summary = (
                f"no answer within {self._limits.timeout_s:g}s; a running statement was "
                "cancelled on the server and the connection dropped"
            )
            return call.failed(shown, status=Status.ERROR, summary=summary)
        except _ProbeError as exc:
            return call.failed(shown, status=exc.status, summary=exc.summary)
        return call.answered(shown, table=table, elapsed_ms=(time.monotonic() - started) * 1000)

    async def _fetch(self, approved: dbport.Approved, *, database: str | None) -> dbport.Table:
        async with self._connection(database) as conn:
            try:
                columns, rows, more = await _in_read_only(
                    conn, approved, sandbox=self._sandbox, limits=self._limits
                )
            except psycopg.Error as exc:
                raise _translate(exc) from exc
            except dbport.StatementRefused as exc:
                raise _ProbeError(Status.DENIED, exc.reason) from exc
        return self._sandbox.redact(columns, rows, limits=self._limits, more=more)

    @contextlib.asynccontextmanager
    async def _connection(
        self, database: str | None
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        pool = await self._pool(database)
        try:
            async with pool.connection(timeout=self._limits.timeout_s * 0.8) as conn:
                if database not in self._roles_checked:
                    await _check_role(conn)
                    self._roles_checked.add(database)
                yield conn
        except PoolTimeout as exc:
            raise _ProbeError(
                Status.ERROR,
                f"could not connect to PostgreSQL within {self._limits.timeout_s * 0.8:g}s "
                f"({_where(self._dsn, database)}); check the DSN, the network and pg_hba.conf",
            ) from exc

    async def _pool(
        self, database: str | None
    ) -> AsyncConnectionPool[psycopg.AsyncConnection[Any]]:
        if database not in self._pools:
            pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] = AsyncConnectionPool(
                _conninfo(self._dsn, database=database, limits=self._limits),
                min_size=1,
                max_size=self._pool_size,
                open=False,
                kwargs={"autocommit": True, "prepare_threshold": None},
                reset=_reset,
                name=f"diagnose-probes-{database or 'default'}",
            )
            await pool.open(wait=False)
            self._pools[database] = pool
        return self._pools[database]


class PostgresProbes:
    """The sync facade the graph's nodes call: :class:`AsyncPostgresProbes` on a private event
    loop thread. Implements :class:`~diagnose.domain.database.DatabaseSource`.

    Each call returns within the probe's time limit (plus a small grace) even when the server
    hangs; the cancellation and clean-up finish in the background. Use as a context manager, or
    call :meth:`close`.
    """

    def __init__(
        self,
        dsn: str,
        *,
        sandbox: dbport.ProbeSandbox,
        timeout_s: float = 10.0,
        limits: dbport.Limits | None = None,
        pool_size: int = 2,
    ) -> None:
        self._limits = limits or dbport.Limits(timeout_s=timeout_s)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="diagnose-postgres-probes", daemon=True
        )
        self._thread.start()
        self._probes = AsyncPostgresProbes(
            dsn, sandbox=sandbox, limits=self._limits, pool_size=pool_size
        )

    @classmethod
    def from_settings(
        cls, settings: config.PostgresSettings, *, sandbox: dbport.ProbeSandbox
    ) -> PostgresProbes | None:
        """The probes the settings describe, or None when no database is set (no probes)."""
        if not settings.url:
            return None
        return cls(settings.url, sandbox=sandbox, timeout_s=settings.timeout_s)

    def run_probe(
        self,
        name: str,
        sql: str,
        *,
        params: Mapping[str, JSON] | None = None,
        database: str | None = None,
    ) -> Evidence:
        coroutine = self._probes.run_probe(name, sql, params=params, database=database)
        return self._await_evidence(name, sql, coroutine, database=database)

    def explain_generic(self, statement: str, *, database: str | None = None) -> Evidence:
        coroutine = self._probes.explain_generic(statement, database=database)
        return self._await_evidence("explain_generic", statement, coroutine, database=database)

    def run_catalogue(self, *, database: str) -> list[Evidence]:
        budget = self._limits.timeout_s * 4 + _CLEANUP_S
        return self._call(self._probes.run_catalogue(database=database), budget_s=budget * 3)

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._call(self._probes.close(), budget_s=_CLEANUP_S * 4)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=_CLEANUP_S)
            if not self._thread.is_alive():
                self._loop.close()

    def __enter__(self) -> PostgresProbes:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _await_evidence(
        self,
        name: str,
        sql: str,
        coroutine: Coroutine[Any, Any, Evidence],
        *,
        database: str | None,
    ) -> Evidence:
        try:
            return self._call(coroutine, budget_s=self._limits.timeout_s + _CLEANUP_S)
        except futures.TimeoutError:
            summary = f"no answer within {self._limits.timeout_s:g}s (still cleaning up)"
            return _Call(name, database=database).failed(sql, status=Status.ERROR, summary=summary)

    def _call(self, coroutine: Coroutine[Any, Any, T], *, budget_s: float) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout=budget_s)
        except futures.TimeoutError:
            future.cancel()
            raise


# --- the session (second gate) and helpers ----------------------------------------------------


def session_settings(limits: dbport.Limits) -> dict[str, str]:
    """The settings of a probe session, values as SQL (times in milliseconds)."""
    return {
        "default_transaction_read_only": "on",
        "statement_timeout": str(limits.statement_timeout_ms),
        "lock_timeout": str(limits.lock_timeout_ms),
        "idle_in_transaction_session_timeout": str(limits.idle_timeout_ms),
        "search_path": 'pg_catalog, "$user", public',
    }


def startup_options(limits: dbport.Limits) -> str:
    """libpq ``options``: the settings in force from the connection's first statement."""
    values = session_settings(limits)
    values["search_path"] = "pg_catalog,$user,public"
    return " ".join(f"-c {name}={value}" for name, value in values.items())


def transaction_statements(limits: dbport.Limits) -> tuple[str, ...]:
    """``SET LOCAL`` of the same settings right after :data:`BEGIN` (poolers such as PgBouncer
    drop startup options; a pooled session may have been changed)."""
    return tuple(
        f"SET LOCAL {name} = {value}"
        for name, value in session_settings(limits).items()
        if name != "default_transaction_read_only"
    )


def _fetch_statement(limits: dbport.Limits) -> str:
    return f"FETCH FORWARD {int(limits.fetch_batch)} FROM {dbport.CURSOR}"


def render(sql: str, *, params: Mapping[str, JSON]) -> str:
    """Bind ``%(name)s`` placeholders as SQL literals (psycopg's quoting), ``%%`` as ``%``: the
    exact text the gate checks and the server runs. A lone ``%`` or an unknown name is refused."""

    def literal(match: re.Match[str]) -> str:
        token = match.group()
        if token == "%%":
            return "%"
        key = match.group("name")
        if key is None or key not in params:
            raise dbport.StatementRefused(
                f"placeholder {token!r} has no parameter (write a literal % as %%)"
            )
        return pgsql.Literal(params[key]).as_string(None)

    return _PLACEHOLDER.sub(literal, sql)


async def _in_read_only(
    conn: psycopg.AsyncConnection[Any],
    approved: dbport.Approved,
    *,
    sandbox: dbport.ProbeSandbox,
    limits: dbport.Limits,
) -> tuple[list[str], list[Sequence[Any]], bool]:
    """Run an approved statement inside ``BEGIN READ ONLY … ROLLBACK``, once the server has
    said what its names resolve to and the sandbox has accepted that."""
    await conn.execute(BEGIN)
    try:
        for statement in transaction_statements(limits):
            await conn.execute(statement)
        await _require_read_only(conn)
        if approved.kind is not dbport.StatementKind.SHOW:
            sandbox.resolve(approved, visible=await _visible(conn, approved.names))
        for statement in approved.setup:
            await conn.execute(statement)
        if approved.declare is not None:
            result = await _stream(conn, approved, sandbox=sandbox, limits=limits)
        else:
            result = await _read(conn, approved.text, limits=limits)
        for statement in approved.teardown:
            await conn.execute(statement)
        return result
    finally:
        await _rollback(conn)


async def _require_read_only(conn: psycopg.AsyncConnection[Any]) -> None:
    cursor = await conn.execute(READ_ONLY_CHECK)
    row = await cursor.fetchone()
    if row is None or row[0] != "on":
        raise _ProbeError(Status.DENIED, "the transaction is not read-only; nothing was run")


async def _visible(conn: psycopg.AsyncConnection[Any], names: dbport.Names) -> list[dbport.Visible]:
    """The functions and operators on the session's search_path that the names can mean."""
    params = {
        "calls": sorted(names.calls),
        "fields": sorted(names.fields),
        "operators": sorted(names.operators),
    }
    cursor = await conn.execute(VISIBLE, params)
    return [
        dbport.Visible(kind=kind, schema=schema, name=name, extension=extension)
        for kind, schema, name, extension in await cursor.fetchall()
    ]


async def _stream(
    conn: psycopg.AsyncConnection[Any],
    approved: dbport.Approved,
    *,
    sandbox: dbport.ProbeSandbox,
    limits: dbport.Limits,
) -> tuple[list[str], list[Sequence[Any]], bool]:
    """Read a SELECT through a cursor whose values the server cuts (no row is larger than
    ``max_row_bytes``), a few rows per round trip, until ``max_rows`` or twice ``max_bytes``:
    what reaches the agent is bounded whatever the statement computes."""
    assert approved.declare is not None
    await conn.execute(approved.declare)
    described = await conn.execute(f"FETCH FORWARD 0 FROM {dbport.CURSOR}")
    columns = [
        dbport.Column(name=c.name, type_oid=c.type_code) for c in described.description or ()
    ]
    if not columns:
        return [], [], False
    await conn.execute(f"CLOSE {dbport.CURSOR}")
    await conn.execute(sandbox.bounded(approved, columns=columns, limits=limits))
    rows: list[Sequence[Any]] = []
    size, cut = 0, False
    while True:
        cursor = await conn.execute(_fetch_statement(limits))
        batch = await cursor.fetchall()
        rows.extend(row[:-1] for row in batch)
        size += sum(_size(row) for row in batch)
        cut = cut or any(row[-1] for row in batch)
        if len(batch) < limits.fetch_batch:
            return [c.name for c in columns], rows, cut
        if len(rows) > limits.max_rows or size > limits.max_bytes * 2:
            return [c.name for c in columns], rows, True


def _size(row: Sequence[Any]) -> int:
    return sum(len(value) if isinstance(value, str | bytes) else len(str(value)) for value in row)


async def _read(
    conn: psycopg.AsyncConnection[Any], text: str, *, limits: dbport.Limits
) -> tuple[list[str], list[Sequence[Any]], bool]:
    cursor = await conn.execute(text.encode())  # bytes: no client-side placeholder parsing
    columns = [c.name for c in cursor.description or ()]
    rows = await cursor.fetchmany(limits.max_rows + 1) if cursor.description else []
    return columns, list(rows), False


async def _check_role(conn: psycopg.AsyncConnection[Any]) -> None:
    """Refuse to probe as a role that can do more than read: a superuser, a member of a role
    that reads or writes server files, runs programs or signals backends, or a role that can
    execute dblink or postgres_fdw functions. Raised as ``denied`` evidence saying what to
    revoke."""
    cursor = await conn.execute(ROLE_CHECK)
    row = await cursor.fetchone()
    assert row is not None
    role, superuser, memberships, functions = row
    problems = _role_problems(
        role, superuser=superuser, memberships=memberships, functions=functions
    )
    if problems:
        raise _ProbeError(Status.DENIED, _role_refusal(role, problems=problems))


def _role_problems(
    role: str, *, superuser: bool, memberships: Sequence[str], functions: Sequence[str]
) -> list[str]:
    if superuser:
        return ["it is a superuser, which no privilege check stops"]
    problems = [
        f"it is a member of {member}: REVOKE {member} FROM {role};"
        f" (or from the role it inherits {member} through)"
        for member in memberships
    ]
    if functions:
        problems.append(
            "it can execute functions that open connections to other servers: "
            f"REVOKE EXECUTE ON FUNCTION {', '.join(functions)} FROM PUBLIC, {role}; "
            "(then GRANT EXECUTE back to the roles that need them); running "
            "deploy/sql/diagnose-role.sql in this database with -v lockdown=on does this"
        )
    return problems


def _role_refusal(role: str, *, problems: Sequence[str]) -> str:
    return (
        f"refusing to probe as PostgreSQL role {role}: "
        + "; ".join(problems)
        + ". Probes must run as a role that can only read: create it with "
        "deploy/sql/diagnose-role.sql (psql -X -v ON_ERROR_STOP=1 -d postgres -f "
        "deploy/sql/diagnose-role.sql) and point DIAGNOSE_POSTGRES_URL at it; see "
        "docs/database.md"
    )


async def _rollback(conn: psycopg.AsyncConnection[Any]) -> None:
    if conn.closed:
        return
    try:
        async with asyncio.timeout(_CLEANUP_S):
            await conn.execute(ROLLBACK)
    except (TimeoutError, psycopg.Error):
        await conn.close()  # the server rolls back a transaction whose client went away


async def _reset(conn: psycopg.AsyncConnection[Any]) -> None:
    """Before a connection goes back to the pool: nothing a probe did may outlive it."""
    await conn.execute(RESET)


def _conninfo(dsn: str, *, database: str | None, limits: dbport.Limits) -> str:
    extra: dict[str, str | int] = {
        "application_name": limits.application_name,
        "options": startup_options(limits),
        "connect_timeout": max(2, int(limits.timeout_s)),
    }
    if database is not None:
        extra["dbname"] = database
    return psycopg.conninfo.make_conninfo(dsn, **extra)


def _translate(exc: psycopg.Error) -> _ProbeError:
    """A server error as evidence: refusals by the read-only session or by privileges are
    ``denied`` (the second and third gates held); everything else is ``error``."""
    message = (exc.diag.message_primary or str(exc)).strip()
    for kind, status, explain in _SERVER_ERRORS:
        if isinstance(exc, kind):
            return _ProbeError(status, explain.format(message=message))
    if "pg_stat_statements" in message:
        hint = "; run CREATE EXTENSION pg_stat_statements (and preload it) to see statements"
        return _ProbeError(Status.ERROR, message + hint)
    return _ProbeError(Status.ERROR, f"the server refused it ({exc.sqlstate}): {message}")


_SERVER_ERRORS: tuple[tuple[type[psycopg.Error], Status, str], ...] = (
    (
        psycopg.errors.ReadOnlySqlTransaction,
        Status.DENIED,
        "the read-only transaction refused it: {message}",
    ),
    (psycopg.errors.InsufficientPrivilege, Status.DENIED, "the role may not do this: {message}"),
    (psycopg.errors.LockNotAvailable, Status.ERROR, "gave up waiting for a lock: {message}"),
    (psycopg.errors.QueryCanceled, Status.ERROR, "cancelled by statement_timeout: {message}"),
    (
        psycopg.errors.IdleInTransactionSessionTimeout,
        Status.ERROR,
        "the session timed out: {message}",
    ),
    (psycopg.OperationalError, Status.ERROR, "the connection failed: {message}"),
)


@dataclass(frozen=True)
class _Call:
    """Which probe is running where: turns its outcome into evidence."""

    name: str
    database: str | None
    statement: str | None = None

    def answered(self, query: str, *, table: dbport.Table, elapsed_ms: float) -> Evidence:
        rows = f"{len(table.rows)} row{'s' if len(table.rows) != 1 else ''}"
        notes = [rows + (" (truncated)" if table.truncated else "")]
        if table.redacted:
            notes.append(f"{table.redacted} value(s) redacted")
        summary = ", ".join(notes) + f" in {elapsed_ms:.0f} ms"
        status = Status.OK if table.rows else Status.EMPTY
        return self._evidence(query, status=status, summary=summary, table=table)

    def failed(self, query: str, *, status: Status, summary: str) -> Evidence:
        return self._evidence(query, status=status, summary=summary, table=None)

    def _evidence(
        self, query: str, *, status: Status, summary: str, table: dbport.Table | None
    ) -> Evidence:
        payload: dbport.ProbePayload = {
            "probe": self.name,
            "database": self.database,
            "statement": self.statement,
            "columns": table.columns if table else [],
            "rows": table.rows if table else [],
            "truncated": table.truncated if table else False,
            "redacted": table.redacted if table else 0,
        }
        return Evidence.make(
            source=dbport.SOURCE,
            query=query,
            window=None,
            status=status,
            summary=f"{self.name}: {summary}",
            raw=dict(payload),
        )


def _shown(approved: dbport.Approved) -> str:
    """The SQL an engineer re-runs to see the same thing: the statement, with the gate's own
    setup and teardown around it when it has them."""
    if not approved.setup and not approved.teardown:
        return approved.text
    return "\n".join(f"{s};" for s in (*approved.setup, approved.text, *approved.teardown))


def _where(dsn: str, database: str | None) -> str:
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    host, port = info.get("host", "localhost"), info.get("port", "5432")
    return f"{host}:{port}/{database or info.get('dbname', '')}"


def database_of(dsn: str) -> str:
    """The database a libpq DSN or URI names (libpq's default: the user's name)."""
    parts = psycopg.conninfo.conninfo_to_dict(dsn)
    return str(parts.get("dbname") or parts.get("user") or "postgres")
