"""Jaeger's query service HTTP JSON API as a :class:`~diagnose.domain.traces.TraceSource`."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from connectors.traces import _connector, _fetching, _jaeger_ui, _shapes
from diagnose.domain.models import Evidence, Status, Window


class JaegerConnector(_connector.Connector):
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
        limits: _fetching.Limits | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        all_headers = dict(headers or {})
        if tenant:
            all_headers[tenant_header] = tenant
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

    def sample_spans(
        self, *, service: str | None, namespace: str | None, window: Window, limit_traces: int
    ) -> Evidence:
        """``/api/traces?service=…&start=…&end=…&limit=…`` slice by slice (whole traces come
        back in the search answer). raw: :class:`~diagnose.domain.traces.SpanSamplePayload`."""
        limit = max(1, min(limit_traces, self.limits.max_traces))
        params = self._search_params(service or "", window, limit)
        query = self._client.full_url("/api/traces", params)
        if not service:
            failure = _fetching.CallError(
                Status.ERROR, "Jaeger searches one service at a time: name one"
            )
            return self._failed(query, window, failure)
        budget = self._client.budget()
        sample = _connector.Sample(self.limits, service, namespace, spans=[])
        try:
            for piece, share in _connector.window_slices(
                window, count=self.limits.slices, limit=limit
            ):
                if sample.full:
                    break
                body = self._get("/api/traces", self._search_params(service, piece, share), budget)
                self._add_traces(sample, body)
        except _fetching.CallError as failure:
            return self._failed(query, window, failure)
        where = f"of service {service}" + (f" in namespace {namespace}" if namespace else "")
        slices = min(self.limits.slices, limit)
        return self._finish_sample(query, window, sample, budget=budget, where=where, slices=slices)

    def get_trace(self, trace_id: str, *, window: Window | None = None) -> Evidence:
        """One trace by id (``/api/traces/<id>``); status ``empty`` on 404."""
        trace_hex = _shapes.hex_id(trace_id, width=32)
        path = "/api/traces/" + trace_hex
        params = _connector.unix_us(window) if window else {}
        query = self._client.full_url(path, params)
        budget = self._client.budget()
        sample = _connector.Sample(self.limits, None, None, spans=[])
        try:
            body = self._client.get_json(path, params=params, budget=budget)
            self._add_traces(sample, body)
        except _fetching.NotFoundError:
            where = f"(no trace {trace_hex})"
        except _fetching.CallError as failure:
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

    def count_requests(
        self, *, service: str, operation: str, window: Window, limit: int
    ) -> Evidence:
        """One ``/api/traces?service=…&operation=…`` over the window; the traces it returns are
        counted (Jaeger's search sends them whole: the byte cap bounds the answer).
        raw: :class:`~diagnose.domain.traces.RequestCountPayload`."""
        limit = max(1, limit)
        params = {**self._search_params(service, window, limit), "operation": operation}
        query = self._client.full_url("/api/traces", params)

        def trace_ids() -> set[str]:
            body = self._get("/api/traces", params, self._client.budget())
            traces = _shapes.as_list(_shapes.as_dict(body, "answer").get("data"), "data")
            return {
                str(_shapes.as_dict(trace, "data[]").get("traceID", index))
                for index, trace in enumerate(traces)
            }

        return self._count(
            query,
            window,
            path="/api/traces",
            service=service,
            operation=operation,
            limit=limit,
            trace_ids=trace_ids,
        )

    # --- internals ----------------------------------------------------------------------

    def _search_params(self, service: str, window: Window, limit: int) -> dict[str, str | int]:
        return {
            "service": service,
            **_connector.unix_us(window),
            "limit": limit,
            "lookback": "custom",
        }

    def _get(self, path: str, params: Mapping[str, str | int], budget: _fetching.Budget) -> object:
        try:
            return self._client.get_json(path, params=params, budget=budget)
        except _fetching.NotFoundError as exc:
            raise _fetching.CallError(
                Status.ERROR,
                f"Jaeger at {self.url} has no {path} (HTTP 404: {exc}): check the URL; it must "
                "point at jaeger-query (port 16686), with any --query.base-path",
            ) from exc

    def _add_traces(self, sample: _connector.Sample, body: object) -> None:
        try:
            traces = _shapes.as_list(_shapes.as_dict(body, "answer").get("data"), "data")
            for trace in traces:
                if sample.full:
                    break
                sample.add(
                    _jaeger_ui.spans_from_jaeger(
                        trace, max_attribute_chars=self.limits.max_attribute_chars
                    )
                )
        except (_shapes.ShapeError, ValueError) as exc:
            raise self._shape_failure("/api/traces", exc) from exc

    def _list(self, path: str, window: Window, what: str) -> Evidence:
        query = self._client.full_url(path)
        try:
            body = self._get(path, {}, self._client.budget())
            values = _shapes.as_list(_shapes.as_dict(body, "answer").get("data"), "data")
        except _fetching.CallError as failure:
            return self._failed(query, window, failure)
        except _shapes.ShapeError as exc:
            return self._failed(query, window, self._shape_failure(path, exc))
        return self._names(query, window, values, what)
