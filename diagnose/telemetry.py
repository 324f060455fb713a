"""The agent's own telemetry: OpenTelemetry spans and JSON log lines that carry their ids.

What is traced, once :func:`configure` has been given somewhere to send spans:

- each graph node (``node scope``, ``node gather_metrics``, …), by the graph's node wrapper;
- each call through a port to the outside world (``metrics query_range``, ``cluster
  list_changes``, …) with the evidence's status and exact query, by :func:`traced`;
- each request to the language model (``chat MODEL``) with OpenTelemetry's GenAI attributes
  (``gen_ai.operation.name``, ``gen_ai.request.model``, ``gen_ai.usage.input_tokens`` and
  ``…output_tokens``, ``server.address``), by :func:`model_call`.

Every span carries the run id as ``diagnose.run_id`` (set from OpenTelemetry baggage, so spans
started in worker threads get it too). A run's spans share one trace whose id is derived from
the run id (:func:`trace_id_of`), so a run resumed after approval, in another process, lands in
the same trace. When nothing is configured every helper here is a no-op that costs nothing.

This is the only module that imports OpenTelemetry (an import-linter contract keeps it so).
It keeps its own tracer provider rather than the process-global one, so an embedding program's
telemetry and ours do not fight over it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib import parse

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

RUN_ID = "diagnose.run_id"
"""The span attribute (and baggage key) naming the run."""

SERVICE_NAME = "diagnose"
_UNTRACED = frozenset({"close"})
_QUERY_CHARS = 1000
_log = logging.getLogger("diagnose.telemetry")
T = TypeVar("T")


# --- the pipeline -----------------------------------------------------------------------------


class _Pipeline:
    """The process's tracer provider and where it sends spans (None: telemetry is off)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.provider: TracerProvider | None = None
        self.endpoint: str | None = None


_pipeline = _Pipeline()


class _RunIdFromBaggage(SpanProcessor):
    """Copies the run id from the parent context's baggage onto every span as it starts."""

    def on_start(self, span: Span, parent_context: otel_context.Context | None = None) -> None:
        run_id = baggage.get_baggage(RUN_ID, parent_context)
        if run_id is not None:
            span.set_attribute(RUN_ID, str(run_id))

    def on_end(self, span: ReadableSpan) -> None:
        """Nothing to do when a span ends."""


def configure(*, otlp_endpoint: str | None = None, exporter: SpanExporter | None = None) -> bool:
    """Send spans over OTLP/HTTP to ``otlp_endpoint`` (a collector's base URL: spans go to
    ``/v1/traces`` under it), or to ``exporter`` (tests). Called by every agent a process opens:
    the same endpoint again changes nothing, and no endpoint leaves things as they are.
    Returns whether spans are exported. Headers, timeout and compression come from the
    standard ``OTEL_EXPORTER_OTLP_*`` variables, which the exporter reads itself."""
    if exporter is None and otlp_endpoint is None:
        return enabled()
    with _pipeline.lock:
        if exporter is None and otlp_endpoint == _pipeline.endpoint:
            return True
        _stop(_pipeline)
        if exporter is None:
            url = f"{str(otlp_endpoint).rstrip('/')}/v1/traces"
            processor: SpanProcessor = BatchSpanProcessor(OTLPSpanExporter(endpoint=url))
        else:
            processor = SimpleSpanProcessor(exporter)
        provider = TracerProvider(resource=Resource.create({"service.name": SERVICE_NAME}))
        provider.add_span_processor(_RunIdFromBaggage())
        provider.add_span_processor(processor)
        _pipeline.provider, _pipeline.endpoint = provider, otlp_endpoint
    return True


def shutdown() -> None:
    """Send what is buffered and turn telemetry off."""
    with _pipeline.lock:
        _stop(_pipeline)


def flush(timeout_ms: int = 10_000) -> bool:
    """Send buffered spans now; False when they could not all be sent in time."""
    provider = _pipeline.provider
    return provider.force_flush(timeout_ms) if provider is not None else True


def _stop(pipeline: _Pipeline) -> None:
    if pipeline.provider is not None:
        pipeline.provider.shutdown()
    pipeline.provider, pipeline.endpoint = None, None


def enabled() -> bool:
    """Whether spans are being recorded."""
    return _pipeline.provider is not None


def _tracer() -> trace.Tracer:
    provider = _pipeline.provider
    return provider.get_tracer("diagnose") if provider is not None else trace.NoOpTracer()


