"""Postmortem drafts from a finished (or paused) run: pure functions, no I/O, no clock.

:func:`draft` reads the run's facts (:mod:`~diagnose.postmortem.facts`), measures its impact
(:mod:`~diagnose.postmortem.impact`), lays out its timeline
(:mod:`~diagnose.postmortem.timeline`) and chooses its plots (:mod:`~diagnose.postmortem.plots`);
this module writes the narrative sections around them, and
:mod:`~diagnose.postmortem.markdown` turns the whole into Markdown.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from diagnose.postmortem import facts as facts_
from diagnose.postmortem import impact as impact_
from diagnose.postmortem import plots as plots_
from diagnose.postmortem import timeline as timeline_
from diagnose.postmortem import wording

RunRecord = facts_.RunRecord
Slo = facts_.Slo
Resolution = facts_.Resolution
IncidentEvent = facts_.IncidentEvent
DraftPolicy = facts_.DraftPolicy
"""The draft's inputs (:mod:`~diagnose.postmortem.facts`), named where :func:`draft` is."""


@dataclass(frozen=True)
class Postmortem:
    title: str
    run_id: str
    summary: tuple[str, ...]
    impact: impact_.Impact
    timeline: tuple[timeline_.Line, ...]
    root_cause: tuple[str, ...]
    contributing: tuple[str, ...]
    went_well: tuple[str, ...]
    went_badly: tuple[str, ...]
    actions: tuple[str, ...]
    plots: tuple[plots_.Plot, ...]
    cited: Mapping[str, str] = field(default_factory=dict)  # ref → what it is


def draft(
    record: facts_.RunRecord,
    *,
    slo: facts_.Slo | None = None,
    resolution: facts_.Resolution | None = None,
    title: str | None = None,
    policy: facts_.DraftPolicy | None = None,
    default_slo: facts_.Slo | None = None,
    incident_log: Sequence[facts_.IncidentEvent] = (),
    incident_log_missing: str | None = None,
) -> Postmortem:
    """The postmortem draft of one run.

    ``slo`` wins over a Sloth objective in the evidence, which wins over ``default_slo``.
    ``incident_log`` adds the incident's own moments to the timeline; ``incident_log_missing``
    says why that log could not be read (a thing that went badly)."""
    facts = facts_.Facts.of(record, policy=policy or facts_.DraftPolicy())
    impact = impact_.measure(facts, slo=slo, default_slo=default_slo, resolution=resolution)
    timeline = timeline_.lines(
        facts, impact=impact, resolution=resolution, incident_log=incident_log
    )
    unread = (
        [
            f"The incident's own log could not be read ({incident_log_missing}): its "
            "acknowledgements and escalations are missing from the timeline."
        ]
        if incident_log_missing
        else []
    )
    plots = plots_.plots(facts, impact=impact, timeline=timeline)
    return Postmortem(
        title=title or facts.trigger.title or facts.run_id,
        run_id=facts.run_id,
        summary=tuple(_summary(facts, impact=impact)),
        impact=impact,
        timeline=tuple(timeline),
        root_cause=tuple(_root_cause(facts)),
        contributing=tuple(_contributing(facts)),
        went_well=tuple(_went_well(facts, impact=impact)),
        went_badly=tuple(_went_badly(facts, impact=impact, extra=unread)),
        actions=tuple(_actions(facts, impact=impact)),
        plots=tuple(plots),
        cited=_cited(
            facts,
            refs=_refs_of(timeline, impact=impact, plots=plots),
            resolution=resolution,
            incident_log=incident_log,
        ),
    )


# --- narrative sections -------------------------------------------------------------------------


def _summary(facts: facts_.Facts, *, impact: impact_.Impact) -> list[str]:
    trigger = facts.trigger
    lines = [
        f"Alert: {trigger.title or facts_.UNKNOWN} ({trigger.service or facts_.UNKNOWN} in "
        f"{trigger.namespace or facts_.UNKNOWN}, fired {trigger.stamp or facts_.UNKNOWN}).",
    ]
    top = facts.top
    if top is None or facts.abstained:
        lines.append(
            "Root cause: not sure. The diagnosis abstained: the evidence was too weak to name one."
        )
    else:
        lines.append(
            f"Likely root cause ({wording.pct(top.confidence)}, computed): "
            f"{wording.inert(top.summary)}."
        )
    lines.append(f"Duration: {impact.duration}.")
    lines.append(f"Decision: {_decision_text(facts)}.")
    return lines


