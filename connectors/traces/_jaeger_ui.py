"""The Jaeger UI's JSON (``data[].spans[]``, ``processes``) into the internal span shape."""

from __future__ import annotations

from collections.abc import Mapping

from connectors.traces import _shapes
from diagnose.domain import traces as tracing

_JAEGER_STATUS_TAGS = frozenset(
    {"span.kind", "otel.status_code", "otel.status_description", "error"}
    | {"otel.scope.name", "otel.scope.version", "otel.library.name", "otel.library.version"}
)
"""Tags the OTLP-to-Jaeger translation adds; they become span fields, not attributes."""


def _jaeger_tags(items: object, *, max_chars: int) -> dict[str, tracing.AttributeValue]:
    tags: dict[str, tracing.AttributeValue] = {}
    for item in _shapes.as_list(items, "tags"):
        entry = _shapes.as_dict(item, "tag")
        key = entry.get("key")
        if not isinstance(key, str):
            continue
        value = entry.get("value")
        if entry.get("type") == "int64" and isinstance(value, str):
            value = _shapes.as_int(value, f"tag {key}")
        tags[key] = _shapes.scalar(value, max_chars=max_chars)
    return tags


def _jaeger_parent(span: Mapping[str, object]) -> str | None:
    for ref in _shapes.as_list(span.get("references"), "references"):
        entry = _shapes.as_dict(ref, "reference")
        if entry.get("refType") == "CHILD_OF":
            return _shapes.optional_hex_id(entry.get("spanID"), width=16)
    return _shapes.optional_hex_id(span.get("parentSpanID"), width=16)


def _jaeger_status(tags: Mapping[str, tracing.AttributeValue]) -> str:
    code = str(tags.get("otel.status_code", "")).lower()
    if code == "error" or tags.get("error") in (True, "true"):
        return tracing.SpanStatus.ERROR.value
    return tracing.SpanStatus.OK.value if code == "ok" else tracing.SpanStatus.UNSET.value


def _jaeger_span(
    span: object, *, processes: Mapping[str, object], max_chars: int
) -> tracing.SpanPayload:
    body = _shapes.as_dict(span, "span")
    process = _shapes.as_dict(processes.get(str(body.get("processID")), {}), "process")
    tags = _jaeger_tags(body.get("tags"), max_chars=max_chars)
    attrs = _jaeger_tags(process.get("tags"), max_chars=max_chars)
    attrs.update({k: v for k, v in tags.items() if k not in _JAEGER_STATUS_TAGS})
    kind = str(tags.get("span.kind", "unspecified")).lower()
    return {
        "trace_id": _shapes.hex_id(body.get("traceID"), width=32),
        "span_id": _shapes.hex_id(body.get("spanID"), width=16),
        "parent_id": _jaeger_parent(body),
        "service": str(process.get("serviceName", "unknown")),
        "operation": str(body.get("operationName", "")),
        "kind": kind if kind in _shapes.KIND_NUMBERS else "unspecified",
        "start_us": _shapes.as_int(body.get("startTime", 0), "startTime"),
        "duration_us": max(0, _shapes.as_int(body.get("duration", 0), "duration")),
        "status": _jaeger_status(tags),
        "attrs": attrs,
    }


def spans_from_jaeger(
    trace: object, *, max_attribute_chars: int = 1024
) -> list[tracing.SpanPayload]:
    """Spans of one trace in the Jaeger UI's JSON (``{"traceID", "spans", "processes"}``).
    Raises ``ValueError`` on a trace of the wrong shape."""
    try:
        body = _shapes.as_dict(trace, "trace")
        processes = _shapes.as_dict(body.get("processes") or {}, "processes")
        return [
            _jaeger_span(span, processes=processes, max_chars=max_attribute_chars)
            for span in _shapes.as_list(body.get("spans"), "spans")
        ]
    except _shapes.ShapeError as exc:
        raise ValueError(str(exc)) from exc
