"""The approval step's question and the validation of its answer.

Designed against automation bias: the approver sees the alternatives and the counter-evidence
next to the leading hypothesis, must name the fix, must name which cited evidence they checked
themselves and at least one item of the counter-evidence when there is any, and must give a
reason. Code decides that every action needs approval; nothing a model says can change that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Required, TypedDict

from diagnose.domain import identities, models
from graphs.state import Challenge, CounterEvidence, DiagnosisState, PastRejection, Recalled


class Answer(TypedDict, total=False):
    """An answer at the approval step as the API, the CLI and the terminal give it (the
    question's ``answer_shape``). Answers are checked field by field (:func:`validate`)."""

    verdict: Required[str]  # approve | reject
    approver: Required[str]
    reason: Required[str]
    fix: str | None  # the fix id, when approving
    checked_evidence: list[str]  # evidence ids the approver looked at, when approving
    fix_digest: str | None  # the digest of the fix read; refused if it changed since
    via: str  # the path it came through: terminal, cli, kubectl, api
    os_user: str
    kube_user: str


class Question(TypedDict):
    """What the human is shown and asked at the approval step (the interrupt's payload)."""

    run_id: str
    question: str
    hypotheses: list[models.HypothesisData]
    abstained: bool
    fixes: Sequence[Mapping[str, object]]  # as the state holds them (models.Fix.to_dict(), …)
    what_would_prove_it_wrong: Sequence[Mapping[str, object]]  # challenges()
    problems_with_last_answer: list[str]
    approvals_so_far: Sequence[Mapping[str, object]]  # models.Decision.to_dict() of each
    rejected_before: list[PastRejection]
    past_incidents: Recalled
    answer_shape: dict[str, str]  # each field of :class:`Answer`, explained


def request(state: DiagnosisState) -> Question:
    """What the human is shown and asked (the interrupt's payload)."""
    correlation = state.get("correlation") or {}
    return {
        "run_id": state["run_id"],
        "question": "Approve one fix, or reject. Name the evidence you checked yourself.",
        "hypotheses": correlation.get("hypotheses", [])[:5],
        "abstained": bool(correlation.get("abstained", False)),
        "fixes": state.get("fixes", []),
        "what_would_prove_it_wrong": challenges(state),
        "problems_with_last_answer": state.get("approval_errors", []),
        "approvals_so_far": state.get("approvals", []),
        "rejected_before": state.get("past_rejections", []),
        "past_incidents": state.get("memory") or {},
        "answer_shape": {
            "verdict": "approve | reject",
            "approver": "your name (required)",
            "reason": "why (required)",
            "fix": "a fix id, when approving",
            "fix_digest": "optional: the digest of the fix you read; refused if it changed",
            "checked_evidence": (
                "ids of the evidence you looked at, when approving: among those the fix's "
                "hypothesis cites, and at least one of its counter-evidence when it has any"
            ),
        },
    }


DIGESTED = (
    "id",
    "kind",
    "target",
    "command",
    "rollback",
    "verify",
    "risk",
    "hypothesis",
    "action",
    "patch",
)
"""What a fix's digest covers: everything that decides what would be done. The dry-run result
and the sweep are commentary on it, shown but not hashed."""


def digest(fix: Mapping[str, Any], *, run_id: str) -> str:
    """The content hash of one fix of one run: an approval names it, and only a fix with the
    same hash in the same run can be carried out under that approval."""
    content = {key: fix.get(key) for key in DIGESTED} | {"run_id": run_id}
    text = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def action_key(fix: Mapping[str, Any], *, run_id: str) -> str:
    """The idempotency key of carrying out one approved fix: recorded on the object it changes
    and in the audit log, so a repeated attempt can tell the first one landed."""
    return f"{run_id}/{fix['id']}/{str(fix.get('digest') or '')[7:23]}"


def challenges(state: DiagnosisState) -> list[Challenge]:
    """For each of the leading hypotheses, what would show it is wrong: the counter-evidence
    the analysis saw (with its query, to re-run), the alternatives that explain the same
    signals, and the claim's own checkable conditions."""
    correlation = state.get("correlation") or {}
    hypotheses = correlation.get("hypotheses", [])[:3]
    by_id = {e["id"]: e for e in state.get("evidence", [])}
    found: list[Challenge] = []
    for rank, hypothesis in enumerate(hypotheses, start=1):
        counter: list[CounterEvidence] = [
            {"summary": seen["summary"], "query": seen["query"], "id": ev}
            if (seen := by_id.get(ev))
            else {"summary": "", "query": "", "id": ev}
            for ev in hypothesis.get("counter_evidence") or []
        ]
        others = [
            f"#{n} {h['kind']} {h['component']} ({h['confidence']:.2f}): {h.get('summary', '')}"
            for n, h in enumerate(correlation.get("hypotheses", [])[:5], start=1)
            if n != rank
        ]
        found.append(
            {
                "rank": rank,
                "hypothesis": f"{hypothesis['kind']} {hypothesis['component']}",
                "counter_evidence": counter,
                "alternatives": others,
                "wrong_if": _wrong_if(
                    hypothesis, counter=counter, abstained=bool(correlation.get("abstained"))
                ),
            }
        )
    return found


def _wrong_if(
    hypothesis: Mapping[str, Any], *, counter: Sequence[Mapping[str, Any]], abstained: bool
) -> list[str]:
    conditions = []
    component = str(hypothesis.get("component", ""))
    if component.startswith("node/"):
        # A node's trouble is read from its pods; its events may trail the onset, so the
        # falsifier is placement, not timing.
        node = component.removeprefix("node/")
        conditions.append(
            f"workloads with no pod on {node} show the same anomaly from the same time "
            f"(compare the cited signals per pod: kubectl get pods -o wide shows placement)"
        )
    elif hypothesis.get("change") and hypothesis.get("onset"):
        conditions.append(
            f"the symptoms began before {hypothesis['change']} took effect (onset measured "
            f"{hypothesis['onset']}): re-run the cited queries over the minutes before it"
        )
    elif hypothesis.get("change"):
        conditions.append(f"{hypothesis['change']} did not precede the symptoms")
    conditions.append(
        f"{hypothesis['component']}'s cited signals look normal when you re-run their queries"
    )
    conditions += [
        f"counter-evidence {c['id']} holds: {c['summary'] or c['query']}" for c in counter
    ]
    if abstained:
        conditions.append("no hypothesis reached the confidence threshold: this is a lead only")
    return conditions


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
            fix_digest=_current_digest(answer.get("fix"), state=state),
            via=str(answer.get("via") or ""),
            os_user=str(answer.get("os_user") or ""),
            kube_user=str(answer.get("kube_user") or ""),
        )
    except ValueError as exc:
        return None, [str(exc)]
    problems = _fit_problems(decision, state=state)
    given = answer.get("fix_digest")
    if not problems and given and given != decision.fix_digest:
        problems = [
            f"{decision.fix} is not the fix you read: its digest is {decision.fix_digest}, "
            f"the answer names {given}; read the proposal again"
        ]
    return (None, problems) if problems else (decision, [])


