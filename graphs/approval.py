"""The approval step's question and the validation of its answer.

Designed against automation bias: the approver sees the alternatives and the counter-evidence
next to the leading hypothesis, must name the fix, must name which cited evidence they checked
themselves, and must give a reason. Code decides that every action needs approval; nothing a
model says can change that.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from diagnose.domain import models
from graphs.state import DiagnosisState


def request(state: DiagnosisState) -> dict[str, Any]:
    """What the human is shown and asked (the interrupt's payload)."""
    correlation = state.get("correlation") or {}
    return {
        "run_id": state["run_id"],
        "question": "Approve one fix, or reject. Name the evidence you checked yourself.",
        "hypotheses": correlation.get("hypotheses", [])[:5],
        "abstained": bool(correlation.get("abstained", False)),
        "fixes": state.get("fixes", []),
        "problems_with_last_answer": state.get("approval_errors", []),
        "approvals_so_far": state.get("approvals", []),
        "rejected_before": state.get("past_rejections", []),
        "past_incidents": state.get("memory") or {},
        "answer_shape": {
            "verdict": "approve | reject",
            "approver": "your name (required)",
            "reason": "why (required)",
            "fix": "a fix id, when approving",
            "checked_evidence": "ids of the evidence you looked at, when approving",
        },
    }


def validate(
    answer: Any, *, state: DiagnosisState, now: datetime
) -> tuple[models.Decision | None, list[str]]:
    """A decision, or the list of reasons the answer cannot be accepted."""
    if not isinstance(answer, Mapping):
        return None, [f"the answer must be an object, not {type(answer).__name__}"]
    problems = _shape_problems(answer)
    if problems:
        return None, problems
    try:
        decision = models.Decision(
            verdict=models.Verdict(answer["verdict"]),
            approver=str(answer["approver"]),
            reason=str(answer["reason"]),
            at=now,
            fix=answer.get("fix") or None,
            checked_evidence=tuple(str(e) for e in answer.get("checked_evidence") or ()),
        )
    except ValueError as exc:
        return None, [str(exc)]
    problems = _fit_problems(decision, state=state)
    return (None, problems) if problems else (decision, [])


def second_approver_needed(decision: models.Decision, *, state: DiagnosisState) -> str:
    """Why this approval is not enough on its own (a high-risk fix needs two different people
    to approve it), or "" when it is."""
    fix = next((f for f in state.get("fixes", []) if f["id"] == decision.fix), None)
    if fix is None or fix.get("risk") != models.Risk.HIGH.value:
        return ""
    others = {
        a["approver"]
        for a in state.get("approvals", [])
        if a.get("fix") == decision.fix and a["approver"] != decision.approver
    }
    if others:
        return ""
    return (
        f"{decision.fix} is high risk: approval by {decision.approver} recorded; a second, "
        "different approver must approve it too"
    )


def _shape_problems(answer: Mapping[str, Any]) -> list[str]:
    problems = []
    if answer.get("verdict") not in ("approve", "reject"):
        problems.append("verdict must be 'approve' or 'reject'")
    if not str(answer.get("approver") or "").strip():
        problems.append("a named approver is required")
    if not str(answer.get("reason") or "").strip():
        problems.append("a reason is required")
    return problems


def _fit_problems(decision: models.Decision, *, state: DiagnosisState) -> list[str]:
    if decision.verdict is models.Verdict.REJECT:
        return []
    if any(
        a["approver"] == decision.approver and a.get("fix") == decision.fix
        for a in state.get("approvals", [])
    ):
        return [f"{decision.approver} already approved {decision.fix}: a different person must"]
    fixes = {f["id"]: f for f in state.get("fixes", [])}
    fix = fixes.get(decision.fix or "")
    if fix is None:
        return [f"no proposed fix has id {decision.fix!r} (proposed: {sorted(fixes) or 'none'})"]
    hypotheses = (state.get("correlation") or {}).get("hypotheses", [])
    cited = set(hypotheses[fix["hypothesis"]]["evidence"]) if hypotheses else set()
    unknown = [e for e in decision.checked_evidence if e not in cited]
    if unknown:
        return [
            f"evidence {', '.join(unknown)} is not cited by the hypothesis this fix addresses "
            f"(cited: {', '.join(sorted(cited))})"
        ]
    return []
