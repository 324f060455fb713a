"""diagnose.analysis.changes: GitOps and Helm syncs in the change timeline."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from connectors import delivery
from diagnose.analysis import changes
from diagnose.domain import models

OLD, NEW = "aaaabbbb" * 5, "ccccdddd" * 5


def _application(*, synced_at: str) -> dict[str, Any]:
    """An Argo CD Application managing payments in shop, synced twice."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "shop-payments", "namespace": "argocd"},
        "spec": {
            "source": {"repoURL": "https://git.shop.example/shop/deploy", "path": "payments"},
            "destination": {"namespace": "shop"},
        },
        "status": {
            "history": [
                {"id": 11, "revision": OLD, "deployedAt": "2026-04-05T10:00:00Z"},
                {"id": 12, "revision": NEW, "deployedAt": synced_at},
            ],
            "resources": [
                {"group": "apps", "kind": "Deployment", "namespace": "shop", "name": "payments"},
                {"kind": "ConfigMap", "namespace": "shop", "name": "payments-config"},
            ],
        },
    }


def _configmap(updated: str) -> dict[str, Any]:
    return {
        "kind": "configmap",
        "name": "payments-config",
        "namespace": "shop",
        "created": "2026-03-01T00:00:00Z",
        "updated": updated,
        "labels": {"app": "payments"},
        "annotations": {},
        "keys": ["BANK_POOL_MAX_CONNECTIONS"],
        "digest": "sha256:0",
    }


def _rs(revision: int, created: str) -> dict[str, Any]:
    return {
        "name": f"payments-{revision}",
        "namespace": "shop",
        "owner": "deployment/payments",
        "revision": revision,
        "created": created,
        "images": [f"payments:1.{revision}"],
        "resources": {},
    }


def _changes(**reads: Sequence[Any]) -> list[models.Change]:
    records = [
        models.Evidence.make(
            source="kubernetes",
            query=f"kubectl get {name}",
            window=None,
            status=models.Status.OK,
            summary="",
            raw=list(items),
        )
        for name, items in reads.items()
    ]
    return changes.list_changes(changes.read_cluster(records), known=["payments"])


def test_a_config_edited_by_a_sync_is_tied_to_that_sync() -> None:
    """An Argo CD sync that rewrote payments-config (no rollout) is one config change of
    payments: the edit, naming the sync (application/NAME@ID) that applied it."""
    found = _changes(
        deliveries=[delivery.argocd_application(_application(synced_at="2026-04-07T09:40:00Z"))],
        configmaps=[_configmap("2026-04-07T09:40:05Z")],
    )
    assert [(c.kind, c.ref, c.component) for c in found] == [
        (models.ChangeKind.CONFIG, "configmap/payments-config", "payments")
    ]
    assert found[0].detail.startswith("configmap payments-config edited")
    assert found[0].detail.endswith(
        ", applied by application/shop-payments@12 (argocd shop-payments synced aaaabbb → ccccddd)"
    )


def test_a_config_edited_long_after_a_sync_stays_its_own() -> None:
    """A ConfigMap edited an hour after the sync is the edit's change; the sync, which changed
    nothing else seen, is a deploy change of payments."""
    found = _changes(
        deliveries=[delivery.argocd_application(_application(synced_at="2026-04-07T08:40:00Z"))],
        configmaps=[_configmap("2026-04-07T09:40:05Z")],
    )
    assert [(c.kind, c.ref) for c in found] == [
        (models.ChangeKind.ROLLOUT, "application/shop-payments@12"),
        (models.ChangeKind.CONFIG, "configmap/payments-config"),
    ]


def test_a_sync_that_applied_a_rollout_is_no_change_of_its_own() -> None:
    """The rollout a sync applied names it already: only the rollout is listed, and the
    Application's first sync (a creation) is no change either."""
    found = _changes(
        deliveries=[delivery.argocd_application(_application(synced_at="2026-04-07T09:39:30Z"))],
        replicasets=[_rs(7, "2026-04-05T10:00:30Z"), _rs(8, "2026-04-07T09:40:00Z")],
    )
    assert [c.ref for c in found] == ["deployment/payments@7", "deployment/payments@8"]


def test_a_helm_upgrade_of_values_only_is_a_deploy_change_naming_its_keys() -> None:
    """A Helm revision that changed values but no pod template and no config is a deploy
    change of the workloads its manifest holds (helm/RELEASE@N), naming the changed keys."""
    release: dict[str, Any] = {
        "tool": "helm",
        "name": "payments",
        "namespace": "shop",
        "target_namespace": "shop",
        "repository": None,
        "path": "payments-1.4.0",
        "status": "deployed",
        "workloads": ["deployment/payments"],
        "syncs": [
            {"revision": "1.4.0", "commit": None, "at": "2026-04-05T10:00:00Z", "id": "2"},
            {"revision": "1.4.0", "commit": None, "at": "2026-04-07T09:40:00Z", "id": "3"},
        ],
        "changed_keys": ["service.port"],
    }
    found = _changes(deliveries=[release])
    assert [(c.kind, c.ref, c.component) for c in found] == [
        (models.ChangeKind.ROLLOUT, "helm/payments@3", "payments")
    ]
    assert "changing values service.port" in found[0].detail


