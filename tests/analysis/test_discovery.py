"""Which series are in scope, how they are queried, and which workload they belong to."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from diagnose.analysis import discovery
from diagnose.domain import models

TRIGGER = models.Trigger(
    "pagerduty", "checkout 5xx", "checkout", "shop", datetime(2026, 1, 1, tzinfo=UTC)
)


def test_selectors_cover_every_namespace_and_service_label_present() -> None:
    """Namespace-like labels and service-like labels, only those the store has."""
    names = ["__name__", "namespace", "k8s_namespace_name", "service_name", "pod", "le", "app"]
    selectors = discovery.scope_selectors(TRIGGER, label_names=names)
    assert '{namespace="shop"}' in selectors
    assert '{k8s_namespace_name="shop"}' in selectors
    assert '{service_name="checkout"}' in selectors
    assert '{app="checkout"}' in selectors
    assert any(s.startswith("{pod=~") for s in selectors)
    assert not any("job" in s for s in selectors)


def test_without_a_namespace_only_service_selectors() -> None:
    """An empty namespace selects by service alone."""
    trigger = models.Trigger("manual", "t", "checkout", "", TRIGGER.at)
    selectors = discovery.scope_selectors(trigger, label_names=["namespace", "service"])
    assert selectors == ['{service="checkout"}']


def test_plan_is_one_raw_query_per_metric_with_families() -> None:
    """Raw selectors (no rate), scoped, families inferred, junk dropped with a reason."""
    series = [
        {
            "__name__": "http_server_request_duration_seconds_bucket",
            "namespace": "shop",
            "le": "0.1",
        },
        {
            "__name__": "http_server_request_duration_seconds_bucket",
            "namespace": "shop",
            "le": "+Inf",
        },
        {"__name__": "container_cpu_usage_seconds_total", "namespace": "shop"},
        {"__name__": "rpc_duration_seconds", "namespace": "shop", "quantile": "0.99"},
        {"__name__": "container_memory_working_set_bytes", "namespace": "shop"},
        {"__name__": "http_requests_created", "namespace": "shop"},
        {"__name__": "scrape_duration_seconds", "namespace": "shop"},
    ]
    planned = discovery.plan_queries(series, trigger=TRIGGER)
    dropped = discovery.dropped_metrics(series, trigger=TRIGGER)
    plan = {p.metric: p for p in [*planned, *dropped]}
    assert all(p.query for p in planned)
    cpu = plan["container_cpu_usage_seconds_total"]
    assert cpu.query == '{__name__="container_cpu_usage_seconds_total",namespace="shop"}'
    assert cpu.family == "counter"
    assert plan["http_server_request_duration_seconds_bucket"].family == "histogram"
    assert plan["rpc_duration_seconds"].family == "summary"
    assert plan["container_memory_working_set_bytes"].family == "gauge"
    assert plan["http_requests_created"].query == ""
    assert plan["scrape_duration_seconds"].query == ""
    assert all("rate(" not in p.query for p in plan.values())


def test_plan_trims_the_biggest_metrics_first() -> None:
    """Over the budget, the metric with the most series goes and the plan says so."""
    series = [{"__name__": "big", "namespace": "shop", "i": str(i)} for i in range(50)]
    series += [{"__name__": "small_total", "namespace": "shop"}]
    planned = discovery.plan_queries(series, trigger=TRIGGER, max_series=10)
    dropped = discovery.dropped_metrics(series, trigger=TRIGGER, max_series=10)
    plan = {p.metric: p for p in [*planned, *dropped]}
    assert plan["big"].query == "" and "budget" in plan["big"].reason
    assert plan["small_total"].query


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"service_name": "checkout", "pod": "x-1"}, "checkout"),
        ({"container": "POD", "pod": "checkout-7d9f8c6b5d-x2x9q"}, "checkout"),
        ({"pod": "checkout-7d9f8c6b5d-x2x9q"}, "checkout"),
        ({"pod": "web-0"}, "web"),
        ({"pod": "user-db-5c8d7f9b4-abcde"}, "user-db"),
        ({"destination_workload": "reviews", "job": "istio"}, "reviews"),
        ({"__name__": "pg_locks_count", "datname": "shop", "job": "pg"}, "postgres/shop"),
        ({"instance": "10.0.0.1:9100"}, None),
    ],
)
def test_component_of(labels: dict[str, str], expected: str | None) -> None:
    """The workload from labels, in priority order, pod suffixes stripped."""
    assert discovery.component_of(labels) == expected


def _probe_answer(counts: list[float]) -> models.Evidence:
    return models.Evidence.make(
        source="prometheus",
        query=discovery.interval_probe('{__name__="x",namespace="shop"}') or "",
        window=None,
        status=models.Status.OK,
        summary="",
        raw=[{"labels": {"pod": f"p{i}"}, "t": [0.0], "v": [c]} for i, c in enumerate(counts)],
    )


@pytest.mark.parametrize(
    ("counts", "interval"),
    [
        ([600.0, 598.0], 1.0),
        ([41.0, 39.0], 15.0),
        ([11.0, 4.0], 60.0),
        ([10.0, 9.0], 60.0),
        ([3.0, 2.0], 300.0),
        ([2.0, 1.0], 300.0),
        ([14.0, 13.0], 600.0 / 14),
    ],
)
def test_the_densest_ten_minutes_give_the_sampling_interval(
    counts: list[float], interval: float
) -> None:
    """Samples counted per ten minutes: the densest window (one fully inside the data) gives
    the interval, snapped to a usual one when close (a window may hold a sample at each end);
    a window only partly covered counts fewer and is not believed."""
    assert discovery.sampling_interval(_probe_answer(counts)) == interval


def test_no_count_means_an_unknown_interval_and_the_scope_step() -> None:
    """An empty answer says nothing: the metric is read at the scope's step."""
    assert discovery.sampling_interval(_probe_answer([])) is None
    assert discovery.query_step(None, step_s=6.0) == 6.0


def test_a_metric_is_never_read_finer_than_its_interval() -> None:
    """Minute samples are read every minute, five-minute ones every five minutes; data finer
    than the scope's step keeps the scope's step."""
    assert discovery.query_step(60.0, step_s=6.0) == 60.0
    assert discovery.query_step(300.0, step_s=6.0) == 300.0
    assert discovery.query_step(1.0, step_s=6.0) == 6.0


def test_only_plain_selectors_are_probed() -> None:
    """A selector's samples can be counted; an expression (a rate, a playbook's query) has none."""
    assert discovery.interval_probe('up{job="api"}') == 'count_over_time(up{job="api"}[600s])'
    assert discovery.interval_probe("sum(rate(x[5m]))") is None
