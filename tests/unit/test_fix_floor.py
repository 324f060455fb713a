"""A hypothesis the evidence barely supports gets no fix unless the floor is lowered: a
rollback proposed for a rollout whose service shows no anomaly invites the wrong approval."""

from __future__ import annotations

from datetime import UTC, datetime

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
