"""The lab trace server's answers: traces as Tempo (OTLP protobuf JSON) and Jaeger UI JSON."""

from __future__ import annotations

import base64
from typing import TypedDict

from diagnose.lab import tracestore


class TempoSearchSpan(TypedDict):
    spanID: str
    name: str
    startTimeUnixNano: str
    durationNanos: str
    attributes: list[tracestore.OtlpKeyValue]


class TempoSpanSet(TypedDict):
    spans: list[TempoSearchSpan]
    matched: int


class TempoSearchHit(TypedDict):
    """One trace in the answer of Tempo's ``/api/search``."""

    traceID: str
    rootServiceName: str
    rootTraceName: str
    startTimeUnixNano: str
    durationMs: int
    spanSet: TempoSpanSet
    spanSets: list[TempoSpanSet]


class JaegerTag(TypedDict):
    key: str
    type: str
    value: tracestore.Scalar


class JaegerReference(TypedDict):
    refType: str
    traceID: str
    spanID: str | None


class JaegerSpan(TypedDict):
    traceID: str
    spanID: str
    flags: int
    operationName: str
    references: list[JaegerReference]
    startTime: int
    duration: int
    tags: list[JaegerTag]
    logs: list[object]
    processID: str
    warnings: None


class JaegerProcess(TypedDict):
    serviceName: str
    tags: list[JaegerTag]


class JaegerTrace(TypedDict):
    """One trace in the Jaeger UI's JSON."""

    traceID: str
    spans: list[JaegerSpan]
    processes: dict[str, JaegerProcess]
    warnings: None


class JaegerError(TypedDict):
    code: int
    msg: str


class JaegerEnvelope(TypedDict):
    """What every Jaeger query API answer is wrapped in."""

    data: object
    total: int
    limit: int
    offset: int
    errors: list[JaegerError] | None


# --- Tempo's answers ------------------------------------------------------------------------------


def _b64(hex_id: str | None) -> str:
    return base64.b64encode(bytes.fromhex(hex_id)).decode() if hex_id else ""


def _tempo_span(span: tracestore.Span) -> tracestore.OtlpSpan:
    """The span as Tempo's protobuf JSON mapping writes it."""
    body = span.raw.copy()
    body["traceId"] = _b64(span.trace_id)
    body["spanId"] = _b64(span.span_id)
    if span.parent_id:
        body["parentSpanId"] = _b64(span.parent_id)
    else:
        body.pop("parentSpanId", None)
    body["kind"] = "SPAN_KIND_" + span.kind.upper()
    status = (body.get("status") or tracestore.OtlpStatus()).copy()
    if span.status != "unset":
        status["code"] = "STATUS_CODE_" + span.status.upper()
    else:
        status.pop("code", None)
    body["status"] = status
    if "startTimeUnixNano" in body:
        body["startTimeUnixNano"] = str(body["startTimeUnixNano"])
    if "endTimeUnixNano" in body:
        body["endTimeUnixNano"] = str(body["endTimeUnixNano"])
    return body


def tempo_batches(trace: tracestore.Trace) -> list[tracestore.OtlpResourceSpans]:
    """The trace as OTLP ``ResourceSpans``, grouped by resource and scope as loaded."""
    batches: dict[tuple[int, int], tracestore.OtlpResourceSpans] = {}
    spans: dict[tuple[int, int], list[tracestore.OtlpSpan]] = {}
    for span in sorted(trace.spans, key=lambda s: s.start_ns):
        key = (id(span.raw_resource), id(span.raw_scope))
        if key not in batches:
            spans[key] = []
            scope_spans: tracestore.OtlpScopeSpans = {"scope": span.raw_scope, "spans": spans[key]}
            batches[key] = {"resource": span.raw_resource, "scopeSpans": [scope_spans]}
        spans[key].append(_tempo_span(span))
    return list(batches.values())


def tempo_search_hit(
    trace: tracestore.Trace, matched: list[tracestore.Span], spss: int
) -> TempoSearchHit:
    root = trace.root
    spans: list[TempoSearchSpan] = [
        {
            "spanID": span.span_id,
            "name": span.name,
            "startTimeUnixNano": str(span.start_ns),
            "durationNanos": str(span.duration_ns),
            "attributes": [{"key": "service.name", "value": {"stringValue": span.service}}],
        }
        for span in matched[:spss]
    ]
    spanset: TempoSpanSet = {"spans": spans, "matched": len(matched)}
    return {
        "traceID": trace.trace_id.lstrip("0") or "0",
        "rootServiceName": root.service if root else "<root span not yet received>",
        "rootTraceName": root.name if root else "",
        "startTimeUnixNano": str(trace.start_ns),
        "durationMs": (trace.end_ns - trace.start_ns) // 1_000_000,
        "spanSet": spanset,
        "spanSets": [spanset],
    }


def tempo_type(value: tracestore.Scalar) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    return "keyword" if len(str(value)) < 16 else "string"


# --- Jaeger's answers -----------------------------------------------------------------------------


def _jaeger_trace_id(hex_id: str) -> str:
    return hex_id[16:] if hex_id.startswith("0" * 16) else hex_id


def _jaeger_tag(key: str, value: tracestore.Scalar) -> JaegerTag:
    if isinstance(value, bool):
        kind = "bool"
    elif isinstance(value, int):
        kind = "int64"
    elif isinstance(value, float):
        kind = "float64"
    else:
        kind = "string"
    return {"key": key, "type": kind, "value": value}


def _jaeger_span_tags(span: tracestore.Span) -> list[JaegerTag]:
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


def jaeger_trace(trace: tracestore.Trace) -> JaegerTrace:
    """The trace in the Jaeger UI's JSON: ``spans`` with ``references`` and ``processes``."""
    processes: dict[str, JaegerProcess] = {}
    keys: dict[tuple[tuple[str, tracestore.Scalar], ...], str] = {}
    spans: list[JaegerSpan] = []
    for span in sorted(trace.spans, key=lambda s: s.start_ns):
        key = tuple(sorted(span.resource.items()))
        if key not in keys:
            keys[key] = f"p{len(keys) + 1}"
            tags = [_jaeger_tag(k, v) for k, v in span.resource.items() if k != "service.name"]
            processes[keys[key]] = {"serviceName": span.service, "tags": tags}
        trace_id = _jaeger_trace_id(span.trace_id)
        refs: list[JaegerReference] = [
            {"refType": "CHILD_OF", "traceID": trace_id, "spanID": span.parent_id}
        ]
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


def envelope(
    data: object, *, total: int = 0, errors: list[JaegerError] | None = None
) -> JaegerEnvelope:
    return {"data": data, "total": total, "limit": 0, "offset": 0, "errors": errors}


def jaeger_error(code: int, message: str) -> JaegerError:
    return {"code": code, "msg": message}
