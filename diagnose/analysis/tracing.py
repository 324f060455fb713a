"""Trace evidence → what the root-cause ranking can use.

:func:`read_traces` picks the baseline and the incident samples among the ``traces`` evidence
(the earlier window is the baseline; samples whose status is not ``ok`` are skipped), compares
them (:func:`traces.compare_windows`, :func:`traces.rank_suspects`) and turns each suspect into
derived evidence (source ``analysis``) whose query opens its first exemplar trace. The ranking
reads the result: the call graph's caller → callee edges, and one :class:`TraceHint` per
suspect (docs/analysis.md, "Traces in the ranking").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from diagnose.analysis import components as components_
from diagnose.analysis import scoring, traces
from diagnose.domain import models
from diagnose.domain import traces as domain_traces

SOURCE = "analysis"
TRACES = "traces"
_MAX_HINTS = 5
_ONE_SIDED_95 = 1.645


@dataclass(frozen=True)
class TraceHint:
    """One trace suspect, as the ranking uses it."""

    component: str  # as the traces name it: a service, ``postgres/<db>``, ``external/<host>``
    score: float  # the suspect's score, 0..1
    strength: float  # compressed z of its headline change (:func:`change_strength`)
    version: str | None  # a failing canary's service.version
    evidence: tuple[str, ...]  # the derived record, then the incident sample
    exemplars: tuple[str, ...]  # incident trace ids
    headline: str  # what changed, for a hypothesis summary


@dataclass(frozen=True)
class TraceFindings:
    """What the traces add to the ranking, and the evidence they derived."""

    hints: tuple[TraceHint, ...]
    edges: frozenset[tuple[str, str]]  # (caller, callee) in the traces' own names
    derived: tuple[models.Evidence, ...]
    notes: tuple[str, ...]
    services: frozenset[str] = frozenset()
    """Every service the trace back end lists (it has spans of them); empty when unknown."""
    listing: tuple[str, ...] = ()
    """The ids of the evidence records that list them."""


NOTHING = TraceFindings((), frozenset(), (), ())


def read_traces(
    evidence: Sequence[models.Evidence], *, thresholds: traces.Thresholds | None = None
) -> TraceFindings:
    """Compare the earliest sampled window (baseline) with the latest (incident)."""
    usable = [e for e in evidence if e.status is models.Status.OK and e.window is not None]
    usable = [e for e in usable if traces.spans_of([e])]
    notes = [
        f"traces: {e.query} → {e.status.value}: {e.summary}"
        for e in evidence
        if e.status in (models.Status.ERROR, models.Status.DENIED)
    ]
    starts = sorted({_window(e).start for e in usable})
    if not starts:
        return TraceFindings((), frozenset(), (), (*notes, _why_not(usable)))
    incident = [e for e in usable if _window(e).start == starts[-1]]
    if len(starts) < 2:
        notes.append(
            "traces: one sampled window only (no baseline): its first half compared with its "
            "second, and each service's own time across them"
        )
        comparison = traces.compare_within(_distinct(incident), thresholds=thresholds)
    else:
        baseline = [e for e in usable if _window(e).start == starts[0]]
        comparison = traces.compare_windows(
            _distinct(baseline), _distinct(incident), thresholds=thresholds
        )
    suspects = traces.rank_suspects(comparison, thresholds=thresholds)[:_MAX_HINTS]
    hints, derived = _describe_suspects(suspects, comparison=comparison, sample=incident[0])
    edges = frozenset((e.caller, e.callee) for e in comparison.edges)
    if not suspects:
        notes.append("traces: no operation changed between the baseline and the incident")
    services, listing = _listed(evidence)
    return TraceFindings(hints, edges, derived, tuple(notes), services, listing)


def _listed(evidence: Sequence[models.Evidence]) -> tuple[frozenset[str], tuple[str, ...]]:
    """The services the trace back end lists (none when it did not answer): every service
    that sends it spans, where the samples hold only the services searched; and the ids of
    the records that list them."""
    names: set[str] = set()
    ids: list[str] = []
    for record in evidence:
        listed = record.kind is models.EvidenceKind.TRACE_SERVICES
        if listed and record.status is models.Status.OK and isinstance(record.raw, list):
            names.update(str(n) for n in record.raw if n)
            ids.append(record.id)
    return frozenset(names), tuple(ids)


def _distinct(evidence: Sequence[models.Evidence]) -> list[domain_traces.SpanPayload]:
    """The spans of the samples, each once: a trace through several services is read once per
    service searched."""
    spans = {(s["trace_id"], s["span_id"]): s for s in traces.spans_of(evidence)}
    return list(spans.values())


def _window(record: models.Evidence) -> models.Window:
    assert record.window is not None  # filtered by read_traces
    return record.window


def _why_not(usable: Sequence[models.Evidence]) -> str:
    if not usable:
        return "traces: no usable trace sample: traces not considered"
    return "traces: one sampled window only (no baseline): traces not compared"


def _describe_suspects(
    suspects: Sequence[traces.Suspect],
    *,
    comparison: traces.TraceComparison,
    sample: models.Evidence,
) -> tuple[tuple[TraceHint, ...], tuple[models.Evidence, ...]]:
    hints: list[TraceHint] = []
    derived: list[models.Evidence] = []
    used: set[str] = set()
    for suspect in suspects:
        operation = _operation_of(suspect, comparison=comparison)
        headline, z = _headline(suspect, operation=operation)
        query = _query(suspect, sample=sample, used=used)
        used.add(query)
        record = _suspect_evidence(
            suspect, operation=operation, headline=headline, query=query, sample=sample
        )
        derived.append(record)
        hints.append(
            TraceHint(
                component=suspect.component,
                score=suspect.score,
                strength=change_strength(operation, z=z),
                version=suspect.version,
                evidence=(record.id, sample.id),
                exemplars=suspect.exemplars,
                headline=headline,
            )
        )
    return tuple(hints), tuple(derived)


def _suspect_evidence(
    suspect: traces.Suspect,
    *,
    operation: traces.OperationChange | None,
    headline: str,
    query: str,
    sample: models.Evidence,
) -> models.Evidence:
    version = f" {suspect.version}" if suspect.version else ""
    raw = suspect.to_dict()
    raw["operation"] = operation.to_dict() if operation else None
    return models.Evidence.make(
        source=SOURCE,
        query=query,
        window=sample.window,
        status=models.Status.OK,
        summary=f"traces: {suspect.component}{version}: {headline}; "
        f"{'; '.join(suspect.reasons)}; exemplar traces {', '.join(suspect.exemplars) or '-'}",
        raw=raw,
    )


# --- headline: the operation, its change, the test ---------------------------------------------


def _operation_of(
    suspect: traces.Suspect, *, comparison: traces.TraceComparison
) -> traces.OperationChange | None:
    """The suspect's operation that changed most (a canary's failing one first)."""
    mine = [
        o
        for o in comparison.operations
        if o.component == suspect.component and (o.latency_changed or o.errors_changed)
    ]
    canary = suspect.version is not None
    return max(
        mine,
        key=lambda o: (canary and o.errors_changed, _delta_ms(o) + 1000.0 * _rise(o)),
        default=None,
    )


def _delta_ms(operation: traces.OperationChange) -> float:
    return operation.incident.critical_ms_per_trace - operation.baseline.critical_ms_per_trace


def _rise(operation: traces.OperationChange) -> float:
    return operation.incident.error_ratio - operation.baseline.error_ratio


def _headline(
    suspect: traces.Suspect, *, operation: traces.OperationChange | None
) -> tuple[str, float]:
    """What changed, with the test statistic and effect size; and that statistic (a z)."""
    if operation is None:
        return (suspect.reasons[0] if suspect.reasons else "named by the trace comparison"), 0.0
    name = f"{operation.service} {operation.operation}"
    if operation.detail and operation.detail != operation.operation:
        name += f" ({operation.detail[:120]})"
    parts, zs = [], [0.0]
    if operation.latency_changed:
        test = operation.latency_test
        parts.append(
            f"p95 {operation.baseline.p95_ms:g} → {operation.incident.p95_ms:g} ms "
            f"(Mann-Whitney z={test.z:.1f}, p={test.p_value:.2g}, effect A={test.effect:.2f})"
        )
        zs.append(test.z)
    if operation.errors_changed:
        before, after = operation.baseline, operation.incident
        z = proportion_z(before.errors, before.count, after.errors, after.count)
        parts.append(
            f"errors {before.error_ratio:.1%} → {after.error_ratio:.1%} "
            f"(two-proportion z={z:.1f}, p={operation.error_p_value:.2g}, "
            f"{100 * _rise(operation):+.0f} points)"
        )
        zs.append(z)
    return f"{name}: " + ", ".join(parts), max(zs, key=abs)


def change_strength(
    operation: traces.OperationChange | None,
    *,
    z: float,
    policy: scoring.ScoringPolicy | None = None,
) -> float:
    """How strong a trace finding is, on the scale of the metrics' scores: the compressed |z|
    of its test, or, for a rise in errors, the rise in the metrics' own unit for error ratios
    (``error_floor``, one point) if larger. The rise counted is its one-sided 95 % lower bound,
    so a handful of sampled spans cannot claim a large effect. A test's z grows with the sample,
    an effect does not: without this, the same failure reads weaker in sampled traces than in
    the metrics."""
    best = abs(z)
    if operation is not None and operation.errors_changed:
        before, after = operation.baseline, operation.incident
        spread = math.sqrt(
            _variance(before.error_ratio, before.count) + _variance(after.error_ratio, after.count)
        )
        lower = _rise(operation) - _ONE_SIDED_95 * spread
        best = max(best, lower / (policy or scoring.ScoringPolicy()).error_floor)
    return components_.compress(best)


def _variance(ratio: float, count: int) -> float:
    return ratio * (1 - ratio) / count if count else 0.0


def proportion_z(errors_a: int, total_a: int, errors_b: int, total_b: int) -> float:
    """The pooled two-proportion z statistic (0 when nothing can be said)."""
    if total_a == 0 or total_b == 0:
        return 0.0
    pooled = (errors_a + errors_b) / (total_a + total_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / total_a + 1 / total_b))
    return (errors_b / total_b - errors_a / total_a) / spread if spread else 0.0


# --- queries -------------------------------------------------------------------------------------


def _query(suspect: traces.Suspect, *, sample: models.Evidence, used: set[str]) -> str:
    """The URL of the first exemplar trace not already cited, so each record has its own id."""
    for trace_id in suspect.exemplars:
        link = trace_link(sample.query, trace_id=trace_id)
        if link not in used:
            return link
    return f"{sample.query}  # {suspect.component}"


def trace_link(search: str, *, trace_id: str) -> str:
    """One trace by id on the back end that answered ``search`` (a Tempo or Jaeger search
    URL); a TraceQL query for the id when the back end is not recognised."""
    base, tempo, _ = search.partition("/api/search")
    if tempo:
        return f"{base}/api/v2/traces/{trace_id}"
    base, jaeger, _ = search.partition("/api/traces")
    if jaeger:
        return f"{base}/api/traces/{trace_id}"
    return f'{{ trace:id = "{trace_id}" }}'
