"""A run's timeline: every line cites a reference that resolves to one of the run's stores.

- ``ev-…``: an evidence record in the bundle (``evidence.jsonl``);
- ``manifest.json#trigger``, ``manifest.json#now``: the bundle's manifest (the trigger as
  received, the time the run started);
- ``audit:KEY``: the run's audit-log entry with that key (``audit:approval:1``,
  ``audit:decision``, ``audit:action:fix-1``, ``audit:proposal:fix-1``);
- whatever reference the caller gives for the resolution (``queue-job:N`` for a PagerDuty
  ``incident.resolved`` delivery) and for the incident's own log
  (:class:`~diagnose.postmortem.facts.IncidentEvent`: ``queue-job:N#log-entry:ID`` for a
  PagerDuty log entry stored with that job).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from diagnose.postmortem import facts as facts_
from diagnose.postmortem import impact as impact_

TRIGGER_REF = "manifest.json#trigger"
STARTED_REF = "manifest.json#now"


@dataclass(frozen=True)
class Line:
    """One timeline line; ``ref`` names the stored record it comes from."""

    at: datetime
    what: str
    ref: str
    kind: str = ""  # alert | change | culprit | onset | started | proposal | approval |
    # rejection | action | applied | verification | recovery | data_end | resolved


def lines(
    facts: facts_.Facts,
    *,
    impact: impact_.Impact,
    resolution: facts_.Resolution | None,
    incident_log: Sequence[facts_.IncidentEvent] = (),
) -> list[Line]:
    """The run's moments and the incident's own, in time order."""
    found = [*_change_lines(facts), *_onset_lines(facts)]
    alerted = facts.trigger.at
    if alerted is not None:
        title = facts.trigger.title or "alert"
        found.append(Line(alerted, f"alert fired ({title})", TRIGGER_REF, "alert"))
    if facts.started is not None:
        what = f"diagnosis {facts.run_id} started"
        found.append(Line(facts.started, what, STARTED_REF, "started"))
    found += [line for entry in facts.audit if (line := _audit_line(entry)) is not None]
    found += _recovery_lines(facts, impact=impact)
    if resolution is not None:
        found.append(Line(resolution.at, resolution.detail, resolution.ref, "resolved"))
    found.sort(key=lambda line: line.at)
    logged = (Line(e.at, e.what, e.ref, e.kind) for e in incident_log)
    return sorted([*found, *logged], key=lambda line: line.at)


def _change_lines(facts: facts_.Facts) -> list[Line]:
    window = facts.window
    if not window:
        return []
    culprit = facts.culprit
    inside = [c for c in facts.changes if window.start <= c.at <= window.end]
    onset = facts.onset
    anchor = onset[0] if onset else (facts.trigger.at or window.end)
    inside.sort(key=lambda c: abs((c.at - anchor).total_seconds()))
    found = []
    for change in inside[: facts.policy.max_changes]:
        ref = _change_ref(facts, change)
        if ref is None:
            continue
        what = f"{change.kind} {change.ref}: {change.detail}"
        kind = "change"
        if culprit and change.ref == culprit:
            what, kind = what + " (the change the top hypothesis names)", "culprit"
        found.append(Line(change.at, what, ref, kind))
    return found


def _change_ref(facts: facts_.Facts, change: facts_.Change) -> str | None:
    """The derived evidence of this change (else the listing it was read from)."""
    for record in facts.evidence.values():
        raw = record.raw
        if (
            record.source == "analysis"
            and isinstance(raw, Mapping)
            and (raw.get("ref"), raw.get("at")) == (change.ref, change.stamp)
        ):
            return record.id
    return change.evidence if change.evidence in facts.evidence else None


def _onset_lines(facts: facts_.Facts) -> list[Line]:
    found = []
    onset = facts.onset
    root = facts.root
    if onset is not None:
        name = root.name if root else "the earliest anomalous component"
        lead = root.lead_signal() if root else None
        how = f": {lead.kind} {lead.metric} {lead.detail}".rstrip() if lead else ""
        found.append(Line(onset[0], f"onset of the anomaly in {name}{how}", onset[1], "onset"))
    alerting = facts.alerting
    if (
        alerting
        and alerting.anomalous
        and alerting.onset is not None
        and alerting.name != (root.name if root else None)
        and alerting.evidence in facts.evidence
    ):
        what = f"alerting service {alerting.name} becomes anomalous"
        found.append(Line(alerting.onset, what, alerting.evidence, "onset"))
    return found


def _audit_line(entry: facts_.AuditEntry) -> Line | None:
    at, kind, decision = entry.at, entry.kind, entry.decision
    if kind == "proposal":
        fix = entry.proposed
        what = f"fix {fix.id} proposed: {fix.kind} {fix.target}"
    elif kind == "approval":
        what = f"{decision.approver} approved {decision.fix}: {decision.reason}"
    elif kind == "decision" and decision.verdict == "reject":
        what = f"{decision.approver} rejected the proposed fixes: {decision.reason}"
        kind = "rejection"
    elif kind == "action":
        at = entry.recorded
        what = _action_text(entry)
        kind = "applied" if entry.executed else "action"
    elif kind == "verification":
        at = entry.watched_until
        why = f" ({entry.why})" if entry.why else ""
        what = f"verification of {entry.key.partition(':')[2]}: {entry.outcome}{why}"
    else:
        return None
    return Line(at, what, entry.ref, kind)


def _action_text(action: facts_.AuditEntry) -> str:
    fix = action.decision.fix
    if action.executed:
        return f"fix {fix} applied: `{action.command}`"
    return (
        f"fix {fix} handed to a human to apply (`{action.command}`); "
        "whether and when it was applied is unknown"
    )


def _recovery_lines(facts: facts_.Facts, *, impact: impact_.Impact) -> list[Line]:
    recovered = impact_.recovery(facts)
    if recovered is not None:
        what = "recovery: the lead signal is back near its baseline"
        return [Line(recovered[0], what, recovered[1], "recovery")]
    lead = facts.root.lead_signal() if facts.root else None
    if impact.onset is None or impact.data_end is None or lead is None:
        return []
    if lead.evidence not in facts.evidence:
        return []
    what = (
        f"stored data ends with {lead.kind} {lead.metric} {lead.detail} still "
        f"away from its baseline: recovery unknown"
    )
    return [Line(impact.data_end, what.replace("  ", " "), lead.evidence, "data_end")]
