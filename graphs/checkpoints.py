"""Checkpoint savers: SQLite for one machine, PostgreSQL for a cluster.

Both deserialise strictly: only msgpack's safe built-in types are revived, which is all the
diagnosis state holds (see ``graphs.state``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.checkpoint.sqlite import SqliteSaver


def strict_serde() -> JsonPlusSerializer:
    """A serialiser that refuses to revive anything but plain data."""
    return JsonPlusSerializer(allowed_msgpack_modules=None)


@contextmanager
def sqlite_saver(path: Path) -> Iterator[BaseCheckpointSaver[Any]]:
    """Checkpoints in one SQLite file (created with its folder when missing)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, check_same_thread=False)
    try:
        saver = SqliteSaver(conn, serde=strict_serde())
        saver.setup()
        yield saver
    finally:
        conn.close()


def postgres_saver(conn: Any) -> BaseCheckpointSaver[Any]:
    """Checkpoints in PostgreSQL over a connection opened by ``connectors.postgres``
    (autocommit, ``dict_row``, no prepared statements: what the saver requires)."""
    saver = PostgresSaver(conn, serde=strict_serde())
    saver.setup()
    return saver