def _current_digest(fix_id: Any, *, state: DiagnosisState) -> str | None:
    fix = next((f for f in state.get("fixes", []) if f["id"] == fix_id), None) if fix_id else None
    return digest(fix, run_id=state["run_id"]) if fix is not None else None


def refusals(
    state: DiagnosisState, *, audit_entries: Sequence[Mapping[str, Any]] | None
) -> list[str]:
    """Why the recorded decision cannot be acted on ([] when it can). Checked by ``act`` on
    the state it is handed, so a decision replayed from another run or another fix, a fix
    edited after approval, or a state edited around the approval step is refused.
    ``audit_entries``: this run's audit log entries (None: no audit log configured)."""
    decision = models.Decision.from_dict(state["decision"])
    fixes = {f["id"]: f for f in state.get("fixes", [])}
    fix = fixes.get(decision.fix or "")
    if decision.verdict is not models.Verdict.APPROVE or fix is None:
        return [f"no proposed fix {decision.fix!r} was approved in this run"]
    now = digest(fix, run_id=state["run_id"])
    if decision.fix_digest != now:
        return [
            f"the approval names {decision.fix} with digest {decision.fix_digest}, but that fix "
            f"now has digest {now}: it changed after approval, or the approval is another's"
        ]
    given = [
        a
        for a in state.get("approvals", [])
        if a.get("fix") == decision.fix and a.get("fix_digest") == now
    ]
    if identities.normalise(decision.approver) not in _names(given):
        return [f"the approval of {decision.fix} by {decision.approver} is not on record"]
    if fix.get("risk") == models.Risk.HIGH.value and identities.people(given) < 2:
        return [
            f"{decision.fix} is high risk and has {identities.people(given)} approver(s), "
            "not two different people"
        ]
    return _audit_refusals(state, fix=fix, audit_entries=audit_entries)


