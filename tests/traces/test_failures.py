"""Servers that say no, lie, stall or flood: every failure is evidence, never a crash or an
unbounded read."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from connectors import traces
from diagnose.domain.models import Status
from tests.traces import otlp_gen

Reply = Callable[[socket.socket, bytes], None]
BACKENDS = ("tempo", "jaeger")


class RawServer:
    """A one-thread TCP server that answers every request with ``reply`` (written by hand,
    so it can cut a body short or stream forever)."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sent = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                request += chunk
            # The client hangs up on purpose: that is what these tests provoke.
            with contextlib.suppress(OSError):
                self.reply(conn, request)

    def stop(self) -> None:
        self.stopped.set()
        self.sock.close()


def respond(
    status: str, body: bytes, *, kind: str = "application/json", length: int | None = None
) -> Reply:
    def reply(conn: socket.socket, _: bytes) -> None:
        head = f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nConnection: close\r\n"
        head += f"Content-Length: {len(body) if length is None else length}\r\n\r\n"
        conn.sendall(head.encode() + body)

    return reply


@pytest.fixture
def serve() -> Iterator[Callable[[Reply], RawServer]]:
    servers: list[RawServer] = []

    def start(reply: Reply) -> RawServer:
        servers.append(RawServer(reply))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


def connect(
    url: str, backend: str, **options: object
) -> traces.TempoConnector | traces.JaegerConnector:
    cls = traces.TempoConnector if backend == "tempo" else traces.JaegerConnector
    return cls(url, **options)  # type: ignore[arg-type]


def sample(url: str, backend: str, **options: object):  # type: ignore[no-untyped-def]
    with connect(url, backend, **options) as connector:
        return connector.sample_spans(
            service="checkout", namespace=None, window=otlp_gen.INCIDENT, limit_traces=5
        )


@pytest.mark.parametrize("backend", BACKENDS)
def test_garbage_json_is_an_error(serve, backend) -> None:
    server = serve(respond("200 OK", b'{"traces": [oops'))
    evidence = sample(server.url, backend)
    assert evidence.status is Status.ERROR
    assert "not JSON" in evidence.summary and server.url in evidence.summary


@pytest.mark.parametrize("backend", BACKENDS)
def test_json_of_the_wrong_shape_is_an_error(serve, backend) -> None:
    body = {"traces": [{"traceID": 42}]} if backend == "tempo" else {"data": [{"spans": "x"}]}
    server = serve(respond("200 OK", json.dumps(body).encode()))
    evidence = sample(server.url, backend)
    assert evidence.status is Status.ERROR and "unexpected shape" in evidence.summary


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_body_cut_short_is_an_error(serve, backend) -> None:
    server = serve(respond("200 OK", b'{"traces": [], "da', length=5000))
    evidence = sample(server.url, backend)
    assert evidence.status is Status.ERROR
    assert "cut the connection" in evidence.summary


def flood(conn: socket.socket, _: bytes) -> None:
    """Chunked transfer of an endless JSON array."""
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"[" + b"1," * 32768
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    for _ in range(200_000):  # ~13 GB if nobody stops reading
        conn.sendall(frame)


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_endless_body_is_abandoned_at_the_byte_cap(serve, backend) -> None:
    server = serve(flood)
    limits = traces.Limits(max_response_bytes=2_000_000, max_total_bytes=4_000_000)
    started = time.monotonic()
    evidence = sample(server.url, backend, limits=limits)
    assert evidence.status is Status.ERROR
    assert "2,000,000-byte cap" in evidence.summary
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_declared_huge_body_is_not_read(serve, backend) -> None:
    server = serve(respond("200 OK", b"[]", length=50 * 1024**3))
    evidence = sample(server.url, backend)
    assert evidence.status is Status.ERROR and "declared" in evidence.summary


def stall(conn: socket.socket, _: bytes) -> None:
    time.sleep(3)


