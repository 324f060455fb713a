"""Tiny local servers for the ways the world says no: a fixed HTTP answer, a port nobody
listens on, a server that accepts and never answers. Real sockets, real clients."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

Answer = tuple[int, object]
"""An HTTP status and a body: a dict or list is sent as JSON, a str as text."""


@dataclass
class AnsweringServer:
    """An HTTP server that answers every GET with ``respond(path)`` and records each request's
    path and headers (names lowercased)."""

    url: str
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)


def _handler(
    respond: Callable[[str], Answer], seen: list[tuple[str, dict[str, str]]]
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
            status, body = respond(self.path)
            is_text = isinstance(body, str)
            payload = (body if isinstance(body, str) else json.dumps(body)).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain" if is_text else "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    return Handler


@pytest.fixture
def answering_server() -> Iterator[Callable[[Callable[[str], Answer]], AnsweringServer]]:
    """Start servers that answer with a function of the request path; stopped after the test."""
    servers: list[ThreadingHTTPServer] = []

    def start(respond: Callable[[str], Answer]) -> AnsweringServer:
        seen: list[tuple[str, dict[str, str]]] = []
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(respond, seen))
        servers.append(server)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return AnsweringServer(url=f"http://127.0.0.1:{server.server_address[1]}", requests=seen)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_port_url() -> str:
    """A URL on a local port nobody listens on: connections are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def hanging_url() -> Iterator[str]:
    """A URL whose server accepts connections and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()
