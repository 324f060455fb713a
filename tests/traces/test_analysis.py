"""The trace analysis: statistics against known values, time accounting, graph, verdicts."""

from __future__ import annotations

import itertools
import math
import random

import numpy as np
import pytest

from connectors import traces as connector
from diagnose.analysis import spantable
from diagnose.analysis import traces as analysis
from diagnose.domain import traces as tracing
from diagnose.domain.models import Evidence, Status
from tests.traces import otlp_gen


def span(
    span_id: str,
    parent: str | None,
    *,
    start: int,
    duration: int,
    service: str = "a",
    operation: str = "op",
    kind: str = "server",
    status: str = "unset",
    trace: str = "t1",
    **attrs: tracing.AttributeValue,
) -> tracing.SpanPayload:
    return {
        "trace_id": trace,
        "span_id": span_id,
        "parent_id": parent,
        "service": service,
        "operation": operation,
        "kind": kind,
        "start_us": start,
        "duration_us": duration,
        "status": status,
        "attrs": dict(attrs),
    }


def windows(
    fault: str, **options: int
) -> tuple[list[tracing.SpanPayload], list[tracing.SpanPayload]]:
    spans = connector.spans_from_otlp(otlp_gen.make_document(fault, **options))
    cut = otlp_gen.INCIDENT.start.timestamp() * 1e6
    return [s for s in spans if s["start_us"] < cut], [s for s in spans if s["start_us"] >= cut]


# --- Mann-Whitney U ----------------------------------------------------------------------------


def test_mann_whitney_matches_scipy_on_its_documented_example() -> None:
    """scipy.stats.mannwhitneyu([19, 22, 16, 29, 24], [20, 11, 17, 12], method="asymptotic")
    gives U = 17 for the first sample and p = 0.11134688653314041."""
    result = spantable.mann_whitney_u([20, 11, 17, 12], [19, 22, 16, 29, 24])
    assert result.u == 17.0
    assert result.p_value == pytest.approx(0.11134688653314041, rel=1e-9)
    assert result.effect == pytest.approx(17 / 20)


def test_mann_whitney_on_fully_separated_samples() -> None:
    """U = n1*n2 when every incident value is larger; z = (|25 - 12.5| - 0.5) / sqrt(25*11/12)."""
    result = spantable.mann_whitney_u([1, 2, 3, 4, 5], [6, 7, 8, 9, 10])
    assert result.u == 25.0 and result.effect == 1.0
    z = 12 / math.sqrt(25 * 11 / 12)
    assert result.z == pytest.approx(z)
    assert result.p_value == pytest.approx(math.erfc(z / math.sqrt(2)), rel=1e-12)
    assert result.p_value == pytest.approx(0.0121858, rel=1e-5)


def test_mann_whitney_u_counts_pairs_with_ties_as_halves() -> None:
    rng = random.Random(3)
    x = [rng.randint(0, 6) for _ in range(40)]
    y = [rng.randint(2, 8) for _ in range(30)]
    pairs = sum(1.0 if b > a else 0.5 if b == a else 0.0 for a, b in itertools.product(x, y))
    result = spantable.mann_whitney_u(x, y)
    assert result.u == pytest.approx(pairs)
    assert 0 < result.p_value < 0.01 and result.z > 0


def test_mann_whitney_on_identical_or_empty_samples_says_nothing() -> None:
    assert spantable.mann_whitney_u([5, 5, 5], [5, 5]).p_value == 1.0
    assert spantable.mann_whitney_u([], [1.0]).p_value == 1.0


# --- time accounting -----------------------------------------------------------------------------


def parallel_trace() -> list[tracing.SpanPayload]:
    """root 0..100 with children b 10..40 and c 20..90 (overlapping); c has child d 30..80."""
    return [
        span("r", None, start=0, duration=100, service="front"),
        span("b", "r", start=10, duration=30, service="cache", kind="client"),
        span("c", "r", start=20, duration=70, service="api"),
        span("d", "c", start=30, duration=50, service="db", kind="server"),
    ]


def test_self_time_subtracts_children_clipped_and_floors_at_zero() -> None:
    table = spantable.SpanTable.build(parallel_trace())
    assert table.self_time.tolist() == [0, 30, 20, 50]  # r: 100 - (30 + 70) floored


def test_critical_path_follows_the_last_finishing_child() -> None:
    """Path, walking back from the root's end: r 90..100, c 80..90, d 30..80, c 20..30, then
    b (still running when c started) 10..20, then r 0..10."""
    table = spantable.SpanTable.build(parallel_trace())
    assert table.critical.tolist() == [20, 10, 20, 50]
    assert int(table.critical.sum()) == 100  # the critical path covers the root exactly


def test_own_failures_are_the_deepest_failing_spans() -> None:
    spans = [
        span("r", None, start=0, duration=10, status="error"),
        span("c", "r", start=1, duration=5, status="error", service="b"),
        span("d", "c", start=2, duration=1, service="c"),
    ]
    table = spantable.SpanTable.build(spans)
    assert table.own_failure.tolist() == [False, True, False]


def test_failed_means_error_status_or_a_server_5xx() -> None:
    assert tracing.span_failed(span("a", None, start=0, duration=1, **{"http.status_code": 503}))
    client = span("a", None, start=0, duration=1, kind="client", **{"http.status_code": 503})
    assert not tracing.span_failed(client)


