"""Memory of past incidents, as the graph uses it: what a finished run leaves behind, and what
an earlier run says about the current one.

A finished run is kept as :func:`run_record`: the trigger, an evidence fingerprint (which
components were anomalous in which kind of signal, and which changes the hypotheses named), the
ranked hypotheses, and the decision with its reason, tied to the hypothesis it was about. On a
later incident :func:`recall` finds the runs that involved the same components, ranks them by
how alike their evidence is, says what turned out to be true, and flags any current hypothesis
that people already rejected, with their reason, on evidence this alike. Pure: the store comes
in as a port.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from diagnose.domain import models, ports
from graphs.state import (
    DiagnosisState,
    HypothesisBrief,
    PastRejection,
    Recalled,
    RejectedAgain,
    RunRecord,
    SimilarRun,
)

SAME_EVIDENCE = 0.5
"""Jaccard similarity of two fingerprints from which their evidence counts as the same."""
SHOWN = 5
"""Similar past incidents shown at most."""
LOOKED_AT = 200
"""Past runs read from the store at most (newest first)."""


def fingerprint(correlation: Mapping[str, Any]) -> list[str]:
    """``component:kind`` for the top signals of each anomalous component, and
    ``change:ref`` for the changes the best hypotheses name."""
    items = set()
    for component in correlation.get("components", []):
        if component.get("anomalous"):
            for signal in component.get("signals", [])[:3]:
                items.add(f"{component['component']}:{signal.get('kind')}")
    for hypothesis in correlation.get("hypotheses", [])[:3]:
        if hypothesis.get("change"):
            items.add(f"change:{hypothesis['change']}")
    return sorted(items)


def similarity(a: Sequence[str], b: Sequence[str]) -> float:
    """Jaccard similarity of two fingerprints (0 when both are empty)."""
    left, right = set(a), set(b)
    union = left | right
    return len(left & right) / len(union) if union else 0.0


def run_record(state: DiagnosisState) -> RunRecord:
    """What a finished run leaves for later incidents."""
    correlation = state.get("correlation") or {}
    hypotheses = correlation.get("hypotheses", [])[:5]
    trigger = state["trigger"]
    decision = state.get("decision") or None
    about = _decided_hypothesis(state)
    matched = state.get("playbook")
    return {
        "run_id": state["run_id"],
        "at": state["now"],
        "trigger": {
            "title": trigger["title"],
            "service": trigger["service"],
            "namespace": trigger["namespace"],
            "at": trigger["at"],
        },
        "playbook": matched.get("name") if matched else None,
        "components": sorted({trigger["service"], *(h["component"] for h in hypotheses[:3])}),
        "evidence": fingerprint(correlation),
        "hypotheses": [_brief(h) for h in hypotheses],
        "abstained": bool(correlation.get("abstained", False)),
        "decision": {
            "verdict": decision["verdict"],
            "approver": decision["approver"],
            "reason": decision["reason"],
            "at": decision["at"],
            "fix": decision["fix"],
        }
        if decision
        else None,
        "about": _brief(hypotheses[about]) if about is not None else None,
        "verification": state.get("verification"),
    }


def recall(memory: ports.IncidentMemory, state: DiagnosisState) -> Recalled:
    """Past runs on the same components, most alike first, each with what turned out to be
    true; and the current hypotheses people rejected before on evidence this alike."""
    correlation = state.get("correlation") or {}
    hypotheses = correlation.get("hypotheses", [])[:5]
    components = sorted({state["trigger"]["service"], *(h["component"] for h in hypotheses[:3])})
    now = fingerprint(correlation)
    past = [
        run
        for run in memory.recall(components=components, limit=LOOKED_AT)
        if run.get("run_id") != state["run_id"]
    ]
    scored = sorted(
        ((similarity(now, run.get("evidence", [])), run) for run in past),
        key=lambda pair: (-pair[0], str(pair[1].get("at"))),
    )
    return {
        "similar": [_similar(run, score) for score, run in scored[:SHOWN]],
        "rejected_again": [
            flag
            for index, hypothesis in enumerate(hypotheses)
            for score, run in scored
            if (flag := _rejected_again(index, hypothesis, run, score)) is not None
        ],
    }


def _similar(run: Mapping[str, Any], score: float) -> SimilarRun:
    trigger = run.get("trigger") or {}
    return {
        "run_id": run["run_id"],
        "at": run.get("at"),
        "title": trigger.get("title"),
        "similarity": round(score, 2),
        "outcome": outcome(run),
        "decision": run.get("decision"),
        "about": run.get("about"),
        "top": (run.get("hypotheses") or [None])[0],
    }


def outcome(run: Mapping[str, Any]) -> str:
    """What turned out to be true, in one line."""
    decision = run.get("decision") or {}
    about = run.get("about") or {}
    named = _name(about) if about else "the proposal"
    verdict = decision.get("verdict")
    if verdict == "approve":
        verified = run.get("verification") or {}
        status = f"; verification: {verified['outcome']}" if verified.get("outcome") else ""
        return (
            f"{named} was confirmed by {decision.get('approver')} "
            f"({decision.get('reason')}){status}"
        )
    if verdict == "reject":
        return f"{named} was rejected by {decision.get('approver')}: {decision.get('reason')}"
    return "no decision was recorded"


def _rejected_again(
    index: int, hypothesis: models.HypothesisData, run: Mapping[str, Any], score: float
) -> RejectedAgain | None:
    decision = run.get("decision") or {}
    about = run.get("about") or {}
    if decision.get("verdict") != "reject" or score < SAME_EVIDENCE or not about:
        return None
    if _key(about) != _key(hypothesis):
        return None
    return {
        "hypothesis": index,
        "kind": hypothesis["kind"],
        "component": hypothesis["component"],
        "change": hypothesis.get("change"),
        "run_id": run["run_id"],
        "approver": decision.get("approver"),
        "reason": decision.get("reason"),
        "at": decision.get("at"),
        "similarity": round(score, 2),
        "note": f"proposed again: {_name(hypothesis)} was rejected on evidence this alike "
        f"({round(score * 100)}% the same) by {decision.get('approver')} in run "
        f"{run['run_id']}: {decision.get('reason')}",
    }


def _decided_hypothesis(state: DiagnosisState) -> int | None:
    """The hypothesis a decision was about: the approved (or named) fix's, else the best."""
    decision = state.get("decision")
    hypotheses = (state.get("correlation") or {}).get("hypotheses", [])
    if not decision or not hypotheses:
        return None
    fix = next((f for f in state.get("fixes", []) if f["id"] == decision.get("fix")), None)
    index = fix["hypothesis"] if fix else 0
    return index if index < len(hypotheses) else 0


