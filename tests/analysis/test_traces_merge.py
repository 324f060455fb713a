"""Traces in the root-cause ranking: the call graph orders roots, suspects become hypotheses."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import numpy as np

from connectors import traces as connector
from diagnose.analysis import correlating
from diagnose.domain import models
from tests.traces import otlp_gen

T0 = otlp_gen.T0
ONSET = otlp_gen.INCIDENT.start
WINDOW = models.Window(T0, T0 + timedelta(minutes=60))
STEP = 15.0
SERVICES = ("frontend", "checkout", "payments")
SEARCH = "http://tempo:3200/api/search?q=%7B%20resource.service.name%20%3D%20%22frontend%22%20%7D"
TRIGGER = models.Trigger(
    source="alertmanager",
    title="frontend: latency SLO burn",
    service="frontend",
    namespace="shop",
    at=ONSET + timedelta(minutes=4),
)


# --- evidence ------------------------------------------------------------------------------------


def trace_evidence(fault: str) -> list[models.Evidence]:
    """The two samples gather_traces takes: the incident window first, as the graph may."""
    spans = connector.spans_from_otlp(otlp_gen.make_document(fault))
    cut = ONSET.timestamp() * 1e6
    out = []
    for window, mine in (
        (otlp_gen.INCIDENT, [s for s in spans if s["start_us"] >= cut]),
        (otlp_gen.BASELINE, [s for s in spans if s["start_us"] < cut]),
    ):
        raw = {"spans": mine, "traces": len({s["trace_id"] for s in mine}), "truncated": False}
        out.append(
            models.Evidence.make(
                source="traces",
                query=SEARCH + f"&start={int(window.start.timestamp())}",
                window=window,
                status=models.Status.OK,
                summary=f"{raw['traces']} traces",
                raw=raw | {"bytes_read": 0},
            )
        )
    return out


def metric_evidence(
    *, latency: Mapping[str, float] = {}, errors: Mapping[str, float] = {}
) -> list[models.Evidence]:
    """A latency gauge and request counters by status code per service; ``latency`` adds
    seconds and ``errors`` sets the error ratio from the onset on."""
    rng = np.random.default_rng(5)
    t = T0.timestamp() + STEP * np.arange(int(WINDOW.seconds / STEP) + 1)
    after = t >= ONSET.timestamp()
    noise = {"frontend": 0.003, "checkout": 0.005, "payments": 0.01}
    gauges, counters = [], []
    for service in SERVICES:
        level = 0.02 + 0.01 * SERVICES.index(service) + latency.get(service, 0.0) * after
        gauges.append(
            _series(
                "app_request_latency_seconds",
                service,
                t,
                level + rng.normal(0, noise[service], t.size),
            )
        )
        requests = rng.poisson(20 * STEP, t.size)
        failed = rng.binomial(requests, np.where(after, errors.get(service, 0.0), 0.001))
        for code, counts in (("200", requests - failed), ("500", failed)):
            counters.append(
                _series("http_requests_total", service, t, np.cumsum(counts), code=code)
            )
    return [
        _evidence("app_request_latency_seconds", gauges),
        _evidence("http_requests_total", counters),
    ]


def _series(name: str, service: str, t: np.ndarray, v: np.ndarray, **labels: str) -> dict[str, Any]:
    return {
        "labels": {"__name__": name, "service_name": service, "namespace": "shop", **labels},
        "t": [float(x) for x in t],
        "v": [float(x) for x in v],
    }


def _evidence(name: str, series: list[dict[str, Any]]) -> models.Evidence:
    return models.Evidence.make(
        source="prometheus",
        query=f'{{__name__="{name}",namespace="shop"}}',
        window=WINDOW,
        status=models.Status.OK,
        summary=f"{len(series)} series",
        raw=series,
    )


def replicasets(*revisions: tuple[int, str, list[str]]) -> list[models.Evidence]:
    items = [
        {
            "name": f"checkout-{revision:08d}a",
            "namespace": "shop",
            "owner": "deployment/checkout",
            "revision": revision,
            "created": created,
            "images": images,
            "replicas": 2,
            "resources": {},
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
        }
        for revision, created, images in revisions
    ]
    return [
        models.Evidence.make(
            source="kubernetes",
            query="kubectl get replicasets -n shop -o yaml",
            window=None,
            status=models.Status.OK,
            summary=f"{len(items)} objects",
            raw=items,
        )
    ]


def run(
    metrics: list[models.Evidence],
    *,
    traces: list[models.Evidence] | None = None,
    cluster: list[models.Evidence] | None = None,
) -> correlating.Correlation:
    options = {} if traces is None else {"traces": traces}
    return correlating.correlate(
        trigger=TRIGGER,
        window=WINDOW,
        metrics=metrics,
        cluster=cluster or [],
        now=WINDOW.end,
        **options,
    )


def cites_only_existing(result: correlating.Correlation, *groups: list[models.Evidence]) -> bool:
    known = {e.id for group in groups for e in group} | {e.id for e in result.derived}
    return models.cited_ids(result.hypotheses) <= known


def trace_ids(evidence: list[models.Evidence]) -> set[str]:
    return {s["trace_id"] for e in evidence for s in e.raw["spans"]}


# --- behaviours ----------------------------------------------------------------------------------

SLOW_PAYMENTS = {"frontend": 0.3, "checkout": 0.3, "payments": 0.3}


def test_a_slow_dependency_ranks_above_the_alerting_caller_with_traces() -> None:
    """Latency rises everywhere, most sharply (in z) at frontend; the traces put the time in
    payments, which everyone calls: payments first, citing an exemplar trace."""
    metrics, traces = metric_evidence(latency=SLOW_PAYMENTS), trace_evidence("slow_dependency")
    assert run(metrics).hypotheses[0].component == "frontend"  # metrics alone cannot tell
    result = run(metrics, traces=traces)
    best = result.hypotheses[0]
    assert best.component == "payments"
    names = [h.component for h in result.hypotheses]
    assert names.index("payments") < names.index("frontend")
    finding = next(e for e in result.derived if e.id in best.evidence and e.raw.get("exemplars"))
    assert finding.source == "analysis" and finding.raw["component"] == "payments"
    assert finding.raw["exemplars"][0] in best.summary
    assert finding.raw["exemplars"][0] in finding.query and "/api/v2/traces/" in finding.query
    assert set(finding.raw["exemplars"]) <= trace_ids(traces)
    assert "Mann-Whitney" in finding.summary and "POST /charge" in finding.summary
    assert cites_only_existing(result, metrics, traces)


def test_slow_sql_seen_only_in_traces_is_a_database_hypothesis() -> None:
    """No PostgreSQL metrics; checkout and frontend are slow; the traces time the SELECT."""
    metrics = metric_evidence(latency={"frontend": 0.25, "checkout": 0.25})
    traces = trace_evidence("slow_sql")
    result = run(metrics, traces=traces)
    best = result.hypotheses[0]
    assert (best.kind, best.component) == (models.CauseKind.DATABASE, "postgres/shop")
    assert not result.abstained
    assert "SELECT orders" in best.summary and "trace " in best.summary
    finding = next(e for e in result.derived if e.id == best.evidence[0])
    assert finding.raw["operation"]["detail"] == otlp_gen.SQL
    checkout = next(h for h in result.hypotheses if h.component == "checkout")
    assert "waits on postgres/shop" in checkout.summary
    assert cites_only_existing(result, metrics, traces)


def test_a_failing_canary_is_a_deploy_of_the_rollout_that_shipped_its_version() -> None:
    """checkout 2.14 fails; a later sidecar bump (revision 3) is closer to the onset, so
    metrics alone blame it; the traces' version picks revision 2, the one with 2.14."""
    metrics = metric_evidence(errors={"checkout": 0.2, "frontend": 0.2})
    traces = trace_evidence("canary")
    cluster = replicasets(
        (1, "2026-01-07T08:00:00Z", ["checkout:2.13", "envoy:1.29"]),
        (2, "2026-01-10T08:20:00Z", ["checkout:2.14", "envoy:1.29"]),
        (3, "2026-01-10T08:27:00Z", ["checkout:2.14", "envoy:1.30"]),
    )
    before = run(metrics, cluster=cluster).hypotheses[0]
    assert (before.component, before.change) == ("checkout", "deployment/checkout@3")
    result = run(metrics, traces=traces, cluster=cluster)
    best = result.hypotheses[0]
    assert (best.kind, best.component, best.change) == (
        models.CauseKind.DEPLOY,
        "checkout",
        "deployment/checkout@2",
    )
    assert "2.14" in best.summary
    finding = next(e for e in result.derived if e.raw and e.raw.get("version") == "2.14")
    assert finding.id in best.evidence
    assert finding.raw["exemplars"][0] in best.summary
    revision = next(e for e in result.derived if "--revision=2" in e.query)
    assert revision.id in best.evidence
    assert cites_only_existing(result, metrics, traces, cluster)


