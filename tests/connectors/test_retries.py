"""The one retry helper against a real local HTTP server: it repeats what the caller's predicate
calls retryable, waits its backoff or what ``Retry-After`` asks, and stops at the attempt count
or the time budget."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from connectors import _http

Script = list[tuple[int, dict[str, str]]]
"""The answers in order (status, extra headers); the last one repeats."""


@pytest.fixture
def scripted() -> Iterator[tuple[Script, list[str], str]]:
    """A server answering each GET with the next scripted status; the paths it was asked."""
    script: Script = []
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            status, headers = script[min(len(seen), len(script)) - 1]
            body = f"answer {len(seen)}".encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield script, seen, f"http://127.0.0.1:{server.server_address[1]}/x"
    server.shutdown()
    server.server_close()


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def _busy(exc: Exception) -> bool:
    return isinstance(exc, urllib.error.HTTPError) and exc.code in (429, 503)


def _asked(exc: Exception) -> float | None:
    return _http.asked_wait_s(exc.headers) if isinstance(exc, urllib.error.HTTPError) else None


def test_busy_answers_are_repeated_after_the_backoff_or_the_wait_the_server_asks(
    scripted: tuple[Script, list[str], str],
) -> None:
    """503 waits the backoff, 429 with Retry-After waits what it asks, then the answer comes."""
    script, seen, url = scripted
    script += [(503, {}), (429, {"Retry-After": "3"}), (200, {})]
    waits: list[float] = []
    policy = _http.RetryPolicy(attempts=4, backoff_s=0.25, budget_s=60)
    answer = _http.call_with_retries(
        lambda: _get(url), policy=policy, retryable=_busy, asked_s=_asked, sleep=waits.append
    )
    assert answer == "answer 3" and len(seen) == 3
    assert waits == [0.25, 3.0]


def test_an_answer_the_predicate_refuses_is_tried_once(
    scripted: tuple[Script, list[str], str],
) -> None:
    """A 404 is final: one request, no wait, the error reaches the caller."""
    script, seen, url = scripted
    script.append((404, {}))
    waits: list[float] = []
    with pytest.raises(urllib.error.HTTPError, match="404"):
        _http.call_with_retries(
            lambda: _get(url), policy=_http.RetryPolicy(), retryable=_busy, sleep=waits.append
        )
    assert len(seen) == 1 and waits == []


def test_retries_stop_at_the_attempt_count_and_before_the_budget(
    scripted: tuple[Script, list[str], str],
) -> None:
    """Three attempts at most; a wait that would overrun the budget is not taken."""
    script, seen, url = scripted
    script.append((503, {}))
    policy = _http.RetryPolicy(attempts=3, backoff_s=0.01, budget_s=60)
    waits: list[float] = []
    with pytest.raises(urllib.error.HTTPError, match="503"):
        _http.call_with_retries(
            lambda: _get(url), policy=policy, retryable=_busy, sleep=waits.append
        )
    assert len(seen) == 3 and waits == [0.01, 0.02]
    seen.clear()
    script[:] = [(429, {"Retry-After": "120"})]
    with pytest.raises(urllib.error.HTTPError, match="429"):
        _http.call_with_retries(
            lambda: _get(url), policy=policy, retryable=_busy, asked_s=_asked, sleep=waits.append
        )
    assert len(seen) == 1 and waits == [0.01, 0.02]
