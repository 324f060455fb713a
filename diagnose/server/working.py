"""Workers: claim a job, renew its lease while it runs, record the outcome.

Each worker is a thread with its own agent (its own checkpoint connection). While a job runs,
a heartbeat renews the lease every third of ``job_lease_s``; a worker that dies stops
renewing and another worker takes the job over once the lease expires. Failed jobs are retried
with backoff up to ``job_max_attempts`` times.

Each worker marks a :class:`heartbeat.Liveness` when it comes back to the queue or renews
the lease of the job it runs; ``diagnose worker`` turns that into a heartbeat file.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

from diagnose import telemetry as telemetry_spans
from diagnose import wiring
from diagnose.domain import errors, queue
from diagnose.server import heartbeat, intake, jobs, telemetry
from diagnose.settings import Settings

IDLE_POLL_S = 0.5


def worker_name(index: int) -> str:
    """A name unique to this thread of this process on this host."""
    return f"{socket.gethostname()}:{os.getpid()}:{index}:{uuid.uuid4().hex[:6]}"


def naming(settings: Settings) -> intake.Naming:
    return intake.Naming(
        service_map=settings.service_map,
        namespace_map=settings.namespace_map,
        default_namespace=settings.default_namespace,
        pagerduty_user_id=settings.pagerduty_user_id,
    )


@dataclass
class Worker:
    """One worker: claims and runs jobs until ``stop`` is set."""

    name: str
    tools: jobs.Tools
    metrics: telemetry.Metrics
    liveness: heartbeat.Liveness | None = None
    index: int = 0

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            self.alive()
            if not self.run_one():
                stop.wait(IDLE_POLL_S)

    def alive(self) -> None:
        if self.liveness is not None:
            self.liveness.mark(self.index)

    def run_one(self) -> bool:
        """Claim and run one job; False when there was none to take."""
        settings = self.tools.settings
        job = self.tools.queue.claim(
            self.name, lease_s=settings.job_lease_s, max_running=settings.max_concurrent_runs
        )
        if job is None:
            return False
        with self.metrics.running(job.kind), _heartbeat(self, job):
            self._run(job)
        return True

    def _run(self, job: queue.Job) -> None:
        began = time.perf_counter()
        run_id = job.run_id or _text(job.payload.get("run_id"))
        try:
            with telemetry_spans.job_span(
                job.kind, job_id=job.id, attempt=job.attempts, run_id=run_id
            ):
                result = jobs.handle(job, tools=self.tools)
        except errors.DiagnoseError as exc:
            self.tools.progress(f"job {job.id} ({job.kind}) failed: {exc}")
            self.tools.queue.fail(
                job.id,
                worker=self.name,
                error=str(exc),
                retry_in_s=min(300.0, 5.0 * 2**job.attempts),
            )
            self.metrics.finished(job.kind, outcome="failed", seconds=time.perf_counter() - began)
            return
        kept = self.tools.queue.finish(job.id, worker=self.name, result=result)
        llm = result.get("llm")
        self.metrics.llm_used(llm if isinstance(llm, Mapping) else None)
        outcome = "done" if kept else "lease_lost"
        self.metrics.finished(job.kind, outcome=outcome, seconds=time.perf_counter() - began)


def _text(value: object) -> str | None:
    return str(value) if value else None


@contextmanager
def _heartbeat(worker: Worker, job: queue.Job) -> Iterator[None]:
    """Renew the job's lease in the background while the body runs."""
    done = threading.Event()
    lease_s = worker.tools.settings.job_lease_s

    def beat() -> None:
        while not done.wait(lease_s / 3):
            if not worker.tools.queue.heartbeat(job.id, worker=worker.name, lease_s=lease_s):
                worker.tools.progress(f"job {job.id}: lease lost to another worker")
                return
            worker.alive()

    thread = threading.Thread(target=beat, name=f"heartbeat-{job.id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def run_workers(
    settings: Settings,
    *,
    count: int,
    stop: threading.Event,
    metrics: telemetry.Metrics,
    progress: Callable[[str], None],
    liveness: heartbeat.Liveness | None = None,
) -> list[threading.Thread]:
    """Start ``count`` worker threads; each opens its own agent, queue and PagerDuty client,
    and marks ``liveness`` while it works."""
    threads = []
    for index in range(count):
        if liveness is not None:
            liveness.mark(index)  # opening the agent counts as working
        thread = threading.Thread(
            target=_work,
            args=(settings,),
            kwargs={
                "index": index,
                "stop": stop,
                "metrics": metrics,
                "progress": progress,
                "liveness": liveness,
            },
            name=f"diagnose-worker-{index}",
            daemon=True,
        )
        thread.start()
        threads.append(thread)
    return threads


def _work(
    settings: Settings,
    *,
    index: int,
    stop: threading.Event,
    metrics: telemetry.Metrics,
    progress: Callable[[str], None],
    liveness: heartbeat.Liveness | None = None,
) -> None:
    with ExitStack() as stack:
        agent = stack.enter_context(wiring.open_agent(settings, progress=progress))
        work_queue = wiring.open_queue(settings)
        stack.callback(work_queue.close)
        client = wiring.open_pagerduty(settings)
        if client is not None:
            stack.callback(client.close)
        tools = jobs.Tools(
            settings=settings,
            agent=agent,
            queue=work_queue,
            pagerduty=client,
            naming=naming(settings),
            progress=progress,
            chat=wiring.open_slack(settings),
        )
        worker = Worker(
            name=worker_name(index), tools=tools, metrics=metrics, liveness=liveness, index=index
        )
        worker.run(stop)
