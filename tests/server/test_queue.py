"""The job queue on real PostgreSQL (and SQLite): exclusive claims, leases, ordering, limits."""

from __future__ import annotations

import threading
import time
from collections import Counter

from connectors import queue
from diagnose.settings import Settings
from tests.server.conftest import drain, make_worker, open_service


def _job(n: int, *, key: str | None = None, kind: str = queue.DIAGNOSE) -> queue.NewJob:
    return queue.NewJob(
        kind=kind, ordering_key=key or f"inc-{n}", dedup_key=f"job-{n}", payload={"n": n}
    )


def test_two_workers_never_take_the_same_job(pg_settings: Settings) -> None:
    assert pg_settings.database_url
    store = queue.PostgresQueue(pg_settings.database_url)
    try:
        store.enqueue([_job(n, kind="other") for n in range(60)])
        claimed: list[int] = []
        lock = threading.Lock()

        def take(worker: str) -> None:
            while (job := store.claim(worker, lease_s=30, max_running=100)) is not None:
                with lock:
                    claimed.append(job.id)

        threads = [threading.Thread(target=take, args=(f"w{i}",)) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(claimed) == sorted(set(claimed))
        assert len(claimed) == 60
    finally:
        store.close()


def test_jobs_of_one_incident_run_one_at_a_time_in_order(pg_settings: Settings) -> None:
    assert pg_settings.database_url
    store = queue.PostgresQueue(pg_settings.database_url)
    try:
        store.enqueue([_job(1, key="inc"), _job(2, key="inc"), _job(3, key="other")])
        first = store.claim("a", lease_s=30, max_running=10)
        second = store.claim("b", lease_s=30, max_running=10)
        assert first is not None and second is not None
        assert (first.payload["n"], second.payload["n"]) == (1, 3)
        assert store.claim("c", lease_s=30, max_running=10) is None
        store.finish(first.id, worker="a", result={})
        after = store.claim("c", lease_s=30, max_running=10)
        assert after is not None and after.payload["n"] == 2
    finally:
        store.close()


def test_no_more_than_the_limit_of_diagnoses_run_at_once(pg_settings: Settings) -> None:
    assert pg_settings.database_url
    store = queue.PostgresQueue(pg_settings.database_url)
    try:
        store.enqueue([_job(n) for n in range(5)])
        taken = [store.claim(f"w{n}", lease_s=30, max_running=2) for n in range(5)]
        assert Counter(job is not None for job in taken) == {True: 2, False: 3}
    finally:
        store.close()


def test_a_dead_workers_job_is_taken_over_when_its_lease_expires(pg_settings: Settings) -> None:
    """The first worker claims and dies (never renews); the second finishes the same run."""
    with open_service(pg_settings) as service:
        run_id = "run-takeover01"
        service.queue.enqueue(
            [
                queue.NewJob(
                    kind=queue.DIAGNOSE,
                    ordering_key="pagerduty:P1",
                    dedup_key="d",
                    run_id=run_id,
                    payload={
                        "trigger": {
                            "source": "pagerduty",
                            "title": "5xx",
                            "service": "checkout",
                            "namespace": "shop",
                            "at": "2026-03-01T12:00:00Z",
                            "incident_id": "P1",
                        }
                    },
                )
            ]
        )
        dead = service.queue.claim("dead-worker", lease_s=0.5, max_running=4)
        assert dead is not None
        survivor = make_worker(service, name="survivor")
        assert survivor.run_one() is False  # the lease still holds
        time.sleep(0.7)
        assert survivor.run_one() is True
        job = service.queue.get(dead.id)
        assert job is not None
        assert (job.state, job.lease_owner, job.attempts) == ("done", "survivor", 2)
        assert job.result is not None and job.result["run_id"] == run_id
        assert service.agent.status(run_id).waiting
        assert not service.queue.finish(dead.id, worker="dead-worker", result={"late": True})


def test_a_run_whose_checkpoint_exists_is_continued_not_restarted(pg_settings: Settings) -> None:
    """A worker that died after the run reached approval leaves a checkpoint: the next worker
    finds it and does not start the diagnosis over."""
    with open_service(pg_settings) as service:
        trigger = {
            "source": "manual",
            "title": "t",
            "service": "checkout",
            "namespace": "",
            "at": "2026-03-01T12:00:00Z",
        }
        from diagnose.domain import models

        service.agent.start(models.Trigger.from_dict(trigger), run_id="run-existing1")
        before = service.agent.status("run-existing1").state["now"]
        service.queue.enqueue(
            [
                queue.NewJob(
                    kind=queue.DIAGNOSE,
                    ordering_key="k",
                    dedup_key="k",
                    run_id="run-existing1",
                    payload={"trigger": trigger},
                )
            ]
        )
        assert drain(make_worker(service)) == 1
        assert service.agent.status("run-existing1").state["now"] == before


def test_a_failing_job_is_retried_then_marked_failed(pg_settings: Settings) -> None:
    with open_service(pg_settings) as service:
        service.queue.enqueue([queue.NewJob(kind="unknown-kind", ordering_key="k", dedup_key="x")])
        worker = make_worker(service)
        assert worker.run_one()
        (job,) = service.queue.list_jobs()
        assert (job.state, job.attempts) == ("queued", 1)
        assert "unknown kind" in (job.error or "")


def test_sqlite_mode_runs_the_same_queue_in_one_process(settings: Settings) -> None:
    assert settings.database_url is None
    with open_service(settings) as service:
        assert isinstance(service.queue, queue.SqliteQueue)
        service.queue.enqueue([_job(1, key="inc"), _job(2, key="inc")])
        first = service.queue.claim("a", lease_s=0.2, max_running=4)
        assert first is not None and service.queue.claim("b", lease_s=5, max_running=4) is None
        time.sleep(0.3)
        again = service.queue.claim("b", lease_s=5, max_running=4)
        assert again is not None and (again.id, again.attempts) == (first.id, 2)