# --- the call graph ---------------------------------------------------------------------------


def test_call_graph_counts_calls_errors_and_names_databases() -> None:
    spans = []
    for n in range(4):
        trace = f"t{n}"
        spans += [
            span("r", None, start=0, duration=10, service="web", trace=trace),
            span("c", "r", start=1, duration=5, kind="client", service="web", trace=trace),
            span(
                "s",
                "c",
                start=2,
                duration=3,
                service="api",
                trace=trace,
                status="error" if n == 0 else "unset",
            ),
            span(
                "q",
                "s",
                start=2,
                duration=1,
                kind="client",
                service="api",
                trace=trace,
                **{"db.system": "postgresql", "db.name": "shop"},
            ),
        ]
    edges = {(e.caller, e.callee): e for e in analysis.build_call_graph(spans)}
    assert set(edges) == {("web", "api"), ("api", "postgres/shop")}
    api = edges[("web", "api")]
    assert (api.incident_calls, api.incident_errors, api.incident_own_errors) == (4, 1, 1)
    assert api.exemplars[0] == "t0"  # the failing call first
    assert edges[("api", "postgres/shop")].incident_calls == 4


# --- verdicts on whole scenarios ----------------------------------------------------------------


def test_noise_is_not_an_anomaly() -> None:
    for seed in range(5):
        result = analysis.compare_windows(*windows("quiet", seed=seed))
        flagged = [o for o in result.operations if o.latency_changed or o.errors_changed]
        assert flagged == [] and result.suspects == () and result.canaries == ()
        assert not result.end_to_end or not result.end_to_end.latency_changed


def test_a_slow_dependency_ranks_above_its_callers() -> None:
    result = analysis.compare_windows(*windows("slow_dependency"))
    assert result.end_to_end and result.end_to_end.latency_changed
    top = result.attribution[0]
    assert (top.service, top.operation) == ("payments", "POST /charge") and top.share > 0.9
    assert [s.component for s in result.suspects] == ["payments"]
    changed = {o.service for o in result.operations if o.latency_changed}
    assert changed == {"frontend", "checkout", "payments"}  # callers slow too, but not suspects
    assert result.depth["payments"] > result.depth["checkout"] > result.depth["frontend"]


def test_a_slow_sql_statement_points_at_the_database_with_its_text() -> None:
    result = analysis.compare_windows(*windows("slow_sql"))
    assert result.suspects[0].component == "postgres/shop"
    db = next(o for o in result.operations if o.operation == "SELECT orders")
    assert db.latency_changed and db.detail == otlp_gen.SQL
    assert db.incident.p95_ms > 10 * db.baseline.p95_ms
    assert db.latency_test.p_value < 1e-6 and db.latency_test.effect > 0.95


def test_a_failing_canary_is_split_out_by_version() -> None:
    result = analysis.compare_windows(*windows("canary"))
    (split,) = result.canaries
    assert split.service == "checkout" and split.suspect_version == "2.14"
    versions = {v.version: v for v in split.versions}
    assert versions["2.13"].errors == 0 and versions["2.14"].errors > 0
    top = result.suspects[0]
    assert (top.component, top.version) == ("checkout", "2.14")
    assert "frontend" not in [s.component for s in result.suspects]


def test_every_claim_cites_traces_that_exist() -> None:
    baseline, incident = windows("canary")
    known = {s["trace_id"] for s in incident}
    result = analysis.compare_windows(baseline, incident)
    claims = [*result.suspects, *result.canaries, *result.edges, *result.attribution]
    claims += [o for o in result.operations if o.incident.count]
    assert all(c.exemplars and set(c.exemplars) <= known for c in claims)
    failing = {s["trace_id"] for s in incident if tracing.span_failed(s)}
    assert set(result.suspects[0].exemplars) <= failing


def test_results_are_plain_data() -> None:
    import json

    result = analysis.compare_windows(*windows("slow_sql"))
    data = json.loads(json.dumps(result.to_dict()))
    assert data["suspects"][0]["component"] == "postgres/shop"
    assert {"p50_ms", "p95_ms", "p99_ms", "error_ratio"} <= set(data["operations"][0]["incident"])


def test_spans_are_read_from_evidence() -> None:
    spans = parallel_trace()
    payload = {"spans": spans, "traces": 1, "truncated": False, "bytes_read": 0}
    evidence = Evidence.make(
        source="traces", query="q", window=None, status=Status.OK, summary="", raw=payload
    )
    failed = Evidence.make(
        source="traces", query="q2", window=None, status=Status.ERROR, summary=""
    )
    assert analysis.spans_of([evidence, failed]) == spans


def test_empty_windows_give_an_empty_comparison() -> None:
    result = analysis.compare_windows([], [])
    assert result.operations == () and result.suspects == () and result.end_to_end is None


def test_quantiles_are_per_operation() -> None:
    spans = [
        span(f"s{i}", None, start=0, duration=d, trace=f"t{i}")
        for i, d in enumerate(range(1000, 101000, 1000))
    ]
    result = analysis.compare_windows(spans, spans)
    (op,) = result.operations
    expected = np.quantile(np.arange(1000, 101000, 1000), [0.5, 0.95, 0.99]) / 1000
    assert (op.incident.p50_ms, op.incident.p95_ms, op.incident.p99_ms) == pytest.approx(
        tuple(expected)
    )
    assert not op.latency_changed and op.latency_test.effect == 0.5
