"""A local server that speaks Slack's Web API at the wire, and a client that sends signed
interaction payloads as Slack does.

The server answers ``POST /api/<method>`` (form-encoded or JSON bodies, as Slack accepts both)
with ``{"ok": true, …}`` and records each call; it can be told to answer the next calls with
429 and a ``Retry-After``. Point ``slack_sdk.WebClient``'s ``base_url`` (``DIAGNOSE_SLACK_API_URL``)
at :attr:`SlackApi.url`. Nothing reaches the internet.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib import parse

import httpx


@dataclass
class Call:
    """One request the server received."""

    method: str  # chat.postMessage, chat.update, views.open
    params: dict[str, Any]
    token: str


@dataclass
class SlackApi:
    """The server's record of calls, and what it is told to answer."""

    url: str = ""
    calls: list[Call] = field(default_factory=list)
    busy: int = 0  # answer this many next calls with 429
    retry_after_s: int = 1
    _ts: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def called(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def answer(
        self, method: str, params: dict[str, Any], *, token: str
    ) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.calls.append(Call(method, params, token))
            if self.busy > 0:
                self.busy -= 1
                return 429, {"ok": False, "error": "ratelimited"}
            ts = f"1700000000.{next(self._ts):06d}"
        if method == "chat.postMessage":
            return 200, {"ok": True, "channel": params.get("channel"), "ts": ts}
        if method == "chat.update":
            return 200, {"ok": True, "channel": params.get("channel"), "ts": params.get("ts")}
        if method == "views.open":
            return 200, {"ok": True, "view": {"id": f"V{ts[-6:]}", **_view(params)}}
        return 200, {"ok": False, "error": "unknown_method"}


def _view(params: Mapping[str, Any]) -> dict[str, Any]:
    view = params.get("view")
    return json.loads(view) if isinstance(view, str) else dict(view or {})


def _params(body: bytes, content_type: str) -> dict[str, Any]:
    if "json" in content_type:
        found = json.loads(body or b"{}")
        return dict(found)
    return {k: v[0] for k, v in parse.parse_qs(body.decode()).items()}


@contextmanager
def serving() -> Iterator[SlackApi]:
    """Run the fake Web API on a free loopback port."""
    api = SlackApi()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            params = _params(self.rfile.read(length), self.headers.get("Content-Type") or "")
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            status, body = api.answer(self.path.removeprefix("/api/"), params, token=token)
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            if status == 429:
                self.send_header("Retry-After", str(api.retry_after_s))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.url = f"http://127.0.0.1:{server.server_address[1]}/api/"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def sign(body: bytes, *, secret: str, timestamp: int) -> str:
    """Slack's ``X-Slack-Signature`` for this body at this time, written out from Slack's
    "Verifying requests from Slack" page (not with the SDK the service uses)."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def interact(
    url: str,
    payload: Mapping[str, Any],
    *,
    secret: str,
    timestamp: int | None = None,
    retry: int | None = None,
) -> httpx.Response:
    """Send one interaction payload to ``{url}/slack/interactions`` as Slack does: a form with
    a ``payload`` JSON field, signed with ``secret``."""
    body = parse.urlencode({"payload": json.dumps(payload)}).encode()
    at = int(time.time()) if timestamp is None else timestamp
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(at),
        "X-Slack-Signature": sign(body, secret=secret, timestamp=at),
    }
    if retry is not None:
        headers |= {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"}
    return httpx.post(f"{url}/slack/interactions", content=body, headers=headers, timeout=10)


def pressed(action: str, *, value: str, user: str, channel: str, message_ts: str) -> dict[str, Any]:
    """A ``block_actions`` payload: ``user`` pressed the button ``action`` on a message."""
    return {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower()},
        "trigger_id": f"trigger-{user}-{time.monotonic_ns()}",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
        "channel": {"id": channel},
        "message": {"ts": message_ts},
        "actions": [{"action_id": action, "value": value, "type": "button"}],
    }


def submitted(
    view: Mapping[str, Any], *, user: str, values: Mapping[str, Any], view_id: str = "V1"
) -> dict[str, Any]:
    """A ``view_submission`` payload: ``user`` submitted ``view`` (as opened) with ``values``
    (block id → the element's state, as Slack nests it under the element's action id)."""
    state = {block: {str(block): value} for block, value in values.items()}
    return {
        "type": "view_submission",
        "user": {"id": user},
        "view": {**view, "id": view_id, "hash": f"h-{view_id}", "state": {"values": state}},
    }


def checkboxes(*values: str) -> dict[str, Any]:
    return {"type": "checkboxes", "selected_options": [{"value": v} for v in values]}


def text(value: str) -> dict[str, Any]:
    return {"type": "plain_text_input", "value": value}
