"""CPU and throttling count for the pod's workload, never for a container name many workloads
share (charts call every container ``server``)."""

from __future__ import annotations

from diagnose.analysis import discovery


def test_a_shared_container_name_yields_to_the_pods_workload() -> None:
    """Two pods of two workloads, both with container ``server``: two components."""
    cart = {
        "__name__": "container_cpu_usage_seconds_total",
        "container": "server",
        "pod": "cart-7d9f8c6b5d-x2x9q",
        "namespace": "shop",
    }
    catalog = cart | {"pod": "catalog-5f7c9d8b6c-q7w2x"}
    assert discovery.component_of(cart) == "cart"
    assert discovery.component_of(catalog) == "catalog"


def test_a_container_without_a_pod_label_still_names_the_workload() -> None:
    """A series aggregated by container alone has nothing better to go by."""
    assert discovery.component_of({"__name__": "x", "container": "checkout"}) == "checkout"


def test_a_service_label_still_comes_before_the_pod() -> None:
    """An OpenTelemetry service_name is trusted over the pod's owner, as before."""
    labels = {"__name__": "x", "service_name": "payments", "container": "server", "pod": "p-0"}
    assert discovery.component_of(labels) == "payments"
