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
    assert fix.command.startswith(f"git revert --no-edit {OLD}..{NEW} && git push")
    assert "argocd app rollback" not in fix.command
    assert REPO in fix.command and "argocd app sync shop-payments" in fix.command
    assert "refuses `argocd app rollback`" in fix.blast_radius


def test_the_new_kinds_are_commands_for_a_human() -> None:
    """Neither kind has a Kubernetes resolver: execution mode never carries them out."""
    for name in ("helm_rollback", "argocd_rollback"):
        kind = fixes.CATALOGUE.kind(name)
        assert kind.resolver is None
        assert kind.fits == frozenset({models.CauseKind.DEPLOY, models.CauseKind.CONFIG})
