"""What both trace connectors share: the bounded sample, window slicing, evidence building."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from connectors.traces import _fetching, _shapes
from diagnose.domain import traces as tracing
from diagnose.domain.models import Evidence, Status, Window, format_time

SOURCE = tracing.SOURCE


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def window_slices(window: Window, *, count: int, limit: int) -> list[tuple[Window, int]]:
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


def unix_s(window: Window) -> dict[str, int]:
    return {
        "start": math.floor(window.start.timestamp()),
        "end": math.ceil(window.end.timestamp()),
    }


def unix_us(window: Window) -> dict[str, int]:
    return {
        "start": math.floor(window.start.timestamp() * 1e6),
        "end": math.ceil(window.end.timestamp() * 1e6),
    }


@dataclass
class Sample:
    """Traces gathered for one ``sample_spans`` call, within the limits."""

    limits: _fetching.Limits
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


def _sample_summary(system: str, sample: Sample, *, where: str, slices: int) -> str:
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


class Connector:
    """What both connectors share: the client, evidence building, lifecycle."""

    system = ""

    def __init__(self, client: _fetching.Client) -> None:
        self._client = client
        self.url = client.url
        self.limits = client.limits

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> Connector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _evidence(
        self, query: str, window: Window | None, status: Status, summary: str, raw: object
    ) -> Evidence:
        return Evidence.make(
            source=SOURCE, query=query, window=window, status=status, summary=summary, raw=raw
        )

    def _failed(self, query: str, window: Window | None, failure: _fetching.CallError) -> Evidence:
        return self._evidence(query, window, failure.status, failure.summary, None)

    def _shape_failure(self, path: str, exc: Exception) -> _fetching.CallError:
        return _fetching.CallError(
            Status.ERROR,
            f"{self.system} at {self.url} answered {path} with JSON of an unexpected shape "
            f"({_fetching.brief(exc)}): check that the URL points at the {self.system} query API",
        )

    def _finish_sample(
        self,
        query: str,
        window: Window | None,
        sample: Sample,
        *,
        budget: _fetching.Budget,
        where: str,
        slices: int = 1,
    ) -> Evidence:
        summary = _sample_summary(self.system, sample, where=where, slices=slices)
        payload = sample.payload(budget.bytes_read)
        if sample.spans:
            return self._evidence(query, window, Status.OK, summary, payload)
        status = Status.ERROR if sample.skipped else Status.EMPTY
        return self._evidence(query, window, status, summary, payload)

    def _count(
        self,
        query: str,
        window: Window,
        *,
        path: str,
        service: str,
        operation: str,
        limit: int,
        trace_ids: Callable[[], set[str]],
    ) -> Evidence:
        """A ``count_requests`` answer: ``trace_ids`` asks the back end and reads the ids of
        the traces it named; a failed call or an answer of the wrong shape is an error."""
        try:
            found = len(trace_ids())
        except _fetching.CallError as failure:
            return self._failed(query, window, failure)
        except _shapes.ShapeError as exc:
            return self._failed(query, window, self._shape_failure(path, exc))
        count = min(found, limit)
        capped = found >= limit
        payload: tracing.RequestCountPayload = {
            "service": service,
            "operation": operation,
            "count": count,
            "capped": capped,
        }
        summary = (
            f"{self.system}: {'at least ' if capped else ''}{_plural(count, 'request')} of "
            f"{service} {operation!r} (traces with its server span) from "
            f"{format_time(window.start)} to {format_time(window.end)}"
        )
        return self._evidence(query, window, Status.OK, summary, payload)

    def _names(self, query: str, window: Window, names: Sequence[object], what: str) -> Evidence:
        found = sorted({str(name) for name in names if isinstance(name, str | int | float)})
        if not found:
            return self._evidence(query, window, Status.EMPTY, f"{self.system}: no {what}s", [])
        shown = ", ".join(found[:8]) + ("…" if len(found) > 8 else "")
        summary = f"{self.system}: {_plural(len(found), what)} ({shown})"
        return self._evidence(query, window, Status.OK, summary, found)
