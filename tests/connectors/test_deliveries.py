"""KubernetesConnector.list_deliveries with the real client against the lab's API: Argo CD,
Flux and Helm objects (custom resources and labelled Secrets) as delivery payloads."""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors import kubernetes
from diagnose.domain import delivery
from diagnose.domain.models import Status, Window
from diagnose.lab import kubeapi

pytestmark = pytest.mark.lab

OLD, NEW = "1a2b3c4d" * 5, "9f8e7d6c" * 5
REPO = "https://git.shop.example/shop/deploy"


def _release(version: int, config: dict[str, Any], *, at: str) -> dict[str, Any]:
    record = {
        "name": "orders-api",
        "namespace": "shop",
        "version": version,
        "info": {"status": "deployed" if version == 2 else "superseded", "last_deployed": at},
        "chart": {"metadata": {"name": "orders-api", "version": f"1.{version}.0"}},
        "config": config,
        "manifest": "---\nkind: Deployment\nmetadata:\n  name: orders-api\n---\nkind: Service\n"
        "metadata:\n  name: orders-api\n",
    }
    helm = base64.b64encode(gzip.compress(json.dumps(record).encode())).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": f"sh.helm.release.v1.orders-api.v{version}",
            "namespace": "shop",
            "labels": {"owner": "helm", "name": "orders-api", "version": str(version)},
        },
        "data": {"release": base64.b64encode(helm.encode()).decode()},
    }


OBJECTS: list[dict[str, Any]] = [
    {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "shop", "namespace": "argocd"},
        "spec": {
            "source": {"repoURL": REPO, "path": "shop", "targetRevision": "main"},
            "destination": {"namespace": "shop", "server": "https://kubernetes.default.svc"},
        },
        "status": {
            "sync": {"status": "Synced", "revision": NEW},
            "health": {"status": "Degraded"},
            "history": [
                {"revision": NEW, "deployedAt": "2026-04-07T09:48:00Z", "id": 5},
                {"revision": OLD, "deployedAt": "2026-04-06T10:00:00Z", "id": 4},
            ],
            "resources": [
                {"group": "apps", "kind": "Deployment", "name": "orders-api"},
                {"kind": "ConfigMap", "name": "orders-api-config"},
            ],
        },
    },
    {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "billing", "namespace": "argocd"},
        "spec": {"source": {"repoURL": REPO}, "destination": {"namespace": "billing"}},
    },
    {
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "shop", "namespace": "flux-system"},
        "spec": {"url": REPO},
    },
    {
        "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
        "kind": "Kustomization",
        "metadata": {"name": "shop-apps", "namespace": "flux-system"},
        "spec": {
            "sourceRef": {"kind": "GitRepository", "name": "shop"},
            "path": "./shop",
            "targetNamespace": "shop",
        },
        "status": {
            "lastAppliedRevision": f"main@sha1:{NEW}",
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "ReconciliationSucceeded",
                    "lastTransitionTime": "2026-04-07T09:48:10Z",
                }
            ],
            "inventory": {"entries": [{"id": "shop_orders-api_apps_Deployment", "v": "v1"}]},
        },
    },
    _release(
        1,
        {"image": {"tag": "2.4.0"}, "db": {"password": "hunter2hunter2"}},
        at="2026-04-06T10:00:00Z",
    ),
    _release(
        2,
        {"image": {"tag": "2.5.0"}, "db": {"password": "correcthorsebattery"}},
        at="2026-04-07T09:48:00Z",
    ),
]


def _event(name: str, *, kind: str, obj: str, reason: str, at: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": "flux-system"},
        "involvedObject": {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": kind,
            "name": obj,
            "namespace": "flux-system",
        },
        "reason": reason,
        "message": f"{reason} of {obj}",
        "type": "Warning" if reason.endswith("Failed") else "Normal",
        "firstTimestamp": at,
        "lastTimestamp": at,
        "count": 1,
    }


FLUX_EVENTS = [
    _event(
        "shop-apps.failed",
        kind="Kustomization",
        obj="shop-apps",
        reason="ReconciliationFailed",
        at="2026-04-07T09:48:30Z",
    ),
    _event(
        "shop-apps.old",
        kind="Kustomization",
        obj="shop-apps",
        reason="ReconciliationSucceeded",
        at="2026-04-06T10:00:05Z",
    ),
    _event(
        "billing-apps.failed",
        kind="Kustomization",
        obj="billing-apps",
        reason="ReconciliationFailed",
        at="2026-04-07T09:49:00Z",
    ),
    _event(
        "shop-apps-helm.failed",
        kind="HelmRelease",
        obj="shop-apps",
        reason="UpgradeFailed",
        at="2026-04-07T09:49:00Z",
    ),
]
WINDOW = Window(datetime(2026, 4, 7, 9, 0, tzinfo=UTC), datetime(2026, 4, 7, 10, 0, tzinfo=UTC))


