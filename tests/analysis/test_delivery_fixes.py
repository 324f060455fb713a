"""Fixes through the delivery tool that made the change: Helm's and Argo CD's own rollback,
or a revert in Git when Argo CD syncs automatically (diagnose.analysis.delivery_fixes)."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any

from connectors import delivery
from diagnose.analysis import fixing
from diagnose.domain import fixes, models

OLD, NEW = "aaaabbbb" * 5, "ccccdddd" * 5
REPO = "https://git.shop.example/shop/deploy"
VERIFY = 'histogram_quantile(0.95, rate(http_server_duration_bucket{service="payments"}[5m]))'


def _hypothesis(change: str, kind: str = "deploy") -> models.Hypothesis:
    return models.Hypothesis(
        kind=models.CauseKind(kind),
        component="payments",
        confidence=0.7,
        summary="…",
        evidence=("ev-1",),
        change=change,
    )


def _release_secret(version: int, values: dict[str, Any], *, at: str) -> dict[str, Any]:
    record = {
        "name": "payments",
        "namespace": "shop",
        "version": version,
        "info": {"status": "deployed", "last_deployed": at},
        "chart": {"metadata": {"name": "payments", "version": "1.4.0"}},
        "config": values,
        "manifest": "kind: Deployment\nmetadata:\n  name: payments\n",
    }
    helm = base64.b64encode(gzip.compress(json.dumps(record).encode())).decode()
    return {
        "metadata": {"name": f"sh.helm.release.v1.payments.v{version}", "creationTimestamp": at},
        "data": {"release": base64.b64encode(helm.encode()).decode()},
    }


def _helm(*versions: int) -> list[delivery.delivery.DeliveryPayload]:
    """Helm release payments; each revision a day apart, the last one changing a pool size."""
    secrets = [
        _release_secret(
            v, {"pool": {"size": 64 if v < versions[-1] else 4}}, at=f"2026-04-0{v}T09:40:00Z"
        )
        for v in versions
    ]
    return delivery.helm_releases(secrets)


def _application(*, automated: bool) -> delivery.delivery.DeliveryPayload:
    policy = {"syncPolicy": {"automated": {"prune": True}}} if automated else {}
    return delivery.argocd_application(
        {
            "metadata": {"name": "shop-payments", "namespace": "argocd"},
            "spec": {
                "source": {"repoURL": REPO, "path": "payments"},
                "destination": {"namespace": "shop"},
            }
            | policy,
            "status": {
                "history": [
                    {"id": 11, "revision": OLD, "deployedAt": "2026-04-05T10:00:00Z"},
                    {"id": 12, "revision": NEW, "deployedAt": "2026-04-07T09:40:00Z"},
                ],
                "resources": [{"kind": "Deployment", "name": "payments"}],
            },
        }
    )


def _fixes(
    change: str, deliveries: list[Any], replicasets: list[dict[str, Any]] | None = None
) -> list[models.Fix]:
    return fixing.propose_fixes(
        [_hypothesis(change)],
        namespace="shop",
        deliveries=deliveries,
        replicasets=replicasets or [],
        verify_queries={"payments": VERIFY},
    )


def test_a_values_only_helm_upgrade_is_rolled_back_with_helm() -> None:
    """helm/payments@3 (no new ReplicaSet) gets `helm rollback payments 2`, for a human to run:
    no Kubernetes action, the changed keys and the proof in the blast radius."""
    [fix] = _fixes("helm/payments@3", _helm(1, 2, 3))
    assert (fix.kind, fix.target, fix.action) == ("helm_rollback", "helm/payments", None)
    assert fix.command == "helm rollback payments 2 -n shop --wait"
    assert fix.dry_run == "helm rollback payments 2 -n shop --dry-run"
    assert fix.rollback == "helm rollback payments 3 -n shop --wait"
    assert fix.verify == VERIFY
    assert "it changed values pool.size" in fix.blast_radius
    assert "helm history payments -n shop" in fix.blast_radius
    assert fix.risk is fixes.CATALOGUE.kind("helm_rollback").risk


def test_a_rollout_helm_applied_is_rolled_back_with_helm_not_kubectl() -> None:
    """The new ReplicaSet came 20s after Helm's revision 2: rolling back the Deployment behind
    Helm's back would be undone by the next upgrade, so the fix is Helm's."""
    replicasets = [
        {"owner": "deployment/payments", "revision": 7, "created": "2026-04-01T09:40:20Z"},
        {"owner": "deployment/payments", "revision": 8, "created": "2026-04-02T09:40:20Z"},
    ]
    [fix] = _fixes("deployment/payments@8", _helm(1, 2), replicasets)
    assert fix.kind == "helm_rollback" and fix.command.startswith("helm rollback payments 1 ")
    assert "kubectl" not in fix.command


def test_the_first_helm_revision_on_record_has_nothing_to_go_back_to() -> None:
    """Revision 1 has no revision before it: no Helm fix is made up."""
    assert _fixes("helm/payments@1", _helm(1, 2)) == []


def test_an_argocd_sync_is_rolled_back_to_the_history_entry_before() -> None:
    """With automated sync off: `argocd app rollback shop-payments 11`, previewed with
    `argocd app diff` against the older commit."""
    [fix] = _fixes("application/shop-payments@12", [_application(automated=False)])
    assert (fix.kind, fix.target, fix.action) == (
        "argocd_rollback",
        "application/shop-payments",
        None,
    )
    assert fix.command == "argocd app rollback shop-payments 11"
    assert fix.dry_run == f"argocd app diff shop-payments --revision {OLD}"
    assert fix.rollback == "argocd app rollback shop-payments 12"
    assert "refuses a rollback while it is on" in fix.blast_radius


def test_an_automatically_synced_application_is_reverted_in_git() -> None:
    """Argo CD refuses a rollback while automated sync is on (and would undo it): the fix
    reverts the synced commits in the Application's repository and says why."""
    [fix] = _fixes("application/shop-payments@12", [_application(automated=True)])
    assert fix.kind == "argocd_rollback"
    clone = f"git -C <a clone of {REPO}>"
    assert fix.command == (
        f"{clone} revert --no-edit {OLD}..{NEW} && {clone} push && argocd app sync shop-payments"
    )
    assert "refuses `argocd app rollback`" in fix.blast_radius