def _decision_text(facts: facts_.Facts) -> str:
    decision = facts.decision
    if decision is None:
        return (
            "none recorded (the run waits at the approval step)" if facts.fixes else "none recorded"
        )
    if decision.verdict == "reject":
        return f"{decision.approver} rejected the proposed fixes ({decision.reason})"
    return f"{decision.approver} approved {decision.fix} ({decision.reason})"


def _root_cause(facts: facts_.Facts) -> list[str]:
    top = facts.top
    if top is None:
        return ["Not sure: the diagnosis ranked no hypothesis. To be established by hand."]
    if facts.abstained:
        lines = ["Not sure: the diagnosis abstained. Its best candidates, none strong enough:"]
        lines += [f"- {_hypothesis_text(h)}" for h in facts.hypotheses[:3]]
        return lines
    lines = [wording.inert(top.summary), ""]
    lines.append(
        f"- kind: {top.kind}; component: {top.component}; change: {top.change or facts_.UNKNOWN}; "
        f"confidence: {wording.pct(top.confidence)} (computed)"
    )
    lines.append("- evidence: " + (wording.refs(top.evidence) or "none cited"))
    lines.append("- counter-evidence: " + (wording.refs(top.counter_evidence) or "none"))
    if follow_up := wording.code_follow_up(top.code):
        lines.append(f"- code: {wording.inert(follow_up)}")
    return lines


def _contributing(facts: facts_.Facts) -> list[str]:
    others = facts.hypotheses[1:6] if not facts.abstained else ()
    possible = [f"Possible: {_hypothesis_text(h)}" for h in others if h.confidence > 0]
    ruled = [f"Ruled out: {_hypothesis_text(h)}" for h in others if h.confidence <= 0]
    return possible + ruled or ["None identified by the diagnosis."]


def _hypothesis_text(hypothesis: facts_.Hypothesis) -> str:
    cited = wording.refs(hypothesis.evidence)
    summary = wording.inert(hypothesis.summary)
    return f"{summary} ({wording.pct(hypothesis.confidence)}; {cited or 'no evidence'})"


def _time_to_diagnose(facts: facts_.Facts) -> timedelta | None:
    ready, alerted = facts.diagnosed_at, facts.trigger.at
    if ready is None or alerted is None:
        return None
    return ready - alerted


def _detection(facts: facts_.Facts, *, impact: impact_.Impact) -> timedelta | None:
    alerted = facts.trigger.at
    if impact.onset is None or alerted is None:
        return None
    return alerted - impact.onset


def _went_well(facts: facts_.Facts, *, impact: impact_.Impact) -> list[str]:
    lines = []
    took = _time_to_diagnose(facts)
    if took is not None and took.total_seconds() <= facts.policy.quick_diagnosis_s:
        lines.append(f"A ranked diagnosis was ready {wording.span(took)} after the alert.")
    detected = _detection(facts, impact=impact)
    if detected is not None and detected.total_seconds() <= facts.policy.slow_detection_s:
        lines.append(f"The alert fired {wording.span(detected)} after the onset.")
    decision, fix = facts.decision, facts.decided_fix()
    if decision and decision.verdict == "approve" and fix and fix.hypothesis == 0:
        lines.append(
            f"The fix for the top-ranked hypothesis ({fix.id}) was approved by {decision.approver}."
        )
    if facts.evidence and not facts.failures():
        lines.append(f"No source failed or refused ({len(facts.evidence)} evidence records).")
    return lines or ["Nothing the stored data shows as going well; to be written."]


