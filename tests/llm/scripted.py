"""A scripted OpenAI-compatible server: answers ``/v1/chat/completions`` from a script, in the
exact response shape of OpenAI and vLLM, and records every request it was sent.

It runs on ``127.0.0.1`` in a thread. Each test queues :class:`Answer` records; a chat request
takes the next one (a status, a body, an optional delay). When the queue is empty and a
:attr:`ScriptedServer.responder` is set, it answers from the request's body instead (a model
that adapts to what it is shown). ``GET /v1/models`` always lists :data:`MODEL`, as vLLM does.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL = "MiniMaxAI/MiniMax-M2.7"
_ids = itertools.count(1)


@dataclass(frozen=True)
class Answer:
    """One scripted response: ``body`` is JSON unless it is ``str`` or ``bytes`` (sent as is)."""

    body: Any
    status: int = 200
    delay_s: float = 0.0


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: Mapping[str, str]
    body: Any


@dataclass
class ScriptedServer:
    """The server and its script; :attr:`requests` holds what the client sent, in order."""

    answers: deque[Answer] = field(default_factory=deque)
    requests: list[Recorded] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)
    port: int = 0
    responder: Callable[[Any], Answer | Mapping[str, Any]] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *answers: Answer | Mapping[str, Any]) -> None:
        """Queue answers; a mapping is shorthand for ``Answer(body=mapping)``."""
        self.answers.extend(a if isinstance(a, Answer) else Answer(a) for a in answers)

    @property
    def chats(self) -> list[Any]:
        """The JSON bodies of the chat requests received."""
        return [r.body for r in self.requests if r.path.endswith("/chat/completions")]


def completion(
    *,
    content: str | None = None,
    reasoning: str | None = None,
    reasoning_key: str = "reasoning",
    tool_calls: Sequence[Mapping[str, Any]] = (),
    prompt_tokens: int = 100,
    completion_tokens: int = 20,
) -> dict[str, Any]:
    """A non-streamed chat completion as vLLM returns it."""
    message: dict[str, Any] = {"role": "assistant", "content": content}
    message["tool_calls"] = list(tool_calls)
    if reasoning is not None:
        message[reasoning_key] = reasoning
    return {
        "id": f"chatcmpl-{next(_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if tool_calls else "stop",
                "stop_reason": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "prompt_tokens_details": None,
        },
        "prompt_logprobs": None,
    }


def call(name: str, arguments: Mapping[str, Any] | str) -> dict[str, Any]:
    """A ``tool_calls[]`` entry: arguments travel as a JSON string, as in OpenAI's API."""
    text = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {
        "id": f"chatcmpl-tool-{next(_ids)}",
        "type": "function",
        "function": {"name": name, "arguments": text},
    }


def models() -> dict[str, Any]:
    """``GET /v1/models`` as vLLM answers it."""
    entry = {
        "id": MODEL,
        "object": "model",
        "created": int(time.time()),
        "owned_by": "vllm",
        "root": MODEL,
        "parent": None,
        "max_model_len": 196608,
        "permission": [],
    }
    return {"object": "list", "data": [entry]}


def serve() -> Iterator[ScriptedServer]:
    """Run a scripted server until the generator is closed."""
    state = ScriptedServer()
    handler = type("Handler", (_Handler,), {"state": state})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.released.set()
        httpd.shutdown()
        httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    state: ScriptedServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests read :attr:`ScriptedServer.requests` instead."""

    def do_GET(self) -> None:
        self._record(None)
        if self.path.rstrip("/") == "/v1/models":
            self._send(Answer(models()))
        else:
            self._send(Answer({"object": "error", "message": "not found"}, status=404))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        self._record(json.loads(raw) if raw else None)
        if self.path != "/v1/chat/completions":
            self._send(Answer({"object": "error", "message": "not found"}, status=404))
        elif not self.state.answers and self.state.responder is not None:
            made = self.state.responder(self.state.requests[-1].body)
            self._send(made if isinstance(made, Answer) else Answer(made))
        elif not self.state.answers:
            self._send(Answer({"object": "error", "message": "the script ran out"}, status=599))
        else:
            self._send(self.state.answers.popleft())

    def _record(self, body: Any) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.state.requests.append(Recorded(self.command, self.path, headers, body))

    def _send(self, answer: Answer) -> None:
        if answer.delay_s and self.state.released.wait(answer.delay_s):
            return
        if isinstance(answer.body, bytes | str):
            payload = answer.body.encode() if isinstance(answer.body, str) else answer.body
        else:
            payload = json.dumps(answer.body).encode()
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting: that is what a timeout test wants