# --- runs and graph nodes ---------------------------------------------------------------------


def trace_id_of(run_id: str) -> int:
    """The trace id of a run: the first 128 bits of the SHA-256 of its id."""
    return int.from_bytes(hashlib.sha256(run_id.encode()).digest()[:16], "big")


def _run_parent(run_id: str) -> trace.NonRecordingSpan:
    digest = hashlib.sha256(run_id.encode()).digest()
    return trace.NonRecordingSpan(
        trace.SpanContext(
            trace_id=trace_id_of(run_id),
            span_id=int.from_bytes(digest[16:24], "big") or 1,
            is_remote=True,
            trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED),
        )
    )


@contextmanager
def run_span(
    name: str, *, run_id: str | None, attributes: Mapping[str, Any] | None = None
) -> Iterator[trace.Span]:
    """A span in the run's trace (or under the caller's span, if any), with the run id in the
    baggage so that every span below it carries it. Without a run id: a span of its own."""
    if not enabled():
        yield trace.INVALID_SPAN
        return
    if run_id is None:
        with _tracer().start_as_current_span(name, attributes=attributes) as span:
            yield span
        return
    current = otel_context.get_current()
    if not trace.get_current_span(current).get_span_context().is_valid:
        current = trace.set_span_in_context(_run_parent(run_id), current)
    token = otel_context.attach(baggage.set_baggage(RUN_ID, run_id, current))
    try:
        given = {**(attributes or {}), RUN_ID: run_id}
        with _tracer().start_as_current_span(name, attributes=given) as span:
            yield span
    finally:
        otel_context.detach(token)


@contextmanager
def node_span(name: str, *, run_id: str) -> Iterator[trace.Span]:
    """A span around one graph node, in the run's trace."""
    with run_span(f"node {name}", run_id=run_id, attributes={"diagnose.node": name}) as span:
        yield span
        _log.info("node %s done", name)


@contextmanager
def job_span(kind: str, *, job_id: int, attempt: int, run_id: str | None) -> Iterator[None]:
    """A span around one queue job a worker runs; a diagnosis' nodes become its children."""
    attributes = {"diagnose.job.kind": kind, "diagnose.job.id": job_id}
    attributes["diagnose.job.attempt"] = attempt
    with run_span(f"job {kind}", run_id=run_id, attributes=attributes):
        yield


def with_traced_ports(context: T, ports: Sequence[str]) -> T:
    """A copy of a frozen dataclass whose named port fields are wrapped by :func:`traced`
    (fields that are None or absent are left alone). Unchanged when telemetry is off."""
    if not enabled():
        return context
    changes = {
        name: traced(getattr(context, name), port=name)
        for name in ports
        if getattr(context, name, None) is not None
    }
    return dataclasses.replace(context, **changes)  # type: ignore[type-var]


def traced(target: T, *, port: str) -> T:
    """``target`` with a span around each of its public method calls, named ``PORT METHOD``
    (``target`` itself when telemetry is off). Calls made from threads the caller's context did
    not reach (a pool of workers) are parented to the span current when this wrapper was made."""
    if not enabled():
        return target
    return _Traced(target, port=port, parent=otel_context.get_current())  # type: ignore[return-value]


class _Traced:
    def __init__(self, target: Any, *, port: str, parent: otel_context.Context) -> None:
        self._target = target
        self._port = port
        self._parent = parent

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._target, name)
        if name.startswith("_") or name in _UNTRACED or not callable(found):
            return found
        return functools.partial(_call_traced, found, f"{self._port} {name}", self._parent)


def _call_traced(
    method: Callable[..., Any], name: str, parent: otel_context.Context, *args: Any, **kw: Any
) -> Any:
    here = otel_context.get_current()
    context = here if trace.get_current_span(here).get_span_context().is_valid else parent
    with _tracer().start_as_current_span(name, context=context, kind=SpanKind.CLIENT) as span:
        result = method(*args, **kw)
        _describe(span, result)
        _log.info("%s: %s", name, _outcome(result))
        return result