def test_the_new_kinds_are_commands_for_a_human() -> None:
    """Neither kind has a Kubernetes resolver: execution mode never carries them out."""
    for name in ("helm_rollback", "argocd_rollback"):
        kind = fixes.CATALOGUE.kind(name)
        assert kind.resolver is None
        assert kind.fits == frozenset({models.CauseKind.DEPLOY, models.CauseKind.CONFIG})


# --- a ConfigMap a delivery manages -------------------------------------------------------


def _config(**marks: dict[str, str]) -> dict[str, Any]:
    return {
        "kind": "configmap",
        "name": "payments-config",
        "namespace": "shop",
        "created": "2026-03-01T00:00:00Z",
        "updated": "2026-04-07T09:40:04Z",
        "labels": marks.get("labels", {"app": "payments"}),
        "annotations": marks.get("annotations", {}),
        "keys": ["POOL"],
        "digest": "sha256:0",
        "drifted": ["POOL"],
    }


def _config_fix(config: dict[str, Any], deliveries: list[Any]) -> models.Fix:
    [fix] = fixing.propose_fixes(
        [_hypothesis("configmap/payments-config", kind="config")],
        namespace="shop",
        configs=[config],
        deliveries=deliveries,
        verify_queries={"payments": VERIFY},
    )
    return fix


def _listing_application() -> Any:
    application = _application(automated=False)
    assert application["configs"] == [], "the fixture lists the Deployment only"
    return application | {"configs": ["configmap/payments-config"]}


def test_a_configmap_an_application_lists_is_reverted_in_git_not_patched() -> None:
    """The Application's status.resources lists the ConfigMap: the fix reverts the commits
    its sync applied in its repository and syncs, never a kubectl apply the next sync undoes."""
    fix = _config_fix(_config(), [_listing_application()])
    clone = f"git -C <a clone of {REPO}>"
    assert fix.kind == "config_revert" and fix.action is None
    assert fix.command == (
        f"{clone} revert --no-edit {OLD}..{NEW} && {clone} push && argocd app sync shop-payments"
        " && kubectl rollout restart deployment/payments -n shop"
    )
    assert "kubectl apply" not in fix.command
    assert f"revert the commits {OLD[:7]}..{NEW[:7]} in {REPO}" in fix.blast_radius
    assert "status.resources lists it" in fix.blast_radius


