"""The digest's evidence order: the leader's first by default, or round-robin across the
candidates, so that a digest trimmed to its prompt budget still shows the alternatives."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from diagnose.domain import models
from graphs import reasoning

AT = datetime(2026, 1, 1, 10, 0, tzinfo=UTC)


def _evidence(ev_id: str) -> models.Evidence:
    return models.Evidence(
        id=ev_id,
        source="analysis",
        query=f"q {ev_id}",
        window=None,
        status=models.Status.OK,
        summary=f"summary of {ev_id}",
    )


def _hypothesis(component: str, *ids: str) -> dict[str, Any]:
    return {
        "kind": "deploy",
        "component": component,
        "confidence": 0.5,
        "summary": component,
        "evidence": list(ids),
        "counter_evidence": [],
    }


def _state() -> Any:
    trigger = models.Trigger(source="test", title="t", service="a", namespace="ns", at=AT)
    hypotheses = [_hypothesis("a", "ev-a1", "ev-a2", "ev-a3"), _hypothesis("b", "ev-b1", "ev-b2")]
    return {"trigger": trigger.to_dict(), "correlation": {"hypotheses": hypotheses}}


EVIDENCE = [_evidence(i) for i in ("ev-a1", "ev-a2", "ev-a3", "ev-b1", "ev-b2")]


def test_the_leaders_evidence_comes_first_by_default() -> None:
    digest = reasoning.digest_of(_state(), evidence=EVIDENCE)
    assert [e.id for e in digest.evidence] == ["ev-a1", "ev-a2", "ev-a3", "ev-b1", "ev-b2"]


def test_interleaved_each_candidates_first_piece_comes_before_anyones_second() -> None:
    digest = reasoning.digest_of(_state(), evidence=EVIDENCE, interleave=True)
    assert [e.id for e in digest.evidence] == ["ev-a1", "ev-b1", "ev-a2", "ev-b2", "ev-a3"]
