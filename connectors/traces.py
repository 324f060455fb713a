"""Traces: Grafana Tempo's HTTP API and Jaeger's query API behind one port, on ``httpx``.

:class:`TempoConnector` and :class:`JaegerConnector` implement
:class:`diagnose.domain.traces.TraceSource`. Both translate their back end's JSON into the one
internal span shape, :class:`~diagnose.domain.traces.SpanPayload`:

- Tempo: ``GET /api/search`` with a TraceQL ``q`` over ``start``/``end`` (unix seconds) finds
  trace ids; ``GET /api/v2/traces/<id>`` (``/api/traces/<id>`` on Tempo before v2 of that route)
  returns each trace as OTLP JSON; ``GET /api/search/tag/<tag>/values`` lists services.
- Jaeger: ``GET /api/traces?service=&start=&end=`` (unix microseconds) returns whole traces in
  the Jaeger UI's JSON (``data[].spans[]``, ``processes``); ``/api/services`` and
  ``/api/services/<svc>/operations`` list names; ``/api/traces/<id>`` returns one trace.

Reads are bounded in count and bytes: a sample holds at most ``Limits.max_traces`` traces and
``Limits.max_spans`` spans; every body is streamed and abandoned past
``Limits.max_response_bytes`` (and all bodies of one call past ``Limits.max_total_bytes``); each
request has a wall-clock deadline, so a server that trickles bytes cannot hold us either.

:meth:`_Client.get_json` is the one choke point for timeouts, retries, auth headers
(``Authorization``, Tempo's ``X-Scope-OrgID`` tenant header) and error translation. The outside
world saying no (refused, timed out, 401/403, 4xx/5xx, garbage, a body cut short or too large)
becomes evidence with a status; only our own bugs raise.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from diagnose.domain import traces as tracing
from diagnose.domain.models import Evidence, Status, Window

SOURCE = tracing.SOURCE

_RETRIED_STATUSES = frozenset({502, 503, 504})
_KIND_NUMBERS = ("unspecified", "internal", "server", "client", "producer", "consumer")
_STATUS_NUMBERS = ("unset", "ok", "error")
_JAEGER_STATUS_TAGS = frozenset(
    {"span.kind", "otel.status_code", "otel.status_description", "error"}
    | {"otel.scope.name", "otel.scope.version", "otel.library.name", "otel.library.version"}
)
"""Tags the OTLP-to-Jaeger translation adds; they become span fields, not attributes."""


@dataclass(frozen=True)
class Limits:
    """How much one call may read. Defaults suit one diagnosis on a laptop."""

    max_traces: int = 200
    """Traces in one sample, whatever ``limit_traces`` asks for."""

    max_spans: int = 50_000
    """Spans in one sample; the traces after the one that crosses it are not read."""

    max_response_bytes: int = 16 * 1024 * 1024
    """One HTTP body (decoded); a larger one is abandoned mid-stream."""

    max_total_bytes: int = 128 * 1024 * 1024
    """All bodies of one call together."""

    max_attribute_chars: int = 1024
    """Longer attribute values (a huge ``db.statement``) are cut to this many characters."""

    slices: int = 4
    """The window is searched in this many equal slices (``limit / slices`` traces each), so a
    sample covers the whole window rather than whichever end the back end scans first."""

    deadline_s: float = 60.0
    """Wall time for one call, all its requests included."""

    def __post_init__(self) -> None:
        values = (self.max_traces, self.max_spans, self.max_response_bytes, self.slices)
        if min(values) < 1 or self.max_total_bytes < self.max_response_bytes:
            raise ValueError(f"limits must be positive and total >= response bytes: {self}")


class _CallError(Exception):
    """A call that ended without (usable) data: the status and the one-line summary."""

    def __init__(self, status: Status, summary: str, *, retryable: bool = False) -> None:
        super().__init__(summary)
        self.status = status
        self.summary = summary
        self.retryable = retryable


class _NotFoundError(Exception):
    """The back end answered 404."""


class _ShapeError(Exception):
    """Valid JSON, but not the shape the API documents."""


@dataclass
class _Budget:
    """Bytes and time left for one call (several requests)."""

    bytes_left: int
    deadline: float
    bytes_read: int = 0

    def take(self, count: int) -> None:
        self.bytes_read += count
        self.bytes_left -= count


class _Client:
    """The choke point: one ``httpx.Client`` per back end, bounded reads, translated failures."""

    def __init__(
        self,
        url: str,
        *,
        system: str,
        timeout_s: float,
        headers: Mapping[str, str],
        limits: Limits,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.url = url.rstrip("/")
        self.system = system
        self.timeout_s = timeout_s
        self.limits = limits
        self._http = httpx.Client(
            headers=dict(headers),
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def budget(self) -> _Budget:
        deadline = time.monotonic() + self.limits.deadline_s
        return _Budget(bytes_left=self.limits.max_total_bytes, deadline=deadline)

    def full_url(self, path: str, params: Mapping[str, str | int] | None = None) -> str:
        """The exact URL a request goes to: what an engineer pastes into curl."""
        return str(httpx.URL(self.url + path, params=dict(params or {})))

    def get_json(self, path: str, *, params: Mapping[str, str | int], budget: _Budget) -> Any:
        """GET and decode JSON, once more after a 502/503/504 or a refused connection."""
        try:
            return self._get_json(path, params=params, budget=budget)
        except _CallError as first:
            if not first.retryable or time.monotonic() + 0.2 > budget.deadline:
                raise
            time.sleep(0.2)
            return self._get_json(path, params=params, budget=budget)

    def _get_json(self, path: str, *, params: Mapping[str, str | int], budget: _Budget) -> Any:
        body = self._get_bytes(path, params=params, budget=budget)
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise _CallError(
                Status.ERROR,
                f"{self.system} at {self.url} answered {path} with something that is not JSON "
                f"({_brief(exc)}; {len(body):,} bytes): check that the URL points at the "
                f"{self.system} query API",
            ) from exc

    def _get_bytes(self, path: str, *, params: Mapping[str, str | int], budget: _Budget) -> bytes:
        if time.monotonic() >= budget.deadline:
            raise _CallError(Status.ERROR, f"gave up on {self.system}: call deadline reached")
        deadline = min(budget.deadline, time.monotonic() + self.timeout_s)
        try:
            with self._http.stream("GET", self.url + path, params=dict(params)) as response:
                self._check_status(response, path=path)
                return self._read_capped(response, budget=budget, deadline=deadline)
        except httpx.TimeoutException as exc:
            raise _CallError(
                Status.ERROR,
                f"{self.system} at {self.url} did not answer {path} within {self.timeout_s:g} s; "
                "narrow the window or raise the timeout",
            ) from exc
        except httpx.ConnectError as exc:
            raise _CallError(
                Status.ERROR,
                f"{self.system} at {self.url} refused the connection ({_brief(exc)}); check the "
                "URL, or start the lab with `diagnose lab up`",
                retryable=True,
            ) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise _CallError(
                Status.ERROR,
                f"{self.system} at {self.url} cut the connection in the middle of {path} "
                f"({_brief(exc)}); the answer was incomplete and is not used",
            ) from exc
        except httpx.HTTPError as exc:
            raise _CallError(
                Status.ERROR, f"request to {self.url}{path} failed: {_brief(exc)}"
            ) from exc

    def _check_status(self, response: httpx.Response, *, path: str) -> None:
        code = response.status_code
        if code < 400:
            return
        detail = _error_detail(_read_prefix(response, 2048))
        if code == 404:
            raise _NotFoundError(detail)
        if code in (401, 403):
            raise _CallError(
                Status.DENIED,
                f"{self.system} at {self.url} refused {path} with HTTP {code} ({detail}): "
                "check the credentials in the connector's headers"
                + (" and the tenant (X-Scope-OrgID)" if self.system == "Tempo" else ""),
            )
        raise _CallError(
            Status.ERROR,
            f"{self.system} answered {path} with HTTP {code}: {detail}",
            retryable=code in _RETRIED_STATUSES,
        )

    def _read_capped(self, response: httpx.Response, *, budget: _Budget, deadline: float) -> bytes:
        cap = min(self.limits.max_response_bytes, budget.bytes_left)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise self._too_big(int(declared), cap=cap, declared=True)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            budget.take(len(chunk))
            if size > cap:
                raise self._too_big(size, cap=cap, declared=False)
            if time.monotonic() > deadline:
                raise _CallError(
                    Status.ERROR,
                    f"{self.system} at {self.url} was still sending after {self.timeout_s:g} s "
                    f"({size:,} bytes so far); stopped reading",
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_big(self, size: int, *, cap: int, declared: bool) -> _CallError:
        verb = "declared" if declared else "sent more than"
        return _CallError(
            Status.ERROR,
            f"{self.system} at {self.url} {verb} {size:,} bytes, over the {cap:,}-byte cap; "
            "stopped reading: narrow the window or lower limit_traces",
        )


# --- shared helpers -----------------------------------------------------------------------


def _read_prefix(response: httpx.Response, size: int) -> str:
    data = b""
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) >= size:
                break
    except httpx.HTTPError:
        pass  # the error status is what we report; a broken error body adds nothing
    return data[:size].decode("utf-8", "replace")


def _error_detail(text: str) -> str:
    """Tempo answers errors in plain text; Jaeger as ``{"errors": [{"code", "msg"}]}``."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        first = body["errors"][0]
        if isinstance(first, dict) and "msg" in first:
            return str(first["msg"])[:300]
    return " ".join(text.split())[:300] or "no message"