def _kustomization(*, synced_at: str) -> dict[str, Any]:
    """A Flux Kustomization's payload applying payments, twice."""
    return {
        "tool": "flux-kustomization",
        "name": "shop-payments",
        "namespace": "shop",
        "target_namespace": "shop",
        "repository": "https://git.shop.example/shop/deploy",
        "path": "./payments",
        "status": "Ready: False (HealthCheckFailed)",
        "workloads": ["deployment/payments"],
        "syncs": [
            {
                "revision": f"main@sha1:{OLD}",
                "commit": OLD,
                "at": "2026-04-05T10:00:00Z",
                "id": "a",
            },
            {"revision": f"main@sha1:{NEW}", "commit": NEW, "at": synced_at, "id": "b"},
        ],
        "changed_keys": [],
    }


def _flux_event(reason: str, at: str, *, kind: str = "Warning") -> dict[str, Any]:
    return {
        "type": kind,
        "reason": reason,
        "object": "kustomization/shop-payments",
        "namespace": "shop",
        "message": "Deployment/shop/payments dry-run failed: spec.replicas: Invalid value",
        "first": at,
        "last": at,
        "count": 1,
    }


def test_flux_failing_to_apply_a_sync_is_said_in_the_syncs_change() -> None:
    """The kustomize-controller's ReconciliationFailed after a sync that changed a config is
    named with that sync (kustomization/NAME@COMMIT) on the config's change, before its
    success events."""
    found = _changes(
        deliveries=[_kustomization(synced_at="2026-04-07T09:40:00Z")],
        configmaps=[_configmap("2026-04-07T09:40:05Z")],
        events=[
            _flux_event("Progressing", "2026-04-07T09:40:02Z", kind="Normal"),
            _flux_event("ReconciliationFailed", "2026-04-07T09:40:30Z"),
        ],
    )
    assert [c.ref for c in found] == ["configmap/payments-config"]
    assert f"applied by kustomization/shop-payments@{NEW[:12]} " in found[0].detail
    assert "; Flux: ReconciliationFailed: Deployment/shop/payments dry-run" in found[0].detail


def test_a_failed_reconciliation_with_no_sync_is_a_change_of_its_own() -> None:
    """Flux's ReconciliationFailed long after the Kustomization's last sync (its history says
    nothing newer) is a deploy change of the workload it manages; its success events are not."""
    found = _changes(
        deliveries=[_kustomization(synced_at="2026-04-06T09:40:00Z")],
        events=[
            _flux_event("ReconciliationSucceeded", "2026-04-07T09:30:00Z", kind="Normal"),
            _flux_event("ReconciliationFailed", "2026-04-07T09:40:30Z"),
        ],
    )
    failed = [c for c in found if c.at.day == 7]
    assert [(c.kind, c.ref, c.component) for c in failed] == [
        (models.ChangeKind.ROLLOUT, "kustomization/shop-payments", "payments")
    ]
    assert failed[0].detail.startswith("Flux could not apply kustomization shop-payments: ")


def test_a_failed_reconciliation_read_in_flux_system_is_a_change_where_it_deploys() -> None:
    """The Kustomization lives in flux-system and so do its events: the change they make is
    in shop, the namespace it deploys to, not in flux-system."""
    kustomization = _kustomization(synced_at="2026-04-06T09:40:00Z") | {"namespace": "flux-system"}
    failed = _flux_event("ReconciliationFailed", "2026-04-07T09:40:30Z") | {
        "namespace": "flux-system"
    }
    found = [c for c in _changes(deliveries=[kustomization], events=[failed]) if c.at.day == 7]
    assert [(c.ref, c.component, c.namespace) for c in found] == [
        ("kustomization/shop-payments", "payments", "shop")
    ]


def test_helms_release_record_is_not_a_config_edit() -> None:
    """The Secret sh.helm.release.v1.payments.v3 (owner=helm) is Helm's record of its sync,
    not configuration a workload reads: it makes no config change; an ordinary Secret does."""
    record = _configmap("2026-04-07T09:40:05Z") | {
        "kind": "secret",
        "name": "sh.helm.release.v1.payments.v3",
        "labels": {"owner": "helm", "name": "payments", "version": "3"},
    }
    plain = _configmap("2026-04-07T09:40:05Z") | {"kind": "secret", "name": "payments-db"}
    found = _changes(configs=[record, plain])
    assert [c.ref for c in found] == ["secret/payments-db"]
