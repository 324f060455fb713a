"""Kubernetes-state findings ranked beside the metric hypotheses
(diagnose.analysis.faultranking): which kind and change a joined hypothesis keeps."""

from __future__ import annotations

from diagnose.analysis import cluster, faultranking, ranking
from diagnose.domain import models


def _metric_draft(change: str) -> ranking.Draft:
    """A deploy hypothesis the metrics support, naming ``change``."""
    return ranking.Draft(
        kind=models.CauseKind.DEPLOY,
        component="cart",
        score=3.0,
        strength=8.0,
        fit=0.8,
        summary="rollout before cart became anomalous",
        evidence=("ev-metrics",),
        counter=(),
        change=change,
        onset=None,
    )


def _missing_secret() -> cluster.Finding:
    return cluster.Finding(
        fault="config-error",
        kind=models.CauseKind.CONFIG,
        component="cart",
        summary='cart cannot start: secret "cart-redis" not found',
        check="kubectl describe pod cart-1 -n shop",
        wrong_if="the pods of cart are Running and Ready",
        severity=cluster.DEFINITE,
        evidence=("ev-pods",),
    )


def _joined(change: str) -> ranking.Draft:
    (draft,) = faultranking.rank_faults(
        [_metric_draft(change)], [_missing_secret()], cited={"cart": "ev-finding"}
    )
    return draft


def test_a_workloads_creation_does_not_replace_what_its_state_shows() -> None:
    """A definite finding joined to a hypothesis naming the workload's first revision (its
    creation) keeps the finding's kind and no change: being installed explains nothing."""
    draft = _joined("deployment/cart@1")
    assert (draft.kind, draft.change) == (models.CauseKind.CONFIG, None)


def test_a_rollout_the_metrics_support_is_kept_when_joined() -> None:
    """A later revision the metrics support stays the joined hypothesis's change and kind."""
    draft = _joined("deployment/cart@4")
    assert (draft.kind, draft.change) == (models.CauseKind.DEPLOY, "deployment/cart@4")