def _brief(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "…"


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _slices(window: Window, *, count: int, limit: int) -> list[tuple[Window, int]]:
    """Cut the window into ``count`` equal pieces sharing ``limit`` (earlier pieces get the
    remainder)."""
    count = max(1, min(count, limit))
    step = (window.end - window.start) / count
    pieces = []
    for index in range(count):
        start = window.start + step * index
        end = window.end if index == count - 1 else start + step
        share = limit // count + (1 if index < limit % count else 0)
        pieces.append((Window(start=start, end=end), share))
    return pieces


def _unix_s(window: Window) -> dict[str, int]:
    return {
        "start": math.floor(window.start.timestamp()),
        "end": math.ceil(window.end.timestamp()),
    }


def _unix_us(window: Window) -> dict[str, int]:
    return {
        "start": math.floor(window.start.timestamp() * 1e6),
        "end": math.ceil(window.end.timestamp() * 1e6),
    }


def _hex_id(value: object, *, width: int) -> str:
    """A trace or span id as lower-case hex of ``width`` digits, from hex (Tempo's search
    trims leading zeros; Jaeger may send 16 digits for a 128-bit id with a zero high half) or
    base64 (Tempo's OTLP JSON encodes bytes fields that way)."""
    if not isinstance(value, str) or not value:
        raise _ShapeError(f"expected an id string, got {value!r:.40}")
    text = value.strip()
    if len(text) <= width and all(c in "0123456789abcdefABCDEF" for c in text):
        return text.lower().zfill(width)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _ShapeError(f"id {text!r:.40} is neither hex nor base64") from exc
    if len(raw) * 2 != width:
        raise _ShapeError(f"id {text!r:.40} has {len(raw)} bytes, expected {width // 2}")
    return raw.hex()


def _optional_hex_id(value: object, *, width: int) -> str | None:
    if value in (None, ""):
        return None
    parsed = _hex_id(value, width=width)
    return None if set(parsed) == {"0"} else parsed


def _as_list(value: object, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _ShapeError(f"expected a list at {what}, got {type(value).__name__}")
    return value


def _as_dict(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _ShapeError(f"expected an object at {what}, got {type(value).__name__}")
    return value


def _as_int(value: object, what: str) -> int:
    if isinstance(value, bool):
        raise _ShapeError(f"expected an integer at {what}, got a boolean")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            pass
    raise _ShapeError(f"expected an integer at {what}, got {value!r:.40}")


def _scalar(value: object, *, max_chars: int) -> tracing.AttributeValue:
    if isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= max_chars else text[: max_chars - 1] + "…"


# --- OTLP JSON (Tempo) --------------------------------------------------------------------


def _otlp_value(value: object, *, max_chars: int) -> tracing.AttributeValue:
    """An OTLP ``AnyValue`` as a scalar (``intValue`` arrives as a decimal string)."""
    body = _as_dict(value, "attribute value")
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in body:
            return _scalar(body[key], max_chars=max_chars)
    if "intValue" in body:
        return _as_int(body["intValue"], "intValue")
    if "arrayValue" in body:
        items = _as_list(_as_dict(body["arrayValue"], "arrayValue").get("values"), "values")
        return _scalar(
            [_otlp_value(item, max_chars=max_chars) for item in items], max_chars=max_chars
        )
    return _scalar(body, max_chars=max_chars)


def _otlp_attributes(items: object, *, max_chars: int) -> dict[str, tracing.AttributeValue]:
    attrs: dict[str, tracing.AttributeValue] = {}
    for item in _as_list(items, "attributes"):
        entry = _as_dict(item, "attribute")
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


def _otlp_span(span: object, *, resource: Mapping[str, Any], max_chars: int) -> tracing.SpanPayload:
    body = _as_dict(span, "span")
    start = _as_int(body.get("startTimeUnixNano", 0), "startTimeUnixNano")
    end = _as_int(body.get("endTimeUnixNano", start), "endTimeUnixNano")
    status = body.get("status")
    status = status if isinstance(status, dict) else {}
    attrs = {k: v for k, v in resource.items() if k != "service.name"}
    attrs.update(_otlp_attributes(body.get("attributes"), max_chars=max_chars))
    return {
        "trace_id": _hex_id(body.get("traceId"), width=32),
        "span_id": _hex_id(body.get("spanId"), width=16),
        "parent_id": _optional_hex_id(body.get("parentSpanId"), width=16),
        "service": str(resource.get("service.name", "unknown")),
        "operation": str(body.get("name", "")),
        "kind": _enum(body.get("kind"), names=_KIND_NUMBERS, prefix="span_kind_"),
        "start_us": start // 1000,
        "duration_us": max(0, end - start) // 1000,
        "status": _enum(status.get("code"), names=_STATUS_NUMBERS, prefix="status_code_"),
        "attrs": attrs,
    }


def _otlp_resource_spans(document: Mapping[str, Any]) -> list[Any]:
    """The ``ResourceSpans`` list of any of Tempo's trace shapes: ``{"batches": …}`` (v1),
    ``{"trace": {"resourceSpans"|"batches": …}}`` (v2) or plain OTLP ``{"resourceSpans": …}``."""
    if "trace" in document:
        document = _as_dict(document["trace"] or {}, "trace")
    for key in ("resourceSpans", "batches"):
        if key in document:
            return _as_list(document[key], key)
    if not document:
        return []
    raise _ShapeError(f"no resourceSpans or batches among keys {sorted(document)[:5]}")


def spans_from_otlp(
    document: object, *, max_attribute_chars: int = 1024
) -> list[tracing.SpanPayload]:
    """Spans of an OTLP JSON trace document, in the internal shape. Raises ``ValueError`` on a
    document of the wrong shape (the connectors turn that into error evidence)."""
    try:
        return _spans_from_otlp(_as_dict(document, "document"), max_chars=max_attribute_chars)
    except _ShapeError as exc:
        raise ValueError(str(exc)) from exc


def _spans_from_otlp(document: Mapping[str, Any], *, max_chars: int) -> list[tracing.SpanPayload]:
    spans: list[tracing.SpanPayload] = []
    for batch in _otlp_resource_spans(document):
        body = _as_dict(batch, "resourceSpans[]")
        resource = _otlp_attributes(
            _as_dict(body.get("resource") or {}, "resource").get("attributes"), max_chars=max_chars
        )
        scopes = body.get("scopeSpans", body.get("instrumentationLibrarySpans"))
        for scope in _as_list(scopes, "scopeSpans"):
            for span in _as_list(_as_dict(scope, "scopeSpans[]").get("spans"), "spans"):
                spans.append(_otlp_span(span, resource=resource, max_chars=max_chars))
    return spans


# --- Jaeger UI JSON -----------------------------------------------------------------------


def _jaeger_tags(items: object, *, max_chars: int) -> dict[str, tracing.AttributeValue]:
    tags: dict[str, tracing.AttributeValue] = {}
    for item in _as_list(items, "tags"):
        entry = _as_dict(item, "tag")
        key = entry.get("key")
        if not isinstance(key, str):
            continue
        value = entry.get("value")
        if entry.get("type") == "int64" and isinstance(value, str):
            value = _as_int(value, f"tag {key}")
        tags[key] = _scalar(value, max_chars=max_chars)
    return tags


def _jaeger_parent(span: Mapping[str, Any]) -> str | None:
    for ref in _as_list(span.get("references"), "references"):
        entry = _as_dict(ref, "reference")
        if entry.get("refType") == "CHILD_OF":
            return _optional_hex_id(entry.get("spanID"), width=16)
    return _optional_hex_id(span.get("parentSpanID"), width=16)


def _jaeger_status(tags: Mapping[str, tracing.AttributeValue]) -> str:
    code = str(tags.get("otel.status_code", "")).lower()
    if code == "error" or tags.get("error") in (True, "true"):
        return tracing.SpanStatus.ERROR.value
    return tracing.SpanStatus.OK.value if code == "ok" else tracing.SpanStatus.UNSET.value


def _jaeger_span(
    span: object, *, processes: Mapping[str, Any], max_chars: int
) -> tracing.SpanPayload:
    body = _as_dict(span, "span")
    process = _as_dict(processes.get(str(body.get("processID")), {}), "process")
    tags = _jaeger_tags(body.get("tags"), max_chars=max_chars)
    attrs = _jaeger_tags(process.get("tags"), max_chars=max_chars)
    attrs.update({k: v for k, v in tags.items() if k not in _JAEGER_STATUS_TAGS})
    kind = str(tags.get("span.kind", "unspecified")).lower()
    return {
        "trace_id": _hex_id(body.get("traceID"), width=32),
        "span_id": _hex_id(body.get("spanID"), width=16),
        "parent_id": _jaeger_parent(body),
        "service": str(process.get("serviceName", "unknown")),
        "operation": str(body.get("operationName", "")),
        "kind": kind if kind in _KIND_NUMBERS else "unspecified",
        "start_us": _as_int(body.get("startTime", 0), "startTime"),
        "duration_us": max(0, _as_int(body.get("duration", 0), "duration")),
        "status": _jaeger_status(tags),
        "attrs": attrs,
    }


def spans_from_jaeger(
    trace: object, *, max_attribute_chars: int = 1024
) -> list[tracing.SpanPayload]:
    """Spans of one trace in the Jaeger UI's JSON (``{"traceID", "spans", "processes"}``).
    Raises ``ValueError`` on a trace of the wrong shape."""
    try:
        body = _as_dict(trace, "trace")
        processes = _as_dict(body.get("processes") or {}, "processes")
        return [
            _jaeger_span(span, processes=processes, max_chars=max_attribute_chars)
            for span in _as_list(body.get("spans"), "spans")
        ]
    except _ShapeError as exc:
        raise ValueError(str(exc)) from exc


# --- the sample both connectors build -----------------------------------------------------


@dataclass
class _Sample:
    """Traces gathered for one ``sample_spans`` call, within the limits."""

    limits: Limits
    service: str | None
    namespace: str | None
    spans: list[tracing.SpanPayload]
    traces: int = 0
    truncated: bool = False
    skipped: int = 0
    first_skip: str = ""

    def add(self, trace_spans: list[tracing.SpanPayload]) -> None:
        if not trace_spans or not self._in_namespace(trace_spans):
            return
        if len(self.spans) + len(trace_spans) > self.limits.max_spans:
            self.truncated = True
            return
        self.spans.extend(trace_spans)
        self.traces += 1

    def skip(self, reason: str) -> None:
        self.skipped += 1
        self.first_skip = self.first_skip or reason

    @property
    def full(self) -> bool:
        return self.truncated or self.traces >= self.limits.max_traces

    def _in_namespace(self, trace_spans: list[tracing.SpanPayload]) -> bool:
        """Keep a trace unless the service's own spans say they run in another namespace."""
        if not self.namespace:
            return True
        spaces = {
            s["attrs"].get("k8s.namespace.name")
            for s in trace_spans
            if self.service is None or s["service"] == self.service
        }
        spaces.discard(None)
        return not spaces or self.namespace in spaces

    def payload(self, bytes_read: int) -> tracing.SpanSamplePayload:
        return {
            "spans": self.spans,
            "traces": self.traces,
            "truncated": self.truncated,
            "bytes_read": bytes_read,
        }


def _sample_summary(system: str, sample: _Sample, *, where: str, slices: int) -> str:
    text = (
        f"{system}: {_plural(sample.traces, 'trace')}, {_plural(len(sample.spans), 'span')} {where}"
    )
    if slices > 1:
        text += f" (searched in {slices} slices of the window)"
    if sample.truncated:
        text += f"; stopped at the {sample.limits.max_spans:,}-span cap"
    if sample.skipped:
        text += f"; {_plural(sample.skipped, 'trace')} not read ({sample.first_skip})"
    return text


class _Connector:
    """What both connectors share: the client, evidence building, lifecycle."""

    system = ""

    def __init__(self, client: _Client) -> None:
        self._client = client
        self.url = client.url
        self.limits = client.limits

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> _Connector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _evidence(
        self, query: str, window: Window | None, status: Status, summary: str, raw: object
    ) -> Evidence:
        return Evidence.make(
            source=SOURCE, query=query, window=window, status=status, summary=summary, raw=raw
        )

    def _failed(self, query: str, window: Window | None, failure: _CallError) -> Evidence:
        return self._evidence(query, window, failure.status, failure.summary, None)

    def _shape_failure(self, path: str, exc: Exception) -> _CallError:
        return _CallError(
            Status.ERROR,
            f"{self.system} at {self.url} answered {path} with JSON of an unexpected shape "
            f"({_brief(exc)}): check that the URL points at the {self.system} query API",
        )

    def _finish_sample(
        self,
        query: str,
        window: Window | None,
        sample: _Sample,
        *,
        budget: _Budget,
        where: str,
        slices: int = 1,
    ) -> Evidence:
        summary = _sample_summary(self.system, sample, where=where, slices=slices)
        payload = sample.payload(budget.bytes_read)
        if sample.spans:
            return self._evidence(query, window, Status.OK, summary, payload)
        status = Status.ERROR if sample.skipped else Status.EMPTY
        return self._evidence(query, window, status, summary, payload)

    def _names(self, query: str, window: Window, names: Sequence[object], what: str) -> Evidence:
        found = sorted({str(name) for name in names if isinstance(name, str | int | float)})
        if not found:
            return self._evidence(query, window, Status.EMPTY, f"{self.system}: no {what}s", [])
        shown = ", ".join(found[:8]) + ("…" if len(found) > 8 else "")
        summary = f"{self.system}: {_plural(len(found), what)} ({shown})"
        return self._evidence(query, window, Status.OK, summary, found)


# --- Tempo ----------------------------------------------------------------------------------


def traceql_for(service: str | None) -> str:
    """The TraceQL that finds traces touching a service (every trace when ``None``)."""
    if not service:
        return "{ }"
    return "{ resource.service.name = " + json.dumps(service) + " }"


class TempoConnector(_Connector):
    """A :class:`~diagnose.domain.traces.TraceSource` over Grafana Tempo's HTTP API.

    ``url`` is the query frontend (``http://tempo:3200``, with any path prefix). ``tenant``
    goes in ``X-Scope-OrgID`` on every request (multi-tenant Tempo requires it); ``headers``
    carry auth (``{"Authorization": "Bearer …"}``). ``timeout_s`` bounds each request, body
    included.
    """

    system = "Tempo"

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        headers: Mapping[str, str] | None = None,
        tenant: str | None = None,
        limits: Limits | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        all_headers = dict(headers or {})
        if tenant:
            all_headers["X-Scope-OrgID"] = tenant
        super().__init__(
            _Client(
                url,
                system=self.system,
                timeout_s=timeout_s,
                headers=all_headers,
                limits=limits or Limits(),
                transport=transport,
            )
        )
        self._trace_path = "/api/v2/traces/"

    def sample_spans(
        self, *, service: str | None, namespace: str | None, window: Window, limit_traces: int
    ) -> Evidence:
        """Search TraceQL ``{ resource.service.name = "…" }`` slice by slice, then read each
        trace found. raw: :class:`~diagnose.domain.traces.SpanSamplePayload`."""
        limit = max(1, min(limit_traces, self.limits.max_traces))
        query_text = traceql_for(service)
        params: dict[str, str | int] = {
            "q": query_text,
            **_unix_s(window),
            "limit": limit,
            "spss": 1,
        }
        query = self._client.full_url("/api/search", params)
        budget = self._client.budget()
        sample = _Sample(self.limits, service, namespace, spans=[])
        try:
            trace_ids = self._search(query_text, window=window, limit=limit, budget=budget)
            for trace_id in trace_ids:
                if sample.full:
                    break
                self._read_into(sample, trace_id, window=window, budget=budget)
        except _CallError as failure:
            return self._failed(query, window, failure)
        where = f"matching {query_text}" + (f" in namespace {namespace}" if namespace else "")
        slices = min(self.limits.slices, limit)
        return self._finish_sample(query, window, sample, budget=budget, where=where, slices=slices)

    def get_trace(self, trace_id: str, *, window: Window | None = None) -> Evidence:
        """One trace by id (``/api/v2/traces/<id>``, falling back to ``/api/traces/<id>``)."""
        trace_hex = _hex_id(trace_id, width=32)
        params = _unix_s(window) if window else {}
        query = self._client.full_url(self._trace_path + trace_hex, params)
        budget = self._client.budget()
        try:
            spans = self._fetch_trace(trace_hex, window=window, budget=budget)
        except _CallError as failure:
            return self._failed(query, window, failure)
        sample = _Sample(self.limits, None, None, spans=[])
        sample.add(spans or [])
        where = f"in trace {trace_hex}" if spans is not None else f"(no trace {trace_hex})"
        return self._finish_sample(query, window, sample, budget=budget, where=where)

    def list_services(self, *, window: Window) -> Evidence:
        """``/api/search/tag/service.name/values`` over the window. raw: ``list[str]``."""
        path = "/api/search/tag/service.name/values"
        params = _unix_s(window)
        query = self._client.full_url(path, params)
        try:
            body = self._get(path, params=params, budget=self._client.budget())
            values = _as_list(_as_dict(body, "answer").get("tagValues"), "tagValues")
        except _CallError as failure:
            return self._failed(query, window, failure)
        except _ShapeError as exc:
            return self._failed(query, window, self._shape_failure(path, exc))
        return self._names(query, window, values, "service")

    def list_operations(self, service: str, *, window: Window) -> Evidence:
        """``/api/v2/search/tag/name/values`` filtered to the service. raw: ``list[str]``."""
        path = "/api/v2/search/tag/name/values"
        params: dict[str, str | int] = {"q": traceql_for(service), **_unix_s(window)}
        query = self._client.full_url(path, params)
        try:
            body = self._get(path, params=params, budget=self._client.budget())
            items = _as_list(_as_dict(body, "answer").get("tagValues"), "tagValues")
            values = [_as_dict(item, "tagValues[]").get("value") for item in items]
        except _CallError as failure:
            return self._failed(query, window, failure)
        except _ShapeError as exc:
            return self._failed(query, window, self._shape_failure(path, exc))
        return self._names(query, window, values, "operation")

    # --- internals ----------------------------------------------------------------------

    def _get(self, path: str, *, params: Mapping[str, str | int], budget: _Budget) -> Any:
        try:
            return self._client.get_json(path, params=params, budget=budget)
        except _NotFoundError as exc:
            raise _CallError(
                Status.ERROR,
                f"Tempo at {self.url} has no {path} (HTTP 404: {exc}): check the URL and its "
                "path prefix; it must point at the query frontend",
            ) from exc

    def _search(self, traceql: str, *, window: Window, limit: int, budget: _Budget) -> list[str]:
        found: dict[str, None] = {}
        for piece, share in _slices(window, count=self.limits.slices, limit=limit):
            params: dict[str, str | int] = {
                "q": traceql,
                **_unix_s(piece),
                "limit": share,
                "spss": 1,
            }
            body = self._get("/api/search", params=params, budget=budget)
            try:
                for item in _as_list(_as_dict(body, "answer").get("traces"), "traces"):
                    found[_hex_id(_as_dict(item, "traces[]").get("traceID"), width=32)] = None
            except _ShapeError as exc:
                raise self._shape_failure("/api/search", exc) from exc
        return list(found)[:limit]

    def _read_into(
        self, sample: _Sample, trace_id: str, *, window: Window, budget: _Budget
    ) -> None:
        try:
            spans = self._fetch_trace(trace_id, window=window, budget=budget)
        except _CallError as failure:
            if failure.status is Status.DENIED or budget.bytes_left <= 0:
                raise
            sample.skip(failure.summary)
            return
        if spans is None:
            sample.skip(f"trace {trace_id} found by search but not by id")
            return
        sample.add(spans)

    def _fetch_trace(
        self, trace_id: str, *, window: Window | None, budget: _Budget
    ) -> list[tracing.SpanPayload] | None:
        """The trace's spans, or None when Tempo does not know it (404 on both routes)."""
        params = _unix_s(window) if window else {}
        paths = [self._trace_path] + (
            ["/api/traces/"] if self._trace_path != "/api/traces/" else []
        )
        for path in paths:
            try:
                body = self._client.get_json(path + trace_id, params=params, budget=budget)
            except _NotFoundError:
                continue
            if path != self._trace_path:
                self._trace_path = path  # an older Tempo: remember it has no v2 route
            try:
                return _spans_from_otlp(
                    _as_dict(body, "answer"), max_chars=self.limits.max_attribute_chars
                )
            except _ShapeError as exc:
                raise self._shape_failure(path + trace_id, exc) from exc
        return None


# --- Jaeger ---------------------------------------------------------------------------------


class JaegerConnector(_Connector):
    """A :class:`~diagnose.domain.traces.TraceSource` over Jaeger's query service HTTP JSON API
    (the one the Jaeger UI uses, ``http://jaeger-query:16686``).

    ``headers`` carry auth; ``tenant`` goes in ``tenant_header`` (Jaeger's multi-tenancy
    default is ``x-tenant``). ``timeout_s`` bounds each request, body included.
    """

    system = "Jaeger"

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        headers: Mapping[str, str] | None = None,
        tenant: str | None = None,
        tenant_header: str = "x-tenant",
        limits: Limits | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        all_headers = dict(headers or {})
        if tenant:
            all_headers[tenant_header] = tenant
        super().__init__(
            _Client(
                url,
                system=self.system,
                timeout_s=timeout_s,
                headers=all_headers,
                limits=limits or Limits(),
                transport=transport,
            )
        )

    def sample_spans(
        self, *, service: str | None, namespace: str | None, window: Window, limit_traces: int
    ) -> Evidence:
        """``/api/traces?service=…&start=…&end=…&limit=…`` slice by slice (whole traces come
        back in the search answer). raw: :class:`~diagnose.domain.traces.SpanSamplePayload`."""
        limit = max(1, min(limit_traces, self.limits.max_traces))
        params = self._search_params(service or "", window, limit)
        query = self._client.full_url("/api/traces", params)
        if not service:
            failure = _CallError(Status.ERROR, "Jaeger searches one service at a time: name one")
            return self._failed(query, window, failure)
        budget = self._client.budget()
        sample = _Sample(self.limits, service, namespace, spans=[])
        try:
            for piece, share in _slices(window, count=self.limits.slices, limit=limit):
                if sample.full:
                    break
                body = self._get("/api/traces", self._search_params(service, piece, share), budget)
                self._add_traces(sample, body)
        except _CallError as failure:
            return self._failed(query, window, failure)
        where = f"of service {service}" + (f" in namespace {namespace}" if namespace else "")
        slices = min(self.limits.slices, limit)
        return self._finish_sample(query, window, sample, budget=budget, where=where, slices=slices)

    def get_trace(self, trace_id: str, *, window: Window | None = None) -> Evidence:
        """One trace by id (``/api/traces/<id>``); status ``empty`` on 404."""
        trace_hex = _hex_id(trace_id, width=32)
        path = "/api/traces/" + trace_hex
        params = _unix_us(window) if window else {}
        query = self._client.full_url(path, params)
        budget = self._client.budget()
        sample = _Sample(self.limits, None, None, spans=[])
        try:
            body = self._client.get_json(path, params=params, budget=budget)
            self._add_traces(sample, body)
        except _NotFoundError:
            where = f"(no trace {trace_hex})"
        except _CallError as failure:
            return self._failed(query, window, failure)
        else:
            where = f"in trace {trace_hex}"
        return self._finish_sample(query, window, sample, budget=budget, where=where)

    def list_services(self, *, window: Window) -> Evidence:
        """``/api/services`` (Jaeger lists every service it knows; the window is recorded only).
        raw: ``list[str]``."""
        return self._list("/api/services", window, "service")

    def list_operations(self, service: str, *, window: Window) -> Evidence:
        """``/api/services/<service>/operations``. raw: ``list[str]``."""
        path = "/api/services/" + httpx.URL("/" + service).raw_path.decode()[1:] + "/operations"
        return self._list(path, window, "operation")

    # --- internals ----------------------------------------------------------------------

    def _search_params(self, service: str, window: Window, limit: int) -> dict[str, str | int]:
        return {"service": service, **_unix_us(window), "limit": limit, "lookback": "custom"}

    def _get(self, path: str, params: Mapping[str, str | int], budget: _Budget) -> Any:
        try:
            return self._client.get_json(path, params=params, budget=budget)
        except _NotFoundError as exc:
            raise _CallError(
                Status.ERROR,
                f"Jaeger at {self.url} has no {path} (HTTP 404: {exc}): check the URL; it must "
                "point at jaeger-query (port 16686), with any --query.base-path",
            ) from exc

    def _add_traces(self, sample: _Sample, body: object) -> None:
        try:
            traces = _as_list(_as_dict(body, "answer").get("data"), "data")
            for trace in traces:
                if sample.full:
                    break
                sample.add(
                    spans_from_jaeger(trace, max_attribute_chars=self.limits.max_attribute_chars)
                )
        except (_ShapeError, ValueError) as exc:
            raise self._shape_failure("/api/traces", exc) from exc

    def _list(self, path: str, window: Window, what: str) -> Evidence:
        query = self._client.full_url(path)
        try:
            body = self._get(path, {}, self._client.budget())
            values = _as_list(_as_dict(body, "answer").get("data"), "data")
        except _CallError as failure:
            return self._failed(query, window, failure)
        except _ShapeError as exc:
            return self._failed(query, window, self._shape_failure(path, exc))
        return self._names(query, window, values, what)
