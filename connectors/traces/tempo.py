"""Grafana Tempo's HTTP API as a :class:`~diagnose.domain.traces.TraceSource`."""

from __future__ import annotations

import json
from collections.abc import Mapping

import httpx

from connectors.traces import _connector, _fetching, _otlp, _shapes
from diagnose.domain import traces as tracing
from diagnose.domain.models import Evidence, Status, Window


def traceql_for_operation(service: str, operation: str) -> str:
    """The TraceQL that finds traces with a server span of ``operation`` in ``service``."""
    return (
        "{ resource.service.name = "
        + json.dumps(service)
        + " && name = "
        + json.dumps(operation)
        + " && kind = server }"
    )


def traceql_for(service: str | None) -> str:
    """The TraceQL that finds traces touching a service (every trace when ``None``)."""
    if not service:
        return "{ }"
    return "{ resource.service.name = " + json.dumps(service) + " }"


class TempoConnector(_connector.Connector):
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
        limits: _fetching.Limits | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        all_headers = dict(headers or {})
        if tenant:
            all_headers["X-Scope-OrgID"] = tenant
        super().__init__(
            _fetching.Client(
                url,
                system=self.system,
                timeout_s=timeout_s,
                headers=all_headers,
                limits=limits or _fetching.Limits(),
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
            **_connector.unix_s(window),
            "limit": limit,
            "spss": 1,
        }
        query = self._client.full_url("/api/search", params)
        budget = self._client.budget()
        sample = _connector.Sample(self.limits, service, namespace, spans=[])
        try:
            trace_ids = self._search(query_text, window=window, limit=limit, budget=budget)
            for trace_id in trace_ids:
                if sample.full:
                    break
                self._read_into(sample, trace_id, window=window, budget=budget)
        except _fetching.CallError as failure:
            return self._failed(query, window, failure)
        where = f"matching {query_text}" + (f" in namespace {namespace}" if namespace else "")
        slices = min(self.limits.slices, limit)
        return self._finish_sample(query, window, sample, budget=budget, where=where, slices=slices)

    def get_trace(self, trace_id: str, *, window: Window | None = None) -> Evidence:
        """One trace by id (``/api/v2/traces/<id>``, falling back to ``/api/traces/<id>``)."""
        trace_hex = _shapes.hex_id(trace_id, width=32)
        params = _connector.unix_s(window) if window else {}
        query = self._client.full_url(self._trace_path + trace_hex, params)
        budget = self._client.budget()
        try:
            spans = self._fetch_trace(trace_hex, window=window, budget=budget)
        except _fetching.CallError as failure:
            return self._failed(query, window, failure)
        sample = _connector.Sample(self.limits, None, None, spans=[])
        sample.add(spans or [])
        where = f"in trace {trace_hex}" if spans is not None else f"(no trace {trace_hex})"
        return self._finish_sample(query, window, sample, budget=budget, where=where)

    def list_services(self, *, window: Window) -> Evidence:
        """``/api/search/tag/service.name/values`` over the window. raw: ``list[str]``."""
        path = "/api/search/tag/service.name/values"
        params = _connector.unix_s(window)
        query = self._client.full_url(path, params)
        try:
            body = self._get(path, params=params, budget=self._client.budget())
            values = _shapes.as_list(_shapes.as_dict(body, "answer").get("tagValues"), "tagValues")
        except _fetching.CallError as failure:
            return self._failed(query, window, failure)
        except _shapes.ShapeError as exc:
            return self._failed(query, window, self._shape_failure(path, exc))
        return self._names(query, window, values, "service")

    def list_operations(self, service: str, *, window: Window) -> Evidence:
        """``/api/v2/search/tag/name/values`` filtered to the service. raw: ``list[str]``."""
        path = "/api/v2/search/tag/name/values"
        params: dict[str, str | int] = {"q": traceql_for(service), **_connector.unix_s(window)}
        query = self._client.full_url(path, params)
        try:
            body = self._get(path, params=params, budget=self._client.budget())
            items = _shapes.as_list(_shapes.as_dict(body, "answer").get("tagValues"), "tagValues")
            values = [_shapes.as_dict(item, "tagValues[]").get("value") for item in items]
        except _fetching.CallError as failure:
            return self._failed(query, window, failure)
        except _shapes.ShapeError as exc:
            return self._failed(query, window, self._shape_failure(path, exc))
        return self._names(query, window, values, "operation")

    def count_requests(
        self, *, service: str, operation: str, window: Window, limit: int
    ) -> Evidence:
        """One ``/api/search`` for ``{ resource.service.name = … && name = … && kind = server }``
        over the window; the traces it names are counted, none is read.
        raw: :class:`~diagnose.domain.traces.RequestCountPayload`."""
        limit = max(1, limit)
        query_text = traceql_for_operation(service, operation)
        params: dict[str, str | int] = {
            "q": query_text,
            **_connector.unix_s(window),
            "limit": limit,
            "spss": 1,
        }
        query = self._client.full_url("/api/search", params)

        def trace_ids() -> set[str]:
            body = self._get("/api/search", params=params, budget=self._client.budget())
            items = _shapes.as_list(_shapes.as_dict(body, "answer").get("traces"), "traces")
            return {
                _shapes.hex_id(_shapes.as_dict(item, "traces[]").get("traceID"), width=32)
                for item in items
            }

        return self._count(
            query,
            window,
            path="/api/search",
            service=service,
            operation=operation,
            limit=limit,
            trace_ids=trace_ids,
        )

    # --- internals ----------------------------------------------------------------------

    def _get(
        self, path: str, *, params: Mapping[str, str | int], budget: _fetching.Budget
    ) -> object:
        try:
            return self._client.get_json(path, params=params, budget=budget)
        except _fetching.NotFoundError as exc:
            raise _fetching.CallError(
                Status.ERROR,
                f"Tempo at {self.url} has no {path} (HTTP 404: {exc}): check the URL and its "
                "path prefix; it must point at the query frontend",
            ) from exc

    def _search(
        self, traceql: str, *, window: Window, limit: int, budget: _fetching.Budget
    ) -> list[str]:
        found: dict[str, None] = {}
        for piece, share in _connector.window_slices(window, count=self.limits.slices, limit=limit):
            params: dict[str, str | int] = {
                "q": traceql,
                **_connector.unix_s(piece),
                "limit": share,
                "spss": 1,
            }
            body = self._get("/api/search", params=params, budget=budget)
            try:
                for item in _shapes.as_list(
                    _shapes.as_dict(body, "answer").get("traces"), "traces"
                ):
                    found[
                        _shapes.hex_id(_shapes.as_dict(item, "traces[]").get("traceID"), width=32)
                    ] = None
            except _shapes.ShapeError as exc:
                raise self._shape_failure("/api/search", exc) from exc
        return list(found)[:limit]

    def _read_into(
        self, sample: _connector.Sample, trace_id: str, *, window: Window, budget: _fetching.Budget
    ) -> None:
        try:
            spans = self._fetch_trace(trace_id, window=window, budget=budget)
        except _fetching.CallError as failure:
            if failure.status is Status.DENIED or budget.bytes_left <= 0:
                raise
            sample.skip(failure.summary)
            return
        if spans is None:
            sample.skip(f"trace {trace_id} found by search but not by id")
            return
        sample.add(spans)

    def _fetch_trace(
        self, trace_id: str, *, window: Window | None, budget: _fetching.Budget
    ) -> list[tracing.SpanPayload] | None:
        """The trace's spans, or None when Tempo does not know it (404 on both routes)."""
        params = _connector.unix_s(window) if window else {}
        paths = [self._trace_path] + (
            ["/api/traces/"] if self._trace_path != "/api/traces/" else []
        )
        for path in paths:
            try:
                body = self._client.get_json(path + trace_id, params=params, budget=budget)
            except _fetching.NotFoundError:
                continue
            if path != self._trace_path:
                self._trace_path = path  # an older Tempo: remember it has no v2 route
            try:
                return _otlp.decode_spans(
                    _shapes.as_dict(body, "answer"), max_chars=self.limits.max_attribute_chars
                )
            except _shapes.ShapeError as exc:
                raise self._shape_failure(path + trace_id, exc) from exc
        return None