@pytest.fixture(scope="module")
def flux_events(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    objects = OBJECTS + FLUX_EVENTS
    server = kubeapi.KubeApiServer.serve(objects, workdir=tmp_path_factory.mktemp("kubeapi"))
    try:
        connector = kubernetes.KubernetesConnector(server.url)
        deliveries = connector.list_deliveries(namespace="shop").raw
        yield connector.list_delivery_events(namespace="shop", deliveries=deliveries, window=WINDOW)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def found(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = kubeapi.KubeApiServer.serve(OBJECTS, workdir=tmp_path_factory.mktemp("kubeapi"))
    try:
        yield kubernetes.KubernetesConnector(server.url).list_deliveries(namespace="shop")
    finally:
        server.stop()


def _by_tool(found: Any) -> dict[str, delivery.DeliveryPayload]:
    assert found.status is Status.OK, found.summary
    return {p["tool"]: p for p in found.raw}


def test_an_argocd_application_targeting_the_namespace_brings_its_syncs(found: Any) -> None:
    """The Application's history comes oldest first with its commits; one deploying elsewhere
    is left out."""
    argo = _by_tool(found)[delivery.ARGOCD]
    assert (argo["name"], argo["repository"], argo["status"]) == ("shop", REPO, "Synced/Degraded")
    assert [(s["commit"], s["id"]) for s in argo["syncs"]] == [(OLD, "4"), (NEW, "5")]
    assert argo["workloads"] == ["deployment/orders-api"]
    assert argo["configs"] == ["configmap/orders-api-config"]
    assert argo["auto_sync"] is False
    assert [p["name"] for p in found.raw if p["tool"] == delivery.ARGOCD] == ["shop"]


def test_a_flux_kustomization_names_its_repository_and_applied_commit(found: Any) -> None:
    """lastAppliedRevision main@sha1:… names the commit; the GitRepository gives the URL."""
    flux = _by_tool(found)[delivery.FLUX_KUSTOMIZATION]
    assert flux["repository"] == REPO
    assert flux["syncs"][-1]["commit"] == NEW
    assert flux["workloads"] == ["deployment/orders-api"]


def test_a_helm_release_says_which_value_keys_changed_never_their_values(found: Any) -> None:
    """Two revisions: the changed keys are named, and no value reaches the evidence."""
    helm = _by_tool(found)[delivery.HELM]
    assert helm["changed_keys"] == ["db.password", "image.tag"]
    assert [s["id"] for s in helm["syncs"]] == ["1", "2"]
    assert helm["workloads"] == ["deployment/orders-api"]
    text = json.dumps(found.raw)
    assert "hunter2hunter2" not in text and "correcthorsebattery" not in text
    assert "2.5.0" not in text


def test_flux_events_are_read_in_the_namespace_the_flux_object_lives_in(flux_events: Any) -> None:
    """The Kustomization deploying to shop lives in flux-system: its controller's event there
    is read; another Kustomization's, a HelmRelease of the same name and one outside the
    window are not."""
    assert flux_events.status is Status.OK, flux_events.summary
    assert [(e["object"], e["reason"], e["namespace"]) for e in flux_events.raw] == [
        ("kustomization/shop-apps", "ReconciliationFailed", "flux-system")
    ]
    assert "-n flux-system --field-selector involvedObject.kind=Kustomization" in (
        flux_events.query
    )


def test_a_forbidden_flux_namespace_is_denied_and_says_what_to_grant(answering_server) -> None:
    """A 403 on flux-system's events is a denied record naming the permission, not an error."""
    message = 'events is forbidden: User "diagnose" cannot list resource "events" in flux-system'
    status = {"kind": "Status", "apiVersion": "v1", "code": 403, "message": message}
    server = answering_server(lambda path: (403, status))
    flux: delivery.DeliveryPayload = {
        "tool": delivery.FLUX_KUSTOMIZATION,
        "name": "shop-apps",
        "namespace": "flux-system",
        "target_namespace": "shop",
        "repository": REPO,
        "path": "./shop",
        "status": "Ready: True",
        "workloads": [],
        "syncs": [],
        "changed_keys": [],
        "auto_sync": True,
    }
    with kubernetes.KubernetesConnector(server.url, timeout_s=2) as connector:
        found = connector.list_delivery_events(namespace="shop", deliveries=[flux], window=WINDOW)
    assert found.status is Status.DENIED
    assert "namespace flux-system" in found.summary and "grant get/list/watch on events" in (
        found.summary
    )
    assert [p.split("?")[0] for p, _ in server.requests] == [
        "/api/v1/namespaces/flux-system/events"
    ]


def test_no_flux_object_outside_the_namespace_reads_nothing(answering_server) -> None:
    """An Argo CD Application is not a Flux object: no call is made, the record is empty."""
    server = answering_server(lambda path: (500, "should not be called"))
    argo = {"tool": delivery.ARGOCD, "name": "shop", "namespace": "argocd"}
    with kubernetes.KubernetesConnector(server.url, timeout_s=2) as connector:
        found = connector.list_delivery_events(
            namespace="shop",
            deliveries=[argo],
            window=WINDOW,  # type: ignore[list-item]
        )
    assert found.status is Status.EMPTY and server.requests == []
