"""Fixtures for the service: settings that point at nothing, a real agent, uvicorn on loopback."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from diagnose import wiring
from diagnose.lab import postgres
from diagnose.server import app, auth, jobs, telemetry, working
from diagnose.settings import Settings

SECRET = "whsec-test-0123456789"
AM_TOKEN = "am-token-0123456789"
TOKENS = "alice:alice-token-123,bob:bob-token-4567"


def make_settings(state_dir: Path, **overrides: Any) -> Settings:
    """Settings with no Prometheus, no Kubernetes, no traces: runs still reach approval."""
    values: dict[str, Any] = {
        "state_dir": state_dir,
        "kubernetes_enabled": False,
        "pagerduty_webhook_secret": SECRET,
        "alertmanager_token": AM_TOKEN,
        "api_tokens": TOKENS,
        "pagerduty_user_id": "PBOT123",
        "job_lease_s": 2.0,
    }
    return Settings.model_validate(values | overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """SQLite mode: checkpoints and the queue in the test's state directory."""
    return make_settings(tmp_path / "state")


@pytest.fixture
def pg_settings(tmp_path: Path, postgres_cluster: postgres.PostgresCluster) -> Settings:
    """PostgreSQL mode: a fresh database for this test's checkpoints and queue."""
    name = "q_" + uuid.uuid4().hex[:10]
    postgres_cluster.create_database(name)
    return make_settings(tmp_path / "state", database_url=postgres_cluster.dsn(name))


@contextmanager
def open_service(settings: Settings) -> Iterator[app.Service]:
    """The web service's parts, opened for real (agent, queue, tokens)."""
    with ExitStack() as stack:
        agent = stack.enter_context(wiring.open_agent(settings, progress=lambda _m: None))
        queue = wiring.open_queue(settings)
        stack.callback(queue.close)
        yield app.Service(
            settings=settings,
            queue=queue,
            agent=agent,
            metrics=telemetry.Metrics(),
            naming=working.naming(settings),
            tokens=auth.load_tokens(settings),
        )


@contextmanager
def serving(asgi: Any) -> Iterator[str]:
    """Run the app under uvicorn on a free loopback port; yields its base URL."""
    config = uvicorn.Config(asgi, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def service(settings: Settings) -> Iterator[app.Service]:
    with open_service(settings) as opened:
        yield opened


@pytest.fixture
def base_url(service: app.Service) -> Iterator[str]:
    with serving(app.create_app(service)) as url:
        yield url


def make_worker(service: app.Service, *, name: str = "w-test") -> working.Worker:
    """A worker sharing the service's agent and queue (one process, as ``serve --workers``)."""
    tools = jobs.Tools(
        settings=service.settings,
        agent=service.agent,
        queue=service.queue,
        pagerduty=None,
        naming=service.naming,
        progress=lambda _m: None,
    )
    return working.Worker(name=name, tools=tools, metrics=service.metrics)


def drain(worker: working.Worker, *, limit: int = 20) -> int:
    """Run jobs until none is left to claim; returns how many ran."""
    ran = 0
    while ran < limit and worker.run_one():
        ran += 1
    return ran


WorkerFactory = Callable[..., working.Worker]
