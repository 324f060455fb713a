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
"""

from __future__ import annotations

import argparse
import base64
import json
import operator
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from diagnose.domain import errors
from diagnose.lab import processes

Scalar = str | int | float | bool
_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_STATUSES = ("unset", "ok", "error")


# --- the store ------------------------------------------------------------------------------


@dataclass
class _Span:
    trace_id: str  # 32 hex digits
    span_id: str  # 16 hex digits
    parent_id: str | None
    name: str
    kind: str
    start_ns: int
    end_ns: int
    status: str
    status_message: str
    resource: dict[str, Scalar]
    attrs: dict[str, Scalar]
    raw: dict[str, Any]  # the OTLP span as loaded
    raw_resource: dict[str, Any]
    raw_scope: dict[str, Any]

    @property
    def service(self) -> str:
        return str(self.resource.get("service.name", "unknown"))

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass
class _Trace:
    trace_id: str
    spans: list[_Span] = field(default_factory=list)

    @property
    def start_ns(self) -> int:
        return min(s.start_ns for s in self.spans)

    @property
    def end_ns(self) -> int:
        return max(s.end_ns for s in self.spans)

    @property
    def root(self) -> _Span | None:
        ids = {s.span_id for s in self.spans}
        roots = [s for s in self.spans if s.parent_id is None or s.parent_id not in ids]
        return min(roots, key=lambda s: s.start_ns) if roots else None


def _hex(value: object, width: int) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    if re.fullmatch(r"[0-9a-fA-F]+", value) and len(value) <= width:
        text = value.lower().zfill(width)
    else:
        text = base64.b64decode(value).hex()
    return None if set(text) == {"0"} else text


def _value(body: Mapping[str, Any]) -> Scalar:
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in body:
            return body[key]  # type: ignore[no-any-return]
    if "intValue" in body:
        return int(body["intValue"])
    return json.dumps(body, sort_keys=True)


def _attributes(items: Iterable[Mapping[str, Any]] | None) -> dict[str, Scalar]:
    return {item["key"]: _value(item.get("value") or {}) for item in items or ()}


def _enum(value: object, names: tuple[str, ...], prefix: str) -> str:
    if isinstance(value, int) and 0 <= value < len(names):
        return names[value]
    if isinstance(value, str) and value.lower().removeprefix(prefix) in names:
        return value.lower().removeprefix(prefix)
    return names[0]


def _load_span(raw: dict[str, Any], *, resource: dict[str, Any], scope: dict[str, Any]) -> _Span:
    status = raw.get("status") or {}
    start = int(raw.get("startTimeUnixNano", 0))
    return _Span(
        trace_id=_hex(raw["traceId"], 32) or "0" * 32,
        span_id=_hex(raw["spanId"], 16) or "0" * 16,
        parent_id=_hex(raw.get("parentSpanId"), 16),
        name=str(raw.get("name", "")),
        kind=_enum(raw.get("kind"), _KINDS, "span_kind_"),
        start_ns=start,
        end_ns=int(raw.get("endTimeUnixNano", start)),
        status=_enum(status.get("code"), _STATUSES, "status_code_"),
        status_message=str(status.get("message", "")),
        resource=_attributes(resource.get("attributes")),
        attrs=_attributes(raw.get("attributes")),
        raw=raw,
        raw_resource=resource,
        raw_scope=scope,
    )


def load_traces(paths: Iterable[Path]) -> dict[str, _Trace]:
    """Every trace in the OTLP/JSON files (``ExportTraceServiceRequest`` documents)."""
    traces: dict[str, _Trace] = {}
    for path in sorted(paths):
        document = json.loads(path.read_text())
        for batch in document.get("resourceSpans", []):
            resource = batch.get("resource") or {}
            for scope_spans in batch.get(
                "scopeSpans", batch.get("instrumentationLibrarySpans", [])
            ):
                scope = scope_spans.get("scope") or {}
                for raw in scope_spans.get("spans", []):
                    span = _load_span(raw, resource=resource, scope=scope)
                    traces.setdefault(span.trace_id, _Trace(span.trace_id)).spans.append(span)
    return traces


# --- TraceQL (the subset) -------------------------------------------------------------------

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<dur>\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h)\b)
      | (?P<num>-?\d+(?:\.\d+)?)
      | (?P<op>&&|\|\||=~|!~|!=|>=|<=|=|>|<|\{|\}|\(|\))
      | (?P<ident>[A-Za-z_.:][A-Za-z0-9_.:/-]*)
    )""",
    re.VERBOSE,
)
_DURATION_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 10**9, "m": 60 * 10**9}
_DURATION_NS["h"] = 3600 * 10**9

