"""Creating a store's tables when several processes start at once.

``CREATE TABLE IF NOT EXISTS`` is not safe under concurrency in PostgreSQL: two sessions that
both find the table missing both try to insert it into the catalogue, and one fails on the
catalogue's unique index. Workers that start together on a fresh database do exactly that, so
every store's DDL runs under a transaction-scoped advisory lock named after the store.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg


def create(conn: psycopg.Connection[Any], ddl: str, *, store: str) -> None:
    """Run ``ddl`` in one transaction, one session at a time per ``store``."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_key(store),))
        conn.execute(ddl)


@contextmanager
def held(conn: psycopg.Connection[Any], *, store: str, timeout_s: float = 120.0) -> Iterator[None]:
    """The same lock held by the session until the block ends, for DDL that someone else's
    code runs (LangGraph's checkpoint migrations) in autocommit mode. It is taken by polling:
    a session blocked inside ``pg_advisory_lock`` would hold a snapshot that the holder's
    ``CREATE INDEX CONCURRENTLY`` waits for, a deadlock."""
    key = _key(store)
    deadline = time.monotonic() + timeout_s
    while not _try(conn, key):
        if time.monotonic() > deadline:
            raise TimeoutError(f"another process kept the {store} schema lock {timeout_s:.0f} s")
        time.sleep(0.1)
    try:
        yield
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


def _try(conn: psycopg.Connection[Any], key: int) -> bool:
    row = conn.execute("SELECT pg_try_advisory_lock(%s) AS got", (key,)).fetchone()
    if row is None:
        return False
    return bool(row["got"] if isinstance(row, dict) else row[0])


def _key(store: str) -> int:
    return int.from_bytes(hashlib.sha256(f"diagnose:{store}".encode()).digest()[:8], signed=True)
