"""Slow and greedy clients: a deadline for reading each request, and a cap on connections.

uvicorn times out an idle keep-alive connection, but not a client that connects and sends
nothing, or sends its headers or its body a byte at a time: each such connection holds a file
descriptor for as long as the client likes. :func:`protocol` returns uvicorn's h11 protocol
with two bounds added:

- a **read deadline**: from the moment a connection opens (or the next request on it starts),
  the whole request, headers and body, must arrive within ``read_timeout_s``; otherwise the
  server answers 408 if it can and closes the connection;
- a **connection cap**: past ``max_connections`` open connections, a new one is closed at once.
"""

from __future__ import annotations

import asyncio

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

_READ = frozenset({h11.DONE, h11.MUST_CLOSE, h11.CLOSED, h11.ERROR})
"""The client's states in which nothing more of the request is awaited."""

_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain\r\nconnection: close\r\n"
    b"content-length: 33\r\n\r\nthe request was not sent in time\n"
)


def protocol(*, read_timeout_s: float, max_connections: int) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a read deadline per request and a cap on connections."""

    class Bounded(_Bounded):
        pass

    Bounded.read_timeout_s = read_timeout_s
    Bounded.max_connections = max_connections
    return Bounded


class _Bounded(H11Protocol):
    read_timeout_s = 10.0
    max_connections = 1000
    _deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            transport.abort()
            return
        self._start_deadline()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and self.conn.their_state is h11.IDLE:
            self._start_deadline()  # the next request on a kept-alive connection begins
        super().data_received(data)
        if self.conn.their_state in _READ:
            self._cancel_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def _start_deadline(self) -> None:
        self._deadline = self.loop.call_later(self.read_timeout_s, self._read_timed_out)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _read_timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.conn.their_state in _READ:
            return
        if self.cycle is None:  # no response begun: say why before closing
            self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()
