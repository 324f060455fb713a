"""Benchmark: PagerDuty webhook reply time under a steady delivery rate, against ``/healthz``.

Stands up the service as it runs in a cluster: a throwaway PostgreSQL (the lab's), ``diagnose
serve --workers 0`` and ``diagnose worker`` processes, and a Prometheus that answers its HTTP
API slowly (so diagnoses take a while, as real ones do). A bounded open-loop client on loopback
then sends deliveries at a fixed rate: new incidents, PagerDuty's retries (same
``X-Webhook-Id``), duplicate triggers of the same incident (another id), other event types and
bad signatures. ``/healthz`` requests interleaved with them at a tenth of the rate are the
baseline, measured in the same run under the same load::

    python -m benchmarks.webhooks [--rate 200] [--seconds 20]

Prints p50/p99/max reply times of both and the ratio of the p99s; ``tests/server/
test_load_webhooks.py`` uses the same parts to check correctness. Exits 1 only when a delivery
got an answer it should not have: times are reported, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib import parse

import httpx

SECRET = "whsec-load-0123456789"
BOT_USER = "PBOTLOAD"
PROMETHEUS_DELAY_S = 0.4
TARGET_P99_S = 0.100
GAP = 200
_TRIGGERED = ("queued", "deduplicated", "duplicate")
"""Retries and duplicates repeat a delivery sent at least this many slots earlier."""

# --- what is sent -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Delivery:
    """One request: what it is, and the answer it must get."""

    kind: str  # trigger | duplicate | retry | other | bad_signature | health
    path: str
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    incident_id: str | None = None
    expect_code: int = 202
    expect_status: tuple[str, ...] = ()  # any of these; () when only the code is checked

    @property
    def webhook_id(self) -> str | None:
        return self.headers.get("X-Webhook-Id")


@dataclass
class Outcome:
    """What came back for one delivery."""

    delivery: Delivery
    code: int  # 0 when the request failed at the transport
    status: str | None
    seconds: float
    error: str = ""

    @property
    def correct(self) -> bool:
        if self.code != self.delivery.expect_code:
            return False
        expected = self.delivery.expect_status
        return not expected or self.status in expected


def sign(body: bytes, *, secret: str) -> str:
    """PagerDuty's V3 signature: ``v1=`` and the hex HMAC-SHA256 of the raw body."""
    return "v1=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _event(event_id: str, event_type: str, incident_id: str, *, agent: str) -> bytes:
    data = {
        "id": incident_id,
        "type": "incident",
        "self": f"https://api.pagerduty.com/incidents/{incident_id}",
        "html_url": f"https://acme.pagerduty.com/incidents/{incident_id}",
        "number": 1,
        "status": "triggered",
        "created_at": "2026-03-01T12:00:00Z",
        "title": f"checkout 5xx ratio above 5% ({incident_id})",
        "service": {"id": "PSVC001", "summary": "checkout", "type": "service_reference"},
        "urgency": "high",
    }
    if event_type == "incident.annotated":
        data = {
            "incident": {"id": incident_id, "type": "incident_reference"},
            "id": f"N{event_id}",
            "content": "[diagnose] diagnosis run-x",
            "type": "incident_note",
        }
    event = {
        "id": event_id,
        "event_type": event_type,
        "resource_type": "incident",
        "occurred_at": "2026-03-01T12:00:01.000Z",
        "agent": {"id": agent, "type": "user_reference"},
        "client": None,
        "data": data,
    }
    return json.dumps({"event": event}).encode()


def _signed(body: bytes, *, webhook_id: str, secret: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Webhook-Id": webhook_id,
        "X-PagerDuty-Signature": sign(body, secret=secret),
    }


_OTHER_EVENTS = (
    "incident.acknowledged",
    "incident.priority_updated",
    "incident.escalated",
    "incident.unacknowledged",
    "incident.annotated",
)


