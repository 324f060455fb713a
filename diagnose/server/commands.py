"""``diagnose serve`` and ``diagnose worker``: added to the CLI by :func:`register`.

Heavy imports (FastAPI, uvicorn) happen inside the commands, so the rest of the CLI starts
as fast as before.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from diagnose import console
from diagnose.domain import errors
from diagnose.settings import Settings

if TYPE_CHECKING:
    import fastapi

    from diagnose.server import telemetry


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``worker`` to the ``diagnose`` command line."""
    app.command("serve")(serve)
    app.command("worker")(worker)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    workers: Annotated[
        int,
        typer.Option(
            help="In-process workers (one machine); 0 to leave jobs to `diagnose worker` processes."
        ),
    ] = 1,
    read_timeout: Annotated[
        float,
        typer.Option(
            min=0.1,
            help="Seconds a client has to send a whole request (headers and body) once it "
            "connects or starts one; slower clients get 408 and are disconnected.",
        ),
    ] = 10.0,
    max_connections: Annotated[
        int,
        typer.Option(min=1, help="Open connections past which a new one is closed at once."),
    ] = 1000,
) -> None:
    """Answer PagerDuty and Alertmanager webhooks and the approval API (settings: DIAGNOSE_*)."""
    import uvicorn  # noqa: PLC0415 (lazy: the rest of the CLI starts without FastAPI)

    from diagnose.server import limits, telemetry, working  # noqa: PLC0415 (lazy: the rest of the CLI starts without FastAPI)

    with console.failures(), ExitStack() as stack:
        settings = Settings.from_env()
        metrics = telemetry.Metrics()
        app = stack.enter_context(open_app(settings, metrics=metrics))
        stop = threading.Event()
        threads = working.run_workers(
            settings, count=workers, stop=stop, metrics=metrics, progress=console.progress
        )
        try:
            uvicorn.run(
                app,
                host=host,
                port=port,
                log_level="info",
                http=limits.protocol(read_timeout_s=read_timeout, max_connections=max_connections),
                limit_concurrency=max_connections,
                timeout_keep_alive=5,
            )
        finally:
            stop.set()
            for thread in threads:
                thread.join(timeout=settings.job_lease_s)


@contextmanager
def open_app(settings: Settings, *, metrics: telemetry.Metrics) -> Iterator[fastapi.FastAPI]:
    """The FastAPI app with its queue and agent opened, closed on exit."""
    from diagnose import wiring  # noqa: PLC0415 (lazy: the rest of the CLI starts without FastAPI)
    from diagnose.server import app, auth, working  # noqa: PLC0415 (lazy: the rest of the CLI starts without FastAPI)

    with ExitStack() as stack:
        agent = stack.enter_context(wiring.open_agent(settings, progress=console.progress))
        work_queue = wiring.open_queue(settings)
        stack.callback(work_queue.close)
        service = app.Service(
            settings=settings,
            queue=work_queue,
            agent=agent,
            metrics=metrics,
            naming=working.naming(settings),
            tokens=auth.load_tokens(settings),
            slack=wiring.open_slack(settings),
        )
        yield app.create_app(service)


HEARTBEAT_EVERY_S = 1.0


def worker(
    concurrency: Annotated[int, typer.Option(help="Jobs this process runs at once.")] = 2,
    check_heartbeat: Annotated[
        float | None,
        typer.Option(
            metavar="MAX_AGE_S",
            min=1.0,
            help="Run no worker: exit 0 if the worker's heartbeat file "
            "(DIAGNOSE_WORKER_HEARTBEAT_FILE) is younger than MAX_AGE_S seconds, 1 if not "
            "(a liveness probe).",
        ),
    ] = None,
) -> None:
    """Run queue workers until SIGTERM or Ctrl-C (needs DIAGNOSE_DATABASE_URL).

    While every job thread is alive and coming back to the queue (or renewing the lease of the
    job it runs) within a lease, the heartbeat file is rewritten every second."""
    with console.failures():
        settings = Settings.from_env()
        if check_heartbeat is not None:
            _check_heartbeat(settings, max_age_s=check_heartbeat)
            return
        if not settings.database_url:
            raise errors.ConfigurationError(
                "worker processes share a PostgreSQL queue: set DIAGNOSE_DATABASE_URL, or run "
                "`diagnose serve --workers N` on one machine (SQLite)"
            )
        from diagnose.server import heartbeat, telemetry, working  # noqa: PLC0415 (lazy: the rest of the CLI starts without FastAPI)

        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        liveness = heartbeat.Liveness()
        threads = working.run_workers(
            settings,
            count=concurrency,
            stop=stop,
            metrics=telemetry.Metrics(),
            progress=console.progress,
            liveness=liveness,
        )
        console.progress(f"{concurrency} workers running; SIGTERM or Ctrl-C stops them")
        healthy = True
        while not stop.wait(HEARTBEAT_EVERY_S):
            alive = [t.is_alive() for t in threads]
            if not any(alive):
                break
            stale = liveness.stale(count=concurrency, within_s=settings.job_lease_s)
            if all(alive) and not stale:
                heartbeat.write(settings.heartbeat_path, threads=concurrency)
            elif healthy:
                dead = [n for n, up in enumerate(alive) if not up]
                console.progress(f"heartbeat withheld: threads {dead} dead, {stale} not working")
            healthy = all(alive) and not stale
        stop.set()
        for thread in threads:
            thread.join(timeout=settings.job_lease_s)


def _check_heartbeat(settings: Settings, *, max_age_s: float) -> None:
    from diagnose.server import heartbeat  # noqa: PLC0415 (lazy: the rest of the CLI starts without FastAPI)

    age = heartbeat.age_s(settings.heartbeat_path)
    if age > max_age_s:
        print(
            f"error: the worker's heartbeat ({settings.heartbeat_path}) is {age:.0f} s old, "
            f"more than {max_age_s:g} s: its job threads are stuck or dead",
            file=sys.stderr,
        )
        raise typer.Exit(1)
    print(f"worker heartbeat {age:.1f} s old")
