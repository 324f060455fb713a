"""The job queue as the service sees it: jobs to enqueue, jobs as stored, and the store's port.

Webhooks enqueue :class:`NewJob` values; workers claim :class:`Job` values through a
:class:`Queue` (``connectors/queue.py`` implements it on PostgreSQL and SQLite, and
``diagnose/wiring.py`` opens one). Standard library only, like the rest of the domain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

DIAGNOSE = "diagnose"
"""The job kind the concurrency limit applies to."""


@dataclass(frozen=True)
class NewJob:
    """A job to enqueue. ``dedup_key`` is unique: enqueueing it again returns the first job."""

    kind: str
    ordering_key: str
    dedup_key: str
    payload: Mapping[str, Any] = field(default_factory=dict)
    run_id: str | None = None


@dataclass(frozen=True)
class Job:
    """A job as stored."""

    id: int
    kind: str
    ordering_key: str
    dedup_key: str
    payload: Mapping[str, object]  # as enqueued, read back from the store's JSON
    run_id: str | None
    state: str  # queued | running | done | failed
    attempts: int
    lease_owner: str | None
    result: Mapping[str, object] | None  # what the handler returned, read back the same way
    error: str | None


@dataclass(frozen=True)
class Accepted:
    """What enqueueing did: ``duplicate`` when the delivery id was seen before (nothing was
    enqueued); otherwise one ``(job id, created)`` per job, ``created`` False for a dedup hit."""

    duplicate: bool
    jobs: tuple[tuple[int, bool], ...] = ()


class Queue(Protocol):
    """What workers and the web service need from a queue store."""

    def enqueue(self, jobs: Sequence[NewJob], *, delivery: str | None = None) -> Accepted: ...

    def claim(self, worker: str, *, lease_s: float, max_running: int) -> Job | None: ...

    def heartbeat(self, job_id: int, *, worker: str, lease_s: float) -> bool: ...

    def finish(self, job_id: int, *, worker: str, result: Mapping[str, Any]) -> bool: ...

    def fail(self, job_id: int, *, worker: str, error: str, retry_in_s: float) -> bool: ...

    def get(self, job_id: int) -> Job | None: ...

    def list_jobs(
        self, *, kind: str | None = None, ordering_key: str | None = None, limit: int = 100
    ) -> list[Job]: ...

    def counts(self) -> dict[str, int]: ...

    def ping(self) -> None: ...

    def close(self) -> None: ...