def trickle(conn: socket.socket, _: bytes) -> None:
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    )
    for _ in range(100):
        conn.sendall(b" ")
        time.sleep(0.1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("reply", [stall, trickle], ids=["silent", "trickling"])
def test_a_slow_server_times_out(serve, backend, reply) -> None:
    server = serve(reply)
    started = time.monotonic()
    evidence = sample(server.url, backend, timeout_s=0.5)
    assert evidence.status is Status.ERROR
    assert "0.5 s" in evidence.summary
    assert time.monotonic() - started < 2.5


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("code", ["401 Unauthorized", "403 Forbidden"])
def test_refusal_is_denied(serve, backend, code) -> None:
    server = serve(respond(code, b"access denied", kind="text/plain"))
    evidence = sample(server.url, backend)
    assert evidence.status is Status.DENIED
    assert code.split()[0] in evidence.summary and "access denied" in evidence.summary


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_server_error_is_reported_with_its_message(serve, backend) -> None:
    body = (
        b"invalid TraceQL query: parse error"
        if backend == "tempo"
        else json.dumps({"data": None, "errors": [{"code": 500, "msg": "storage down"}]}).encode()
    )
    server = serve(respond("500 Internal Server Error", body))
    evidence = sample(server.url, backend)
    assert evidence.status is Status.ERROR and "HTTP 500" in evidence.summary
    assert ("parse error" if backend == "tempo" else "storage down") in evidence.summary


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_refused_connection_says_what_to_do(backend) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    evidence = sample(url, backend)
    assert evidence.status is Status.ERROR
    assert "refused the connection" in evidence.summary and "diagnose lab up" in evidence.summary


def count(url: str, backend: str):  # type: ignore[no-untyped-def]
    with connect(url, backend) as connector:
        return connector.count_requests(
            service="checkout", operation="POST /pay", window=otlp_gen.INCIDENT, limit=5
        )


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_request_count_from_a_failing_server_is_an_error_never_a_zero(serve, backend) -> None:
    """Garbage, the wrong shape, a server error and a refused connection: each an error with
    no count in it, so nothing downstream reads it as "no requests"."""
    wrong = {"traces": [{"traceID": 42}]} if backend == "tempo" else {"data": "x"}
    replies = [
        respond("200 OK", b'{"traces": [oops'),
        respond("200 OK", json.dumps(wrong).encode()),
        respond("500 Internal Server Error", b"storage down"),
    ]
    for reply in replies:
        answer = count(serve(reply).url, backend)
        assert answer.status is Status.ERROR and answer.raw is None, answer.summary
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    refused = count(url, backend)
    assert refused.status is Status.ERROR and "refused the connection" in refused.summary


def test_tempo_skips_an_oversized_trace_and_keeps_the_rest(serve) -> None:
    """A trace bigger than the per-response cap is left out; the sample says so."""
    small = otlp_gen.make_document("quiet", traces_per_window=1)
    big = {"batches": [{"resource": {}, "scopeSpans": [{"spans": []}]}], "pad": "x" * 300_000}
    ids = ["a" * 32, "b" * 32]

    def reply(conn: socket.socket, request: bytes) -> None:
        path = request.split(b" ")[1].decode()
        if path.startswith("/api/search"):
            body = {"traces": [{"traceID": i} for i in ids]}
        elif "a" * 32 in path:
            body = big
        else:
            body = small
            for rs in body["resourceSpans"]:
                for span in rs["scopeSpans"][0]["spans"]:
                    span["traceId"] = "b" * 32
        respond("200 OK", json.dumps(body).encode())(conn, request)

    server = serve(reply)
    limits = traces.Limits(max_response_bytes=200_000)
    evidence = sample(server.url, "tempo", limits=limits)
    assert evidence.status is Status.OK
    assert evidence.raw["traces"] == 1
    assert "1 trace not read" in evidence.summary and "200,000-byte cap" in evidence.summary
