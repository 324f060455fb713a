"""``kubectl diagnose --incident ID``: find the run a PagerDuty webhook started, and follow it.

The queue knows which run an incident started: ``diagnose serve`` gives each diagnosis job its
run id when the webhook arrives, before any worker takes it. Following means watching that job
(queued, running, done or failed) until the run pauses at the approval step; the run's state
is then read from the checkpoint store, the same one the workers write.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from diagnose import wiring
from diagnose.domain import errors, queue
from diagnose.settings import Settings
from graphs import runner

POLL_S = 1.0


@dataclass(frozen=True)
class Attached:
    """Where an incident's diagnosis stands. ``paused`` is None until the run has a checkpoint."""

    incident_id: str
    job: queue.Job
    paused: runner.Paused | None

    @property
    def settled(self) -> bool:
        """The worker is done with it: paused at approval, finished, or failed."""
        return self.job.state in ("done", "failed")


def open_queue(settings: Settings) -> queue.Queue:
    """The service's queue, to read: refused (not created) when a SQLite one is not there."""
    path = settings.state_dir / "queue.sqlite"
    if not settings.database_url and not path.exists():
        raise errors.RunNotFound(
            f"no queue at {path}: `diagnose serve` has not run with this state directory; "
            "set DIAGNOSE_DATABASE_URL to the service's PostgreSQL"
        )
    return wiring.open_queue(settings)


def ordering_key(incident_id: str) -> str:
    """The queue key of a PagerDuty incident's jobs (as the webhook enqueues them)."""
    return f"pagerduty:{incident_id}"


def latest_job(work_queue: queue.Queue, incident_id: str) -> queue.Job | None:
    """The incident's newest diagnosis (a reopened incident has a later one)."""
    found = work_queue.list_jobs(kind=queue.DIAGNOSE, ordering_key=ordering_key(incident_id))
    return found[0] if found else None


def look(work_queue: queue.Queue, agent: runner.Agent, *, incident_id: str) -> Attached:
    """The incident's diagnosis now; :class:`errors.RunNotFound` if no webhook started one."""
    job = latest_job(work_queue, incident_id)
    if job is None:
        raise errors.RunNotFound(
            f"no diagnosis for PagerDuty incident {incident_id} in the queue: check that its "
            "webhook reached `diagnose serve`, and that DIAGNOSE_DATABASE_URL names the "
            "service's database"
        )
    paused = None
    if job.run_id:
        try:
            paused = agent.status(job.run_id)
        except errors.RunNotFound:
            paused = None  # queued, or running before its first checkpoint
    return Attached(incident_id=incident_id, job=job, paused=paused)


def follow(
    work_queue: queue.Queue,
    agent: runner.Agent,
    *,
    incident_id: str,
    timeout_s: float,
    progress: Callable[[str], None],
    poll_s: float = POLL_S,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Attached:
    """Watch the incident's diagnosis until a worker is done with it or ``timeout_s`` passes;
    each change of the job's state is reported through ``progress``."""
    deadline = clock() + timeout_s
    said = ""
    while True:
        attached = look(work_queue, agent, incident_id=incident_id)
        line = describe(attached)
        if line != said:
            progress(line)
            said = line
        if attached.settled or clock() >= deadline:
            return attached
        sleep(poll_s)


def describe(attached: Attached) -> str:
    """One line on the job: what the worker is doing with the run."""
    job = attached.job
    run = job.run_id or "(no run id yet)"
    if job.state == "queued":
        retry = f", attempt {job.attempts + 1} after: {job.error}" if job.error else ""
        return f"{run}: queued{retry}"
    if job.state == "running":
        return f"{run}: running on {job.lease_owner} (attempt {job.attempts})"
    if job.state == "failed":
        return f"{run}: failed after {job.attempts} attempts: {job.error}"
    waiting = attached.paused is not None and attached.paused.waiting
    return f"{run}: {'waiting for approval' if waiting else 'finished'}"