def test_without_usable_traces_the_ranking_is_exactly_as_before() -> None:
    """No traces, or failed samples: the same hypotheses and components (one window only is
    compared within itself: tests/traces/test_within.py)."""
    metrics = metric_evidence(latency=SLOW_PAYMENTS)
    before = run(metrics).to_dict()
    broken = models.Evidence.make(
        source="traces",
        query=SEARCH,
        window=otlp_gen.INCIDENT,
        status=models.Status.ERROR,
        summary="Tempo timed out",
    )
    for traces in ([], [broken]):
        after = run(metrics, traces=traces).to_dict()
        assert (after["hypotheses"], after["components"]) == (
            before["hypotheses"],
            before["components"],
        )
        assert after["derived"] == before["derived"]
    assert any("timed out" in n for n in run(metrics, traces=[broken]).notes)


def test_a_trace_suspect_whose_metrics_are_quiet_is_not_ranked() -> None:
    """The traces say payments is slow, its metrics say it is not: noted, not a hypothesis."""
    metrics = metric_evidence(latency={"frontend": 0.3, "checkout": 0.3})
    result = run(metrics, traces=trace_evidence("slow_dependency"))
    assert "payments" not in [h.component for h in result.hypotheses]
    assert any("traces point at payments" in n for n in result.notes)
