"""The restore_service resolver through the real client against the lab's Kubernetes API: a
Service's selector or targetPort set back, dry-run on the server, nothing else changed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors import kubernetes
from diagnose.domain import models
from diagnose.lab import kubeapi

pytestmark = [pytest.mark.lab]

SERVICE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "cart", "namespace": "shop"},
    "spec": {
        "selector": {"app": "cart-svc", "tier": "old"},
        "ports": [
            {"name": "http", "port": 80, "targetPort": 9090},
            {"name": "metrics", "port": 9100, "targetPort": 9100},
        ],
    },
}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[kubeapi.KubeApiServer]:
    with kubeapi.KubeApiServer.serve([SERVICE], workdir=tmp_path) as server:
        yield server


def _action(**details: Any) -> Any:
    return {"op": "restore_service", "kind": "service", "namespace": "shop", "name": "cart"} | (
        details
    )


def test_a_selector_is_set_back_whole_and_dry_run_stores_nothing(
    served: kubeapi.KubeApiServer,
) -> None:
    """The dry run shows exactly the selector given (a key the live one had beyond it is
    removed), and the stored Service is unchanged."""
    writer = kubernetes.KubernetesWriter(served.url, dry_run_only=True)
    resolved = writer.resolve(_action(selector={"app": "cart"}))
    assert resolved.status is models.Status.OK, resolved.summary
    assert resolved.raw["path"] == "/api/v1/namespaces/shop/services/cart"
    tried = writer.patch(resolved.raw, dry_run=True, marker="k")
    assert tried.raw["outcome"] == "accepted", tried.summary
    assert tried.raw["result"]["selector"] == {"app": "cart"}
    assert tried.raw["result"]["marker"] == "k"
    assert writer.marker(resolved.raw) is None  # nothing stored
    writer.close()


def test_a_target_port_changes_that_port_only(served: kubeapi.KubeApiServer) -> None:
    """Port 80's targetPort becomes 8080; the metrics port keeps its own."""
    writer = kubernetes.KubernetesWriter(served.url, dry_run_only=True)
    resolved = writer.resolve(_action(port=80, target_port=8080))
    tried = writer.patch(resolved.raw, dry_run=True, marker="k")
    assert tried.raw["result"]["ports"] == [
        {"port": 80, "target_port": 8080},
        {"port": 9100, "target_port": 9100},
    ]
    writer.close()


def test_a_port_the_service_lacks_is_not_patched(served: kubeapi.KubeApiServer) -> None:
    """No port 443: the resolver says so and builds no patch."""
    writer = kubernetes.KubernetesWriter(served.url, dry_run_only=True)
    resolved = writer.resolve(_action(port=443, target_port=8443))
    assert resolved.status is models.Status.EMPTY and resolved.raw is None
    assert "no port 443" in resolved.summary
    writer.close()