def test_a_configmap_labelled_by_argocd_names_its_application_without_its_history() -> None:
    """Only the argocd.argoproj.io/instance label says who manages it (the Application was
    not read): the fix still goes through Git, with the commit left for the human."""
    config = _config(labels={"argocd.argoproj.io/instance": "shop-payments"})
    fix = _config_fix(config, [])
    assert fix.command.startswith("git -C <a clone of the repository shop-payments applies>")
    assert "argocd app sync shop-payments" in fix.command and "kubectl apply" not in fix.command
    assert "argocd.argoproj.io/instance: shop-payments" in fix.blast_radius


def test_a_configmap_of_a_helm_release_is_rolled_back_with_helm() -> None:
    """app.kubernetes.io/managed-by: Helm and the release's instance label: helm rollback to
    the revision before the one that wrote the ConfigMap."""
    config = _config(
        labels={"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": "payments"}
    ) | {"updated": "2026-04-02T09:40:30Z"}
    fix = _config_fix(config, _helm(1, 2, 3))
    assert fix.command == (
        "helm rollback payments 1 -n shop --wait && kubectl rollout restart deployment/payments "
        "-n shop"
    )


def test_a_configmap_no_delivery_manages_keeps_the_last_applied_revert() -> None:
    """Nothing names a delivery: the usual revert to the last kubectl apply stands."""
    fix = _config_fix(_config(), [_application(automated=False)])
    assert "kubectl apply view-last-applied configmap/payments-config" in fix.command


# --- Flux: reverted in Git and reconciled -------------------------------------------------

SOURCE = {("flux-system", "payments"): REPO}


def _kustomization(*, target: str = "shop") -> delivery.delivery.DeliveryPayload:
    """Kustomization shop-payments applied OLD on the 5th and NEW on the 7th at 09:40."""
    history = [
        {"firstReconciled": at, "metadata": {"revision": f"main@sha1:{commit}"}}
        for commit, at in ((NEW, "2026-04-07T09:40:00Z"), (OLD, "2026-04-05T10:00:00Z"))
    ]
    return delivery.flux_kustomization(
        {
            "metadata": {"name": "shop-payments", "namespace": "flux-system"},
            "spec": {
                "sourceRef": {"kind": "GitRepository", "name": "payments"},
                "path": "./deploy",
                "targetNamespace": target,
            },
            "status": {
                "history": history,
                "inventory": {"entries": [{"id": "shop_payments_apps_Deployment"}]},
            },
        },
        repositories=SOURCE,
    )


def _helmrelease() -> delivery.delivery.DeliveryPayload:
    """HelmRelease payments in shop: Helm revision 4 on the 7th at 09:42, same chart."""
    history = [
        {"version": v, "chartVersion": "1.4.0", "firstDeployed": at, "lastDeployed": at}
        for v, at in ((4, "2026-04-07T09:42:00Z"), (3, "2026-04-05T10:02:00Z"))
    ]
    return delivery.flux_helmrelease(
        {
            "metadata": {"name": "payments", "namespace": "shop"},
            "spec": {"chart": {"spec": {"chart": "payments"}}},
            "status": {"history": history},
        }
    )


def _flux_fix(change: str, deliveries: list[Any], *, verify: str = VERIFY) -> models.Fix:
    replicasets = [
        {"owner": "deployment/payments", "revision": 7, "created": "2026-04-05T10:01:00Z"},
        {"owner": "deployment/payments", "revision": 8, "created": "2026-04-07T09:41:00Z"},
    ]
    [fix] = fixing.propose_fixes(
        [_hypothesis(change)],
        namespace="shop",
        deliveries=deliveries,
        replicasets=replicasets,
        verify_queries={"payments": verify} if verify else {},
    )
    return fix


def test_a_rollout_a_flux_kustomization_applied_is_reverted_in_git_and_reconciled() -> None:
    """Flux re-applies a `kubectl rollout undo` at its next reconciliation: the fix reverts
    the commits the Kustomization applied in its GitRepository and reconciles with source;
    suspending and undoing is offered as the quick stop, with the resume it needs."""
    fix = _flux_fix("deployment/payments@8", [_kustomization()])
    clone = f"git -C <a clone of {REPO}>"
    reconcile = "flux reconcile kustomization shop-payments -n flux-system --with-source"
    assert (fix.kind, fix.target, fix.action) == (
        "flux_revert",
        "kustomization/shop-payments",
        None,
    )
    assert fix.command == f"{clone} revert --no-edit {OLD}..{NEW} && {clone} push && {reconcile}"
    assert fix.dry_run == f"{clone} diff {NEW} {OLD} -- ./deploy"
    assert "kubectl rollout undo" not in fix.command
    assert (
        "`flux suspend kustomization shop-payments -n flux-system && kubectl rollout undo "
        "deployment/payments -n shop`" in fix.blast_radius
    )
    assert "`flux resume kustomization shop-payments -n flux-system` once the revert" in (
        fix.blast_radius
    )
    assert fix.risk is fixes.CATALOGUE.kind("flux_revert").risk


