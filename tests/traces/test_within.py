"""One short trace window and no baseline: the first half is compared with the second, and each
service's own time across them, so the evidence is not dropped."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors import traces as trace_connector
from diagnose.analysis import traces, tracing
from diagnose.domain import models

T0 = datetime(2026, 2, 3, 9, 0, tzinfo=UTC)
WINDOW = models.Window(start=T0, end=T0 + timedelta(minutes=3))


def _span(
    trace: str, span: str, parent: str | None, name: str, *, start_ms: float, ms: float
) -> Any:
    begin = int((T0.timestamp() * 1000 + start_ms) * 1e6)
    return {
        "traceId": trace, "spanId": span, "parentSpanId": parent or "", "name": name,
        "kind": 2, "startTimeUnixNano": str(begin), "endTimeUnixNano": str(begin + int(ms * 1e6)),
    }  # fmt: skip


def _document(*, slow_from_ms: float | None, seed: int = 7) -> dict[str, Any]:
    """gateway → orders → payments, one trace every 200 ms over three minutes; payments' own
    time rises from ``slow_from_ms`` on (None: never). No span carries a status or attribute,
    as in recordings that kept only timings."""
    rng = random.Random(seed)
    by_service: dict[str, list[Any]] = {"gateway": [], "orders": [], "payments": []}
    for n in range(900):
        start = n * 200.0
        pay = 20 * rng.lognormvariate(0, 0.2)
        if slow_from_ms is not None and start >= slow_from_ms:
            pay += 120 * rng.lognormvariate(0, 0.2)
        own = 8 * rng.lognormvariate(0, 0.2)
        trace = f"{rng.getrandbits(128):032x}"
        ids = [f"{rng.getrandbits(64):016x}" for _ in range(3)]
        by_service["payments"].append(
            _span(trace, ids[2], ids[1], "POST /charge", start_ms=start + 6, ms=pay)
        )
        by_service["orders"].append(
            _span(trace, ids[1], ids[0], "POST /order", start_ms=start + 3, ms=pay + own)
        )
        by_service["gateway"].append(
            _span(trace, ids[0], None, "GET /buy", start_ms=start, ms=pay + own + 9)
        )
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": s}}]},
                "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
            }
            for s, spans in by_service.items()
        ]
    }


def _evidence(document: dict[str, Any], *, service: str) -> models.Evidence:
    spans = trace_connector.spans_from_otlp(document)
    return models.Evidence.make(
        source="traces", query=f"http://jaeger/api/traces?service={service}", window=WINDOW,
        status=models.Status.OK, summary="sample",
        raw={"spans": spans, "traces": 900, "truncated": False, "bytes_read": 0},
    )  # fmt: skip


def test_a_service_slow_on_its_own_in_the_second_half_is_the_suspect() -> None:
    """payments' own time rises a minute into the window: it is the first suspect, not the
    services that wait on it."""
    spans = trace_connector.spans_from_otlp(_document(slow_from_ms=60_000))
    suspects = traces.compare_within(spans).suspects
    assert suspects and suspects[0].component == "payments"


def test_a_steady_window_names_no_suspect() -> None:
    """Nothing changes inside the window: no suspect."""
    spans = trace_connector.spans_from_otlp(_document(slow_from_ms=None))
    assert traces.compare_within(spans).suspects == ()


def test_one_window_read_through_every_service_yields_a_hint_once() -> None:
    """Samples of the same window searched by each service are read once (spans deduplicated)
    and give trace evidence the ranking uses: a hint for payments."""
    document = _document(slow_from_ms=60_000)
    found = tracing.read_traces([_evidence(document, service=s) for s in ("gateway", "payments")])
    assert [h.component for h in found.hints][:1] == ["payments"]
    assert any("first half" in note for note in found.notes)
