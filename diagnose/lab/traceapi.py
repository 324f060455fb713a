"""The lab's trace server: a scenario's ``traces/*.json`` behind Tempo's and Jaeger's HTTP APIs.

One process, one port, two path prefixes: ``/tempo`` answers like Grafana Tempo's query frontend
and ``/jaeger`` like Jaeger's query service, so the agent's trace connectors run their production
code path against it::

    python -m diagnose.lab.traceapi --dir DIR --port 0 --port-file PORT_FILE

Tempo (``/tempo``):
    ``GET /api/search?q=<TraceQL>&start=&end=&limit=&spss=`` (also ``tags=`` logfmt,
    ``minDuration``/``maxDuration``), ``GET /api/traces/<id>`` (``{"batches": [...]}``),
    ``GET /api/v2/traces/<id>`` (``{"trace": {"resourceSpans": [...]}}``), ``GET
    /api/search/tags``, ``GET /api/search/tag/<tag>/values``, ``GET
    /api/v2/search/tag/<tag>/values?q=``, ``GET /api/echo``, ``GET /ready``. Trace JSON is
    OTLP as Tempo's protobuf JSON mapping writes it: ids in base64, enums by name, and search
    results carry hex trace ids without leading zeros, as Tempo's do.
Jaeger (``/jaeger``):
    ``GET /api/services``, ``GET /api/services/<svc>/operations``, ``GET
    /api/operations?service=``, ``GET /api/traces?service=&operation=&start=&end=`` (µs)
    ``&limit=&minDuration=&maxDuration=&tags=<json>&tag=k:v``, ``GET /api/traces/<id>``, in the
    Jaeger UI's JSON envelope ``{"data", "total", "limit", "offset", "errors"}``.

TraceQL is the subset the agent needs: one spanset ``{ … }`` of comparisons (``=``, ``!=``,
``>``, ``>=``, ``<``, ``<=``, ``=~``, ``!~``) on ``resource.*``, ``span.*``, unscoped ``.*``
attributes and the intrinsics ``duration``, ``name``, ``status``, ``kind``, joined by ``&&``
and ``||`` with parentheses; anything else is a 400, as Tempo answers a bad query.

``--tenant T`` makes ``/tempo`` require ``X-Scope-OrgID: T`` and ``--token X`` makes everything
require ``Authorization: Bearer X`` (401 otherwise), to exercise multi-tenant and
authenticated set-ups.

This module routes requests and runs the process; the traces are read by
:mod:`diagnose.lab.tracestore`, searched by :mod:`diagnose.lab.traceql` and written out in each
back end's JSON by :mod:`diagnose.lab.tracejson`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from diagnose.domain import errors
from diagnose.lab import processes, tracejson, traceql, tracestore
from diagnose.lab.tracejson import jaeger_trace, tempo_batches
from diagnose.lab.traceql import Predicate, TraceQLError, parse_duration_ns, parse_traceql
from diagnose.lab.tracestore import Scalar, load_traces

__all__ = [
    "Predicate",
    "Scalar",
    "TraceApi",
    "TraceApiServer",
    "TraceQLError",
    "jaeger_trace",
    "load_traces",
    "main",
    "make_server",
    "parse_duration_ns",
    "parse_traceql",
    "tempo_batches",
]


# --- the routes ------------------------------------------------------------------------------


class _HttpError(Exception):
    def __init__(self, status: int, body: object) -> None:
        super().__init__(str(body))
        self.status = status
        self.body = body


def _int_param(params: Mapping[str, str], name: str, default: int) -> int:
    text = params.get(name, "")
    if text == "":
        return default
    try:
        return int(text)
    except ValueError as exc:
        raise _HttpError(400, f"invalid {name}: {text!r}") from exc


class TraceApi:
    """Answers Tempo and Jaeger requests from the loaded traces (no I/O of its own)."""

    def __init__(
        self, traces: Mapping[str, tracestore.Trace], *, now_ns: Callable[[], int] = time.time_ns
    ):
        self.traces = dict(traces)
        self.now_ns = now_ns

    # Tempo

    def tempo(self, path: str, params: Mapping[str, str]) -> object:
        if path in ("/ready", "/api/echo"):
            return "echo" if path == "/api/echo" else "ready"
        if path == "/api/search":
            return self.tempo_search(params)
        if path == "/api/search/tags":
            names = sorted({k for t in self.traces.values() for s in t.spans for k in s.attrs})
            return {"tagNames": names, "metrics": {}}
        match = re.fullmatch(r"/api/(v2/)?traces/([^/]+)", path)
        if match:
            return self.tempo_trace(match.group(2), v2=bool(match.group(1)))
        match = re.fullmatch(r"/api/(v2/)?search/tag/([^/]+)/values", path)
        if match:
            return self.tempo_tag_values(unquote(match.group(2)), params, v2=bool(match.group(1)))
        raise _HttpError(404, "404 page not found")

    def _in_range(self, trace: tracestore.Trace, params: Mapping[str, str]) -> bool:
        start = _int_param(params, "start", 0) * 10**9
        end = _int_param(params, "end", 0) * 10**9
        return not (start and end) or (trace.start_ns <= end and trace.end_ns >= start)

    def tempo_search(self, params: Mapping[str, str]) -> object:
        try:
            predicate = traceql.parse_traceql(params["q"]) if params.get("q") else None
        except traceql.TraceQLError as exc:
            raise _HttpError(400, f"invalid TraceQL query: {exc}") from exc
        if predicate is None:
            predicate = traceql.tags_predicate(traceql.logfmt(params.get("tags", "")))
        low = traceql.parse_duration_ns(params["minDuration"]) if params.get("minDuration") else 0
        high = traceql.parse_duration_ns(params["maxDuration"]) if params.get("maxDuration") else 0
        limit = _int_param(params, "limit", 20)
        spss = _int_param(params, "spss", 3)
        hits = []
        candidates = sorted(self.traces.values(), key=lambda t: t.start_ns, reverse=True)
        for trace in candidates:
            duration = trace.end_ns - trace.start_ns
            if not self._in_range(trace, params) or duration < low or (high and duration > high):
                continue
            matched = [s for s in trace.spans if predicate(s)]
            if matched:
                hits.append(tracejson.tempo_search_hit(trace, matched, spss))
            if len(hits) >= limit:
                break
        return {"traces": hits, "metrics": {"inspectedTraces": len(candidates), "totalBlocks": 1}}

    def _find(self, trace_id: str) -> tracestore.Trace:
        try:
            key = tracestore.parse_id(trace_id, 32)
        except ValueError as exc:
            raise _HttpError(400, f"invalid trace id {trace_id!r}") from exc
        trace = self.traces.get(key or "")
        if trace is None:
            raise _HttpError(404, f"trace not found: {trace_id}")
        return trace

    def tempo_trace(self, trace_id: str, *, v2: bool) -> object:
        batches = tracejson.tempo_batches(self._find(trace_id))
        return {"trace": {"resourceSpans": batches}} if v2 else {"batches": batches}

    def tempo_tag_values(self, tag: str, params: Mapping[str, str], *, v2: bool) -> object:
        try:
            predicate = traceql.parse_traceql(params["q"]) if params.get("q") else (lambda s: True)
        except traceql.TraceQLError:
            predicate = lambda s: True  # noqa: E731  Tempo ignores a bad filter here
        values: set[tracestore.Scalar] = set()
        for trace in self.traces.values():
            if not self._in_range(trace, params):
                continue
            for span in trace.spans:
                value = traceql.field_value(span, tag if v2 or tag in ("name",) else "." + tag)
                if value is not None and predicate(span):
                    values.add(value)
        ordered = sorted(values, key=str)
        if v2:
            typed = [{"type": tracejson.tempo_type(v), "value": str(v)} for v in ordered]
            return {"tagValues": typed, "metrics": {}}
        return {"tagValues": [str(v) for v in ordered], "metrics": {}}

    # Jaeger

    def jaeger(self, path: str, params: Mapping[str, str]) -> object:
        if path == "/api/services":
            services = sorted({s.service for t in self.traces.values() for s in t.spans})
            return tracejson.envelope(services, total=len(services))
        match = re.fullmatch(r"/api/services/([^/]+)/operations", path)
        if match:
            names = sorted(self._operations(unquote(match.group(1))))
            return tracejson.envelope(names, total=len(names))
        if path == "/api/operations":
            if not params.get("service"):
                raise _HttpError(
                    400,
                    tracejson.envelope(
                        None,
                        errors=[tracejson.jaeger_error(400, "parameter 'service' is required")],
                    ),
                )
            ops = sorted(self._operations(params["service"], with_kind=True))
            data = [{"name": name, "spanKind": kind} for name, kind in ops]
            return tracejson.envelope(data, total=len(data))
        if path == "/api/traces":
            return self.jaeger_search(params)
        match = re.fullmatch(r"/api/traces/([^/]+)", path)
        if match:
            try:
                trace = self._find(match.group(1))
            except _HttpError as exc:
                raise _HttpError(
                    exc.status,
                    tracejson.envelope(
                        None, errors=[tracejson.jaeger_error(exc.status, "trace not found")]
                    ),
                ) from exc
            return tracejson.envelope([tracejson.jaeger_trace(trace)])
        raise _HttpError(404, "404 page not found\n")

    def _operations(self, service: str, *, with_kind: bool = False) -> set[Any]:
        return {
            (s.name, s.kind if s.kind != "unspecified" else "") if with_kind else s.name
            for t in self.traces.values()
            for s in t.spans
            if s.service == service
        }

    def jaeger_search(self, params: Mapping[str, str]) -> object:
        query = _JaegerQuery.parse(params, now_ns=self.now_ns())
        found = [t for t in self.traces.values() if any(query.matches(s) for s in t.spans)]
        found.sort(key=lambda t: t.start_ns, reverse=True)
        return tracejson.envelope([tracejson.jaeger_trace(t) for t in found[: query.limit]])


@dataclass(frozen=True)
class _JaegerQuery:
    """``/api/traces`` parameters, as Jaeger's query parser reads them."""

    service: str
    operation: str
    start_ns: int
    end_ns: int
    limit: int
    min_ns: int
    max_ns: int
    tags: Mapping[str, str]

    @classmethod
    def parse(cls, params: Mapping[str, str], *, now_ns: int) -> _JaegerQuery:
        def fail(message: str) -> _HttpError:
            return _HttpError(
                400, tracejson.envelope(None, errors=[tracejson.jaeger_error(400, message)])
            )

        if not params.get("service"):
            raise fail("parameter 'service' is required")
        try:
            tags = dict(json.loads(params["tags"])) if params.get("tags") else {}
            for pair in [params["tag"]] if params.get("tag") else []:
                key, _, value = pair.partition(":")
                tags[key] = value
            return cls(
                service=params["service"],
                operation=params.get("operation", ""),
                start_ns=_int_param(params, "start", (now_ns - 2 * 86400 * 10**9) // 1000) * 1000,
                end_ns=_int_param(params, "end", now_ns // 1000) * 1000,
                limit=_int_param(params, "limit", 100),
                min_ns=traceql.parse_duration_ns(params["minDuration"])
                if params.get("minDuration")
                else 0,
                max_ns=traceql.parse_duration_ns(params["maxDuration"])
                if params.get("maxDuration")
                else 0,
                tags={str(k): str(v) for k, v in tags.items()},
            )
        except (ValueError, TypeError, _HttpError) as exc:
            raise fail(f"unable to parse query parameters: {exc}") from exc

    def matches(self, span: tracestore.Span) -> bool:
        if span.service != self.service or (self.operation and span.name != self.operation):
            return False
        if not self.start_ns <= span.start_ns <= self.end_ns:
            return False
        if span.duration_ns < self.min_ns or (self.max_ns and span.duration_ns > self.max_ns):
            return False
        return all(
            str(span.attrs.get(k, span.resource.get(k, "\0"))).lower() == v.lower()
            for k, v in self.tags.items()
        )


# --- the HTTP server ------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    api: TraceApi
    tenant: str | None = None
    token: str | None = None
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write("traceapi: " + (format % args) + "\n")

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle's algorithm and delayed
        # ACKs add 40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            status, body = 200, self._route(parts.path, params)
        except _HttpError as exc:
            status, body = exc.status, exc.body
        self._send(status, body)

    def _route(self, path: str, params: Mapping[str, str]) -> object:
        if self.token and self.headers.get("Authorization") != f"Bearer {self.token}":
            raise _HttpError(401, "Unauthorized")
        if path.startswith("/tempo/") or path == "/tempo":
            if self.tenant and self.headers.get("X-Scope-OrgID") != self.tenant:
                raise _HttpError(401, "no org id")
            return self.api.tempo(path.removeprefix("/tempo") or "/", params)
        if path.startswith("/jaeger/"):
            return self.api.jaeger(path.removeprefix("/jaeger"), params)
        raise _HttpError(404, "404 page not found")

    def _send(self, status: int, body: object) -> None:
        if isinstance(body, str):
            data, kind = body.encode(), "text/plain; charset=utf-8"
        else:
            data, kind = json.dumps(body).encode(), "application/json"
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def make_server(
    traces: Mapping[str, tracestore.Trace],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    tenant: str | None = None,
    token: str | None = None,
) -> ThreadingHTTPServer:
    """An HTTP server answering for the traces (call ``serve_forever`` on it)."""
    handler = type(
        "TraceApiHandler", (_Handler,), {"api": TraceApi(traces), "tenant": tenant, "token": token}
    )
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    return server


# --- the child process and its handle -------------------------------------------------------


class TraceApiServer:
    """A running trace server (a child process); stop it, or use it as a context manager."""

    def __init__(self, process: subprocess.Popen[bytes], *, port: int, log: Path) -> None:
        self.process = process
        self.port = port
        self.log = log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def tempo_url(self) -> str:
        """Base URL for :class:`connectors.traces.TempoConnector`."""
        return self.url + "/tempo"

    @property
    def jaeger_url(self) -> str:
        """Base URL for :class:`connectors.traces.JaegerConnector`."""
        return self.url + "/jaeger"

    @classmethod
    def serve(
        cls,
        files: list[Path],
        *,
        workdir: Path,
        tenant: str | None = None,
        token: str | None = None,
        start_timeout_s: float = 20.0,
    ) -> TraceApiServer:
        """Copy the OTLP/JSON files into ``workdir`` and serve them on a free port."""
        data = workdir / "traceapi-data"
        shutil.rmtree(data, ignore_errors=True)
        data.mkdir(parents=True)
        for index, path in enumerate(files):
            shutil.copyfile(path, data / f"{index:04d}-{path.name}")
        port_file = workdir / "traceapi.port"
        port_file.unlink(missing_ok=True)
        log = workdir / "traceapi.log"
        command = [sys.executable, "-m", "diagnose.lab.traceapi", "--dir", str(data), "--port", "0"]
        command += ["--port-file", str(port_file)]
        command += ["--tenant", tenant] if tenant else []
        command += ["--token", token] if token else []
        log.unlink(missing_ok=True)
        _, process = processes.spawn(command, log=log)  # dies with this process
        port = _wait_for_port(process, port_file=port_file, log=log, timeout_s=start_timeout_s)
        return cls(process, port=port, log=log)

    def stop(self) -> None:
        """Terminate the child and wait for it."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> TraceApiServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _wait_for_port(
    process: subprocess.Popen[bytes], *, port_file: Path, log: Path, timeout_s: float
) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if port_file.exists():
            return int(port_file.read_text())
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            raise errors.LabError(f"the trace server exited with {process.returncode}: {tail}")
        time.sleep(0.02)
    process.kill()
    process.wait()
    raise errors.LabError(f"the trace server did not start within {timeout_s:g} s; see {log}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m diagnose.lab.traceapi", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--dir", type=Path, required=True, help="folder of OTLP/JSON files")
    parser.add_argument("--port", type=int, default=3200, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port-file", type=Path, help="write the bound port here once serving")
    parser.add_argument("--tenant", help="require X-Scope-OrgID with this value on /tempo")
    parser.add_argument("--token", help="require Authorization: Bearer TOKEN")
    args = parser.parse_args(argv)
    traces = tracestore.load_traces(args.dir.glob("*.json"))
    server = make_server(
        traces, host=args.host, port=args.port, tenant=args.tenant, token=args.token
    )
    port = server.server_address[1]
    sys.stderr.write(f"traceapi: {len(traces)} traces on http://{args.host}:{port}\n")
    if args.port_file:
        partial = args.port_file.with_suffix(".tmp")
        partial.write_text(str(port))
        os.replace(partial, args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
