"""The run's outputs: the result object of SCENARIOS.md and the final report."""

from __future__ import annotations

from diagnose.domain import models
from graphs import approval
from graphs.state import (
    DiagnosisState,
    EvidenceBrief,
    ModelCost,
    ReportData,
    ResultData,
    Timings,
)


def result(state: DiagnosisState) -> ResultData:
    """The object ``diagnose run --json`` prints (SCENARIOS.md, "What the agent reports")."""
    correlation = state.get("correlation") or {}
    timings = dict(state.get("timings_s") or {})
    gather = max(timings.get(f"gather_{part}", 0.0) for part in ("metrics", "changes", "traces"))
    stages: Timings = {
        "gather": round(gather, 4),
        "correlate": timings.get("correlate", 0.0),
        "reason": timings.get("reason", 0.0),
        "total": round(sum(timings.values()), 4),
        "stages": timings,
    }
    return {
        "run_id": state.get("run_id"),
        "hypotheses": correlation.get("hypotheses", []),
        "abstained": bool(correlation.get("abstained", not correlation.get("hypotheses"))),
        "fixes": state.get("fixes", []),
        "notes": [*state.get("notes", []), *correlation.get("notes", [])],
        "evidence": [_brief(e) for e in state.get("evidence", [])],
        "decision": state.get("decision"),
        "rejected_before": state.get("past_rejections", []),
        "playbook": _playbook(state),
        "past_incidents": state.get("memory") or {},
        "timings_s": stages,
        "llm": _llm(state),
        "reasoning": state.get("reasoning"),
    }


def build(state: DiagnosisState) -> ReportData:
    """The final report: the result plus what was decided and done."""
    return {
        **result(state),
        "trigger": state.get("trigger"),
        "window": state.get("window"),
        "actions": state.get("actions", []),
        "verification": state.get("verification"),
        "what_would_prove_it_wrong": approval.challenges(state),
    }


def concluded(result_object: ResultData) -> bool:
    """Whether anything could be concluded: at least one hypothesis was ranked."""
    return bool(result_object.get("hypotheses"))


def _brief(evidence: models.EvidenceData) -> EvidenceBrief:
    return {
        "id": evidence["id"],
        "source": evidence["source"],
        "status": evidence["status"],
        "query": evidence["query"],
        "summary": evidence["summary"],
    }


def _llm(state: DiagnosisState) -> ModelCost:
    """What the language model cost this run: tokens, calls (answered and failed), latency."""
    block = state.get("reasoning") or {}
    return {
        "used": bool(block.get("used", False)),
        "status": block.get("status", "unavailable"),
        "model": block.get("model"),
        "prompt_tokens": int(block.get("prompt_tokens", 0)),
        "completion_tokens": int(block.get("completion_tokens", 0)),
        "calls": int(block.get("calls", block.get("requests", 0))),
        "failed_calls": int(block.get("failed_calls", 0)),
        "seconds": float(block.get("seconds", 0.0)),
    }


def _playbook(state: DiagnosisState) -> dict[str, object] | None:
    """The playbook that ran: its name, file, how it matched, and what it queried."""
    matched = state.get("playbook")
    if not matched:
        return None
    keys = ("name", "file", "matched_by", "queries", "probes", "fixes", "fix_templates")
    return {k: matched.get(k) for k in keys}
