"""PostgreSQL: the only module that imports psycopg.

For now it opens the connection the checkpoint store needs; the read-only probe connector
lands here too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.rows import DictRow, dict_row

from diagnose.domain import errors


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
