"""Code settles the model's claims against the analysis, and the merge never loses a
deterministic hypothesis."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from diagnose.analysis import ranking
from diagnose.domain import answers, reasoning
from diagnose.domain.models import CauseKind, Evidence, Status
from graphs import reasoning as reason_step

AT = datetime(2026, 1, 10, 10, 7, tzinfo=UTC)
Claim = reasoning.Claim
Fix = reasoning.FixProposal


def _ev(ident: str) -> Evidence:
    return Evidence(ident, "prometheus", ident, None, Status.OK, "ok")


EVIDENCE = {e.id: e for e in map(_ev, ("ev-errors", "ev-cpu", "ev-rs", "ev-db", "ev-probe"))}


def correlation() -> dict[str, Any]:
    """checkout's errors are anomalous (z 14) from 10:00; payments' cpu is not (z 1.2);
    postgres' connections are (z 6) from 10:02; checkout@14 rolled out at 09:58 (before its
    onset), checkout@15 at 10:03 (after it), payments@7 at 10:05."""
    return {
        "hypotheses": [
            {
                "kind": "deploy",
                "component": "checkout",
                "change": "deployment/checkout@14",
                "confidence": 0.9,
                "summary": "rollout before errors",
                "evidence": ["ev-rs", "ev-errors"],
                "counter_evidence": [],
                "onset": "2026-01-10T10:00:00Z",
            },
            {
                "kind": "deploy",
                "component": "payments",
                "change": "deployment/payments@7",
                "confidence": 0.0,
                "summary": "changed but quiet",
                "evidence": ["ev-rs"],
                "counter_evidence": [],
                "onset": None,
            },
        ],
        "components": [
            {
                "component": "checkout",
                "onset": "2026-01-10T10:00:00Z",
                "anomalous": True,
                "signals": [{"kind": "errors", "evidence": "ev-errors", "z": 14.0}],
            },
            {
                "component": "payments",
                "onset": None,
                "anomalous": False,
                "signals": [{"kind": "cpu", "evidence": "ev-cpu", "z": 1.2}],
            },
            {
                "component": "postgres/shop",
                "onset": "2026-01-10T10:02:00Z",
                "anomalous": True,
                "signals": [{"kind": "database", "evidence": "ev-db", "z": 6.0}],
            },
        ],
        "changes": [
            {
                "kind": "rollout",
                "ref": "deployment/checkout@14",
                "component": "checkout",
                "at": "2026-01-10T09:58:00Z",
                "evidence": "ev-rs",
            },
            {
                "kind": "rollout",
                "ref": "deployment/checkout@15",
                "component": "checkout",
                "at": "2026-01-10T10:03:00Z",
                "evidence": "ev-rs",
            },
            {
                "kind": "rollout",
                "ref": "deployment/payments@7",
                "component": "payments",
                "at": "2026-01-10T10:05:00Z",
                "evidence": "ev-rs",
            },
        ],
        "abstained": False,
        "notes": [],
    }


def settle(*claims: Claim) -> list[reason_step.Settled]:
    return reason_step.settle(claims, correlation=correlation(), evidence=EVIDENCE, trigger_at=AT)


def claim(kind: CauseKind, component: str, *evidence: str, **more: Any) -> Claim:
    return Claim(kind, component, more.get("change"), evidence, "because", more.get("fix"))


def test_agreeing_with_the_analysis_confirms_it_at_its_own_confidence() -> None:
    (verdict,) = settle(
        claim(CauseKind.DEPLOY, "checkout", "ev-errors", change="deployment/checkout@14")
    )
    assert (verdict.outcome, verdict.confirms, verdict.confidence) == ("confirms", 0, 0.9)


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (claim(CauseKind.RESOURCE, "payments", "ev-cpu"), "not anomalous on payments"),
        (claim(CauseKind.TRAFFIC, "checkout", "ev-db"), "not anomalous on checkout"),
        (claim(CauseKind.DEPLOY, "checkout", "ev-gone"), "does not exist"),
        (
            claim(CauseKind.DEPLOY, "checkout", "ev-errors", change="deployment/checkout@15"),
            "comes after the onset",
        ),
        (
            claim(CauseKind.DEPLOY, "checkout", "ev-errors", change="deployment/payments@7"),
            "belongs to payments",
        ),
        (claim(CauseKind.DEPENDENCY, "payments", "ev-rs"), "no cited evidence shows"),
        (
            claim(CauseKind.DATABASE, "postgres/shop", "ev-db", fix=Fix("rollback", "checkout")),
            "not the claimed component",
        ),
        (
            claim(CauseKind.DATABASE, "postgres/shop", "ev-db", fix=Fix("scale", "postgres/shop")),
            "does not address a database cause",
        ),
        (
            claim(CauseKind.TRAFFIC, "checkout", "ev-errors", fix=Fix("drop_table", "checkout")),
            "not a catalogue action",
        ),
        (
            claim(CauseKind.TRAFFIC, "external/x", "ev-errors", fix=Fix("scale", "external/x")),
            "not a component in scope",
        ),
    ],
)
def test_claims_the_evidence_does_not_support_are_refused(bad: Claim, reason: str) -> None:
    (verdict,) = settle(bad)
    assert verdict.outcome == "refused" and verdict.confidence is None
    assert any(reason in r for r in verdict.reasons), verdict.reasons


def test_a_supported_new_claim_gets_a_computed_confidence_under_the_threshold() -> None:
    fix = Fix("create_index", "postgres/shop")
    (verdict,) = settle(claim(CauseKind.DATABASE, "postgres/shop", "ev-db", "ev-probe", fix=fix))
    assert verdict.outcome == "added" and verdict.confidence is not None
    assert 0 < verdict.confidence <= reason_step.MODEL_CAP
    assert verdict.confidence < ranking.ConfidencePolicy().abstain_below
    stronger = correlation()
    stronger["components"][2]["signals"][0]["z"] = 40.0
    (louder,) = reason_step.settle(
        [verdict.claim], correlation=stronger, evidence=EVIDENCE, trigger_at=AT
    )
    assert louder.confidence is not None and louder.confidence > verdict.confidence


def test_the_merge_keeps_every_deterministic_hypothesis_first_and_in_order() -> None:
    verdicts = settle(
        claim(CauseKind.DATABASE, "postgres/shop", "ev-db"),
        claim(CauseKind.RESOURCE, "payments", "ev-cpu"),
        claim(CauseKind.DEPLOY, "checkout", "ev-errors"),
    )
    merged = reason_step.merge_claims(correlation(), verdicts)
    assert merged["hypotheses"][:2] == correlation()["hypotheses"]
    (added,) = merged["hypotheses"][2:]
    assert (added["kind"], added["component"]) == ("database", "postgres/shop")
    assert added["summary"].startswith('model says (unverified): "')
    assert merged["abstained"] is False


def test_an_abstention_stays_an_abstention() -> None:
    quiet = correlation() | {"hypotheses": [], "abstained": True}
    verdicts = reason_step.settle(
        [claim(CauseKind.DATABASE, "postgres/shop", "ev-db")],
        correlation=quiet,
        evidence=EVIDENCE,
        trigger_at=AT,
    )
    merged = reason_step.merge_claims(quiet, verdicts)
    assert merged["abstained"] is True and len(merged["hypotheses"]) == 1


def test_the_models_confidence_is_never_read() -> None:
    """A claimed confidence is not even part of a valid answer."""
    digest = reasoning.Digest(
        incident="x", components=("checkout",), evidence=(EVIDENCE["ev-errors"],)
    )
    answer = {
        "hypotheses": [
            {
                "kind": "deploy",
                "component": "checkout",
                "change": None,
                "evidence": ["ev-errors"],
                "rationale": "sure",
                "confidence": 0.99,
            }
        ]
    }
    checked = answers.check_answer(answer, digest=digest)
    assert not checked.accepted and any("'confidence'" in p for p in checked.problems)
