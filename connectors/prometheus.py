"""Prometheus: the only module that imports ``prometheus_api_client`` (and the ``requests``
session it runs on).

:class:`PrometheusConnector` implements :class:`diagnose.domain.ports.MetricSource` over the
HTTP API (``/api/v1/labels``, ``/api/v1/series``, ``/api/v1/query_range``). Every call returns
one :class:`Evidence`; the outside world saying no (refused, timed out, 4xx/5xx, bad PromQL) is
evidence with a status, never an exception.

One choke point, :meth:`PrometheusConnector._fetch`, owns timeouts, retries, auth headers and
error translation. Two things the client library does that we undo:

- it retries read timeouts and 5xx three times with a 1 s backoff (up to ~4x the timeout for a
  hanging server): we mount it with ``Retry(0)`` and retry ourselves, within one timeout;
- it reports a non-200 answer as an exception whose text is the ``repr`` of the body: a
  response hook raises :class:`_HttpError` first, carrying Prometheus's ``errorType``/``error``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypedDict, TypeVar

import requests
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from connectors import _http
from diagnose import settings as config
from diagnose.domain.models import Evidence, Status, Window
from diagnose.domain.ports import SeriesPayload

T = TypeVar("T")

SOURCE = "prometheus"
PROMETHEUS_MAX_POINTS = 11_000
"""Prometheus refuses a range query that would return more points per series than this."""

_NOT_RETRIED_ERROR_TYPES = frozenset({"timeout", "canceled"})
"""Prometheus's own query timeout answers 503 too; asking again would only time out again."""


class _HttpError(Exception):
    """Prometheus (or a proxy in front of it) answered with an HTTP error status."""

    def __init__(self, status: int, *, error_type: str, message: str) -> None:
        super().__init__(f"HTTP {status} {error_type}: {message}")
        self.status = status
        self.error_type = error_type
        self.message = message


class _CallError(Exception):
    """A call that ended without data: the status and the one-line summary to report."""

    def __init__(self, status: Status, summary: str) -> None:
        super().__init__(summary)
        self.status = status
        self.summary = summary


class _RawSeries(TypedDict, total=False):
    """One series of a range query's (or a range-vector instant query's) ``matrix`` result, as
    the HTTP API sends it: its labels and ``[unix seconds, "value"]`` pairs."""

    metric: dict[str, str]
    values: list[tuple[float, str]]