def _brief(hypothesis: models.HypothesisData) -> HypothesisBrief:
    return {
        "kind": hypothesis["kind"],
        "component": hypothesis["component"],
        "change": hypothesis["change"],
        "confidence": hypothesis["confidence"],
        "summary": hypothesis["summary"],
    }


def _key(hypothesis: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    return (hypothesis.get("kind"), hypothesis.get("component"), hypothesis.get("change"))


def _name(hypothesis: Mapping[str, Any]) -> str:
    change = f" ({hypothesis['change']})" if hypothesis.get("change") else ""
    return f"{hypothesis.get('kind')} at {hypothesis.get('component')}{change}"


def past_rejections(
    log: ports.AuditLog, *, run_id: str, correlation: Mapping[str, Any]
) -> list[PastRejection]:
    """Earlier runs whose fixes for the same components a human rejected, with the reason:
    shown at the approval step so the same rejected idea is not waved through again."""
    components = {h["component"] for h in correlation.get("hypotheses", [])[:3]}
    proposed: dict[str, set[str]] = {}
    rejected = []
    for entry in log.entries():
        if entry["run_id"] == run_id:
            continue
        body = entry["entry"]
        if entry["kind"] == "proposal":
            proposed.setdefault(str(entry["run_id"]), set()).add(body["hypothesis"]["component"])
        elif entry["kind"] == "decision" and body.get("verdict") == "reject":
            rejected.append((str(entry["run_id"]), body))
    return [
        PastRejection(
            run_id=run,
            component=component,
            approver=body.get("approver"),
            reason=body.get("reason"),
            at=body.get("at"),
        )
        for run, body in rejected
        for component in sorted(proposed.get(run, set()) & components)
    ][-10:]
