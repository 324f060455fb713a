"""A small OTLP/JSON generator for trace tests: a shop's checkout path, with one fault injected.

Topology of every trace (durations in ms before jitter)::

    frontend  SERVER GET /checkout                     5 self
      frontend  CLIENT POST /pay
        checkout  SERVER POST /pay                    10 self
          checkout  CLIENT SELECT orders (postgresql)  5   db.statement
          checkout  CLIENT POST /charge
            payments  SERVER POST /charge             20

Faults, in the incident window only: ``slow_dependency`` (payments +300 ms), ``slow_sql`` (the
orders query +250 ms), ``canary`` (half of checkout runs 2.14, which fails 40% of requests), and
``quiet`` (nothing: the windows differ by noise alone).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from diagnose.domain.models import Window

FAULTS = ("slow_dependency", "slow_sql", "canary", "quiet")
SQL = "SELECT * FROM orders WHERE customer_id = $1 ORDER BY created_at DESC"
T0 = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)
BASELINE = Window(start=T0, end=T0 + timedelta(minutes=30))
INCIDENT = Window(start=T0 + timedelta(minutes=30), end=T0 + timedelta(minutes=60))


@dataclass
class _Builder:
    rng: random.Random
    fault: str
    incident: bool
    spans: dict[tuple[str, str], list[dict[str, Any]]]

    def jitter(self, ms: float) -> int:
        """Nanoseconds: the mean times a log-normal factor (about ±20%)."""
        return int(ms * self.rng.lognormvariate(0, 0.2) * 1e6)

    def span(
        self,
        *,
        service: str,
        version: str,
        trace: str,
        parent: str | None,
        name: str,
        kind: int,
        start: int,
        end: int,
        attrs: dict[str, Any],
        error: bool = False,
    ) -> str:
        span_id = f"{self.rng.getrandbits(64):016x}"
        body: dict[str, Any] = {
            "traceId": trace,
            "spanId": span_id,
            "name": name,
            "kind": kind,
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(end),
            "attributes": [_attr(k, v) for k, v in attrs.items()],
            "status": {"code": 2, "message": "boom"} if error else {"code": 0},
        }
        if parent:
            body["parentSpanId"] = parent
        self.spans.setdefault((service, version), []).append(body)
        return span_id


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": str(value)}}


def _one_trace(b: _Builder, start: int) -> None:
    trace = f"{b.rng.getrandbits(128):032x}"
    canary = b.fault == "canary" and b.incident and b.rng.random() < 0.5
    version = "2.14" if canary else "2.13"
    fails = canary and b.rng.random() < 0.4
    slow_sql = b.fault == "slow_sql" and b.incident
    slow_pay = b.fault == "slow_dependency" and b.incident
    db = b.jitter(5 + (250 if slow_sql else 0))
    pay = b.jitter(20 + (300 if slow_pay else 0))
    fe_self, co_self = b.jitter(5), b.jitter(10)
    # Lay the tree out from the leaves' durations.
    t_fe = start
    t_fe_client = t_fe + fe_self // 2
    t_co = t_fe_client + 200_000
    t_db = t_co + co_self // 2
    t_pay_client = t_db + db + 100_000
    t_pay = t_pay_client + 300_000
    end_pay = t_pay + pay
    end_pay_client = end_pay + 300_000
    end_co = end_pay_client + co_self // 2
    end_fe_client = end_co + 200_000
    end_fe = end_fe_client + fe_self // 2
    code = 500 if fails else 200
    root = b.span(
        service="frontend",
        version="1.0",
        trace=trace,
        parent=None,
        name="GET /checkout",
        kind=2,
        start=t_fe,
        end=end_fe,
        error=fails,
        attrs={"http.route": "/checkout", "http.response.status_code": code},
    )
    fc = b.span(
        service="frontend",
        version="1.0",
        trace=trace,
        parent=root,
        name="POST /pay",
        kind=3,
        start=t_fe_client,
        end=end_fe_client,
        error=fails,
        attrs={"http.response.status_code": code, "server.address": "checkout"},
    )
    co = b.span(
        service="checkout",
        version=version,
        trace=trace,
        parent=fc,
        name="POST /pay",
        kind=2,
        start=t_co,
        end=end_co,
        error=fails,
        attrs={"http.route": "/pay", "http.response.status_code": code},
    )
    b.span(
        service="checkout",
        version=version,
        trace=trace,
        parent=co,
        name="SELECT orders",
        kind=3,
        start=t_db,
        end=t_db + db,
        attrs={
            "db.system": "postgresql",
            "db.name": "shop",
            "db.statement": SQL,
            "server.address": "postgres",
        },
    )
    pc = b.span(
        service="checkout",
        version=version,
        trace=trace,
        parent=co,
        name="POST /charge",
        kind=3,
        start=t_pay_client,
        end=end_pay_client,
        attrs={"http.response.status_code": 200, "server.address": "payments"},
    )
    b.span(
        service="payments",
        version="3.1",
        trace=trace,
        parent=pc,
        name="POST /charge",
        kind=2,
        start=t_pay,
        end=end_pay,
        attrs={"http.route": "/charge", "http.response.status_code": 200},
    )


def _resource(service: str, version: str) -> dict[str, Any]:
    attrs = {
        "service.name": service,
        "service.version": version,
        "k8s.namespace.name": "shop",
        "k8s.deployment.name": service,
    }
    return {"attributes": [_attr(k, v) for k, v in attrs.items()]}


def make_document(
    fault: str,
    *,
    traces_per_window: int = 60,
    seed: int = 7,
    baseline: Window = BASELINE,
    incident: Window = INCIDENT,
) -> dict[str, Any]:
    """One ``ExportTraceServiceRequest`` covering both windows."""
    if fault not in FAULTS:
        raise ValueError(f"fault must be one of {FAULTS}")
    rng = random.Random(seed)
    spans: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for window, incident_now in ((baseline, False), (incident, True)):
        builder = _Builder(rng, fault, incident_now, spans)
        step = window.seconds / traces_per_window
        for index in range(traces_per_window):
            moment = window.start + timedelta(seconds=step * (index + rng.random() * 0.5))
            _one_trace(builder, int(moment.timestamp() * 1e9))
    return {
        "resourceSpans": [
            {
                "resource": _resource(service, version),
                "scopeSpans": [
                    {"scope": {"name": "shop.instrumentation", "version": "1"}, "spans": body}
                ],
            }
            for (service, version), body in sorted(spans.items())
        ]
    }


def write_document(fault: str, folder: Path, **options: Any) -> Path:
    """Write the document as ``folder/<fault>.json`` and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{fault}.json"
    path.write_text(json.dumps(make_document(fault, **options)))
    return path