class PrometheusConnector:
    """A :class:`~diagnose.domain.ports.MetricSource` over a Prometheus-compatible HTTP API.

    ``timeout_s`` bounds each call (connect, then each read; Prometheus is also asked to give up
    a little earlier so its own message wins). ``headers`` go on every request (e.g.
    ``{"Authorization": "Bearer …"}``). ``max_series`` caps the series one call returns;
    ``max_points`` caps the points per series by raising the step.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 10.0,
        headers: Mapping[str, str] | None = None,
        max_series: int = 20_000,
        max_points: int = PROMETHEUS_MAX_POINTS,
    ) -> None:
        if timeout_s <= 0 or max_series < 1 or not 2 <= max_points <= PROMETHEUS_MAX_POINTS:
            raise ValueError(
                f"need timeout_s > 0, max_series >= 1 and 2 <= max_points <= "
                f"{PROMETHEUS_MAX_POINTS}; got {timeout_s}, {max_series}, {max_points}"
            )
        self.url = url.rstrip("/")
        self._timeout_s = timeout_s
        self._max_series = max_series
        self._max_points = max_points
        self._retry = _http.RetryPolicy(budget_s=timeout_s)
        session = requests.Session()
        session.hooks["response"].append(_raise_http_error)
        self._client = PrometheusConnect(
            url=self.url,
            headers=dict(headers or {}),
            session=session,
            timeout=timeout_s,
            # read=False: a read timeout stays a ReadTimeout; wrapped in MaxRetryError, requests
            # would report it as a ConnectionError.
            retry=Retry(total=0, read=False, raise_on_status=False),
        )

    @classmethod
    def from_settings(
        cls, settings: config.PrometheusSettings, *, max_series: int
    ) -> PrometheusConnector | None:
        """The connector the settings describe, or None when no URL is set (no metrics)."""
        if not settings.url:
            return None
        return cls(settings.url, timeout_s=settings.timeout_s, max_series=max_series)

    def close(self) -> None:
        """Release the HTTP connection pool."""
        self._client.close()

    def __enter__(self) -> PrometheusConnector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- MetricSource ---------------------------------------------------------------------

    def label_names(self, *, window: Window) -> Evidence:
        """Label names with samples in the window. raw: ``list[str]``."""
        query = "/api/v1/labels"
        params = {"start": _unix(window.start), "end": _unix(window.end)}
        try:
            found = self._fetch(lambda: self._client.get_label_names(params=params))
        except _CallError as failure:
            return self._failed(query, window=window, failure=failure)
        names = sorted(str(name) for name in found)
        if not names:
            return self._evidence(query, window, Status.EMPTY, "no labels in the window", [])
        summary = f"{_http.plural(len(names), 'label name')}"
        return self._evidence(query, window, Status.OK, summary, names)

    def find_series(self, selectors: Sequence[str], *, window: Window) -> Evidence:
        """Label sets of the series matching any selector in the window.
        raw: ``list[dict[str, str]]``, each with ``__name__``, sorted, at most ``max_series``."""
        if not selectors:
            raise ValueError("find_series needs at least one selector")
        query = "/api/v1/series?" + "&".join(f"match[]={s}" for s in selectors)
        params = {"match[]": list(selectors)}
        try:
            found = self._fetch(
                lambda: self._client.get_series(window.start, window.end, params=dict(params))
            )
        except _CallError as failure:
            return self._failed(query, window=window, failure=failure)
        labelsets = sorted(({str(k): str(v) for k, v in s.items()} for s in found), key=_sort_key)
        if not labelsets:
            return self._evidence(query, window, Status.EMPTY, "no series match", [])
        kept, note = self._cap(labelsets)
        return self._evidence(query, window, Status.OK, _describe_labelsets(kept) + note, kept)

    def query_range(self, query: str, *, window: Window, step_s: float) -> Evidence:
        """Evaluate PromQL over the window. raw: ``list[SeriesPayload]``, at most ``max_series``.

        The step is raised when needed so no series has more than ``max_points`` points; the
        summary says so.
        """
        step, step_note = self._clamp_step(step_s, window=window)
        try:
            result = self._fetch(lambda: self._query_range(query, window=window, step=step))
        except _CallError as failure:
            return self._failed(query, window=window, failure=failure)
        series = sorted((_to_series(item) for item in result), key=lambda s: _sort_key(s["labels"]))
        if not series:
            summary = f"no series (step {_format_step(step)}s)" + step_note
            return self._evidence(query, window, Status.EMPTY, summary, [])
        kept, cap_note = self._cap(series)
        summary = _describe_series(kept, step=step) + step_note + cap_note
        return self._evidence(query, window, Status.OK, summary, kept)

    def query_samples(self, selector: str, *, window: Window) -> Evidence:
        """The raw samples of a series selector over the window, at their own timestamps (an
        instant query of ``selector[range]`` at the window's end): no step, so no sample is
        repeated and none is delayed to a step boundary. raw: ``list[SeriesPayload]``, at most
        ``max_series``."""
        seconds = max(1, math.ceil((window.end - window.start).total_seconds()))
        query = f"{selector}[{seconds}s]"
        try:
            result = self._fetch(lambda: self._instant(query, at=window.end))
        except _CallError as failure:
            return self._failed(query, window=window, failure=failure)
        series = sorted((_to_series(item) for item in result), key=lambda s: _sort_key(s["labels"]))
        if not series:
            return self._evidence(query, window, Status.EMPTY, "no series (raw samples)", [])
        kept, cap_note = self._cap(series)
        kept = [_last_points(s, limit=self._max_points) for s in kept]
        points = [len(s["t"]) for s in kept]
        summary = (
            f"{_http.plural(len(kept), 'series')}, "
            f"{_span(min(points), max(points))} raw samples each" + cap_note
        )
        return self._evidence(query, window, Status.OK, summary, kept)

    # --- the choke point ------------------------------------------------------------------

    def _fetch(self, call: Callable[[], T]) -> T:
        """Run one client call with our retries; translate every way it can fail."""
        try:
            return _http.call_with_retries(call, policy=self._retry, retryable=_is_retryable)
        except _HttpError as exc:
            raise self._http_failure(exc) from exc
        except requests.Timeout as exc:
            raise self._timeout_failure(exc) from exc
        except requests.ConnectionError as exc:
            raise self._connection_failure(exc) from exc
        except (requests.JSONDecodeError, PrometheusApiClientException, KeyError, TypeError) as exc:
            raise _CallError(
                Status.ERROR,
                f"{self.url} did not answer like the Prometheus HTTP API ({_brief(exc)}): "
                "check that DIAGNOSE_PROMETHEUS_URL points at Prometheus, with its path prefix",
            ) from exc
        except requests.RequestException as exc:
            raise _CallError(Status.ERROR, f"request to {self.url} failed: {_brief(exc)}") from exc

    def _query_range(self, query: str, *, window: Window, step: float) -> list[_RawSeries]:
        # The client rounds start and end to whole seconds; our params override its own, so
        # Prometheus evaluates exactly the window the evidence records.
        params = {
            "start": _unix(window.start),
            "end": _unix(window.end),
            "timeout": f"{max(1, int(self._timeout_s * 900))}ms",  # 90%: its message wins
        }
        step_text = _format_step(step)
        result: list[_RawSeries] = self._client.custom_query_range(
            query, window.start, window.end, step_text, params=params
        )
        return result

    def _instant(self, query: str, *, at: datetime) -> list[_RawSeries]:
        params = {"time": _unix(at), "timeout": f"{max(1, int(self._timeout_s * 900))}ms"}
        result: list[_RawSeries] = self._client.custom_query(query, params=params)
        return result

    def _clamp_step(self, step_s: float, *, window: Window) -> tuple[float, str]:
        """The step to ask for, and a note when it had to be raised to respect max_points."""
        if not step_s > 0 or math.isinf(step_s):
            raise ValueError(f"step_s must be a positive number of seconds, got {step_s}")
        # n points span (n - 1) steps; round up to the millisecond Prometheus keeps.
        floor = math.ceil(window.seconds * 1000 / (self._max_points - 1)) / 1000
        if step_s >= floor:
            return step_s, ""
        note = (
            f" (step raised from {_format_step(step_s)}s to {_format_step(floor)}s: "
            f"at most {self._max_points:,} points per series)"
        )
        return floor, note

    def _cap(self, items: list[T]) -> tuple[list[T], str]:
        if len(items) <= self._max_series:
            return items, ""
        note = f"; truncated to the first {self._max_series:,} of {len(items):,} series"
        return items[: self._max_series], note

    # --- error translation ----------------------------------------------------------------

    def _http_failure(self, exc: _HttpError) -> _CallError:
        where = f"Prometheus at {self.url}"
        if exc.status in (401, 403):
            return _CallError(
                Status.DENIED,
                f"{where} denied access (HTTP {exc.status}): pass credentials in the "
                "connector's headers, e.g. Authorization: Bearer <token>",
            )
        if exc.status == 404:
            return _CallError(
                Status.ERROR,
                f"{where} has no such API path (HTTP 404): check DIAGNOSE_PROMETHEUS_URL, "
                "including any path prefix such as /prometheus",
            )
        if exc.error_type in _NOT_RETRIED_ERROR_TYPES:
            return _CallError(
                Status.ERROR,
                f"{where} gave up on the query ({exc.error_type}: {exc.message}): "
                "narrow the query or the window, or raise DIAGNOSE_PROMETHEUS_TIMEOUT_S",
            )
        if exc.status in (400, 422):
            return _CallError(
                Status.ERROR,
                f"{where} rejected the query ({exc.error_type}): {exc.message}",
            )
        return _CallError(
            Status.ERROR,
            f"{where} failed with HTTP {exc.status} ({exc.error_type}: {exc.message}): "
            "it may be restarting or overloaded; try again",
        )

    def _timeout_failure(self, exc: requests.Timeout) -> _CallError:
        if isinstance(exc, requests.ConnectTimeout):
            return _CallError(
                Status.ERROR,
                f"Prometheus at {self.url} did not accept a connection within "
                f"{self._timeout_s:g}s: check DIAGNOSE_PROMETHEUS_URL and the network path",
            )
        return _CallError(
            Status.ERROR,
            f"Prometheus at {self.url} did not answer within {self._timeout_s:g}s: narrow the "
            "query or the window, or raise DIAGNOSE_PROMETHEUS_TIMEOUT_S",
        )

    def _connection_failure(self, exc: requests.ConnectionError) -> _CallError:
        text = str(exc)
        if "refused" in text.lower():
            what = "refused the connection"
        elif "resolve" in text.lower() or "name or service" in text.lower():
            what = "could not be resolved"
        else:
            what = f"could not be reached ({_brief(exc)})"
        return _CallError(
            Status.ERROR,
            f"Prometheus at {self.url} {what}: set DIAGNOSE_PROMETHEUS_URL or start the lab "
            "with `diagnose lab up`",
        )

    # --- evidence -------------------------------------------------------------------------

    def _evidence(
        self, query: str, window: Window, status: Status, summary: str, raw: Any
    ) -> Evidence:
        return Evidence.make(
            source=SOURCE, query=query, window=window, status=status, summary=summary, raw=raw
        )

    def _failed(self, query: str, *, window: Window, failure: _CallError) -> Evidence:
        return self._evidence(query, window, failure.status, failure.summary, [])


# --- helpers ------------------------------------------------------------------------------


def _raise_http_error(response: requests.Response, *args: Any, **kwargs: Any) -> None:
    """Response hook: turn an HTTP error status into :class:`_HttpError` with Prometheus's
    own ``errorType`` and ``error`` when the body has them."""
    if response.status_code < 400:
        return
    error_type, message = "http", response.text.strip()[:300] or response.reason
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "error" in body:
        error_type = str(body.get("errorType") or error_type)
        message = str(body["error"])
    raise _HttpError(response.status_code, error_type=error_type, message=message)


def _is_retryable(exc: Exception) -> bool:
    """Connection failures (not timeouts: the server may be busy) and 5xx other than
    Prometheus's own query timeout. Never 4xx: the request itself needs fixing."""
    if isinstance(exc, _HttpError):
        return exc.status >= 500 and exc.error_type not in _NOT_RETRIED_ERROR_TYPES
    return isinstance(exc, requests.ConnectionError) and not isinstance(exc, requests.Timeout)


def _to_series(item: _RawSeries) -> SeriesPayload:
    values = item.get("values") or []
    return {
        "labels": {str(k): str(v) for k, v in item.get("metric", {}).items()},
        "t": [float(t) for t, _ in values],
        "v": [_finite(v) for _, v in values],
    }


def _last_points(series: SeriesPayload, *, limit: int) -> SeriesPayload:
    """At most ``limit`` samples of a series, the latest (the incident is at the end)."""
    if len(series["t"]) <= limit:
        return series
    return {"labels": series["labels"], "t": series["t"][-limit:], "v": series["v"][-limit:]}


def _span(low: int, high: int) -> str:
    return str(low) if low == high else f"{low}–{high}"


def _finite(value: str) -> float | None:
    """Prometheus sends sample values as strings, "NaN" and "+Inf" included."""
    number = float(value)
    return number if math.isfinite(number) else None


def _sort_key(labels: Mapping[str, str]) -> str:
    return json.dumps(labels, sort_keys=True)


def _describe_series(series: list[SeriesPayload], *, step: float) -> str:
    counts = sorted({len(s["t"]) for s in series})
    points = (
        _http.plural(counts[0], "point") if len(counts) == 1 else f"{counts[0]}–{counts[-1]} points"
    )
    return f"{_http.plural(len(series), 'series')}, {points} each, step {_format_step(step)}s"


def _describe_labelsets(labelsets: list[dict[str, str]]) -> str:
    names = {labels.get("__name__", "") for labels in labelsets}
    return f"{_http.plural(len(labelsets), 'series')} of {_http.plural(len(names), 'metric')}"


def _format_step(step: float) -> str:
    """Seconds as Prometheus parses them, to the millisecond: 15 → "15", 1.5 → "1.5"."""
    return f"{step:.3f}".rstrip("0").rstrip(".")


def _unix(moment: datetime) -> float:
    return float(moment.timestamp())


def _brief(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "…"
