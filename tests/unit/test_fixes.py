"""Which hypotheses get a fix, and how exact a fix can be made from what the cluster shows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from diagnose.analysis import fixing
from diagnose.domain import models


def _rollout(component: str, confidence: float) -> models.Hypothesis:
    return models.Hypothesis(
        kind=models.CauseKind.DEPLOY,
        component=component,
        confidence=confidence,
        summary=f"{component} rolled out",
        evidence=("ev-1",),
        change=f"deployment/{component}@6",
        onset=datetime(2026, 1, 1, tzinfo=UTC),
    )


REPLICASETS = [
    {"owner": f"deployment/{name}", "revision": revision, "images": [f"{name}:{revision}"]}
    for name in ("checkout", "inventory")
    for revision in (5, 6)
]


def test_a_lead_below_the_floor_gets_no_fix() -> None:
    fixes = fixing.propose_fixes(
        [_rollout("checkout", 0.9), _rollout("inventory", 0.0)],
        namespace="shop",
        replicasets=REPLICASETS,
    )
    assert [f.target for f in fixes] == ["deployment/checkout"]


def test_a_lowered_floor_proposes_a_fix_for_every_lead() -> None:
    fixes = fixing.propose_fixes(
        [_rollout("checkout", 0.9), _rollout("inventory", 0.0)],
        namespace="shop",
        replicasets=REPLICASETS,
        min_confidence=0.0,
    )
    assert [f.target for f in fixes] == ["deployment/checkout", "deployment/inventory"]


def _config_change(name: str) -> models.Hypothesis:
    return models.Hypothesis(
        kind=models.CauseKind.CONFIG,
        component="payments",
        confidence=0.8,
        summary="payments-config edited",
        evidence=("ev-1",),
        change=f"configmap/{name}",
        onset=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_a_configmap_edited_since_its_last_apply_is_reverted_by_an_exact_command() -> None:
    configs = [{"kind": "configmap", "name": "payments-config", "drifted": ["POOL_MAX"]}]
    (fix,) = fixing.propose_fixes(
        [_config_change("payments-config")], namespace="shop", configs=configs
    )
    assert "<" not in fix.command  # nothing left for the human to fill in
    assert "kubectl apply view-last-applied configmap/payments-config -n shop" in fix.command
    assert fix.command.startswith("kubectl get configmap/payments-config -n shop -o yaml >")
    assert "--dry-run=server" in fix.dry_run and "POOL_MAX" in fix.blast_radius
    assert fix.rollback.startswith("kubectl replace -f payments-config.now.yaml")


def test_a_configmap_without_a_known_earlier_content_names_version_control() -> None:
    configs = [{"kind": "configmap", "name": "payments-config", "drifted": []}]
    (fix,) = fixing.propose_fixes(
        [_config_change("payments-config")], namespace="shop", configs=configs
    )
    assert "<the previous configmap/payments-config from version control>" in fix.command


def _resource(component: str, *, change: str) -> models.Hypothesis:
    return models.Hypothesis(
        kind=models.CauseKind.RESOURCE,
        component=component,
        confidence=0.8,
        summary=f"{component} saturated",
        evidence=("ev-1",),
        change=change,
        onset=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_capacity_taken_away_by_a_scale_in_is_given_back_by_scaling_not_limits() -> None:
    scaled_in = _resource("render", change="deployment/render")  # replicas lowered
    limits_lowered = _resource("checkout", change="deployment/checkout@6")  # a new revision
    fixes = fixing.propose_fixes(
        [scaled_in, limits_lowered], namespace="shop", replicasets=REPLICASETS
    )
    assert [(f.kind, f.target) for f in fixes][:1] == [("scale", "deployment/render")]
    assert all(f.kind != "scale" for f in fixes if f.target == "deployment/checkout")


def test_an_abstaining_diagnosis_proposes_no_fix_at_all() -> None:
    from graphs import proposing

    lead = _rollout("checkout", 0.3).to_dict()
    correlation: Any = {"hypotheses": [lead], "abstained": False}
    fixes = proposing.proposals(correlation, namespace="shop", matched={}, evidence=[])
    assert [f["kind"] for f in fixes] == ["rollback"]
    correlation["abstained"] = True
    assert proposing.proposals(correlation, namespace="shop", matched={}, evidence=[]) == []