Predicate = Callable[[_Span], bool]


class TraceQLError(ValueError):
    """A query outside the supported subset, or malformed."""


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    text = text.strip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise TraceQLError(f"parse error at position {position}: {text[position:][:20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def parse_duration_ns(text: str) -> int:
    """``"1.5s"`` → 1_500_000_000 (Go duration units, as TraceQL and Jaeger use)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", text.strip())
    if not match:
        raise TraceQLError(f"not a duration: {text!r}")
    return int(float(match.group(1)) * _DURATION_NS[match.group(2)])


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> str:
        return self.tokens[self.index][1] if self.index < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.index >= len(self.tokens):
            raise TraceQLError("unexpected end of query")
        token = self.tokens[self.index]
        if expected is not None and token[1] != expected:
            raise TraceQLError(f"expected {expected!r}, found {token[1]!r}")
        self.index += 1
        return token

    def query(self) -> Predicate:
        self.take("{")
        predicate = (lambda span: True) if self.peek() == "}" else self.disjunction()
        self.take("}")
        if self.index != len(self.tokens):
            raise TraceQLError("only one spanset filter { … } is supported here")
        return predicate

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.peek() == "||":
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else lambda span: any(p(span) for p in parts)

    def conjunction(self) -> Predicate:
        parts = [self.comparison()]
        while self.peek() == "&&":
            self.take()
            parts.append(self.comparison())
        return parts[0] if len(parts) == 1 else lambda span: all(p(span) for p in parts)

    def comparison(self) -> Predicate:
        if self.peek() == "(":
            self.take()
            inner = self.disjunction()
            self.take(")")
            return inner
        kind, name = self.take()
        if kind != "ident":
            raise TraceQLError(f"expected an attribute, found {name!r}")
        if self.peek() in ("}", "&&", "||", ")") and name == "true":
            return lambda span: True
        _, op = self.take()
        if op not in ("=", "!=", ">", ">=", "<", "<=", "=~", "!~"):
            raise TraceQLError(f"expected a comparison after {name}, found {op!r}")
        value = self._literal(*self.take())
        return _comparison(name, op, value)

    @staticmethod
    def _literal(kind: str, text: str) -> Scalar:
        if kind == "str":
            return str(json.loads(text))
        if kind == "dur":
            return parse_duration_ns(text)
        if kind == "num":
            return float(text) if "." in text else int(text)
        if kind == "ident":
            return {"true": True, "false": False}.get(text, text)
        raise TraceQLError(f"expected a value, found {text!r}")


_INTRINSICS: dict[str, Callable[[_Span], Scalar]] = {
    "duration": lambda span: span.duration_ns,
    "name": lambda span: span.name,
    "status": lambda span: span.status,
    "kind": lambda span: span.kind,
    "statusMessage": lambda span: span.status_message,
}


def _field(span: _Span, name: str) -> Scalar | None:
    intrinsic = _INTRINSICS.get(name.removeprefix("span:"))
    if intrinsic is not None:
        return intrinsic(span)
    if name.startswith("resource."):
        return span.resource.get(name.removeprefix("resource."))
    if name.startswith("span."):
        return span.attrs.get(name.removeprefix("span."))
    if name.startswith("."):
        key = name[1:]
        return span.attrs.get(key, span.resource.get(key))
    raise TraceQLError(f"unknown attribute {name!r}: scope it as resource., span. or .")


def _numeric(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _comparison(name: str, op: str, value: Scalar) -> Predicate:
    _field(_Span("", "", None, "", "", 0, 0, "", "", {}, {}, {}, {}, {}), name)  # validate

    def matches(span: _Span) -> bool:
        found = _field(span, name)
        if found is None:
            return False
        if op in ("=~", "!~"):
            hit = re.fullmatch(str(value), str(found)) is not None
            return hit if op == "=~" else not hit
        if _numeric(value):
            return _numeric(found) and _compare(found, op, value)
        return _compare(str(found), op, str(value))

    return matches


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}


def _compare(left: Scalar, op: str, right: Scalar) -> bool:
    try:
        return _OPERATORS[op](left, right)
    except TypeError:
        return False


def parse_traceql(text: str) -> Predicate:
    """A span predicate from a one-spanset TraceQL query; raises :class:`TraceQLError`."""
    return _Parser(text).query()


# --- Tempo's answers --------------------------------------------------------------------------


def _b64(hex_id: str | None) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode() if hex_id else ""


def _tempo_span(span: _Span) -> dict[str, Any]:
    """The span as Tempo's protobuf JSON mapping writes it."""
    body = dict(span.raw)
    body["traceId"] = _b64(span.trace_id)
    body["spanId"] = _b64(span.span_id)
    if span.parent_id:
        body["parentSpanId"] = _b64(span.parent_id)
    else:
        body.pop("parentSpanId", None)
    body["kind"] = "SPAN_KIND_" + span.kind.upper()
    status = dict(body.get("status") or {})
    if span.status != "unset":
        status["code"] = "STATUS_CODE_" + span.status.upper()
    else:
        status.pop("code", None)
    body["status"] = status
    for key in ("startTimeUnixNano", "endTimeUnixNano"):
        if key in body:
            body[key] = str(body[key])
    return body


def tempo_batches(trace: _Trace) -> list[dict[str, Any]]:
    """The trace as OTLP ``ResourceSpans``, grouped by resource and scope as loaded."""
    groups: dict[tuple[int, int], dict[str, Any]] = {}
    order: list[tuple[int, int]] = []
    for span in sorted(trace.spans, key=lambda s: s.start_ns):
        key = (id(span.raw_resource), id(span.raw_scope))
        if key not in groups:
            groups[key] = {"resource": span.raw_resource, "scope": span.raw_scope, "spans": []}
            order.append(key)
        groups[key]["spans"].append(_tempo_span(span))
    return [
        {
            "resource": groups[key]["resource"],
            "scopeSpans": [{"scope": groups[key]["scope"], "spans": groups[key]["spans"]}],
        }
        for key in order
    ]


def _tempo_search_hit(trace: _Trace, matched: list[_Span], spss: int) -> dict[str, Any]:
    root = trace.root
    spans = [
        {
            "spanID": span.span_id,
            "name": span.name,
            "startTimeUnixNano": str(span.start_ns),
            "durationNanos": str(span.duration_ns),
            "attributes": [{"key": "service.name", "value": {"stringValue": span.service}}],
        }
        for span in matched[:spss]
    ]
    spanset = {"spans": spans, "matched": len(matched)}
    return {
        "traceID": trace.trace_id.lstrip("0") or "0",
        "rootServiceName": root.service if root else "<root span not yet received>",
        "rootTraceName": root.name if root else "",
        "startTimeUnixNano": str(trace.start_ns),
        "durationMs": (trace.end_ns - trace.start_ns) // 1_000_000,
        "spanSet": spanset,
        "spanSets": [spanset],
    }


def _logfmt(text: str) -> dict[str, str]:
    pairs = re.findall(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)', text)
    return {k: (json.loads(v) if v.startswith('"') else v) for k, v in pairs}


def _tags_predicate(tags: Mapping[str, str]) -> Callable[[_Span], bool]:
    """Tempo's tag search: a case-insensitive substring match on span or resource attributes."""

    def matches(span: _Span) -> bool:
        for key, wanted in tags.items():
            found = span.attrs.get(key, span.resource.get(key))
            if found is None or wanted.lower() not in str(found).lower():
                return False
        return True

    return matches


# --- Jaeger's answers ----------------------------------------------------------------------


def _jaeger_trace_id(hex_id: str) -> str:
    return hex_id[16:] if hex_id.startswith("0" * 16) else hex_id


def _jaeger_tag(key: str, value: Scalar) -> dict[str, Any]:
    if isinstance(value, bool):
        kind = "bool"
    elif isinstance(value, int):
        kind = "int64"
    elif isinstance(value, float):
        kind = "float64"
    else:
        kind = "string"
    return {"key": key, "type": kind, "value": value}


def _jaeger_span_tags(span: _Span) -> list[dict[str, Any]]:
    tags = [_jaeger_tag(k, v) for k, v in span.attrs.items()]
    if span.kind != "unspecified":
        tags.append(_jaeger_tag("span.kind", span.kind))
    if span.status != "unset":
        tags.append(_jaeger_tag("otel.status_code", span.status.upper()))
    if span.status == "error":
        tags.append(_jaeger_tag("error", True))
    if span.status_message:
        tags.append(_jaeger_tag("otel.status_description", span.status_message))
    if span.raw_scope.get("name"):
        tags.append(_jaeger_tag("otel.scope.name", str(span.raw_scope["name"])))
    return tags


def jaeger_trace(trace: _Trace) -> dict[str, Any]:
    """The trace in the Jaeger UI's JSON: ``spans`` with ``references`` and ``processes``."""
    processes: dict[str, dict[str, Any]] = {}
    keys: dict[tuple[tuple[str, Scalar], ...], str] = {}
    spans = []
    for span in sorted(trace.spans, key=lambda s: s.start_ns):
        key = tuple(sorted(span.resource.items()))
        if key not in keys:
            keys[key] = f"p{len(keys) + 1}"
            tags = [_jaeger_tag(k, v) for k, v in span.resource.items() if k != "service.name"]
            processes[keys[key]] = {"serviceName": span.service, "tags": tags}
        trace_id = _jaeger_trace_id(span.trace_id)
        refs = [{"refType": "CHILD_OF", "traceID": trace_id, "spanID": span.parent_id}]
        spans.append(
            {
                "traceID": trace_id,
                "spanID": span.span_id,
                "flags": 1,
                "operationName": span.name,
                "references": refs if span.parent_id else [],
                "startTime": span.start_ns // 1000,
                "duration": span.duration_ns // 1000,
                "tags": _jaeger_span_tags(span),
                "logs": [],
                "processID": keys[key],
                "warnings": None,
            }
        )
    return {
        "traceID": _jaeger_trace_id(trace.trace_id),
        "spans": spans,
        "processes": processes,
        "warnings": None,
    }


def _envelope(data: object, *, total: int = 0, errors: list[dict[str, Any]] | None = None) -> Any:
    return {"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors}


# --- the HTTP server ------------------------------------------------------------------------


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

    def __init__(self, traces: Mapping[str, _Trace], *, now_ns: Callable[[], int] = time.time_ns):
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

    def _in_range(self, trace: _Trace, params: Mapping[str, str]) -> bool:
        start = _int_param(params, "start", 0) * 10**9
        end = _int_param(params, "end", 0) * 10**9
        return not (start and end) or (trace.start_ns <= end and trace.end_ns >= start)

    def tempo_search(self, params: Mapping[str, str]) -> object:
        try:
            predicate = parse_traceql(params["q"]) if params.get("q") else None
        except TraceQLError as exc:
            raise _HttpError(400, f"invalid TraceQL query: {exc}") from exc
        if predicate is None:
            predicate = _tags_predicate(_logfmt(params.get("tags", "")))
        low = parse_duration_ns(params["minDuration"]) if params.get("minDuration") else 0
        high = parse_duration_ns(params["maxDuration"]) if params.get("maxDuration") else 0
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
                hits.append(_tempo_search_hit(trace, matched, spss))
            if len(hits) >= limit:
                break
        return {"traces": hits, "metrics": {"inspectedTraces": len(candidates), "totalBlocks": 1}}

    def _find(self, trace_id: str) -> _Trace:
        try:
            key = _hex(trace_id, 32)
        except ValueError as exc:
            raise _HttpError(400, f"invalid trace id {trace_id!r}") from exc
        trace = self.traces.get(key or "")
        if trace is None:
            raise _HttpError(404, f"trace not found: {trace_id}")
        return trace

    def tempo_trace(self, trace_id: str, *, v2: bool) -> object:
        batches = tempo_batches(self._find(trace_id))
        return {"trace": {"resourceSpans": batches}} if v2 else {"batches": batches}

    def tempo_tag_values(self, tag: str, params: Mapping[str, str], *, v2: bool) -> object:
        try:
            predicate = parse_traceql(params["q"]) if params.get("q") else (lambda s: True)
        except TraceQLError:
            predicate = lambda s: True  # noqa: E731  Tempo ignores a bad filter here
        values: set[Scalar] = set()
        for trace in self.traces.values():
            if not self._in_range(trace, params):
                continue
            for span in trace.spans:
                value = _field(span, tag if v2 or tag in ("name",) else "." + tag)
                if value is not None and predicate(span):
                    values.add(value)
        ordered = sorted(values, key=str)
        if v2:
            typed = [{"type": _tempo_type(v), "value": str(v)} for v in ordered]
            return {"tagValues": typed, "metrics": {}}
        return {"tagValues": [str(v) for v in ordered], "metrics": {}}

    # Jaeger

    def jaeger(self, path: str, params: Mapping[str, str]) -> object:
        if path == "/api/services":
            services = sorted({s.service for t in self.traces.values() for s in t.spans})
            return _envelope(services, total=len(services))
        match = re.fullmatch(r"/api/services/([^/]+)/operations", path)
        if match:
            names = sorted(self._operations(unquote(match.group(1))))
            return _envelope(names, total=len(names))
        if path == "/api/operations":
            if not params.get("service"):
                raise _HttpError(
                    400, _envelope(None, errors=[_jerr(400, "parameter 'service' is required")])
                )
            ops = sorted(self._operations(params["service"], with_kind=True))
            data = [{"name": name, "spanKind": kind} for name, kind in ops]
            return _envelope(data, total=len(data))
        if path == "/api/traces":
            return self.jaeger_search(params)
        match = re.fullmatch(r"/api/traces/([^/]+)", path)
        if match:
            try:
                trace = self._find(match.group(1))
            except _HttpError as exc:
                raise _HttpError(
                    exc.status, _envelope(None, errors=[_jerr(exc.status, "trace not found")])
                ) from exc
            return _envelope([jaeger_trace(trace)])
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
        return _envelope([jaeger_trace(t) for t in found[: query.limit]])


def _jerr(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "msg": message}


def _tempo_type(value: Scalar) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "keyword" if len(str(value)) < 16 else "string"


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
            return _HttpError(400, _envelope(None, errors=[_jerr(400, message)]))

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
                min_ns=parse_duration_ns(params["minDuration"]) if params.get("minDuration") else 0,
                max_ns=parse_duration_ns(params["maxDuration"]) if params.get("maxDuration") else 0,
                tags={str(k): str(v) for k, v in tags.items()},
            )
        except (ValueError, TypeError, _HttpError) as exc:
            raise fail(f"unable to parse query parameters: {exc}") from exc

    def matches(self, span: _Span) -> bool:
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
    traces: Mapping[str, _Trace],
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
    traces = load_traces(args.dir.glob("*.json"))
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
