"""OTLP JSON (what Tempo returns for a trace) into the internal span shape."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from connectors.traces import _shapes
from diagnose.domain import traces as tracing

_STATUS_NUMBERS = ("unset", "ok", "error")


def _otlp_value(value: object, *, max_chars: int) -> tracing.AttributeValue:
    """An OTLP ``AnyValue`` as a scalar (``intValue`` arrives as a decimal string)."""
    body = _shapes.as_dict(value, "attribute value")
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in body:
            return _shapes.scalar(body[key], max_chars=max_chars)
    if "intValue" in body:
        return _shapes.as_int(body["intValue"], "intValue")
    if "arrayValue" in body:
        items = _shapes.as_list(
            _shapes.as_dict(body["arrayValue"], "arrayValue").get("values"), "values"
        )
        return _shapes.scalar(
            [_otlp_value(item, max_chars=max_chars) for item in items], max_chars=max_chars
        )
    return _shapes.scalar(body, max_chars=max_chars)


def _otlp_attributes(items: object, *, max_chars: int) -> dict[str, tracing.AttributeValue]:
    attrs: dict[str, tracing.AttributeValue] = {}
    for item in _shapes.as_list(items, "attributes"):
        entry = _shapes.as_dict(item, "attribute")
        key = entry.get("key")
        if isinstance(key, str) and "value" in entry:
            attrs[key] = _otlp_value(entry["value"], max_chars=max_chars)
    return attrs


def _enum(value: object, *, names: Sequence[str], prefix: str) -> str:
    """An OTLP enum sent as its number (OTLP/JSON) or its name (protobuf JSON mapping)."""
    if isinstance(value, int) and 0 <= value < len(names):
        return names[value]
    if isinstance(value, str):
        name = value.lower().removeprefix(prefix)
        if name in names:
            return name
    return names[0]


def _otlp_span(
    span: object, *, resource: Mapping[str, tracing.AttributeValue], max_chars: int
) -> tracing.SpanPayload:
    body = _shapes.as_dict(span, "span")
    start = _shapes.as_int(body.get("startTimeUnixNano", 0), "startTimeUnixNano")
    end = _shapes.as_int(body.get("endTimeUnixNano", start), "endTimeUnixNano")
    status = body.get("status")
    status = status if isinstance(status, dict) else {}
    attrs = {k: v for k, v in resource.items() if k != "service.name"}
    attrs.update(_otlp_attributes(body.get("attributes"), max_chars=max_chars))
    return {
        "trace_id": _shapes.hex_id(body.get("traceId"), width=32),
        "span_id": _shapes.hex_id(body.get("spanId"), width=16),
        "parent_id": _shapes.optional_hex_id(body.get("parentSpanId"), width=16),
        "service": str(resource.get("service.name", "unknown")),
        "operation": str(body.get("name", "")),
        "kind": _enum(body.get("kind"), names=_shapes.KIND_NUMBERS, prefix="span_kind_"),
        "start_us": start // 1000,
        "duration_us": max(0, end - start) // 1000,
        "status": _enum(status.get("code"), names=_STATUS_NUMBERS, prefix="status_code_"),
        "attrs": attrs,
    }


def _otlp_resource_spans(document: Mapping[str, object]) -> list[object]:
    """The ``ResourceSpans`` list of any of Tempo's trace shapes: ``{"batches": …}`` (v1),
    ``{"trace": {"resourceSpans"|"batches": …}}`` (v2) or plain OTLP ``{"resourceSpans": …}``."""
    if "trace" in document:
        document = _shapes.as_dict(document["trace"] or {}, "trace")
    for key in ("resourceSpans", "batches"):
        if key in document:
            return _shapes.as_list(document[key], key)
    if not document:
        return []
    raise _shapes.ShapeError(f"no resourceSpans or batches among keys {sorted(document)[:5]}")


def spans_from_otlp(
    document: object, *, max_attribute_chars: int = 1024
) -> list[tracing.SpanPayload]:
    """Spans of an OTLP JSON trace document, in the internal shape. Raises ``ValueError`` on a
    document of the wrong shape (the connectors turn that into error evidence)."""
    try:
        return decode_spans(_shapes.as_dict(document, "document"), max_chars=max_attribute_chars)
    except _shapes.ShapeError as exc:
        raise ValueError(str(exc)) from exc


def decode_spans(document: Mapping[str, object], *, max_chars: int) -> list[tracing.SpanPayload]:
    spans: list[tracing.SpanPayload] = []
    for batch in _otlp_resource_spans(document):
        body = _shapes.as_dict(batch, "resourceSpans[]")
        resource = _otlp_attributes(
            _shapes.as_dict(body.get("resource") or {}, "resource").get("attributes"),
            max_chars=max_chars,
        )
        scopes = body.get("scopeSpans", body.get("instrumentationLibrarySpans"))
        for scope in _shapes.as_list(scopes, "scopeSpans"):
            for span in _shapes.as_list(
                _shapes.as_dict(scope, "scopeSpans[]").get("spans"), "spans"
            ):
                spans.append(_otlp_span(span, resource=resource, max_chars=max_chars))
    return spans
