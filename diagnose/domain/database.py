"""The port through which the core reads a PostgreSQL server, read-only, and its payload shape.

Every probe is one SQL statement that passed the sandbox's gate (``sandbox.gating``), run in a
read-only transaction that is always rolled back. A probe answers with one :class:`Evidence`:
``source`` is ``"postgres"``, ``query`` the exact SQL sent to the server, and ``status``

- ``ok``: rows came back;
- ``empty``: the statement ran and returned no rows;
- ``error``: the server refused, timed out or could not be reached (``summary`` says which);
- ``denied``: the gate refused the statement before it reached the server (``summary`` says
  why); nothing was sent.

``raw`` is a :class:`ProbePayload`, already capped and redacted. Standard library only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, TypedDict

from diagnose.domain import errors
from diagnose.domain.models import JSON, Evidence

SOURCE = "postgres"
"""The ``source`` of every piece of database evidence."""

CURSOR = "diagnose_probe"
"""The server-side cursor a SELECT probe is read through, a few rows at a time."""


class ProbePayload(TypedDict):
    """``Evidence.raw`` of a probe: the result table, capped and redacted.

    ``rows`` hold JSON values in ``columns`` order (timestamps as ISO 8601 text, intervals as
    seconds, other non-JSON types as their text). ``truncated`` is true when a row or byte cap
    stopped the read; ``redacted`` counts the values that were masked. ``statement`` is the
    normalised statement a generic plan explains (``explain_generic`` only, else None).
    """

    probe: str
    database: str | None
    statement: str | None
    columns: list[str]
    rows: list[list[JSON]]
    truncated: bool
    redacted: int


class StatementRefused(errors.DiagnoseError):
    """The sandbox's gate refused a statement; ``reason`` says which rule, in words.

    Raised by the gate only; a connector turns it into ``denied`` evidence. It is not a
    :class:`~diagnose.domain.errors.SourceError`: the statement never left the agent.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    """How long a probe may take and how much it may bring back.

    The server-side timeouts derive from ``timeout_s`` so that the server gives up first and
    the client's own deadline (which cancels the statement on the server) is the backstop.
    """

    timeout_s: float = 10.0
    """Whole probe, client side, seconds: getting a connection, running, reading."""

    lock_timeout_s: float = 2.0
    """Longest wait for a lock, seconds (at most half the statement timeout): a probe queued
    behind an ACCESS EXCLUSIVE lock must not join the pile-up it is diagnosing."""

    idle_in_transaction_timeout_s: float = 30.0
    """The server ends a probe session left idle inside its transaction this long, seconds."""

    max_rows: int = 500
    """Rows kept per probe; more sets ``truncated``."""

    max_bytes: int = 256_000
    """JSON bytes of rows kept per probe; more sets ``truncated``."""

    max_cell_chars: int = 4_000
    """Characters kept per text value; longer values are cut and set ``truncated``."""

    fetch_rows: int = 100
    """Rows fetched per round trip from the server-side cursor (fewer when rows may be wide:
    see :attr:`fetch_batch`)."""

    max_row_bytes: int = 32_000
    """Bytes of values a row may carry, shared among its columns, cut by the server before the
    row is sent: whatever a statement computes, the agent receives at most this per row."""

    application_name: str = "diagnose-probe"
    """How probe sessions show in ``pg_stat_activity`` (the catalogue leaves them out)."""

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or min(self.max_rows, self.max_bytes, self.fetch_rows) < 1:
            raise ValueError("probe limits must be positive")
        if self.max_row_bytes < 1024:
            raise ValueError("max_row_bytes must be at least 1024")

    @property
    def fetch_batch(self) -> int:
        """Rows per round trip: at most four times ``max_bytes`` of (already cut) rows, so a
        round trip to a distant server still brings a few dozen rows."""
        return max(1, min(self.fetch_rows, 4 * self.max_bytes // self.max_row_bytes))

    @property
    def statement_timeout_ms(self) -> int:
        return max(1, int(self.timeout_s * 800))

    @property
    def lock_timeout_ms(self) -> int:
        return max(1, min(int(self.lock_timeout_s * 1000), self.statement_timeout_ms // 2))

    @property
    def idle_timeout_ms(self) -> int:
        return max(1000, int(self.idle_in_transaction_timeout_s * 1000))


@dataclass(frozen=True)
class Names:
    """The names in an approved statement whose meaning depends on the database.

    PostgreSQL resolves an unqualified function or operator through ``search_path``, and reads
    ``(x).f`` and ``rel.f`` as the call ``f(x)`` when ``f`` is not a column. The gate cannot see
    the catalogue, so it lists these names and the server says what they resolve to.
    """

    calls: frozenset[str] = frozenset()
    """Unqualified function names called, exact case."""

    fields: frozenset[str] = frozenset()
    """Names in field position: ``(x).f`` and the last part of ``rel.f``, exact case."""

    operators: frozenset[str] = frozenset()
    """Unqualified operator symbols, written or implied (``IN``, ``LIKE``, ``BETWEEN``,
    ``CASE x WHEN``, ``JOIN … USING``)."""

    def __bool__(self) -> bool:
        return bool(self.calls or self.fields or self.operators)


class StatementKind(StrEnum):
    SELECT = "select"
    EXPLAIN = "explain"
    SHOW = "show"


@dataclass(frozen=True)
class Approved:
    """A statement the gate let through, exactly as the server must receive it.

    ``declare`` (SELECTs only) opens :data:`CURSOR` over it; ``setup`` and ``teardown`` are
    statements the gate itself wrote (generic plans before PostgreSQL 16), run in the same
    read-only transaction around ``text``. Only a gate makes these.
    """

    text: str
    kind: StatementKind
    declare: str | None = None
    setup: tuple[str, ...] = ()
    teardown: tuple[str, ...] = ()
    names: Names = Names()
    """What PostgreSQL will look up through ``search_path``: the connector asks the server
    what those names can resolve to before running anything (:meth:`ProbeSandbox.resolve`)."""


@dataclass(frozen=True)
class Visible:
    """A function or operator of the database that one of a statement's :class:`Names` can
    resolve to (on the probe session's ``search_path``)."""

    kind: str
    """``function``, ``operator`` or ``cast`` (a user's cast, whatever the names; ``name``
    then describes it)."""

    schema: str
    name: str
    extension: str | None = None
    """The extension it belongs to, if any."""


@dataclass(frozen=True)
class Column:
    """A result column as the server describes it, before any row is read."""

    name: str
    type_oid: int


@dataclass(frozen=True)
class Table:
    """A result, capped and redacted."""

    columns: list[str]
    rows: list[list[JSON]]
    truncated: bool
    redacted: int


@dataclass(frozen=True)
class Probe:
    """One catalogue entry: a statement with psycopg ``%(name)s`` placeholders and defaults."""

    name: str
    description: str
    sql: str
    params: Mapping[str, JSON] = field(default_factory=dict)


class ProbeSandbox(Protocol):
    """What the probe connector asks of the sandbox (``sandbox.probing.Sandbox``): the gate,
    redaction, and the catalogue. Handed in by the composition root; a connector runs nothing
    this did not approve."""

    def check(self, sql: str) -> Approved:
        """Approve one statement or raise :class:`StatementRefused`."""
        ...

    def generic_plan(self, statement: str, *, server_version: int) -> Approved:
        """Approve the generic plan (never ANALYZE) of a normalised SELECT, or refuse."""
        ...

    def resolve(self, approved: Approved, *, visible: Sequence[Visible]) -> None:
        """Refuse (:class:`StatementRefused`) when a name of ``approved`` can resolve to a
        function or operator that is not a built-in on the allow-list."""
        ...

    def bounded(self, approved: Approved, *, columns: Sequence[Column], limits: Limits) -> str:
        """The ``DECLARE`` of a cursor over the approved SELECT that cuts every value on the
        server, so no row can be larger than :attr:`Limits.max_row_bytes`; its last column
        says whether a value of the row was cut."""
        ...

    def redact(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[object]],
        *,
        limits: Limits,
        more: bool,
    ) -> Table:
        """Cap and mask a result before it becomes evidence."""
        ...

    def probes(self, *, server_version: int) -> list[Probe]:
        """The catalogue's probes that fit this server."""
        ...

    def suspects(self, evidence: Sequence[Evidence]) -> list[str]:
        """Normalised statements worth a generic plan, from the catalogue's evidence."""
        ...


class DatabaseSource(Protocol):
    """A PostgreSQL server, read-only. Every method answers with evidence, never raises for
    what the server (or the gate) says."""

    def run_probe(
        self,
        name: str,
        sql: str,
        *,
        params: Mapping[str, JSON] | None = None,
        database: str | None = None,
    ) -> Evidence:
        """Run one statement (psycopg ``%(name)s`` placeholders bound from ``params``) through
        the gate in the read-only session. raw: :class:`ProbePayload`."""
        ...

    def explain_generic(self, statement: str, *, database: str | None = None) -> Evidence:
        """The generic plan (never ANALYZE) of a normalised statement with ``$n`` parameters, as
        ``pg_stat_statements`` records it. raw: :class:`ProbePayload` with one row holding the
        JSON plan in column ``plan``."""
        ...

    def run_catalogue(self, *, database: str) -> list[Evidence]:
        """Every probe of the catalogue against ``database``, then generic plans of the suspect
        statements it found. raw of each: :class:`ProbePayload`."""
        ...
