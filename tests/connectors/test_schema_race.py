"""Workers that start together on a fresh PostgreSQL database all create the stores' tables
at once: none of them may fail (``CREATE ... IF NOT EXISTS`` alone races on the catalogue)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from connectors import audit, memory, queue
from diagnose import wiring
from diagnose.lab import postgres
from diagnose.settings import Settings

pytestmark = [pytest.mark.lab]


class _Checkpointer:
    """LangGraph's Postgres saver as the agent opens it (its setup creates the tables)."""

    def __init__(self, dsn: str) -> None:
        settings = Settings.model_validate({"database_url": dsn})
        self._opened = wiring.open_checkpointer(settings)
        self._opened.__enter__()

    def close(self) -> None:
        self._opened.__exit__(None, None, None)


STORES: dict[str, Callable[[str], Any]] = {
    "checkpoints": _Checkpointer,
    "audit": audit.PostgresAudit,
    "memory": memory.PostgresMemory,
    "queue": lambda dsn: queue.PostgresQueue(dsn, pool_size=1),
}


def _open_at_once(opener: Callable[[str], Any], dsn: str, *, n: int = 6) -> list[BaseException]:
    start = threading.Barrier(n)
    failures: list[BaseException] = []
    opened: list[Any] = []

    def open_one() -> None:
        start.wait()
        try:
            opened.append(opener(dsn))
        except BaseException as exc:  # every failure is the finding
            failures.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for each in opened:
        each.close()
    return failures


@pytest.mark.parametrize("store", sorted(STORES))
def test_stores_opened_at_once_on_a_fresh_database_all_open(
    postgres_cluster: postgres.PostgresCluster, store: str
) -> None:
    for _ in range(3):  # a race: give it a few fresh databases to show itself
        name = "race_" + uuid.uuid4().hex[:10]
        postgres_cluster.create_database(name)
        failures = _open_at_once(STORES[store], postgres_cluster.dsn(name))
        assert not failures, [repr(f) for f in failures]
