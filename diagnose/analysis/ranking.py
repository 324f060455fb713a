"""Components and changes → ranked root-cause hypotheses with a computed confidence.

A change explains a component when it belongs to it and comes shortly before its onset
(:func:`precedence`); a change after the onset is counter-evidence. Each anomalous component
yields one hypothesis: the kind of its best explaining change (rollout → deploy, config edit →
config, limits or restart → resource), else what its own signals say (a database, an external
dependency, resources). A node that hosts several anomalous workloads and whose pods reported it
in trouble is a hypothesis of its own, and those workloads its symptoms (:func:`node_drafts`).
A broad rise in request rate at the alerting entry, with no change explaining it, is a traffic
hypothesis. Changes on components that show no anomaly are listed
last, with that as counter-evidence. Trace findings (:mod:`tracing`), when there are any,
corroborate a component's hypothesis or add their own (:func:`merge_traces`). Confidence is in
docs/analysis.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from diagnose.analysis import components as components_
from diagnose.analysis import drafts, tracemerge, tracing
from diagnose.domain import models

ConfidencePolicy = drafts.ConfidencePolicy
Draft = drafts.Draft
match_component = tracemerge.match_component
off_path = tracemerge.off_path


_WEIGHTS = {
    models.ChangeKind.ROLLOUT: 1.0,
    models.ChangeKind.CONFIG: 1.0,
    models.ChangeKind.LIMITS: 1.0,
    models.ChangeKind.SCALE: 0.7,
    models.ChangeKind.RESTART: 0.5,
    models.ChangeKind.NODE: 0.4,
}
_KIND_OF_CHANGE = {
    models.ChangeKind.ROLLOUT: models.CauseKind.DEPLOY,
    models.ChangeKind.CONFIG: models.CauseKind.CONFIG,
    models.ChangeKind.LIMITS: models.CauseKind.RESOURCE,
    models.ChangeKind.SCALE: models.CauseKind.RESOURCE,
    models.ChangeKind.RESTART: models.CauseKind.RESOURCE,
    models.ChangeKind.NODE: models.CauseKind.RESOURCE,
}


def precedence(
    change_at: datetime,
    onset: datetime | None,
    *,
    policy: ConfidencePolicy,
    resolution_s: float = 0.0,
) -> float:
    """How well a change's time explains an onset: 1 shortly before, fading when long before,
    0 after it (or when there is no onset). An onset is known to within a sampling interval
    (``resolution_s``): a change up to one interval (and at least ``slack_s``) after the
    estimate may still have caused it."""
    if onset is None:
        return 0.0
    lead = (onset - change_at).total_seconds()
    if lead < -max(policy.slack_s, resolution_s):
        return 0.0
    if lead <= policy.near_s:
        return 1.0
    return max(0.05, math.exp(-(lead - policy.near_s) / policy.decay_s))


def adds_capacity(change: models.Change) -> bool:
    """A scale-up: more replicas of the same pods. It answers load (an autoscaler's or an
    operator's response) and makes no requests of its own."""
    return change.kind is models.ChangeKind.SCALE and change.detail.startswith("scaled up")


def explains(
    change: models.Change,
    onset: datetime | None,
    *,
    policy: ConfidencePolicy,
    resolution_s: float = 0.0,
    alert_at: datetime | None = None,
) -> float:
    """:func:`precedence` of a change over an onset, except that a scale-up landing after the
    estimated onset is the response to it, not its cause (no slack for the estimate), and a
    change after the alert fired explains nothing the alert saw."""
    if adds_capacity(change) and (onset is None or change.at > onset):
        return 0.0
    if alert_at is not None and change.at > alert_at:
        return 0.0
    return precedence(change.at, onset, policy=policy, resolution_s=resolution_s)


def change_weight(change: models.Change) -> float:
    """How strongly a kind of change implicates its component; a rollout that changed only the
    pod template (a restart after a config edit) counts less than one that changed an image."""
    weight = _WEIGHTS[change.kind]
    if change.kind is models.ChangeKind.ROLLOUT and "pod template" in change.detail:
        weight = 0.8
    return weight


def draft_hypotheses(
    ranked: Sequence[components_.ComponentScore],
    *,
    changes: Sequence[models.Change],
    change_evidence: Mapping[str, str],
    traffic: Draft | None,
    since: datetime,
    policy: ConfidencePolicy,
    traces: tracing.TraceFindings = tracing.NOTHING,
    placement: Mapping[str, frozenset[str]] | None = None,
    alert_at: datetime | None = None,
) -> list[Draft]:
    """One draft per anomalous component (merged with the trace suspects), node drafts
    (``placement``: node → the workloads with a pod on it), a traffic draft when there is one,
    then changes on quiet components; best first. Changes after ``alert_at`` explain nothing."""
    drafts = [
        _component_draft(
            c, changes=changes, change_evidence=change_evidence, policy=policy, alert_at=alert_at
        )
        for c in ranked
        if c.anomalous
    ]
    drafts, traced = tracemerge.merge_traces(
        drafts,
        ranked=ranked,
        traces=traces,
        changes=changes,
        change_evidence=change_evidence,
        policy=policy,
    )
    drafts = node_drafts(
        drafts,
        ranked=ranked,
        changes=changes,
        placement=placement,
        change_evidence=change_evidence,
        policy=policy,
    )
    if traffic is not None:
        drafts = [_explained_by_traffic(d, traffic=traffic) for d in drafts] + [traffic]
    if policy.cause_weights:
        weights = dict(policy.cause_weights)
        drafts = [replace(d, score=d.score * weights.get(d.kind.value, 1.0)) for d in drafts]
    drafts.sort(key=lambda d: -d.score)
    if not drafts:
        drafts = [_quiet_draft(c) for c in ranked[:3]]
    recent = [c for c in changes if c.at >= since]
    drafts += _decoy_drafts(
        ranked, changes=recent, change_evidence=change_evidence, explained=traced
    )
    return drafts[: policy.max_hypotheses]


def finish(
    drafts: Sequence[Draft], *, policy: ConfidencePolicy
) -> tuple[list[models.Hypothesis], bool]:
    """Confidence for each draft, and whether to abstain. Hypotheses come out in the order of
    their confidence (stable for equal ones): what is shown first is what is most believed.
    A near tie between the two best fades every hypothesis alike, so none behind them can
    overtake them through the fade."""
    if not drafts:
        return [], True
    best = drafts[0].score
    runner_up = drafts[1].score if len(drafts) > 1 else 0.0
    margin = (best - runner_up) / best if best > 0 else 0.0
    tied = len(drafts) > 1 and margin < policy.tie_margin
    tie = 0.5 + 0.5 * margin / policy.tie_margin if tied else 1.0
    out = []
    for index, draft in enumerate(drafts):
        relative = 0.4 + 0.6 * margin if index == 0 else 0.4 * draft.score / best if best else 0.0
        strength = 1.0 - math.exp(-draft.strength / policy.strength_scale)
        confidence = max(0.0, min(1.0, strength * relative * tie * draft.fit))
        out.append(
            models.Hypothesis(
                kind=draft.kind,
                component=draft.component,
                confidence=confidence,
                summary=draft.summary,
                evidence=_unique(draft.evidence),
                counter_evidence=_unique(draft.counter),
                change=draft.change,
                onset=draft.onset,
            )
        )
    out.sort(key=lambda h: -h.confidence)
    return out, out[0].confidence < policy.abstain_below


# --- nodes ---------------------------------------------------------------------------------------


def node_timing(event_at: datetime, onset: datetime | None, *, policy: ConfidencePolicy) -> float:
    """How well a node event's time fits an onset: like :func:`precedence` before it, and fully
    up to ``node_late_s`` after it (a node's trouble is observed late, not made at a moment)."""
    if onset is None:
        return 0.0
    late = (event_at - onset).total_seconds()
    if 0 <= late <= policy.node_late_s:
        return 1.0
    return precedence(event_at, onset, policy=policy)


def node_drafts(
    drafts: Sequence[Draft],
    *,
    ranked: Sequence[components_.ComponentScore],
    changes: Sequence[models.Change],
    placement: Mapping[str, frozenset[str]] | None,
    change_evidence: Mapping[str, str],
    policy: ConfidencePolicy,
) -> list[Draft]:
    """A node whose pods reported it in trouble, hosting at least ``node_min_workloads``
    anomalous workloads that no change of their own explains, is a ``resource`` hypothesis
    (its change the node); those workloads become its symptoms. Its ordering score is the best
    hosted workload's rank * (1 + change_bonus * fit), fit = timing * the share of the anomalous
    workloads it hosts."""
    out = list(drafts)
    for node, hosted in sorted((placement or {}).items()):
        events = [
            c for c in changes if c.kind is models.ChangeKind.NODE and c.ref == f"node/{node}"
        ]
        unexplained = {d.component for d in out if d.change is None}
        affected = [
            c
            for c in ranked
            if c.anomalous
            and c.component in unexplained
            and any(components_.same_workload(c.component, w) for w in hosted)
        ]
        onsets = [c.onset for c in affected if c.onset]
        if not events or len(affected) < policy.node_min_workloads or not onsets:
            continue
        first = min(events, key=lambda c: c.at)
        timing = node_timing(first.at, min(onsets), policy=policy)
        workloads = [c for c in ranked if c.anomalous and "/" not in c.component]
        fit = timing * len(affected) / max(1, len(workloads))
        if fit < 0.3:
            continue
        names = {c.component for c in affected}
        out = [_hosted(d, node=node, policy=policy) if d.component in names else d for d in out]
        draft = _node_draft(
            node, first=first, affected=affected, fit=fit, evidence=change_evidence, policy=policy
        )
        own = next((d for d in out if d.component == draft.component), None)
        if own is not None:  # the node's own metrics (node-exporter) are anomalous too
            out.remove(own)
            draft = replace(
                draft,
                score=max(draft.score, own.score),
                strength=max(draft.strength, own.strength),
                summary=f"{draft.summary}; its own metrics: {own.summary}",
                evidence=(*draft.evidence, *own.evidence),
            )
        out.append(draft)
    return out


def _node_draft(
    node: str,
    *,
    first: models.Change,
    affected: Sequence[components_.ComponentScore],
    fit: float,
    evidence: Mapping[str, str],
    policy: ConfidencePolicy,
) -> Draft:
    best = max(affected, key=lambda c: c.rank)
    onset = min(c.onset for c in affected if c.onset)
    lead = (onset - first.at).total_seconds()
    when = _ago(lead) if lead >= 0 else f"{-lead:.0f}s after"
    names = ", ".join(c.component for c in affected)
    cited = [evidence[first.ref + first.at.isoformat()], first.evidence]
    cited += [e for c in affected for e in (c.evidence, *(s.evidence for s in c.signals[:1])) if e]
    return Draft(
        models.CauseKind.RESOURCE,
        f"node/{node}",
        best.rank * (1.0 + policy.change_bonus * fit),
        max(c.score for c in affected),
        0.7 + 0.3 * fit,
        f"node {node} in trouble ({first.detail}) {when} the onset; it runs pods of "
        f"{len(affected)} anomalous workloads ({names}) that no change of their own explains: "
        f"{best.component} {drafts.describe(best)}",
        tuple(cited),
        (),
        first.ref,
        onset,
    )


def _hosted(draft: Draft, *, node: str, policy: ConfidencePolicy) -> Draft:
    return replace(
        draft,
        score=draft.score * policy.node_symptom,
        summary=f"{draft.summary}; it runs a pod on node {node}, which reported trouble",
    )


# --- per component -----------------------------------------------------------------------------


def _component_draft(
    component: components_.ComponentScore,
    *,
    changes: Sequence[models.Change],
    change_evidence: Mapping[str, str],
    policy: ConfidencePolicy,
    alert_at: datetime | None = None,
) -> Draft:
    mine = [c for c in changes if components_.same_workload(c.component, component.component)]
    # a drift already under way before its change-point onset: a change must precede the rise
    began = min(component.onset, component.since or component.onset) if component.onset else None
    slack = max(policy.slack_s, component.resolution_s)
    scored = [
        (
            explains(
                c, began, policy=policy, resolution_s=component.resolution_s, alert_at=alert_at
            )
            * change_weight(c),
            c,
        )
        for c in mine
    ]
    scored.sort(key=lambda pair: (-pair[0], -pair[1].at.timestamp()))
    after = [c for c in mine if began and (c.at - began).total_seconds() > slack]
    evidence = [e for e in (component.evidence, *(s.evidence for s in component.signals[:2])) if e]
    counter = [change_evidence[c.ref + c.at.isoformat()] for c in after]
    if scored and scored[0][0] >= 0.3:
        fit, change = scored[0]
        return _explained(
            component,
            change=change,
            fit=fit,
            evidence=evidence,
            counter=counter,
            change_evidence=change_evidence,
            after=after,
            policy=policy,
        )
    kind, fit = _unexplained_kind(component)
    why = drafts.describe(component)
    note = f"; {len(after)} change(s) came after the onset" if after else ""
    if _latency_only(component):
        note += (
            "; only its latency moved (no CPU, memory, throttling, restarts or errors of its "
            "own): the shape of a slow dependency it waits on (a database lock, an external "
            "API), more than of a fault in it"
        )
    if began and component.onset and began < component.onset:
        fit *= policy.drift_fit  # no start to point at: rising since before the data
        note += "; it was already rising when the data begins"
    return Draft(
        kind,
        component.component,
        component.rank,
        component.score,
        fit,
        f"{component.component}: {why}, no change explains it{note}",
        tuple(evidence),
        tuple(counter),
        None,
        component.onset,
    )


def _explained(
    component: components_.ComponentScore,
    *,
    change: models.Change,
    fit: float,
    evidence: list[str],
    counter: list[str],
    change_evidence: Mapping[str, str],
    after: list[models.Change],
    policy: ConfidencePolicy,
) -> Draft:
    kind = _KIND_OF_CHANGE[change.kind]
    cite = [change_evidence[change.ref + change.at.isoformat()], change.evidence, *evidence]
    lead = (component.onset - change.at).total_seconds() if component.onset else 0.0
    text = (
        f"{change.kind.value} {change.ref} ({change.detail}) {_ago(lead)} "
        f"{component.component} became anomalous: {drafts.describe(component)}"
    )
    if after:
        text += f"; {len(after)} later change(s) cannot explain the onset"
    ref = (
        change.ref
        if change.kind not in (models.ChangeKind.RESTART, models.ChangeKind.NODE)
        else None
    )
    score = component.rank * (1.0 + policy.change_bonus * fit)
    return Draft(
        kind,
        component.component,
        score,
        component.score,
        0.7 + 0.3 * fit,
        text,
        tuple(cite),
        tuple(counter),
        ref,
        component.onset,
    )


def _latency_only(component: components_.ComponentScore) -> bool:
    """Whether every anomalous signal shown for a workload is a latency."""
    if component.own or component.component.startswith(("postgres/", "external/")):
        return False
    moved = [s for s in component.signals if abs(s.z) >= 5.0]
    return bool(moved) and all(s.kind == "latency" for s in moved)


def _unexplained_kind(component: components_.ComponentScore) -> tuple[models.CauseKind, float]:
    name = component.component
    if name.startswith("postgres/"):
        return models.CauseKind.DATABASE, 0.85
    if name.startswith("external/"):
        return models.CauseKind.DEPENDENCY, 0.85
    if component.own:
        return models.CauseKind.RESOURCE, 0.8
    return models.CauseKind.RESOURCE, 0.6


def _explained_by_traffic(draft: Draft, *, traffic: Draft) -> Draft:
    """When traffic leads, components that started with it are its symptoms: halve them."""
    if traffic.fit < 0.7 or draft.change is not None:
        return draft
    if draft.onset and traffic.onset and draft.onset < traffic.onset:
        return draft
    return replace(draft, score=0.5 * draft.score)


def _quiet_draft(component: components_.ComponentScore) -> Draft:
    return Draft(
        models.CauseKind.RESOURCE,
        component.component,
        component.rank,
        component.score,
        0.3,
        f"{component.component}: nothing anomalous (best {drafts.describe(component)})",
        tuple(e for e in (component.evidence,) if e),
        (),
        None,
        component.onset,
    )


def _decoy_drafts(
    ranked: Sequence[components_.ComponentScore],
    *,
    changes: Sequence[models.Change],
    change_evidence: Mapping[str, str],
    explained: frozenset[str] = frozenset(),
) -> list[Draft]:
    """Rollouts and config edits on components with no anomaly (and no trace hypothesis):
    listed, with that against them."""
    anomalous = [c.component for c in ranked if c.anomalous] + sorted(explained)
    quiet = {c.component: c for c in ranked if not c.anomalous}
    drafts = []
    for change in changes:
        if change.kind not in (
            models.ChangeKind.ROLLOUT,
            models.ChangeKind.CONFIG,
            models.ChangeKind.LIMITS,
        ):
            continue
        if any(components_.same_workload(change.component, a) for a in anomalous):
            continue
        seen = next(
            (c for n, c in quiet.items() if components_.same_workload(n, change.component)), None
        )
        counter = (seen.evidence,) if seen and seen.evidence else ()
        drafts.append(
            Draft(
                _KIND_OF_CHANGE[change.kind],
                change.component,
                0.0,
                0.0,
                0.2,
                f"{change.ref} changed ({change.detail}) but {change.component} shows no anomaly",
                (change_evidence[change.ref + change.at.isoformat()], change.evidence),
                counter,
                change.ref,
                None,
            )
        )
    return drafts[-3:]


def _ago(seconds: float) -> str:
    if seconds < 0:
        return f"{-seconds:.0f}s after (within the onset's uncertainty)"
    return f"{seconds:.0f}s before"


def _unique(items: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in items if i))
