"""The lab's Loki: a scenario's ``logs/<pod>.log`` behind Loki's HTTP query API.

One child process (``python -m diagnose.lab.logapi DIR --namespace NS``) answers what the
agent's Loki connector asks, as Loki does:

``GET /loki/api/v1/query_range?query=<LogQL>&start=&end=&limit=&direction=`` (times in
nanoseconds since the epoch, or RFC 3339), ``GET /loki/api/v1/labels``, ``GET
/loki/api/v1/label/<name>/values``, ``GET /ready``. Each pod is one stream labelled
``namespace``, ``pod``, ``app`` and ``container`` (``diagnose.lab.podlogs.streams``). LogQL is
the subset the agent needs: a stream selector of ``=``, ``!=``, ``=~`` and ``!~`` matchers, then
any line filters ``|=``, ``!=``, ``|~``, ``!~``; anything else is a 400, as Loki answers a bad
query. ``limit`` counts lines across all streams, the newest first (``backward``, the default)
or the oldest (``forward``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import parse_qs, urlsplit

from diagnose.domain import errors, models
from diagnose.lab import podlogs, processes

READY_TIMEOUT_S = 20.0
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')
_FILTER = re.compile(r'\s*(\|=|!=|\|~|!~)\s*"((?:[^"\\]|\\.)*)"')


class BadQuery(ValueError):
    """A LogQL query outside the subset served."""


Stream = tuple[dict[str, str], list[tuple[float, str]]]


def parse_logql(query: str) -> tuple[list[Callable[[Mapping[str, str]], bool]], list[Any]]:
    """The label matchers and line filters of a LogQL log query."""
    text = query.strip()
    if not text.startswith("{") or "}" not in text:
        raise BadQuery(f"parse error: a log query starts with a stream selector: {query!r}")
    selector, _, rest = text[1:].partition("}")
    matchers: list[Callable[[Mapping[str, str]], bool]] = []
    position = 0
    while position < len(selector.strip()):
        match = _MATCHER.match(selector, position)
        if match is None:
            raise BadQuery(f"parse error: bad matcher in {{{selector}}}")
        matchers.append(_matcher(match.group(1), match.group(2), _unquote(match.group(3))))
        position = match.end()
    if not matchers:
        raise BadQuery("parse error: queries require at least one matcher")
    filters: list[Any] = []
    position = 0
    while rest[position:].strip():
        match = _FILTER.match(rest, position)
        if match is None:
            raise BadQuery(f"parse error: unsupported pipeline stage in {rest.strip()!r}")
        filters.append((match.group(1), _unquote(match.group(2))))
        position = match.end()
    return matchers, filters


def _unquote(text: str) -> str:
    return str(json.loads(f'"{text}"'))


def _matcher(name: str, op: str, value: str) -> Callable[[Mapping[str, str]], bool]:
    if op == "=":
        return lambda labels: labels.get(name, "") == value
    if op == "!=":
        return lambda labels: labels.get(name, "") != value
    pattern = re.compile(value)
    if op == "=~":
        return lambda labels: pattern.fullmatch(labels.get(name, "")) is not None
    return lambda labels: pattern.fullmatch(labels.get(name, "")) is None


def _keeps(line: str, filters: Sequence[Any]) -> bool:
    for op, value in filters:
        if op == "|=" and value not in line:
            return False
        if op == "!=" and value in line:
            return False
        if op == "|~" and re.search(value, line) is None:
            return False
        if op == "!~" and re.search(value, line) is not None:
            return False
    return True


def _time(value: str | None, *, default: float) -> float:
    """Loki's time parameters: nanoseconds (or seconds) since the epoch, or RFC 3339."""
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        return models.parse_time(value).timestamp()
    return number / 1e9 if number > 1e12 else number


class LokiStream(TypedDict):
    """One stream of a Loki ``query_range`` answer: its labels and its lines."""

    stream: dict[str, str]
    values: list[list[str]]  # [nanoseconds since the epoch as text, line]


class LokiData(TypedDict):
    resultType: str  # "streams"
    result: list[LokiStream]
    stats: dict[str, object]  # Loki's statistics; none here


class LokiAnswer(TypedDict):
    """Loki's answer to ``query_range`` (its field names)."""

    status: str
    data: LokiData