def _describe(span: trace.Span, result: Any) -> None:
    """Evidence attributes: where it came from, its status, the exact query to re-run."""
    records = result if isinstance(result, list | tuple) else [result]
    evidence = [r for r in records if hasattr(r, "status") and hasattr(r, "query")]
    if not evidence:
        return
    statuses = sorted({str(e.status) for e in evidence})
    span.set_attribute("diagnose.evidence.count", len(evidence))
    span.set_attribute("diagnose.evidence.status", ",".join(statuses))
    span.set_attribute("diagnose.evidence.source", str(getattr(evidence[0], "source", "")))
    span.set_attribute("diagnose.evidence.query", str(evidence[0].query)[:_QUERY_CHARS])
    if {"error", "denied"} & set(statuses):
        span.set_status(Status(StatusCode.ERROR, str(getattr(evidence[0], "summary", ""))))


def _outcome(result: Any) -> str:
    status = getattr(result, "status", None)
    return str(status) if status is not None else type(result).__name__


# --- model calls ------------------------------------------------------------------------------


@dataclasses.dataclass
class ModelCall:
    """The span of one request to the model server; :meth:`answered` records what came back."""

    span: trace.Span

    def answered(self, data: Any) -> None:
        """Record the answer's model, finish reasons and token usage (GenAI conventions)."""
        if not isinstance(data, Mapping):
            return
        usage = data.get("usage")
        if isinstance(usage, Mapping):
            for key, attribute in (
                ("prompt_tokens", "gen_ai.usage.input_tokens"),
                ("completion_tokens", "gen_ai.usage.output_tokens"),
            ):
                if isinstance(usage.get(key), int):
                    self.span.set_attribute(attribute, usage[key])
        if isinstance(data.get("model"), str):
            self.span.set_attribute("gen_ai.response.model", data["model"])
        if isinstance(data.get("id"), str):
            self.span.set_attribute("gen_ai.response.id", data["id"])
        choices = data.get("choices")
        reasons = [
            str(c["finish_reason"])
            for c in (choices if isinstance(choices, list) else [])
            if isinstance(c, Mapping) and c.get("finish_reason")
        ]
        if reasons:
            self.span.set_attribute("gen_ai.response.finish_reasons", reasons)


@contextmanager
def model_call(*, base_url: str, path: str, method: str, body: Any) -> Iterator[ModelCall]:
    """A client span around one HTTP request to an OpenAI-compatible server. Chat completions
    are named ``chat MODEL`` and carry the GenAI request attributes; other requests are named
    ``METHOD PATH``. Failures set ``error.type``; the exception propagates."""
    url = parse.urlsplit(base_url)
    attributes: dict[str, str | int | float] = {"server.address": url.hostname or ""}
    attributes["http.request.method"] = method
    if url.port is not None:
        attributes["server.port"] = url.port
    name = f"{method} {path}"
    if path.endswith("chat/completions") and isinstance(body, Mapping):
        model = str(body.get("model") or "")
        name = f"chat {model}".strip()
        attributes |= {"gen_ai.operation.name": "chat", "gen_ai.request.model": model}
        for key in ("max_tokens", "temperature", "top_p", "top_k"):
            if isinstance(body.get(key), int | float):
                attributes[f"gen_ai.request.{key}"] = body[key]
    with _tracer().start_as_current_span(
        name, kind=SpanKind.CLIENT, attributes=attributes, record_exception=True
    ) as span:
        try:
            yield ModelCall(span)
        except Exception as exc:
            span.set_attribute("error.type", type(exc).__qualname__)
            raise


# --- logs -------------------------------------------------------------------------------------


class JsonLines(logging.Formatter):
    """One JSON object per log record, with the current span's trace and span ids and the run
    id, so a log line leads to its trace (and a trace to its logs)."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            line["trace_id"] = trace.format_trace_id(context.trace_id)
            line["span_id"] = trace.format_span_id(context.span_id)
        run_id = baggage.get_baggage(RUN_ID)
        if run_id is not None:
            line["run_id"] = str(run_id)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def log_json_lines(stream: Any = None, *, level: int = logging.INFO) -> logging.Handler:
    """Send the ``diagnose`` loggers' records to ``stream`` (stderr) as JSON lines; returns the
    handler (remove it to stop). Installing twice on one stream adds nothing."""
    stream = stream if stream is not None else sys.stderr
    root = logging.getLogger("diagnose")
    for handler in root.handlers:
        if isinstance(handler.formatter, JsonLines) and getattr(handler, "stream", None) is stream:
            return handler
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLines())
    root.addHandler(handler)
    root.setLevel(min(root.level or level, level))
    return handler
