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

``_fetching.Client.get_json`` is the one choke point for timeouts, retries, auth headers
(``Authorization``, Tempo's ``X-Scope-OrgID`` tenant header) and error translation. The outside
world saying no (refused, timed out, 401/403, 4xx/5xx, garbage, a body cut short or too large)
becomes evidence with a status; only our own bugs raise.

Where things are: ``tempo`` and ``jaeger`` hold the two connectors; ``_fetching`` the HTTP client,
its limits and error translation; ``_otlp`` and ``_jaeger_ui`` decode each back end's JSON (with
``_shapes`` reading untrusted JSON for both); ``_connector`` what both connectors share (the
bounded sample, window slicing, evidence). Import the public names from this package.
"""

from connectors.traces._connector import SOURCE
from connectors.traces._fetching import Limits
from connectors.traces._jaeger_ui import spans_from_jaeger
from connectors.traces._otlp import spans_from_otlp
from connectors.traces.jaeger import JaegerConnector
from connectors.traces.tempo import TempoConnector, traceql_for

__all__ = [
    "SOURCE",
    "JaegerConnector",
    "Limits",
    "TempoConnector",
    "spans_from_jaeger",
    "spans_from_otlp",
    "traceql_for",
]