def test_a_kustomization_sync_named_by_its_commit_is_reverted_the_same_way() -> None:
    """A sync that made no rollout is its own change, kustomization/NAME@COMMIT12: the same
    revert of OLD..NEW."""
    fix = _flux_fix(f"kustomization/shop-payments@{NEW[:12]}", [_kustomization()])
    assert f"revert --no-edit {OLD}..{NEW}" in fix.command


def test_a_values_only_helmrelease_upgrade_reverts_the_values_commit_in_git() -> None:
    """helmrelease/payments@4 made no ReplicaSet: its values came from the Kustomization
    that synced 2 minutes before, so the fix reverts that sync's commits, reconciles the
    Kustomization then the HelmRelease, and says a bare helm rollback would be undone."""
    fix = _flux_fix("helmrelease/payments@4", [_kustomization(), _helmrelease()])
    clone = f"git -C <a clone of {REPO}>"
    assert (fix.kind, fix.target) == ("flux_revert", "helmrelease/payments")
    assert fix.command == (
        f"{clone} revert --no-edit {OLD}..{NEW} && {clone} push && flux reconcile kustomization "
        "shop-payments -n flux-system --with-source && flux reconcile helmrelease payments -n shop"
    )
    assert "a `helm rollback` alone is undone by helm-controller" in fix.blast_radius
    assert "`flux suspend helmrelease payments -n shop && helm rollback payments 3 -n shop" in (
        fix.blast_radius
    )


def test_a_helmrelease_whose_values_commit_is_unknown_leaves_the_commit_to_find() -> None:
    """No Kustomization synced before the upgrade: the revert names no commit it cannot know
    and reconciles the HelmRelease with its source."""
    fix = _flux_fix("helmrelease/payments@4", [_helmrelease()])
    assert "revert --no-edit <the commit that changed it>" in fix.command
    assert fix.command.endswith("flux reconcile helmrelease payments -n shop --with-source")
    assert "find it in the repository's log" in fix.blast_radius


def test_a_helm_release_a_flux_helmrelease_manages_is_not_rolled_back_with_helm() -> None:
    """helm/payments@4 is the release helm-controller upgraded for HelmRelease payments: the
    fix goes through Flux, not `helm rollback`."""
    fix = _flux_fix("helm/payments@4", [*_helm(3, 4), _helmrelease()])
    assert fix.kind == "flux_revert" and not fix.command.startswith("helm rollback")


def test_a_helm_revision_flux_no_longer_lists_still_goes_through_flux() -> None:
    """Flux keeps a short history: revision 2 is in Helm's records only, and its fix still
    goes through HelmRelease payments, suspended before Helm's rollback to 1."""
    fix = _flux_fix("helm/payments@2", [*_helm(1, 2, 3), _helmrelease()])
    assert (fix.kind, fix.target) == ("flux_revert", "helmrelease/payments")
    assert "flux suspend helmrelease payments -n shop && helm rollback payments 1 " in (
        fix.blast_radius
    )


def test_without_a_verify_query_the_proof_is_the_rollout_status() -> None:
    """No metrics were read, so no verify query: the blast radius does not promise one
    recovers, and names the rollout status and the alert to check instead."""
    with_query = _fixes("helm/payments@3", _helm(1, 2, 3))[0].blast_radius
    [fix] = fixing.propose_fixes(
        [_hypothesis("helm/payments@3")], namespace="shop", deliveries=_helm(1, 2, 3)
    )
    assert "the verify query recovers" in with_query
    assert "verify query recovers" not in fix.blast_radius
    assert "`kubectl rollout status deployment/payments -n shop` completes" in fix.blast_radius
    assert "no verify query" in fix.blast_radius
    argo = _flux_fix("application/shop-payments@12", [_application(automated=True)], verify="")
    assert "synced and healthy and `kubectl rollout status" in argo.blast_radius
