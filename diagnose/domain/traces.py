"""Spans, and the port through which the core reads a tracing backend (Tempo, Jaeger).

One internal span model for every back end: whatever the wire format (OTLP/JSON from Tempo, the
Jaeger UI's JSON), a connector hands back :class:`SpanPayload` dicts, the compact JSON shape that
travels in evidence bundles and that :mod:`diagnose.analysis.traces` reads. Standard library only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, TypedDict

from diagnose.domain.models import Evidence, Window

SOURCE = "traces"
"""The ``source`` of every piece of trace evidence."""

AttributeValue = str | int | float | bool
"""Attribute values are flattened to scalars; arrays and maps become their JSON text."""

NOTABLE_ATTRIBUTES = (
    "service.version",
    "k8s.namespace.name",
    "k8s.deployment.name",
    "k8s.pod.name",
    "http.route",
    "http.request.method",
    "http.response.status_code",
    "http.status_code",
    "rpc.method",
    "db.system",
    "db.statement",
    "db.query.text",
    "server.address",
    "peer.service",
    "error.type",
)
"""Attributes the analysis reads; connectors keep these first when they must trim."""


class SpanKind(StrEnum):
    """OpenTelemetry span kinds, lower case."""

    UNSPECIFIED = "unspecified"
    INTERNAL = "internal"
    SERVER = "server"
    CLIENT = "client"
    PRODUCER = "producer"
    CONSUMER = "consumer"


class SpanStatus(StrEnum):
    """OpenTelemetry span status codes, lower case."""

    UNSET = "unset"
    OK = "ok"
    ERROR = "error"


class SpanPayload(TypedDict):
    """One span in the compact internal shape (``Evidence.raw`` of trace evidence).

    Ids are lower-case hex (32 digits for traces, 16 for spans); times are integer
    microseconds since the epoch; ``attrs`` merges resource attributes (``service.version``,
    ``k8s.deployment.name``) with span attributes (``http.route``, ``db.statement``), the span's
    own winning on a clash.
    """

    trace_id: str
    span_id: str
    parent_id: str | None
    service: str
    operation: str
    kind: str  # a SpanKind value
    start_us: int
    duration_us: int
    status: str  # a SpanStatus value
    attrs: dict[str, AttributeValue]


class SpanSamplePayload(TypedDict):
    """``Evidence.raw`` of :meth:`TraceSource.sample_spans`."""

    spans: list[SpanPayload]
    traces: int  # traces whose spans are included
    truncated: bool  # a count or byte cap stopped the read early
    bytes_read: int


class RequestCountPayload(TypedDict):
    """``Evidence.raw`` of :meth:`TraceSource.count_requests`."""

    service: str
    operation: str
    count: int  # traces with a server span of the operation in the window, at most the limit
    capped: bool  # the limit was reached: there may be more


@dataclass(frozen=True)
class Span:
    """A span, as a value object (the analysis works on payload dicts for speed)."""

    trace_id: str
    span_id: str
    parent_id: str | None
    service: str
    operation: str
    kind: SpanKind
    start_us: int
    duration_us: int
    status: SpanStatus
    attrs: Mapping[str, AttributeValue] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return span_failed(self.to_dict())

    def to_dict(self) -> SpanPayload:
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_id": self.parent_id,
            "service": self.service,
            "operation": self.operation,
            "kind": self.kind.value,
            "start_us": self.start_us,
            "duration_us": self.duration_us,
            "status": self.status.value,
            "attrs": dict(self.attrs),
        }

    @classmethod
    def from_dict(cls, data: SpanPayload) -> Span:
        return cls(
            trace_id=data["trace_id"],
            span_id=data["span_id"],
            parent_id=data["parent_id"],
            service=data["service"],
            operation=data["operation"],
            kind=SpanKind(data["kind"]),
            start_us=int(data["start_us"]),
            duration_us=int(data["duration_us"]),
            status=SpanStatus(data["status"]),
            attrs=dict(data["attrs"]),
        )


def http_status(span: SpanPayload) -> int | None:
    """The HTTP response status of a span, under the current or the older convention."""
    attrs = span["attrs"]
    value = attrs.get("http.response.status_code", attrs.get("http.status_code"))
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


def span_failed(span: SpanPayload) -> bool:
    """A span failed when its status is error, or a server span answered 5xx."""
    if span["status"] == SpanStatus.ERROR:
        return True
    code = http_status(span)
    return span["kind"] == SpanKind.SERVER and code is not None and code >= 500


class TraceSource(Protocol):
    """A tracing backend, read-only. Every method returns one :class:`Evidence`.

    ``query`` is the exact request an engineer can re-run (the Tempo search URL with its TraceQL,
    the Jaeger search URL); a refusal, a timeout, a 401/403 or an unreadable answer is evidence
    with a status, never an exception.
    """

    def sample_spans(
        self, *, service: str | None, namespace: str | None, window: Window, limit_traces: int
    ) -> Evidence:
        """Whole traces that touch ``service`` (in ``namespace``) within the window, at most
        ``limit_traces`` of them, spread over the window. raw: :class:`SpanSamplePayload`."""
        ...

    def get_trace(self, trace_id: str, *, window: Window | None = None) -> Evidence:
        """One trace by id. raw: :class:`SpanSamplePayload`; status ``empty`` when unknown."""
        ...

    def list_services(self, *, window: Window) -> Evidence:
        """Service names seen in the window. raw: ``list[str]``."""
        ...

    def list_operations(self, service: str, *, window: Window) -> Evidence:
        """Operation (span) names of one service. raw: ``list[str]``."""
        ...

    def count_requests(
        self, *, service: str, operation: str, window: Window, limit: int
    ) -> Evidence:
        """How many traces hold a server span of ``operation`` in ``service`` starting within
        the window, counted up to ``limit`` from one search (no trace is read).
        raw: :class:`RequestCountPayload`."""
        ...