def query_range(
    folder: Path, *, namespace: str, params: Mapping[str, str], now: float
) -> LokiAnswer:
    """Loki's answer to ``query_range`` over the folder's streams."""
    matchers, filters = parse_logql(params.get("query", ""))
    end = _time(params.get("end"), default=now)
    start = _time(params.get("start"), default=end - 3600)
    limit = int(params.get("limit") or 100)
    forward = params.get("direction", "backward") == "forward"
    chosen: list[tuple[float, int, str]] = []
    streams = podlogs.streams(
        folder,
        namespace=namespace,
        start=datetime.fromtimestamp(start, UTC),
        end=datetime.fromtimestamp(end, UTC),
    )
    kept: list[Stream] = [s for s in streams if all(m(s[0]) for m in matchers)]
    for index, (_, lines) in enumerate(kept):
        chosen += [(at, index, line) for at, line in lines if at < end and _keeps(line, filters)]
    chosen.sort(key=lambda entry: entry[0], reverse=not forward)
    chosen = chosen[:limit]
    result: list[LokiStream] = []
    for index, (labels, _) in enumerate(kept):
        values = [[str(int(at * 1e9)), line] for at, i, line in chosen if i == index]
        if values:
            result.append({"stream": labels, "values": values})
    return {
        "status": "success",
        "data": {"resultType": "streams", "result": result, "stats": {}},
    }


def _handler(folder: Path, namespace: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(url.query).items()}
            path = url.path.rstrip("/")
            try:
                if path == "/ready":
                    self._send(HTTPStatus.OK, "ready")
                elif path == "/loki/api/v1/query_range":
                    now = datetime.now(UTC).timestamp()
                    answer = query_range(folder, namespace=namespace, params=params, now=now)
                    self._send(HTTPStatus.OK, answer)
                elif path == "/loki/api/v1/labels":
                    names = ["app", "container", "namespace", "pod"]
                    self._send(HTTPStatus.OK, {"status": "success", "data": names})
                elif path.startswith("/loki/api/v1/label/") and path.endswith("/values"):
                    name = path.split("/")[-2]
                    self._send(HTTPStatus.OK, {"status": "success", "data": _values(name)})
                else:
                    self._send(HTTPStatus.NOT_FOUND, "404 page not found")
            except (BadQuery, re.error, ValueError) as exc:
                self._send(HTTPStatus.BAD_REQUEST, str(exc))

        def _send(self, status: HTTPStatus, body: Any) -> None:
            text = body if isinstance(body, str) else json.dumps(body)
            payload = text.encode("utf-8")
            self.send_response(status)
            kind = "text/plain" if isinstance(body, str) else "application/json"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the lab's log is for failures."""

    def _values(name: str) -> list[str]:
        pods = podlogs.pods(folder)
        if name == "namespace":
            return [namespace]
        if name == "pod":
            return pods
        if name in ("app", "container"):
            return sorted({podlogs.workload(p) for p in pods})
        return []

    return Handler


class LokiServer(processes.Server):
    """The Loki-compatible child process. Use as a context manager, or call ``stop``."""

    def __init__(self, child: processes.Child, *, url: str) -> None:
        self.child = child
        self.url = url

    @classmethod
    def serve(cls, folder: Path, *, namespace: str, workdir: Path) -> LokiServer:
        """Serve the logs in ``folder`` as namespace ``namespace`` on a free port of
        127.0.0.1; returns once it answers."""
        workdir.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "diagnose.lab.logapi", str(folder), "--namespace", namespace]
        log = workdir / "logapi.log"
        child, process = processes.spawn(argv, log=log, stdout_pipe=True)
        assert process.stdout is not None
        line = processes.read_line(process.stdout, timeout=READY_TIMEOUT_S)
        process.stdout.close()
        if not line.startswith("listening "):
            child.stop()
            raise errors.LabError("the lab's Loki did not start:\n" + processes.tail(log))
        return cls(child, url=f"http://127.0.0.1:{int(line.split()[1])}")

    def stop(self) -> None:
        self.child.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diagnose.lab.logapi")
    parser.add_argument("folder", type=Path, help="a folder of <pod>.log files")
    parser.add_argument("--namespace", required=True, help="the namespace label of every stream")
    args = parser.parse_args(argv)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(args.folder, args.namespace))
    print(f"listening {server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