def _went_badly(
    facts: facts_.Facts, *, impact: impact_.Impact, extra: Sequence[str] = ()
) -> list[str]:
    lines = list(extra)
    took = _time_to_diagnose(facts)
    if took is not None and took.total_seconds() > facts.policy.quick_diagnosis_s:
        lines.append(f"The diagnosis was ready only {wording.span(took)} after the alert.")
    detected = _detection(facts, impact=impact)
    if detected is not None and detected.total_seconds() > facts.policy.slow_detection_s:
        lines.append(f"The alert fired {wording.span(detected)} after the onset.")
    if facts.abstained:
        lines.append("The diagnosis abstained: no hypothesis was strong enough to name.")
    decision, fix = facts.decision, facts.decided_fix()
    if decision and decision.verdict == "reject":
        lines.append(f"The proposed fixes were rejected by {decision.approver}: {decision.reason}.")
    elif decision and fix and fix.hypothesis != 0:
        lines.append(f"The approved fix ({fix.id}) was not for the top-ranked hypothesis.")
    lines += [
        f"{e.source} failed ({e.status.value}): {e.summary} [{e.id}](#{wording.anchor(e.id)})"
        for e in facts.failures()
    ]
    lines += [f"Not consulted: {note}" for note in facts.unconfigured()]
    return lines or ["Nothing the stored data shows as going badly; to be written."]


def _actions(facts: facts_.Facts, *, impact: impact_.Impact) -> list[str]:
    items = []
    top = facts.top
    if top and not facts.abstained and top.change:
        items.append(
            f"Review {top.change} and why the checks before it reached production did not stop it."
        )
    if top and not facts.abstained and (follow_up := wording.code_follow_up(top.code)):
        items.append(wording.inert(follow_up))
    if facts.abstained or top is None:
        items.append("Establish the root cause by hand: the diagnosis could not name one.")
    decision, fix = facts.decision, facts.decided_fix()
    if decision is None and facts.fixes:
        first = facts.fixes[0]
        items.append(f"Decide on the proposed fix {first.id} ({first.kind} {first.target}).")
    applied = any(e.executed for e in facts.entries("action"))
    if fix is not None and not applied:
        items.append(
            f"Confirm {fix.id} was applied (`{fix.command}`) and that `{fix.verify}` "
            "returned to its baseline."
        )
    elif fix is not None and facts.verified_recovery() is None:
        items.append(
            f"{fix.id} was applied but its verification did not see `{fix.verify}` "
            "recover: check it by hand."
        )
    detected = _detection(facts, impact=impact)
    if detected is not None and detected.total_seconds() > facts.policy.slow_detection_s:
        items.append(f"Alert sooner: the alert fired {wording.span(detected)} after the onset.")
    items += [f"Restore access to {e.source}: {e.summary}" for e in facts.failures()]
    items += [f"Configure the missing source: {note}" for note in facts.unconfigured()]
    if not impact.slo_known:
        items.append(
            f"Define an SLO for {facts.trigger.service or 'the service'} so the next "
            "draft can compute the error budget burned."
        )
    return items


# --- references -------------------------------------------------------------------------------


def _refs_of(
    timeline: Sequence[timeline_.Line],
    *,
    impact: impact_.Impact,
    plots: Sequence[plots_.Plot],
) -> list[str]:
    refs = [line.ref for line in timeline] + [r.evidence for r in impact.requests]
    return refs + [p.evidence for p in plots]


def _cited(
    facts: facts_.Facts,
    *,
    refs: Sequence[str],
    resolution: facts_.Resolution | None,
    incident_log: Sequence[facts_.IncidentEvent] = (),
) -> dict[str, str]:
    """What each cited reference is, in the order first cited."""
    refs = list(refs)
    logged = {e.ref: e.stored for e in incident_log}
    for hypothesis in facts.hypotheses[:6]:
        refs += [*hypothesis.evidence, *hypothesis.counter_evidence]
    described: dict[str, str] = {}
    audit = {e.ref: e for e in facts.audit}
    for ref in refs:
        if ref in described:
            continue
        if ref in facts.evidence:
            record = facts.evidence[ref]
            described[ref] = (
                f"{record.source} ({record.status.value}): {record.summary} — "
                f"`{wording.short(record.query)}`"
            )
        elif ref in audit:
            described[ref] = f"audit log, {audit[ref].kind} entry of {audit[ref].stamp}"
        elif ref == timeline_.TRIGGER_REF:
            described[ref] = "the run's manifest: the trigger as received"
        elif ref == timeline_.STARTED_REF:
            described[ref] = "the run's manifest: when the diagnosis started"
        elif resolution is not None and ref == resolution.ref:
            described[ref] = f"{resolution.detail} (stored as {ref})"
        elif ref in logged:
            described[ref] = logged[ref]
    return described