def _audit_refusals(
    state: DiagnosisState,
    *,
    fix: Mapping[str, Any],
    audit_entries: Sequence[Mapping[str, Any]] | None,
) -> list[str]:
    """The fix must be the one the append-only audit log recorded when it was proposed."""
    if audit_entries is None:
        return []
    now = digest(fix, run_id=state["run_id"])
    decision = models.Decision.from_dict(state["decision"])
    recorded = [
        e["entry"]
        for e in audit_entries
        if e["kind"] == "approval"
        and e["entry"].get("fix") == fix["id"]
        and e["entry"].get("fix_digest") == now
    ]
    if identities.normalise(decision.approver) not in _names(recorded):
        return [
            f"the audit log holds no approval of {fix['id']} (digest {now}) by "
            f"{decision.approver}: the decision was not given at the approval step"
        ]
    if fix.get("risk") == models.Risk.HIGH.value and identities.people(recorded) < 2:
        return [
            f"the audit log holds {identities.people(recorded)} approver(s) of high-risk "
            f"{fix['id']}, not two different people"
        ]
    proposed = [
        e["entry"]["fix"]
        for e in audit_entries
        if e["kind"] == "proposal" and e["entry"]["fix"].get("id") == fix["id"]
    ]
    if not proposed or digest(proposed[0], run_id=state["run_id"]) != now:
        return [
            f"{fix['id']} differs from the proposal the audit log recorded for this run: "
            "the state was changed after the proposal"
        ]
    return []


def second_approver_needed(decision: models.Decision, *, state: DiagnosisState) -> str:
    """Why this approval is not enough on its own (a high-risk fix needs two different people
    to approve it), or "" when it is."""
    fix = next((f for f in state.get("fixes", []) if f["id"] == decision.fix), None)
    if fix is None or fix.get("risk") != models.Risk.HIGH.value:
        return ""
    given = [
        a
        for a in state.get("approvals", [])
        if a.get("fix") == decision.fix and a.get("fix_digest") == decision.fix_digest
    ]
    if identities.people([*given, decision.to_dict()]) >= 2:
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
    same = _same_person(decision, state=state)
    if same:
        return [same]
    fixes = {f["id"]: f for f in state.get("fixes", [])}
    fix = fixes.get(decision.fix or "")
    if fix is None:
        return [f"no proposed fix has id {decision.fix!r} (proposed: {sorted(fixes) or 'none'})"]
    hypotheses = (state.get("correlation") or {}).get("hypotheses", [])
    hypothesis = hypotheses[fix["hypothesis"]] if hypotheses else None
    cited = set(hypothesis["evidence"]) if hypothesis else set()
    against = set(hypothesis.get("counter_evidence") or ()) if hypothesis else set()
    unknown = [e for e in decision.checked_evidence if e not in cited | against]
    if unknown:
        return [
            f"evidence {', '.join(unknown)} is not cited by the hypothesis this fix addresses "
            f"(cited: {', '.join(sorted(cited))}; "
            f"against it: {', '.join(sorted(against)) or 'none'})"
        ]
    if cited and not cited & set(decision.checked_evidence):
        return [
            f"name at least one item of the evidence the hypothesis cites among the checked "
            f"evidence (cited: {', '.join(sorted(cited))}); counter-evidence alone does not "
            "show the diagnosis was checked"
        ]
    return _counter_problems(decision, against=against, run_id=state["run_id"])


def _counter_problems(decision: models.Decision, *, against: set[str], run_id: str) -> list[str]:
    """An approval must name at least one counter-evidence item it checked when the fix's
    hypothesis has any: the approver looks at what would prove the diagnosis wrong first.
    One rule for every path (terminal, CLI, kubectl, API, Slack)."""
    if not against or against & set(decision.checked_evidence):
        return []
    return [
        f"{decision.fix}'s hypothesis has counter-evidence: re-run the query of at least one of "
        f"{', '.join(sorted(against))} (`diagnose show {run_id}` lists them under 'against') and "
        "name the one you checked among the checked evidence (--checked, checked_evidence)"
    ]


def _names(records: Sequence[Mapping[str, Any]]) -> set[str]:
    return {identities.normalise(str(r.get("approver") or "")) for r in records}


def _same_person(decision: models.Decision, *, state: DiagnosisState) -> str:
    """Why this approval repeats one already given for the same fix ("" when it does not):
    the same name however spelled, or the same OS account or Kubernetes user."""
    mine = identities.Approver.of(decision.to_dict())
    for earlier in state.get("approvals", []):
        if earlier.get("fix") != decision.fix or earlier.get("fix_digest") != decision.fix_digest:
            continue
        shared = mine.shared_with(identities.Approver.of(earlier))
        if shared:
            return (
                f"{decision.fix} was already approved by {earlier['approver']} ({shared} is the "
                "same as this approval's): a different person must approve it, from their own "
                "account (names are compared trimmed, case-folded and Unicode-normalised)"
            )
    return ""
