"""Discovery reaches the neighbours whose series carry no namespace label."""

from datetime import UTC, datetime

from diagnose.analysis import discovery
from diagnose.domain import models

TRIGGER = models.Trigger(
    source="manual",
    title="t",
    service="frontend",
    namespace="shop",
    at=datetime(2026, 1, 1, tzinfo=UTC),
)


def test_workloads_seen_in_the_namespace_are_in_scope() -> None:
    series = [
        {
            "__name__": "container_cpu_usage_seconds_total",
            "namespace": "shop",
            "pod": "checkout-7d9f8c6b5d-x2x9q",
            "container": "checkout",
        },
        {
            "__name__": "container_cpu_usage_seconds_total",
            "namespace": "other",
            "container": "billing",
        },
    ]
    assert discovery.components_in_scope(series, trigger=TRIGGER) == ["checkout", "frontend"]


def test_neighbour_selectors_match_names_exactly_under_present_labels() -> None:
    selectors = discovery.neighbour_selectors(
        ["checkout", "api.v2"], label_names=["service_name", "pod", "namespace"]
    )
    assert selectors == ['{service_name=~"api\\\\.v2|checkout"}']


def test_service_scoped_metrics_are_planned_for_every_neighbour() -> None:
    series = [
        {"__name__": "http_server_request_duration_seconds_count", "service_name": "checkout"},
        {"__name__": "http_server_request_duration_seconds_count", "service_name": "frontend"},
    ]
    [plan] = discovery.plan_queries(series, trigger=TRIGGER, components=["checkout", "frontend"])
    assert 'service_name=~"checkout|frontend"' in plan.query


def test_a_release_tag_carries_its_canary_version() -> None:
    from diagnose.analysis import tracemerge

    assert tracemerge._carries("2.14.0", "2.14")
    assert tracemerge._carries("v2.14-rc1", "2.14")
    assert tracemerge._carries("2.14", "2.14")
    assert not tracemerge._carries("2.140", "2.14")
    assert not tracemerge._carries("2.13.9", "2.14")
