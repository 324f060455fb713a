"""Fixes come only from the catalogue, aimed at what the hypothesis and the cluster name."""

from datetime import UTC, datetime
from typing import Any

from diagnose.analysis import fixing
from diagnose.domain import models


def _rs(revision: int, *, cpu: str = "500m") -> dict[str, Any]:
    return {
        "owner": "deployment/inventory",
        "revision": revision,
        "resources": {"inventory": {"limits": {"cpu": cpu, "memory": "256Mi"}}},
    }


def _hypothesis(kind: models.CauseKind, change: str | None) -> models.Hypothesis:
    return models.Hypothesis(
        kind=kind,
        component="inventory",
        confidence=0.8,
        summary="",
        evidence=("ev-1",),
        change=change,
        onset=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_a_bad_deploy_rolls_back_to_the_revision_before_it() -> None:
    [fix] = fixing.propose_fixes(
        [_hypothesis(models.CauseKind.DEPLOY, "deployment/inventory@7")],
        namespace="shop",
        replicasets=[_rs(5), _rs(7)],
    )
    assert fix.kind == "rollback"
    assert fix.command == "kubectl rollout undo deployment/inventory -n shop --to-revision=5"
    assert "--dry-run=server" in (fix.dry_run or "")


def test_a_lowered_limit_is_raised_back_to_what_it_was() -> None:
    [fix] = fixing.propose_fixes(
        [_hypothesis(models.CauseKind.RESOURCE, "deployment/inventory@7")],
        namespace="shop",
        replicasets=[_rs(5, cpu="1"), _rs(7, cpu="200m")],
    )
    assert fix.kind == "raise_limits"
    assert "-c inventory --limits=cpu=1,memory=256Mi" in fix.command
    assert "--limits=cpu=200m,memory=256Mi" in fix.rollback


def test_without_the_previous_revision_limits_are_doubled() -> None:
    [fix] = fixing.propose_fixes(
        [_hypothesis(models.CauseKind.RESOURCE, "deployment/inventory@7")],
        namespace="shop",
        replicasets=[_rs(7, cpu="250m")],
    )
    assert "--limits=cpu=500m,memory=512Mi" in fix.command


def test_a_resource_hog_with_no_change_gets_no_action() -> None:
    assert (
        fixing.propose_fixes([_hypothesis(models.CauseKind.RESOURCE, None)], namespace="shop") == []
    )


def test_external_components_are_never_scaled() -> None:
    hypothesis = models.Hypothesis(
        kind=models.CauseKind.TRAFFIC,
        component="external/api.bank.example",
        confidence=0.5,
        summary="",
        evidence=("ev-1",),
    )
    assert fixing.propose_fixes([hypothesis], namespace="shop") == []


def test_a_change_that_is_not_a_deployment_gets_no_rollback() -> None:
    hostile = _hypothesis(models.CauseKind.DEPLOY, "deployment/x; rm -rf /@3")
    assert fixing.propose_fixes([hostile], namespace="shop") == []


def test_a_namespace_that_is_not_a_kubernetes_name_gets_no_fix() -> None:
    assert (
        fixing.propose_fixes(
            [_hypothesis(models.CauseKind.DEPLOY, "deployment/inventory@7")],
            namespace="shop && curl evil",
            replicasets=[_rs(5), _rs(7)],
        )
        == []
    )