def plan(*, rate: float, seconds: float, incidents: int, seed: int = 7) -> list[Delivery]:
    """``rate * seconds`` webhook deliveries: each incident triggered once, spread over the
    first half; 30% retries and duplicates of earlier deliveries; 5% bad signatures; the rest
    other event types (answered 202 and ignored). Deterministic for a seed."""
    rng = random.Random(seed)
    total = int(rate * seconds)
    trigger_at = {round(i * total / 2 / incidents): i for i in range(incidents)}
    sent: list[Delivery] = []
    triggered: list[tuple[int, str]] = []  # (slot, incident id)
    for n in range(total):
        incident_id = f"PLD{trigger_at.get(n, rng.randrange(incidents)):05d}"
        roll = rng.random()
        # Retries and duplicates repeat what went out at least a second earlier (PagerDuty
        # retries after a timeout), so the first answer is settled before they arrive.
        settled = [d for d in sent[-400:-GAP] if d.kind in ("trigger", "other")]
        settled_triggers = [i for slot, i in triggered[-50:] if slot < n - GAP]
        if n in trigger_at:
            body = _event(f"ev-{n}", "incident.triggered", incident_id, agent="PUSER01")
            headers = _signed(body, webhook_id=f"wh-{n}", secret=SECRET)
            trigger = Delivery("trigger", "/webhooks/pagerduty", body, headers, incident_id)
            sent.append(_expect(trigger, *_TRIGGERED))
            triggered.append((n, incident_id))
        elif roll < 0.15 and settled:
            first = rng.choice(settled)
            # Deliveries that were only ignored leave no delivery record to match.
            retry = _as(first, "retry")
            sent.append(_expect(retry, *(_TRIGGERED if first.kind == "trigger" else ("ignored",))))
        elif roll < 0.30 and settled_triggers:
            again = rng.choice(settled_triggers)
            body = _event(f"ev-{n}", "incident.triggered", again, agent="PUSER01")
            headers = _signed(body, webhook_id=f"wh-{n}", secret=SECRET)
            duplicate = Delivery("duplicate", "/webhooks/pagerduty", body, headers, again)
            sent.append(_expect(duplicate, *_TRIGGERED))
        elif roll < 0.35:
            body = _event(f"ev-{n}", "incident.triggered", incident_id, agent="PUSER01")
            wrong = "whsec-rotated-away" if rng.random() < 0.5 else SECRET + "x"
            headers = _signed(body, webhook_id=f"wh-{n}", secret=wrong)
            sent.append(Delivery("bad_signature", "/webhooks/pagerduty", body, headers, None, 403))
        else:
            kind = rng.choice(_OTHER_EVENTS)
            agent = BOT_USER if kind == "incident.annotated" else "PUSER01"
            body = _event(f"ev-{n}", kind, incident_id, agent=agent)
            headers = _signed(body, webhook_id=f"wh-{n}", secret=SECRET)
            sent.append(_expect(Delivery("other", "/webhooks/pagerduty", body, headers), "ignored"))
    return sent


def _expect(delivery: Delivery, *statuses: str) -> Delivery:
    return replace(delivery, expect_code=202, expect_status=statuses)


def _as(delivery: Delivery, kind: str) -> Delivery:
    return replace(delivery, kind=kind)


def check(outcomes: list[Outcome]) -> list[str]:
    """What went wrong, if anything. Beyond each answer's code and status: of all the
    deliveries triggering one incident (first, duplicates, retries), exactly one queued it;
    of the deliveries sharing one ``X-Webhook-Id``, all but one were answered "duplicate".
    (Which one of a racing pair wins is the network's choice, not a rule.)"""
    problems = [
        f"{o.delivery.kind} {o.delivery.webhook_id}: {o.code} {o.status} {o.error}".rstrip()
        for o in outcomes
        if not o.correct
    ]
    queued: Counter[str] = Counter()
    firsts: Counter[str] = Counter()
    incidents = set()
    for outcome in outcomes:
        delivery = outcome.delivery
        if delivery.expect_status != _TRIGGERED:
            continue
        incidents.add(str(delivery.incident_id))
        queued[str(delivery.incident_id)] += outcome.status == "queued"
        firsts[str(delivery.webhook_id)] += outcome.status != "duplicate"
    problems += [f"incident {i} queued {queued[i]} times" for i in incidents if queued[i] != 1]
    problems += [f"delivery {w} taken {n} times" for w, n in firsts.items() if n != 1]
    return problems


def with_health_checks(deliveries: list[Delivery], *, every: int = 10) -> list[Delivery]:
    """Interleave a ``GET /healthz`` after every ``every`` deliveries: the baseline."""
    mixed: list[Delivery] = []
    for n, delivery in enumerate(deliveries):
        mixed.append(delivery)
        if n % every == every - 1:
            mixed.append(Delivery("health", "/healthz", expect_code=200, expect_status=("ok",)))
    return mixed


