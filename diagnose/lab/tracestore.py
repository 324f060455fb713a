"""The lab trace server's store: a scenario's OTLP/JSON files read into traces of spans."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Required, TypedDict

Scalar = str | int | float | bool
_KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_STATUSES = ("unset", "ok", "error")


# --- OTLP/JSON as the scenario files hold it (ExportTraceServiceRequest) ---------------------


class OtlpArrayValue(TypedDict, total=False):
    values: list[OtlpAnyValue]


class OtlpAnyValue(TypedDict, total=False):
    """One of its keys is set; ``intValue`` may arrive as a decimal string."""

    stringValue: str
    boolValue: bool
    doubleValue: float
    intValue: int | str
    arrayValue: OtlpArrayValue


class OtlpKeyValue(TypedDict, total=False):
    key: Required[str]
    value: OtlpAnyValue


class OtlpResource(TypedDict, total=False):
    attributes: list[OtlpKeyValue]


class OtlpScope(TypedDict, total=False):
    name: str
    version: str


class OtlpStatus(TypedDict, total=False):
    code: int | str
    """A number, or its name (``STATUS_CODE_ERROR``) as the protobuf JSON mapping writes it."""
    message: str


class OtlpSpan(TypedDict, total=False):
    traceId: str
    """Hex, or base64 as the protobuf JSON mapping writes bytes."""
    spanId: str
    parentSpanId: str
    name: str
    kind: int | str
    startTimeUnixNano: int | str
    endTimeUnixNano: int | str
    status: OtlpStatus
    attributes: list[OtlpKeyValue]


class OtlpScopeSpans(TypedDict, total=False):
    scope: OtlpScope
    spans: list[OtlpSpan]


class OtlpResourceSpans(TypedDict, total=False):
    resource: OtlpResource
    scopeSpans: list[OtlpScopeSpans]
    instrumentationLibrarySpans: list[OtlpScopeSpans]
    """The name of ``scopeSpans`` before OTLP 0.15."""


class OtlpDocument(TypedDict, total=False):
    resourceSpans: list[OtlpResourceSpans]


# --- the store ------------------------------------------------------------------------------


@dataclass
class Span:
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
    raw: OtlpSpan  # as loaded
    raw_resource: OtlpResource
    raw_scope: OtlpScope

    @property
    def service(self) -> str:
        return str(self.resource.get("service.name", "unknown"))

    @property
    def duration_ns(self) -> int:
        return self.end_ns - self.start_ns


@dataclass
class Trace:
    trace_id: str
    spans: list[Span] = field(default_factory=list)

    @property
    def start_ns(self) -> int:
        return min(s.start_ns for s in self.spans)

    @property
    def end_ns(self) -> int:
        return max(s.end_ns for s in self.spans)

    @property
    def root(self) -> Span | None:
        ids = {s.span_id for s in self.spans}
        roots = [s for s in self.spans if s.parent_id is None or s.parent_id not in ids]
        return min(roots, key=lambda s: s.start_ns) if roots else None


def parse_id(value: object, width: int) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    if re.fullmatch(r"[0-9a-fA-F]+", value) and len(value) <= width:
        text = value.lower().zfill(width)
    else:
        text = base64.b64decode(value).hex()
    return None if set(text) == {"0"} else text


def _value(body: OtlpAnyValue) -> Scalar:
    if "stringValue" in body:
        return body["stringValue"]
    if "boolValue" in body:
        return body["boolValue"]
    if "doubleValue" in body:
        return body["doubleValue"]
    if "intValue" in body:
        return int(body["intValue"])
    return json.dumps(body, sort_keys=True)


def _attributes(items: Iterable[OtlpKeyValue] | None) -> dict[str, Scalar]:
    return {item["key"]: _value(item.get("value") or {}) for item in items or ()}


def _enum(value: object, names: tuple[str, ...], prefix: str) -> str:
    if isinstance(value, int) and 0 <= value < len(names):
        return names[value]
    if isinstance(value, str) and value.lower().removeprefix(prefix) in names:
        return value.lower().removeprefix(prefix)
    return names[0]


def _load_span(raw: OtlpSpan, *, resource: OtlpResource, scope: OtlpScope) -> Span:
    status = raw.get("status") or {}
    start = int(raw.get("startTimeUnixNano", 0))
    return Span(
        trace_id=parse_id(raw["traceId"], 32) or "0" * 32,
        span_id=parse_id(raw["spanId"], 16) or "0" * 16,
        parent_id=parse_id(raw.get("parentSpanId"), 16),
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


def load_traces(paths: Iterable[Path]) -> dict[str, Trace]:
    """Every trace in the OTLP/JSON files (``ExportTraceServiceRequest`` documents)."""
    traces: dict[str, Trace] = {}
    for path in sorted(paths):
        document: OtlpDocument = json.loads(path.read_text())
        for batch in document.get("resourceSpans", []):
            resource = batch.get("resource") or {}
            for scope_spans in batch.get(
                "scopeSpans", batch.get("instrumentationLibrarySpans", [])
            ):
                scope = scope_spans.get("scope") or {}
                for raw in scope_spans.get("spans", []):
                    span = _load_span(raw, resource=resource, scope=scope)
                    traces.setdefault(span.trace_id, Trace(span.trace_id)).spans.append(span)
    return traces
