"""Fixes for Kubernetes-state findings: exact when the state says what to restore, a pointer
for a human when the agent must not act, a rollback when a rollout raised requests."""

from __future__ import annotations

from typing import Any

from diagnose.analysis import fixing
from diagnose.domain import models


def _hypothesis(kind: str, component: str, change: str | None = None) -> models.Hypothesis:
    return models.Hypothesis(
        kind=models.CauseKind(kind),
        component=component,
        confidence=0.8,
        summary="…",
        evidence=("ev-1",),
        change=change,
    )


def _finding(fault: str, kind: str, component: str, **extra: Any) -> dict[str, Any]:
    return {
        "fault": fault,
        "kind": kind,
        "component": component,
        "check": f"kubectl describe {component}",
        "wrong_if": "it is fine",
        "victims": [],
        "change": None,
        "restore": {},
    } | extra


def _fix(hypothesis: models.Hypothesis, finding: dict[str, Any]) -> models.Fix:
    (fix,) = fixing.propose_fixes(
        [hypothesis], namespace="shop", findings={finding["component"]: finding}
    )
    return fix


def test_a_quota_is_handed_to_a_human_with_nothing_to_execute() -> None:
    """The proposal points at the quota, says the agent never changes quotas, acts on nothing."""
    fix = _fix(
        _hypothesis("resource", "namespace/shop"),
        _finding("quota", "resource", "namespace/shop"),
    )
    assert (fix.kind, fix.action, fix.target) == ("hand_over", None, "namespace/shop")
    assert fix.command == "kubectl describe namespace/shop"
    assert "never changes quotas" in fix.blast_radius


def test_a_node_is_cordoned_only_as_a_proposed_command() -> None:
    """cordon and drain with their blast radius, never an executable action."""
    fix = _fix(
        _hypothesis("resource", "node/worker-b"),
        _finding("node", "resource", "node/worker-b", victims=["checkout"]),
    )
    assert fix.kind == "cordon" and fix.action is None
    assert fix.command.startswith("kubectl cordon worker-b && kubectl drain worker-b")
    assert "every pod on node worker-b" in fix.blast_radius and "checkout" in fix.blast_radius
    assert fix.rollback == "kubectl uncordon worker-b"


def test_a_workload_scaled_to_zero_is_scaled_back_to_its_count_before() -> None:
    """The count the ScalingReplicaSet event gave, as an executable scale action."""
    fix = _fix(
        _hypothesis("resource", "cart"),
        _finding("scaled-to-zero", "resource", "cart", restore={"replicas": 3}),
    )
    assert (
        fix.kind == "scale" and fix.command == "kubectl scale deployment/cart -n shop --replicas=3"
    )
    assert fix.action is not None and fix.action["replicas"] == 3


def test_a_selector_is_restored_from_the_pods_template() -> None:
    """restore_service on the Service, with the selector the analysis read."""
    restore = {"service": "cart", "selector": {"app": "cart"}}
    fix = _fix(
        _hypothesis("config", "cart"), _finding("selector", "config", "cart", restore=restore)
    )
    assert fix.kind == "restore_service" and fix.target == "service/cart"
    assert fix.action is not None and fix.action["kind"] == "service"
    assert fix.action["selector"] == {"app": "cart"}


def test_requests_no_node_can_meet_are_rolled_back_not_raised() -> None:
    """An unschedulable workload whose rollout raised its requests: roll back that rollout."""
    change = "deployment/catalog@2"
    fix = _fix(
        _hypothesis("resource", "catalog", change),
        _finding("unschedulable", "resource", "catalog", change=change),
    )
    assert fix.kind == "rollback"


def test_a_metric_hypothesis_a_finding_joined_keeps_its_own_fix() -> None:
    """The metric hypothesis kept its kind and rollout: the finding's hand-over does not
    replace its rollback."""
    fix = _fix(
        _hypothesis("deploy", "checkout", "deployment/checkout@5"),
        _finding("config-error", "config", "checkout"),
    )
    assert fix.kind == "rollback"


def test_a_restored_selector_says_where_its_value_comes_from() -> None:
    """The fix names its source: the last-applied configuration, or the pod template when
    nothing earlier is known."""
    for source in ("the Service's last-applied configuration", "the workload's pod template"):
        restore = {"service": "cart", "selector": {"app": "cart"}, "source": source}
        fix = _fix(
            _hypothesis("config", "cart"), _finding("selector", "config", "cart", restore=restore)
        )
        assert fix.blast_radius.endswith(f"read from {source})")


def test_a_crash_loop_on_a_resource_that_ran_out_with_no_rollout_goes_to_a_human() -> None:
    """OOMKilled or a full disk with no change of the workload's own: a hand-over that says
    what ran out, never a limit the agent would pick."""
    fix = _fix(
        _hypothesis("resource", "orders-db"), _finding("crash-loop", "resource", "orders-db")
    )
    assert (fix.kind, fix.action, fix.target) == ("hand_over", None, "orders-db")
    assert "changes no limit, volume or setting" in fix.blast_radius


def test_a_crash_loop_of_the_code_with_no_rollout_proposes_nothing() -> None:
    """A deploy-kind crash loop with no rollout to roll back has no fix to propose."""
    fixes = fixing.propose_fixes(
        [_hypothesis("deploy", "cart")],
        namespace="shop",
        findings={"cart": _finding("crash-loop", "deploy", "cart")},
    )
    assert fixes == []