async def send_all(
    base_url: str,
    deliveries: list[Delivery],
    *,
    rate: float,
    max_in_flight: int = 200,
    timeout_s: float = 60.0,
) -> list[Outcome]:
    """Send each delivery at its slot (open loop: a slow reply does not delay the next
    request), with at most ``max_in_flight`` outstanding. Webhook slots are ``1/rate`` apart;
    health checks ride along at no extra slot. The generous ``timeout_s`` keeps a starved
    machine's slow replies as slow replies (reported) rather than failures."""
    # Idle connections are dropped well before uvicorn closes them (after 5 s): reusing one the
    # server is closing at that moment fails the request without the server ever reading it.
    limits = httpx.Limits(
        max_connections=max_in_flight, max_keepalive_connections=64, keepalive_expiry=1.0
    )
    timeout = httpx.Timeout(timeout_s)
    gate = asyncio.Semaphore(max_in_flight)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:
        loop = asyncio.get_running_loop()
        began = loop.time()
        tasks = []
        slot = 0
        for delivery in deliveries:
            if delivery.kind != "health":
                slot += 1
            delay = began + slot / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await gate.acquire()
            tasks.append(asyncio.create_task(_send_one(client, delivery, gate)))
        return list(await asyncio.gather(*tasks))


async def _send_one(
    client: httpx.AsyncClient, delivery: Delivery, gate: asyncio.Semaphore
) -> Outcome:
    began = time.perf_counter()
    try:
        if delivery.kind == "health":
            response = await client.get(delivery.path)
        else:
            response = await client.post(
                delivery.path, content=delivery.body, headers=dict(delivery.headers)
            )
        seconds = time.perf_counter() - began
        status = response.json().get("status") if response.content else None
        return Outcome(delivery, response.status_code, status, seconds)
    except httpx.HTTPError as exc:
        return Outcome(delivery, 0, None, time.perf_counter() - began, error=repr(exc))
    finally:
        gate.release()


def quantile(values: list[float], q: float) -> float:
    """The ``q`` quantile, nearest rank (no interpolation between samples)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


# --- what is run ------------------------------------------------------------------------------


class _SlowPrometheus(BaseHTTPRequestHandler):
    """Prometheus' HTTP API answering, after a delay, that it holds no series."""

    def do_GET(self) -> None:
        time.sleep(PROMETHEUS_DELAY_S)
        route = parse.urlsplit(self.path).path
        data: object = []
        if route.endswith(("/query_range", "/query")):
            data = {"resultType": "matrix", "result": []}
        body = json.dumps({"status": "success", "data": data}).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the asking worker was killed meanwhile (the load test does that)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: one line per request would cost more than the request."""


@contextmanager
def slow_prometheus() -> Iterator[str]:
    """A loopback Prometheus that takes ``PROMETHEUS_DELAY_S`` per request."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _SlowPrometheus)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Stack:
    """The service's processes, as a cluster runs them."""

    base_url: str
    env: dict[str, str]
    server: subprocess.Popen[bytes]
    workers: list[subprocess.Popen[bytes]]
    logs: Path


