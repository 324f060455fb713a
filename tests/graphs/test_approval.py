"""The approval step accepts only a named, reasoned decision on a proposed fix."""

from datetime import UTC, datetime
from typing import Any

from diagnose.domain import models
from graphs import approval

NOW = datetime(2026, 1, 1, tzinfo=UTC)

STATE: Any = {
    "run_id": "run-1",
    "correlation": {
        "hypotheses": [
            {
                "kind": "deploy",
                "component": "checkout",
                "change": "deployment/checkout@2",
                "confidence": 0.8,
                "summary": "",
                "evidence": ["ev-a", "ev-b"],
                "counter_evidence": [],
            }
        ]
    },
    "fixes": [{"id": "fix-1", "hypothesis": 0, "kind": "rollback"}],
}


def _answer(**changes: Any) -> dict[str, Any]:
    answer = {
        "verdict": "approve",
        "approver": "alice",
        "reason": "5xx started with rev 2",
        "fix": "fix-1",
        "checked_evidence": ["ev-a"],
    }
    return answer | changes


def test_a_complete_approval_is_accepted() -> None:
    decision, problems = approval.validate(_answer(), state=STATE, now=NOW)
    assert problems == []
    assert decision is not None and decision.verdict is models.Verdict.APPROVE
    assert decision.approver == "alice" and decision.at == NOW


def test_an_anonymous_answer_is_refused() -> None:
    decision, problems = approval.validate(_answer(approver="  "), state=STATE, now=NOW)
    assert decision is None and any("named approver" in p for p in problems)


def test_an_approval_without_reason_is_refused() -> None:
    decision, problems = approval.validate(_answer(reason=""), state=STATE, now=NOW)
    assert decision is None and any("reason" in p for p in problems)


def test_a_fix_that_was_not_proposed_is_refused() -> None:
    decision, problems = approval.validate(_answer(fix="fix-9"), state=STATE, now=NOW)
    assert decision is None and any("fix-9" in p for p in problems)


def test_approving_without_checking_evidence_is_refused() -> None:
    decision, problems = approval.validate(_answer(checked_evidence=[]), state=STATE, now=NOW)
    assert decision is None and any("evidence" in p for p in problems)


def test_checked_evidence_must_be_cited_by_the_hypothesis() -> None:
    decision, problems = approval.validate(
        _answer(checked_evidence=["ev-zzz"]), state=STATE, now=NOW
    )
    assert decision is None and any("ev-zzz" in p for p in problems)


def _countered() -> Any:
    """STATE with counter-evidence held against the fix's hypothesis."""
    hypothesis = STATE["correlation"]["hypotheses"][0] | {"counter_evidence": ["ev-x", "ev-y"]}
    return STATE | {"correlation": {"hypotheses": [hypothesis]}}


def test_an_approval_naming_no_counter_evidence_is_refused_with_the_ids_to_look_at() -> None:
    """When the hypothesis has counter-evidence, checking only what it cites is not enough."""
    decision, problems = approval.validate(_answer(), state=_countered(), now=NOW)
    assert decision is None
    (problem,) = problems
    assert "counter-evidence" in problem and "ev-x, ev-y" in problem
    assert "diagnose show run-1" in problem


def test_an_approval_naming_one_counter_evidence_item_is_accepted() -> None:
    decision, problems = approval.validate(
        _answer(checked_evidence=["ev-a", "ev-y"]), state=_countered(), now=NOW
    )
    assert problems == [] and decision is not None
    assert decision.checked_evidence == ("ev-a", "ev-y")


def test_an_approval_naming_counter_evidence_only_is_refused() -> None:
    """Counter-evidence alone does not show the diagnosis itself was checked: at least one item
    the hypothesis cites is needed too, on every path."""
    decision, problems = approval.validate(
        _answer(checked_evidence=["ev-y"]), state=_countered(), now=NOW
    )
    assert decision is None
    (problem,) = problems
    assert "cites" in problem and "ev-a, ev-b" in problem


def test_no_counter_evidence_is_asked_for_when_the_hypothesis_has_none() -> None:
    decision, problems = approval.validate(_answer(), state=STATE, now=NOW)
    assert problems == [] and decision is not None


def test_a_rejection_needs_no_counter_evidence() -> None:
    answer = {"verdict": "reject", "approver": "bob", "reason": "the deploy was config-only"}
    decision, problems = approval.validate(answer, state=_countered(), now=NOW)
    assert problems == [] and decision is not None


def test_a_reasoned_rejection_needs_no_fix() -> None:
    decision, problems = approval.validate(
        {"verdict": "reject", "approver": "bob", "reason": "deploy was a no-op"},
        state=STATE,
        now=NOW,
    )
    assert problems == [] and decision is not None and decision.fix is None


def test_garbage_is_refused_with_a_reason() -> None:
    decision, problems = approval.validate("yes please", state=STATE, now=NOW)
    assert decision is None and problems


HIGH_RISK: Any = STATE | {"fixes": [{"id": "fix-1", "hypothesis": 0, "risk": "high"}]}


def test_a_high_risk_fix_needs_a_second_different_approver() -> None:
    decision, _ = approval.validate(_answer(), state=HIGH_RISK, now=NOW)
    assert decision is not None
    assert "second" in approval.second_approver_needed(decision, state=HIGH_RISK)
    same_person = HIGH_RISK | {"approvals": [decision.to_dict()]}
    again, problems = approval.validate(_answer(), state=same_person, now=NOW)
    assert again is None and "different person" in problems[0]
    bob, _ = approval.validate(_answer(approver="bob"), state=same_person, now=NOW)
    assert bob is not None
    assert approval.second_approver_needed(bob, state=same_person) == ""


def test_a_medium_risk_fix_needs_one_approver() -> None:
    medium: Any = STATE | {"fixes": [{"id": "fix-1", "hypothesis": 0, "risk": "medium"}]}
    decision, _ = approval.validate(_answer(), state=medium, now=NOW)
    assert decision is not None
    assert approval.second_approver_needed(decision, state=medium) == ""
