"""Deterministic root-cause analysis: metrics and cluster changes → ranked hypotheses.

``correlate`` is the graph's ``correlate`` step. It builds per-component signals from the
Prometheus evidence (:mod:`signals`), scores them against their baselines (:mod:`scoring`),
orders components by root likelihood (:mod:`components`), reads the changes from the
Kubernetes evidence (:mod:`changes`) and drafts hypotheses (:mod:`ranking`). Trace samples, when
given, are compared (:mod:`tracing`): their call graph joins the one from labels, and their
suspects join the hypotheses. Findings become new evidence (source ``analysis``) so every
hypothesis cites only evidence that exists.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np

from diagnose.analysis import changes as changes_
from diagnose.analysis import cluster as cluster_
from diagnose.analysis import components as components_
from diagnose.analysis import faultranking, ranking, scoring, signals, tracing
from diagnose.analysis import logs as logs_
from diagnose.analysis import traces as traces_
from diagnose.domain import models

SOURCE = "analysis"
_SERIES_POINTS = 60
_SIMULTANEOUS = timedelta(seconds=60)
_EXPLAINS_SURGE = 0.9
"""A change explains a broad rise in traffic only when it comes right before it (precedence
0.9: within about 18 minutes); an older edit on one component does not make a whole shop
busier."""
_RECENT = timedelta(hours=2)  # changes older than this are not listed on quiet components


@dataclass(frozen=True)
class AnalysisPolicy:
    """Every threshold of the analysis, in one value object."""

    anomaly: scoring.ScoringPolicy = field(default_factory=scoring.ScoringPolicy)
    roots: components_.RankingPolicy = field(default_factory=components_.RankingPolicy)
    confidence: ranking.ConfidencePolicy = field(default_factory=ranking.ConfidencePolicy)
    cited_queries: tuple[tuple[str, str], ...] = ()
    """Optional (series name, query) pairs: signals of these series cite the query (a
    playbook's, which re-runs as written) instead of a selector of the series name."""


@dataclass(frozen=True)
class Correlation:
    """What the analysis concluded, and the derived evidence its hypotheses cite."""

    hypotheses: list[models.Hypothesis]
    derived: list[models.Evidence]
    components: list[components_.ComponentScore]
    changes: list[models.Change]
    abstained: bool
    notes: list[str]

    def to_dict(self) -> dict[str, models.JSON]:
        """Plain data for graph state; derived evidence goes by id (its raw lives in the bundle)."""
        return {
            "hypotheses": [h.to_dict() for h in self.hypotheses],
            "derived": [e.id for e in self.derived],
            "components": [c.to_dict() for c in self.components[:20]],
            "changes": [c.to_dict() for c in self.changes],
            "abstained": self.abstained,
            "notes": list(self.notes),
        }


def correlate(
    *,
    trigger: models.Trigger,
    window: models.Window,
    metrics: Sequence[models.Evidence],
    cluster: Sequence[models.Evidence],
    now: datetime,
    traces: Sequence[models.Evidence] = (),
    policy: AnalysisPolicy | None = None,
    step_s: float | None = None,
    logs: Sequence[models.Evidence] = (),
    requests: Sequence[models.Evidence] = (),
) -> Correlation:
    """Rank root-cause hypotheses for ``trigger`` from the evidence gathered over ``window``
    (``traces``: the trace samples, baseline and incident windows; optional; ``requests``: the
    trace back end's counts of stopped log statements' operations). ``step_s``: the
    scope's resolution; metrics read at a coarser step are laid on it as Prometheus would
    return them at that step (each sample repeated until the next)."""
    policy = policy or AnalysisPolicy()
    window = models.Window(window.start, min(window.end, max(now, window.start)))
    notes = _source_notes(metrics, cluster)
    found = signals.build_signals(metrics, window=window, step_s=step_s)
    if policy.cited_queries:
        cited = dict(policy.cited_queries)
        info = [dataclasses.replace(i, query=cited.get(i.metric, i.query)) for i in found.info]
        found = dataclasses.replace(found, info=info)
    seen = tracing.read_traces(traces) if traces else tracing.NOTHING
    found = _with_trace_edges(found, seen)
    ranked, unread, short, thin, earlier = _score(found, trigger=trigger, policy=policy)
    notes += _unread_notes(found, unread=unread, metrics=metrics)
    notes += _short_notes(found, short=short)
    notes += _thin_notes(found, thin=thin, policy=policy.anomaly)
    notes += _ended_notes(ranked, earlier=earlier, policy=policy.anomaly)
    notes += [*seen.notes, *_contradicted(seen, ranked)]
    if found.values.shape[0] and not any(c.anomalous for c in ranked):
        notes.append("no signal moved beyond its baseline: nothing anomalous in scope")
    view = changes_.read_cluster(cluster)
    changes = changes_.list_changes(view, known=[c.component for c in ranked])
    ranked, derived = _describe_components(ranked, found=found, window=window)
    change_evidence = _change_evidence(changes, window=window)
    traffic = _traffic(ranked, trigger=trigger, changes=changes, policy=policy.confidence)
    drafts = ranking.draft_hypotheses(
        ranked,
        changes=changes,
        change_evidence={k: e.id for k, e in change_evidence.items()},
        traffic=traffic,
        since=trigger.at - _RECENT,
        policy=policy.confidence,
        traces=seen,
        placement=changes_.placement(view),
        alert_at=trigger.at,
    )
    read = (
        logs_.read_logs(logs, spans=traces_.spans_of(traces), requests=requests)
        if logs
        else logs_.NOTHING
    )
    notes += read.notes
    drafts = logs_.merge_logs(
        drafts,
        findings=read,
        changes=changes,
        change_evidence={k: e.id for k, e in change_evidence.items()},
        confidence=policy.confidence,
        anomalous=frozenset(c.component for c in ranked if c.anomalous),
    )
    drafts = ranking.off_path(drafts, traces=seen, policy=policy.confidence)
    findings = cluster_.find_faults(
        cluster,
        namespace=trigger.namespace,
        trigger_service=trigger.service,
        changes=changes,
        logs=read.derived,
    )
    fault_evidence = {
        f.component: faultranking.finding_evidence(f, window=window) for f in findings
    }
    drafts = faultranking.rank_faults(
        drafts, findings, cited={k: e.id for k, e in fault_evidence.items()}
    )[: policy.confidence.max_hypotheses]
    hypotheses, abstained = ranking.finish(drafts, policy=policy.confidence)
    if abstained:
        notes.append("abstained: the best hypothesis is below the confidence threshold")
    return Correlation(
        hypotheses=hypotheses,
        derived=_unique(
            [
                *derived,
                *change_evidence.values(),
                *seen.derived,
                *read.derived,
                *fault_evidence.values(),
            ]
        ),
        components=ranked,
        changes=changes,
        abstained=abstained,
        notes=notes,
    )


def _score(
    found: signals.Signals, *, trigger: models.Trigger, policy: AnalysisPolicy
) -> tuple[list[components_.ComponentScore], list[int], list[int], list[int], dict[str, datetime]]:
    """Components, best root first, the rows that could not be scored (no real sample before
    the baseline's end), the rows whose baseline is too short to end before their onset, the
    rows scored against a thin baseline, and the components whose episode ended before the
    alerted one's began (with when it began)."""
    if not found.info:
        return [], [], [], [], {}
    directions = np.array([i.direction for i in found.info], dtype=np.int_)
    ratios = np.array([i.kind == "availability" for i in found.info], dtype=bool) & _within_unit(
        found.values
    )
    floors = np.array([max(_floor(i.kind, policy=policy.anomaly), i.granule) for i in found.info])
    floors = np.where(ratios, policy.anomaly.error_floor, floors)
    scores = scoring.score_rows(
        found.values,
        times=found.grid.times,
        trigger_at=trigger.at.timestamp(),
        directions=directions,
        floors=floors,
        policy=policy.anomaly,
        widths=found.widths if len(found.widths) == len(found.info) else None,
        quantised=np.array([i.kind == "traffic" for i in found.info], dtype=bool),
        ratios=ratios,
    )
    scores = components_.settled_tails(found, scores)
    unread = [int(r) for r in np.flatnonzero(~scores.scored)]
    short = [int(r) for r in np.flatnonzero(scores.short_baseline)]
    thin = [int(r) for r in np.flatnonzero(scores.thin)]
    end = scoring.baseline_end(
        times=found.grid.times, trigger_at=trigger.at.timestamp(), policy=policy.anomaly
    )
    rank = functools.partial(
        components_.score_components,
        found,
        policy=policy.anomaly,
        ranking=policy.roots,
        baseline_end=datetime.fromtimestamp(end, tz=UTC),
    )
    ranked = rank(scores)
    scores, earlier = components_.ended_before_symptom(
        found, scores, ranked, symptom=trigger.service, ranking=policy.roots
    )
    if earlier:
        ranked = rank(scores)
    return ranked, unread, short, thin, earlier


def _first_names(names: Sequence[str], *, sep: str = ", ", shown: int = 4) -> str:
    """The first ``shown`` of ``names`` and how many more there are, so a note stays short
    ("a, b, c, d and 3 more"; with ``sep="; "``: "a; b; c; d; and 3 more")."""
    more = len(names) - shown
    tail = "" if more <= 0 else ("; " if sep == "; " else " ") + f"and {more} more"
    return sep.join(names[:shown]) + tail


def _thin_notes(
    found: signals.Signals, *, thin: Sequence[int], policy: scoring.ScoringPolicy
) -> list[str]:
    """Say when signals were scored against too few samples to measure their spread."""
    if not thin:
        return []
    named = sorted({found.info[r].component for r in thin})
    shown = _first_names(named)
    least = 1.0 + policy.anomalous * policy.thin_floor
    return [
        f"thin baseline: {len(thin)} signal(s) of {shown} have fewer than "
        f"{policy.min_baseline_points} samples before the incident, too few to measure their "
        f"spread; only a rise to {least:g} times their level or more counts as anomalous "
        "(read more data before the incident)"
    ]


def _ended_notes(
    ranked: Sequence[components_.ComponentScore],
    *,
    earlier: Mapping[str, datetime],
    policy: scoring.ScoringPolicy,
) -> list[str]:
    """Say which anomalous components were back within their baselines before the alert, and
    which of them ended before the alerted component's own rise began (not counted)."""
    notes = []
    if earlier:
        began = min(earlier.values())
        named = sorted(earlier)
        shown = _first_names(named)
        notes.append(
            f"earlier episode: the anomalies of {shown} were over before the alerted service's "
            f"own rise began ({models.format_time(began)}); a cause is still under way when its "
            "effect begins, so they are scored by where they are now"
        )
    over = []
    for component in ranked:
        moved = [s for s in component.signals if abs(s.z) >= policy.anomalous]
        if component.anomalous and moved and all(s.ended is not None for s in moved):
            last = max(s.ended for s in moved if s.ended is not None)
            over.append(f"{component.component} (from {models.format_time(last)})")
    if over:
        shown = _first_names(over)
        notes.append(
            f"over before the alert: every anomalous signal of {shown} was back within its "
            "baseline before the alert fired; an earlier episode, ranked as it was, not a "
            "fault still under way"
        )
    return notes


def _short_notes(found: signals.Signals, *, short: Sequence[int]) -> list[str]:
    """Say when the data starts too shortly before a shift for a baseline to end before it."""
    if not short:
        return []
    named = sorted({found.info[r].component for r in short})
    shown = _first_names(named)
    return [
        f"baseline too short: {len(short)} signal(s) of {shown} shift before their baseline "
        "ends and too little data comes before the shift to end it there; their scores are "
        "understated (read more data before the incident)"
    ]


def _unread_notes(
    found: signals.Signals, *, unread: Sequence[int], metrics: Sequence[models.Evidence]
) -> list[str]:
    """Say which signals could not be read, never a silent zero: rows with too few real
    samples before the baseline ends (per component), and records whose series name no
    workload or hold no usable shape."""
    notes = []
    by_component: dict[str, set[str]] = {}
    for row in unread:
        info = found.info[row]
        by_component.setdefault(info.component, set()).add(f"{info.kind} {info.metric}")
    if by_component:
        named = sorted(by_component, key=lambda c: (-len(by_component[c]), c))
        shown = _first_names(
            [f"{c}: {', '.join(sorted(by_component[c])[:2])}" for c in named], sep="; "
        )
        notes.append(
            f"{len(unread)} signal(s) of {len(named)} component(s) not scored: no sample "
            f"before the incident to form a baseline ({shown})"
        )
    for record in metrics:
        if signals.has_series(record) and record.id not in found.read:
            notes.append(
                f"metrics: {record.query[:120]} gave no signal (none of its series names a "
                "workload in scope)"
            )
    return notes


def _floor(kind: str, *, policy: scoring.ScoringPolicy) -> float:
    if kind == "errors":
        return policy.error_floor
    if kind == "latency":
        return policy.latency_floor_s
    return policy.absolute_floor


def _within_unit(values: np.ndarray) -> np.ndarray:
    """Rows whose values all lie in [0, 1] (shares), with at least one value."""
    finite = np.isfinite(values)
    inside = np.where(finite, (values >= 0) & (values <= 1), True)
    return np.asarray(inside.all(axis=1) & finite.any(axis=1))


# --- traces -------------------------------------------------------------------------------------


def _with_trace_edges(found: signals.Signals, seen: tracing.TraceFindings) -> signals.Signals:
    """The traces' caller → callee edges join those from labels, in the metrics' names, so a
    caller whose callee is anomalous at the same time yields to it (:mod:`components`)."""
    if not seen.edges:
        return found
    names = sorted({i.component for i in found.info})

    def named(name: str) -> str:
        return next((n for n in names if components_.same_workload(n, name)), name)

    edges = {(named(a), named(b)) for a, b in seen.edges}
    return dataclasses.replace(found, edges=found.edges | {(a, b) for a, b in edges if a != b})


def _contradicted(
    seen: tracing.TraceFindings, ranked: Sequence[components_.ComponentScore]
) -> list[str]:
    quiet = [
        (hint, match)
        for hint in seen.hints
        if (match := ranking.match_component(hint.component, ranked)) and not match.anomalous
    ]
    return [
        f"traces point at {hint.component} ({hint.headline}) but its metrics show no anomaly: "
        "not ranked"
        for hint, match in quiet
    ]


# --- traffic ------------------------------------------------------------------------------------


def _traffic(
    ranked: Sequence[components_.ComponentScore],
    *,
    trigger: models.Trigger,
    changes: Sequence[models.Change],
    policy: ranking.ConfidencePolicy,
) -> ranking.Draft | None:
    """Request rate up at the alerting entry, earliest, with no change on an anomalous
    component to explain it: a traffic hypothesis ranked first; otherwise none."""
    entry = next(
        (c for c in ranked if components_.same_workload(c.component, trigger.service)), None
    )
    if entry is None or not entry.anomalous or entry.onset is None:
        return None
    rising = [s for s in entry.signals if s.kind == "traffic" and s.z >= 5.0]
    if not rising:
        return None
    broad = [
        c
        for c in ranked
        if c.anomalous and any(s.kind == "traffic" and s.z >= 5.0 for s in c.signals)
    ]
    explained = any(
        ranking.precedence(ch.at, c.onset, policy=policy) >= _EXPLAINS_SURGE
        and components_.same_workload(ch.component, c.component)
        and ch.kind is not models.ChangeKind.RESTART
        and not ranking.adds_capacity(ch)  # more replicas make no requests
        for ch in changes
        for c in ranked
        if c.anomalous
    )
    onsets = [c.onset for c in ranked if c.anomalous and c.onset]
    first = bool(onsets) and entry.onset <= min(onsets) + _SIMULTANEOUS
    best = max((c.rank for c in ranked), default=0.0)
    lead = first and not explained
    signal = rising[0]
    return ranking.Draft(
        kind=models.CauseKind.TRAFFIC,
        component=entry.component,
        # Leading traffic outranks the components it made busy, the more so the more of the
        # anomalous components carry the same rise (a broad surge, not one hot spot).
        score=best * (1.05 + 0.45 * len(broad) / max(1, len(onsets)))
        if lead
        else components_.compress(signal.z) * 0.3,
        strength=components_.compress(signal.z),
        fit=(0.9 if len(broad) > 1 else 0.75) if lead else 0.4,
        summary=(
            f"request rate at {entry.component} rose {signal.z:+.1f}σ ({signal.metric}), "
            f"{len(broad)} component(s) with more traffic, "
            + (
                "no change explains it"
                if not explained
                else "but a change on an anomalous component precedes the onset"
            )
        ),
        evidence=tuple(e for e in (entry.evidence, signal.evidence) if e),
        counter=(),
        change=None,
        onset=entry.onset,
    )


# --- derived evidence ---------------------------------------------------------------------------


def _describe_components(
    ranked: list[components_.ComponentScore],
    *,
    found: signals.Signals,
    window: models.Window,
) -> tuple[list[components_.ComponentScore], list[models.Evidence]]:
    """One derived evidence record per anomalous component (and per quiet one we mention)."""
    out, derived = [], []
    for index, component in enumerate(ranked):
        if not component.signals or (not component.anomalous and index >= 30):
            out.append(component)
            continue
        record = _component_evidence(component, found=found, window=window)
        derived.append(record)
        out.append(_with_evidence(component, record.id))
    return out, derived


def _component_evidence(
    component: components_.ComponentScore, *, found: signals.Signals, window: models.Window
) -> models.Evidence:
    top = component.signals[0]
    row = component.rows[0]
    verdict = "anomalous" if component.anomalous else "no anomaly"
    onset = models.format_time(component.onset) if component.onset and component.anomalous else "-"
    summary = (
        f"{component.component}: {verdict}; {top.kind} {top.metric} {top.detail} "
        f"z={top.z:+.1f} (baseline {top.baseline:.4g}, now {top.after:.4g}), onset {onset}"
    )
    raw: dict[str, models.JSON] = {
        "component": component.component,
        "anomalous": component.anomalous,
        "score": round(component.score, 3),
        "onset": onset if component.anomalous else None,
        "signals": [s.to_dict() for s in component.signals],
        "series": _downsample(found, row=row),
    }
    return models.Evidence.make(
        source=SOURCE,
        query=top.query,
        window=window,
        status=models.Status.OK,
        summary=summary,
        raw=raw,
    )


def _downsample(found: signals.Signals, *, row: int) -> dict[str, models.JSON]:
    values = found.values[row]
    times = found.grid.times
    stride = max(1, int(np.ceil(values.size / _SERIES_POINTS)))
    picked = slice(0, values.size, stride)
    return {
        "t": [float(t) for t in times[picked]],
        "v": [None if not np.isfinite(v) else round(float(v), 6) for v in values[picked]],
    }


def _with_evidence(
    component: components_.ComponentScore, evidence: str
) -> components_.ComponentScore:
    return dataclasses.replace(component, evidence=evidence)


def _change_evidence(
    changes: Sequence[models.Change], *, window: models.Window
) -> dict[str, models.Evidence]:
    """One derived record per change, keyed by ``ref + at``, whose query shows it again."""
    return {
        change.ref + change.at.isoformat(): models.Evidence.make(
            source=SOURCE,
            query=_show(change),
            window=window,
            status=models.Status.OK,
            summary=f"{change.kind.value} {change.ref} at {models.format_time(change.at)}: "
            f"{change.detail}",
            raw=change.to_dict(),
        )
        for change in changes
    }


_SYNC_SHOWN = {
    "application": "argocd app history {name}",
    "kustomization": "flux get kustomizations {name} --all-namespaces",
    "helmrelease": "flux get helmreleases {name} --all-namespaces",
    "helm": "helm history {name}{ns}",
}
"""How to see a GitOps or Helm sync again (the change refs of ``changes._sync_ref``)."""


def _show(change: models.Change) -> str:
    ns = f" -n {change.namespace}" if change.namespace else ""
    kind, _, name = change.ref.partition("/")
    name, _, revision = name.partition("@")
    at = models.format_time(change.at)
    if kind == "deployment" and revision:
        return f"kubectl rollout history deployment/{name}{ns} --revision={revision}"
    if kind in ("configmap", "secret"):
        return f"kubectl get {kind} {name}{ns} --show-managed-fields -o yaml  # updated {at}"
    if kind == "pod":
        return f"kubectl describe pod {name}{ns}  # terminated {at}"
    if kind == "node":
        return f"kubectl describe node {name}  # {at}"
    if kind in _SYNC_SHOWN:
        return _SYNC_SHOWN[kind].format(name=name, ns=ns) + f"  # {revision} at {at}"
    return f"kubectl get events{ns} --field-selector involvedObject.name={name}  # {at}"


def _source_notes(
    metrics: Sequence[models.Evidence], cluster: Sequence[models.Evidence]
) -> list[str]:
    notes = [
        f"metrics: {e.query} → {e.status.value}: {e.summary}"
        for e in metrics
        if e.status in (models.Status.ERROR, models.Status.DENIED)
    ]
    notes += [
        f"changes: {e.query} → {e.status.value}: {e.summary}"
        for e in cluster
        if e.status in (models.Status.ERROR, models.Status.DENIED)
    ]
    if not metrics:
        notes.append("no Prometheus evidence: no metric was scored")
    if not cluster:
        notes.append("no Kubernetes evidence: changes not considered")
    elif not any(e.status is models.Status.OK for e in cluster):
        notes.append("no usable Kubernetes evidence: changes not considered")
    return notes


def _unique(records: Sequence[models.Evidence]) -> list[models.Evidence]:
    return list({r.id: r for r in records}.values())


def by_id(records: Sequence[models.Evidence]) -> Mapping[str, models.Evidence]:
    return {r.id: r for r in records}