def service_env(*, database_url: str, prometheus_url: str, state_dir: Path) -> dict[str, str]:
    """The ``DIAGNOSE_*`` settings of every process of the stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    return env | {
        "DIAGNOSE_DATABASE_URL": database_url,
        "DIAGNOSE_PROMETHEUS_URL": prometheus_url,
        "DIAGNOSE_KUBERNETES_ENABLED": "false",
        "DIAGNOSE_STATE_DIR": str(state_dir),
        "DIAGNOSE_PAGERDUTY_WEBHOOK_SECRET": SECRET,
        "DIAGNOSE_PAGERDUTY_USER_ID": BOT_USER,
        "DIAGNOSE_API_TOKENS": "ops:ops-token-0123456789",
        "DIAGNOSE_JOB_LEASE_S": "3",
        "DIAGNOSE_MAX_CONCURRENT_RUNS": "4",
        "PYTHONUNBUFFERED": "1",
    }


def free_port() -> int:
    import socket  # noqa: PLC0415 (only here)

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def running_stack(
    *, database_url: str, prometheus_url: str, workdir: Path, workers: int = 2
) -> Iterator[Stack]:
    """``diagnose serve --workers 0`` plus ``workers`` ``diagnose worker`` processes."""
    bin_dir = Path(sys.executable).parent
    env = service_env(
        database_url=database_url, prometheus_url=prometheus_url, state_dir=workdir / "state"
    )
    port = free_port()
    with ExitStack() as stack:
        server = _spawn(
            [bin_dir / "diagnose", "serve", "--workers", "0", "--port", str(port)],
            env=env,
            log=workdir / "serve.log",
            stack=stack,
        )
        base_url = f"http://127.0.0.1:{port}"
        wait_ready(base_url, server=server, log=workdir / "serve.log")
        # In a cluster the API and the workers are separate pods (the chart's two Deployments);
        # on one small machine the workers' diagnoses would otherwise take the API's CPU, so
        # they run at a lower scheduling priority, as a stand-in for their own pods.
        spawned = [
            _spawn(
                [bin_dir / "diagnose", "worker", "--concurrency", "2"],
                env=env,
                log=workdir / f"worker-{n}.log",
                stack=stack,
                nice=10,
            )
            for n in range(workers)
        ]
        for n, child in enumerate(spawned):
            _wait_started(child, log=workdir / f"worker-{n}.log")
        yield Stack(base_url, env, server, spawned, workdir)


def _spawn(
    argv: list[Path | str], *, env: dict[str, str], log: Path, stack: ExitStack, nice: int = 0
) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    out = stack.enter_context(log.open("wb"))
    prefix = ["nice", "-n", str(nice)] if nice else []  # nice(1) execs: same pid
    child = subprocess.Popen(
        [*prefix, *(str(a) for a in argv)], env=env, stdout=out, stderr=subprocess.STDOUT
    )
    stack.callback(_stop, child)
    return child


def _stop(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=5)


def _wait_started(worker: subprocess.Popen[bytes], *, log: Path) -> None:
    """Until the worker says its threads run: its imports must not compete with the load."""
    deadline = time.monotonic() + 60
    while b"workers running" not in log.read_bytes():
        if worker.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"diagnose worker did not start: {log.read_text()[-2000:]}")
        time.sleep(0.1)


def wait_ready(base_url: str, *, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"diagnose serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"diagnose serve did not become ready: {log.read_text()[-2000:]}")


# --- the benchmark ----------------------------------------------------------------------------


def report(outcomes: list[Outcome]) -> tuple[float, float]:
    """Print reply-time quantiles of webhooks and health checks; returns both p99s."""
    hooks = [o.seconds for o in outcomes if o.delivery.kind != "health"]
    health = [o.seconds for o in outcomes if o.delivery.kind == "health"]
    print(f"  {'':<10} {'count':>6} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, values in (("webhooks", hooks), ("/healthz", health)):
        p50, p99 = quantile(values, 0.5) * 1e3, quantile(values, 0.99) * 1e3
        print(f"  {name:<10} {len(values):>6} {p50:>8.1f} {p99:>8.1f} {max(values) * 1e3:>8.1f}")
    hook_p99, health_p99 = quantile(hooks, 0.99), quantile(health, 0.99)
    verdict = "target met" if hook_p99 < TARGET_P99_S else "target missed"
    print(f"  webhook p99 / healthz p99: {hook_p99 / health_p99:.2f}x")
    print(f"  webhook p99 {hook_p99 * 1e3:.1f} ms, target < {TARGET_P99_S * 1e3:.0f} ms: {verdict}")
    return hook_p99, health_p99


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="PagerDuty webhook reply times under load.")
    parser.add_argument("--rate", type=float, default=200.0, help="deliveries per second")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--incidents", type=int, default=40)
    args = parser.parse_args(argv)
    from diagnose.lab import postgres  # noqa: PLC0415 (the lab only when the benchmark runs)

    deliveries = with_health_checks(
        plan(rate=args.rate, seconds=args.seconds, incidents=args.incidents)
    )
    kinds = Counter(d.kind for d in deliveries)
    print(f"webhooks: {args.rate:.0f}/s for {args.seconds:.0f} s; {dict(kinds)}")
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        workdir = Path(tmp)
        cluster = stack.enter_context(postgres.PostgresCluster.start(workdir=workdir / "pg"))
        cluster.create_database("load")
        prometheus_url = stack.enter_context(slow_prometheus())
        service = stack.enter_context(
            running_stack(
                database_url=cluster.dsn("load"), prometheus_url=prometheus_url, workdir=workdir
            )
        )
        outcomes = asyncio.run(send_all(service.base_url, deliveries, rate=args.rate))
    report(outcomes)
    problems = check(outcomes)
    for problem in problems[:10]:
        print(f"  wrong: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
