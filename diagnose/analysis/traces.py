"""Trace analysis: what changed between a baseline window and the incident, and where.

Pure functions over :class:`~diagnose.domain.traces.SpanPayload` dicts (numpy + stdlib; no I/O,
no clock). :func:`compare_windows` does, for the spans of both windows:

- per (service, operation): request count, error ratio, latency p50/p95/p99, exclusive self
  time and the time the operation holds on each trace's critical path;
- a test of whether each change is real: Mann-Whitney U on latencies (normal approximation with
  tie and continuity corrections) with its effect size A = P(incident > baseline), and a
  two-proportion z-test on error ratios; a change must be significant, large and material;
- attribution of the end-to-end latency increase: the mean root duration is the mean critical
  path, which is the sum over operations of their critical-path time per trace, so the change
  splits exactly into per-operation shares;
- the service call graph with call and error counts per edge (client spans with no child span
  in the trace become edges to ``postgres/<db>`` or ``external/<host>``);
- a split by ``service.version`` when two versions serve the incident at once (canary);
- exemplar trace ids behind every claim.

:func:`rank_suspects` then orders components so that an anomalous dependency ranks above the
callers that merely wait on it: latency is charged to critical-path self time, errors to the
spans that fail without a failing child.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from diagnose.analysis import spantable
from diagnose.domain import traces as tracing
from diagnose.domain.models import JSON, Evidence

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
QUANTILES = (0.5, 0.95, 0.99)


@dataclass(frozen=True)
class Thresholds:
    """When a difference between the windows counts as a change, not noise."""

    alpha: float = 0.01
    """Significance level of both tests (two-sided)."""

    min_effect: float = 0.64
    """Mann-Whitney effect size A = P(incident slower than baseline) must reach this; 0.64 is
    Vargha and Delaney's "medium" effect, so a tiny shift over many spans is not an anomaly."""

    min_ratio: float = 1.2
    """The incident's p50 or p95 must be at least this multiple of the baseline's."""

    min_samples: int = 5
    """Fewer spans than this in either window: no verdict."""

    min_error_increase: float = 0.02
    """The error ratio must rise by at least this much (absolute, 0.02 = 2 points)."""

    canary_min_share: float = 0.05
    """A version serving less than this share of a service's spans is not a canary."""

    exemplars: int = 3
    """Trace ids kept per claim."""


# --- results ------------------------------------------------------------------------------


def _ms(us: float) -> float:
    return round(us / 1000.0, 3)


@dataclass(frozen=True)
class WindowStats:
    """One (service, operation), or the end-to-end traces, in one window."""

    count: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    self_p50_ms: float
    critical_ms_per_trace: float
    mean_ms: float

    @property
    def error_ratio(self) -> float:
        return self.errors / self.count if self.count else 0.0

    def to_dict(self) -> dict[str, JSON]:
        return {
            "count": self.count,
            "errors": self.errors,
            "error_ratio": round(self.error_ratio, 4),
            "p50_ms": self.p50_ms,
            "p95_ms": self.p95_ms,
            "p99_ms": self.p99_ms,
            "self_p50_ms": self.self_p50_ms,
            "critical_ms_per_trace": self.critical_ms_per_trace,
            "mean_ms": self.mean_ms,
        }


@dataclass(frozen=True)
class OperationChange:
    """Baseline against incident for one (service, operation), with verdicts and exemplars."""

    service: str
    operation: str
    component: str
    detail: str  # http.route or db.statement, when the spans carry one
    baseline: WindowStats
    incident: WindowStats
    latency_test: spantable.MannWhitney
    error_p_value: float
    latency_changed: bool
    errors_changed: bool
    exemplars: tuple[str, ...]

    def to_dict(self) -> dict[str, JSON]:
        return {
            "service": self.service,
            "operation": self.operation,
            "component": self.component,
            "detail": self.detail,
            "baseline": self.baseline.to_dict(),
            "incident": self.incident.to_dict(),
            "latency_test": self.latency_test.to_dict(),
            "error_p_value": float(f"{self.error_p_value:.4g}"),
            "latency_changed": self.latency_changed,
            "errors_changed": self.errors_changed,
            "exemplars": list(self.exemplars),
        }


@dataclass(frozen=True)
class Attribution:
    """The part of the end-to-end latency increase one operation explains."""

    service: str
    operation: str
    component: str
    delta_ms: float  # change of its critical-path time per trace
    share: float  # of the end-to-end change
    exemplars: tuple[str, ...]

    def to_dict(self) -> dict[str, JSON]:
        return {
            "service": self.service,
            "operation": self.operation,
            "component": self.component,
            "delta_ms": self.delta_ms,
            "share": round(self.share, 4),
            "exemplars": list(self.exemplars),
        }


@dataclass(frozen=True)
class CallEdge:
    """Calls from one component to another, in both windows."""

    caller: str
    callee: str
    baseline_calls: int
    baseline_errors: int
    baseline_own_errors: int  # failures that started in the callee, not further down
    incident_calls: int
    incident_errors: int
    incident_own_errors: int
    exemplars: tuple[str, ...]  # incident traces with a failing call first, then the slowest

    def to_dict(self) -> dict[str, JSON]:
        return {
            "caller": self.caller,
            "callee": self.callee,
            "baseline_calls": self.baseline_calls,
            "baseline_errors": self.baseline_errors,
            "baseline_own_errors": self.baseline_own_errors,
            "incident_calls": self.incident_calls,
            "incident_errors": self.incident_errors,
            "incident_own_errors": self.incident_own_errors,
            "exemplars": list(self.exemplars),
        }


@dataclass(frozen=True)
class VersionStats:
    version: str
    count: int
    errors: int
    p95_ms: float

    def to_dict(self) -> dict[str, JSON]:
        ratio = self.errors / self.count if self.count else 0.0
        return {
            "version": self.version,
            "count": self.count,
            "errors": self.errors,
            "error_ratio": round(ratio, 4),
            "p95_ms": self.p95_ms,
        }


@dataclass(frozen=True)
class VersionSplit:
    """A service served by several versions at once in the incident window."""

    service: str
    versions: tuple[VersionStats, ...]
    suspect_version: str | None
    reason: str
    exemplars: tuple[str, ...]

    def to_dict(self) -> dict[str, JSON]:
        return {
            "service": self.service,
            "versions": [v.to_dict() for v in self.versions],
            "suspect_version": self.suspect_version,
            "reason": self.reason,
            "exemplars": list(self.exemplars),
        }


@dataclass(frozen=True)
class Suspect:
    """A component ranked as a likely origin, with why and where to look."""

    component: str
    score: float
    reasons: tuple[str, ...]
    exemplars: tuple[str, ...]
    version: str | None = None

    def to_dict(self) -> dict[str, JSON]:
        return {
            "component": self.component,
            "score": round(self.score, 4),
            "reasons": list(self.reasons),
            "exemplars": list(self.exemplars),
            "version": self.version,
        }


@dataclass(frozen=True)
class TraceComparison:
    """Everything :func:`compare_windows` found."""

    baseline_traces: int
    incident_traces: int
    end_to_end: OperationChange | None
    operations: tuple[OperationChange, ...]
    attribution: tuple[Attribution, ...]
    edges: tuple[CallEdge, ...]
    canaries: tuple[VersionSplit, ...]
    suspects: tuple[Suspect, ...]
    depth: Mapping[str, int]  # component -> distance from the entry service in the call graph

    def to_dict(self) -> dict[str, JSON]:
        return {
            "baseline_traces": self.baseline_traces,
            "incident_traces": self.incident_traces,
            "end_to_end": self.end_to_end.to_dict() if self.end_to_end else None,
            "operations": [o.to_dict() for o in self.operations],
            "attribution": [a.to_dict() for a in self.attribution],
            "edges": [e.to_dict() for e in self.edges],
            "canaries": [c.to_dict() for c in self.canaries],
            "suspects": [s.to_dict() for s in self.suspects],
            "depth": dict(self.depth),
        }


# --- per-group statistics -----------------------------------------------------------------


def _window_stats(table: spantable.SpanTable, rows: IntArray) -> WindowStats:
    traces = max(1, int(np.count_nonzero(table.root_of_trace >= 0)))
    p50, p95, p99 = spantable.quantiles(table.duration[rows].astype(np.float64))
    self_p50 = spantable.quantiles(table.self_time[rows].astype(np.float64))[0]
    return WindowStats(
        count=int(rows.size),
        errors=int(np.count_nonzero(table.failed[rows])),
        p50_ms=_ms(p50),
        p95_ms=_ms(p95),
        p99_ms=_ms(p99),
        self_p50_ms=_ms(self_p50),
        critical_ms_per_trace=_ms(float(table.critical[rows].sum()) / traces),
        mean_ms=_ms(float(table.duration[rows].mean())) if rows.size else 0.0,
    )


def _rows_by_key(
    table: spantable.SpanTable, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], IntArray]:
    order = np.argsort(table.group, kind="stable")
    bounds = np.searchsorted(table.group[order], np.arange(len(table.groups) + 1))
    return {
        table.groups[code]: order[bounds[code] : bounds[code + 1]]
        for code in range(len(table.groups))
        if table.groups[code] in keys or not keys
    }


def _exemplars(
    table: spantable.SpanTable, rows: IntArray, *, by: FloatArray | IntArray, count: int
) -> tuple[str, ...]:
    """Trace ids of the rows with the largest ``by``, distinct, best first."""
    seen: dict[str, None] = {}
    for row in rows[np.argsort(-by[rows], kind="stable")].tolist():
        seen.setdefault(table.trace_ids[table.trace[row]], None)
        if len(seen) >= count:
            break
    return tuple(seen)


def _detail(table: spantable.SpanTable, rows: IntArray) -> str:
    if rows.size == 0:
        return ""
    attrs = table.spans[int(rows[0])]["attrs"]
    for key in ("db.statement", "db.query.text", "http.route", "rpc.method"):
        if key in attrs:
            return str(attrs[key])
    return ""


def _compare_rows(
    base: spantable.SpanTable,
    base_rows: IntArray,
    inc: spantable.SpanTable,
    inc_rows: IntArray,
    *,
    limits: Thresholds,
) -> tuple[WindowStats, WindowStats, spantable.MannWhitney, float, bool, bool]:
    before, after = _window_stats(base, base_rows), _window_stats(inc, inc_rows)
    test = spantable.mann_whitney_u(
        base.duration[base_rows].astype(np.float64), inc.duration[inc_rows].astype(np.float64)
    )
    error_p = spantable.two_proportion_p(before.errors, before.count, after.errors, after.count)
    enough = before.count >= limits.min_samples and after.count >= limits.min_samples
    material = any(
        b > 0 and a / b >= limits.min_ratio
        for b, a in ((before.p50_ms, after.p50_ms), (before.p95_ms, after.p95_ms))
    )
    slower = (
        enough and test.p_value < limits.alpha and test.effect >= limits.min_effect and material
    )
    rise = after.error_ratio - before.error_ratio
    failing = enough and error_p < limits.alpha and rise >= limits.min_error_increase
    return before, after, test, error_p, slower, failing


def _operation_change(
    key: tuple[str, str],
    base: spantable.SpanTable,
    base_rows: IntArray,
    inc: spantable.SpanTable,
    inc_rows: IntArray,
    *,
    limits: Thresholds,
) -> OperationChange:
    before, after, test, error_p, slower, failing = _compare_rows(
        base, base_rows, inc, inc_rows, limits=limits
    )
    table, rows = (inc, inc_rows) if inc_rows.size else (base, base_rows)
    ranking = table.failed.astype(np.int64) * 10**12 + table.duration if failing else table.duration
    return OperationChange(
        service=key[0],
        operation=key[1],
        component=table.components[int(table.component[rows[0]])] if rows.size else key[0],
        detail=_detail(table, rows),
        baseline=before,
        incident=after,
        latency_test=test,
        error_p_value=error_p,
        latency_changed=slower,
        errors_changed=failing,
        exemplars=_exemplars(table, rows, by=ranking, count=limits.exemplars),
    )


def _end_to_end(
    base: spantable.SpanTable, inc: spantable.SpanTable, *, limits: Thresholds
) -> OperationChange | None:
    base_rows = base.root_of_trace[base.root_of_trace >= 0]
    inc_rows = inc.root_of_trace[inc.root_of_trace >= 0]
    if base_rows.size == 0 or inc_rows.size == 0:
        return None
    before, after, test, error_p, slower, failing = _compare_rows(
        base, base_rows, inc, inc_rows, limits=limits
    )
    return OperationChange(
        service="*",
        operation="end-to-end",
        component="*",
        detail="root spans of the sampled traces",
        baseline=before,
        incident=after,
        latency_test=test,
        error_p_value=error_p,
        latency_changed=slower,
        errors_changed=failing,
        exemplars=_exemplars(inc, inc_rows, by=inc.duration, count=limits.exemplars),
    )


# --- attribution, graph, canaries ---------------------------------------------------------


def _attribution(
    changes: Sequence[OperationChange], end_to_end: OperationChange | None
) -> tuple[Attribution, ...]:
    if end_to_end is None:
        return ()
    total = end_to_end.incident.mean_ms - end_to_end.baseline.mean_ms
    deltas = [
        (c, c.incident.critical_ms_per_trace - c.baseline.critical_ms_per_trace) for c in changes
    ]
    if total <= 0:
        return ()
    found = [
        Attribution(c.service, c.operation, c.component, round(d, 3), d / total, c.exemplars)
        for c, d in deltas
        if d > 0
    ]
    return tuple(sorted(found, key=lambda a: -a.delta_ms))


def _failure_origins(table: spantable.SpanTable) -> IntArray:
    """Per row, the component where its failure started (-1 when it did not fail): walk up
    from each span that failed with no failing child while the ancestors fail too."""
    origin = np.full(table.size, -1, dtype=np.int64)
    parent, failed = table.parent.tolist(), table.failed.tolist()
    for start in np.flatnonzero(table.own_failure).tolist():
        source, row = int(table.component[start]), start
        while row >= 0 and failed[row] and origin[row] < 0:
            origin[row] = source
            row = parent[row]
    return origin


def _edges_of(table: spantable.SpanTable) -> dict[tuple[str, str], tuple[int, int, int, IntArray]]:
    """(caller, callee) -> (calls, errors, errors starting in the callee, rows). A call is a
    span whose component differs from its parent's (a parent is never a leaf, so its component
    is its service)."""
    child = np.flatnonzero(table.parent >= 0)
    source = table.component[table.parent[child]]
    target = table.component[child]
    cross = source != target
    child, source, target = child[cross], source[cross], target[cross]
    origin = _failure_origins(table)[child]
    width = max(1, len(table.components))
    pair = source * width + target
    edges = {}
    for code in np.unique(pair).tolist():
        mine = pair == code
        rows = child[mine]
        key = (table.components[code // width], table.components[code % width])
        own = int(np.count_nonzero(origin[mine] == code % width))
        edges[key] = (int(rows.size), int(np.count_nonzero(table.failed[rows])), own, rows)
    return edges


def _call_graph(
    base: spantable.SpanTable, inc: spantable.SpanTable, *, limits: Thresholds
) -> tuple[CallEdge, ...]:
    before, after = _edges_of(base), _edges_of(inc)
    nothing = (0, 0, 0, np.zeros(0, dtype=np.int64))
    ranking = inc.failed.astype(np.int64) * 10**12 + inc.duration
    edges = []
    for key in sorted(set(before) | set(after)):
        b_calls, b_errors, b_own, _ = before.get(key, nothing)
        a_calls, a_errors, a_own, rows = after.get(key, nothing)
        exemplars = _exemplars(inc, rows, by=ranking, count=limits.exemplars)
        edges.append(
            CallEdge(key[0], key[1], b_calls, b_errors, b_own, a_calls, a_errors, a_own, exemplars)
        )
    return tuple(edges)


def build_call_graph(spans: Sequence[tracing.SpanPayload]) -> tuple[CallEdge, ...]:
    """The call graph of one set of spans (counts land in the ``incident_*`` fields)."""
    table = spantable.SpanTable.build(spans)
    return _call_graph(spantable.SpanTable.build([]), table, limits=Thresholds())


def _depths(edges: Sequence[CallEdge]) -> dict[str, int]:
    """Breadth-first distance of each component from the graph's sources."""
    callees = {e.callee for e in edges}
    frontier = sorted({e.caller for e in edges} - callees) or sorted({e.caller for e in edges})[:1]
    depth = dict.fromkeys(frontier, 0)
    while frontier:
        nxt = []
        for edge in edges:
            if edge.caller in frontier and edge.callee not in depth:
                depth[edge.callee] = depth[edge.caller] + 1
                nxt.append(edge.callee)
        frontier = nxt
    return depth


def _canaries(table: spantable.SpanTable, *, limits: Thresholds) -> tuple[VersionSplit, ...]:
    versions = [str(s["attrs"].get("service.version", "")) for s in table.spans]
    server = np.asarray([s["kind"] == tracing.SpanKind.SERVER for s in table.spans], dtype=np.bool_)
    found = []
    services = sorted({s["service"] for s in table.spans})
    names = np.asarray([s["service"] for s in table.spans], dtype=object)
    version_array = np.asarray(versions, dtype=object)
    for service in services:
        rows = np.flatnonzero((names == service) & server & (version_array != ""))
        split = _version_split(table, service, rows, version_array, limits=limits)
        if split is not None:
            found.append(split)
    return tuple(found)


def _version_split(
    table: spantable.SpanTable,
    service: str,
    rows: IntArray,
    versions: npt.NDArray[np.object_],
    *,
    limits: Thresholds,
) -> VersionSplit | None:
    present = [
        v
        for v in sorted(set(versions[rows].tolist()))
        if np.count_nonzero(versions[rows] == v)
        >= max(limits.min_samples, limits.canary_min_share * rows.size)
    ]
    if len(present) < 2:
        return None
    stats, suspect, reason, exemplar_rows = [], None, "", np.zeros(0, dtype=np.int64)
    for version in present:
        mine = rows[versions[rows] == version]
        others = rows[versions[rows] != version]
        p95 = spantable.quantiles(table.duration[mine].astype(np.float64))[1]
        errors = int(np.count_nonzero(table.failed[mine]))
        stats.append(VersionStats(version, int(mine.size), errors, _ms(p95)))
        other_errors = int(np.count_nonzero(table.failed[others]))
        p = spantable.two_proportion_p(other_errors, int(others.size), errors, int(mine.size))
        rise = errors / mine.size - other_errors / max(1, others.size)
        if p < limits.alpha and rise >= limits.min_error_increase and suspect is None:
            suspect = version
            reason = (
                f"{service} {version} fails {errors}/{mine.size} requests, "
                f"the other versions {other_errors}/{others.size}"
            )
            exemplar_rows = mine[table.failed[mine]]
    exemplars = _exemplars(table, exemplar_rows, by=table.duration, count=limits.exemplars)
    return VersionSplit(service, tuple(stats), suspect, reason, exemplars)


# --- the entry points -----------------------------------------------------------------------


def spans_of(evidence: Iterable[Evidence]) -> list[tracing.SpanPayload]:
    """Every span carried by trace evidence (evidence without spans is skipped)."""
    spans: list[tracing.SpanPayload] = []
    for item in evidence:
        raw = item.raw
        if isinstance(raw, dict) and isinstance(raw.get("spans"), list):
            spans.extend(raw["spans"])
    return spans


def compare_windows(
    baseline: Sequence[tracing.SpanPayload],
    incident: Sequence[tracing.SpanPayload],
    *,
    thresholds: Thresholds | None = None,
) -> TraceComparison:
    """Compare the spans of a baseline window with the incident's; see the module docstring."""
    limits = thresholds or Thresholds()
    base, inc = spantable.SpanTable.build(baseline), spantable.SpanTable.build(incident)
    base_groups, inc_groups = _rows_by_key(base, []), _rows_by_key(inc, [])
    empty = np.zeros(0, dtype=np.int64)
    operations = tuple(
        _operation_change(
            key, base, base_groups.get(key, empty), inc, inc_groups.get(key, empty), limits=limits
        )
        for key in sorted(set(base_groups) | set(inc_groups))
    )
    end_to_end = _end_to_end(base, inc, limits=limits)
    edges = _call_graph(base, inc, limits=limits)
    partial = TraceComparison(
        baseline_traces=int(np.count_nonzero(base.root_of_trace >= 0)),
        incident_traces=int(np.count_nonzero(inc.root_of_trace >= 0)),
        end_to_end=end_to_end,
        operations=operations,
        attribution=_attribution(operations, end_to_end),
        edges=edges,
        canaries=_canaries(inc, limits=limits),
        suspects=(),
        depth=_depths(edges),
    )
    return dataclasses.replace(partial, suspects=rank_suspects(partial, thresholds=limits))


def rank_suspects(
    comparison: TraceComparison, *, thresholds: Thresholds | None = None
) -> tuple[Suspect, ...]:
    """Components ordered by how well they explain the incident, best first.

    A component scores by the share of the end-to-end latency increase its own critical-path
    time explains (operations whose latency change is significant only), by the rise of errors
    that start in it (spans failing with no failing child), and by a failing canary version.
    Callers that only wait on, or pass on the errors of, an anomalous dependency score low; on
    a tie the deeper component in the call graph ranks first.
    """
    limits = thresholds or Thresholds()
    board = _Board()
    changed = {(o.service, o.operation) for o in comparison.operations if o.latency_changed}
    for part in comparison.attribution:
        if (part.service, part.operation) in changed and part.share >= 0.1:
            reason = (
                f"{part.service} {part.operation} adds {part.delta_ms:g} ms per trace "
                f"({part.share:.0%} of the end-to-end increase)"
            )
            board.note(part.component, score=part.share, traces=part.exemplars, reason=reason)
    for edge in comparison.edges:
        _score_edge(edge, board, limits=limits)
    for split in comparison.canaries:
        if split.suspect_version:
            board.versions[split.service] = split.suspect_version
            reason = f"canary: {split.reason}"
            board.note(split.service, score=0.9, traces=split.exemplars, reason=reason)
    return board.ranked(depth=comparison.depth, exemplars=limits.exemplars)


@dataclass
class _Board:
    """Scores, reasons and exemplars gathered per component."""

    scores: dict[str, list[float]] = field(default_factory=dict)
    reasons: dict[str, list[str]] = field(default_factory=dict)
    traces: dict[str, list[str]] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def note(self, component: str, *, score: float, traces: Sequence[str], reason: str) -> None:
        self.scores.setdefault(component, []).append(score)
        self.reasons.setdefault(component, []).append(reason)
        self.traces.setdefault(component, []).extend(traces)

    def ranked(self, *, depth: Mapping[str, int], exemplars: int) -> tuple[Suspect, ...]:
        found = [
            Suspect(
                component=name,
                score=min(1.0, sum(values)),
                reasons=tuple(self.reasons[name]),
                exemplars=tuple(dict.fromkeys(self.traces[name]))[:exemplars],
                version=self.versions.get(name),
            )
            for name, values in self.scores.items()
        ]
        found.sort(key=lambda s: (-round(s.score, 3), -depth.get(s.component, 0), s.component))
        return tuple(found)


def _score_edge(edge: CallEdge, board: _Board, *, limits: Thresholds) -> None:
    """Failures that start in a component, rising significantly, point at it (failures it
    only passes on from further down do not)."""
    before = edge.baseline_own_errors / edge.baseline_calls if edge.baseline_calls else 0.0
    after = edge.incident_own_errors / edge.incident_calls if edge.incident_calls else 0.0
    p = spantable.two_proportion_p(
        edge.baseline_own_errors, edge.baseline_calls, edge.incident_own_errors, edge.incident_calls
    )
    if edge.incident_calls < limits.min_samples or p >= limits.alpha:
        return
    if after - before < limits.min_error_increase:
        return
    reason = (
        f"calls {edge.caller} → {edge.callee} fail in {edge.callee} {after:.0%} of the time "
        f"(baseline {before:.0%})"
    )
    board.note(
        edge.callee, score=min(1.0, (after - before) * 2), traces=edge.exemplars, reason=reason
    )


# --- one window, no baseline ------------------------------------------------------------------


def split_halves(
    spans: Sequence[tracing.SpanPayload],
) -> tuple[list[tracing.SpanPayload], list[tracing.SpanPayload]]:
    """The spans of the traces that start in the first half of the sampled window, and those
    of the second half (a trace stays whole: it goes by its earliest span)."""
    first: dict[str, int] = {}
    for span in spans:
        first[span["trace_id"]] = min(
            first.get(span["trace_id"], span["start_us"]), span["start_us"]
        )
    if not first:
        return [], []
    middle = (min(first.values()) + max(first.values())) / 2
    early = [s for s in spans if first[s["trace_id"]] < middle]
    late = [s for s in spans if first[s["trace_id"]] >= middle]
    return early, late


def compare_within(
    spans: Sequence[tracing.SpanPayload], *, thresholds: Thresholds | None = None
) -> TraceComparison:
    """One sampled window and no baseline (a short recording): its first half is compared with
    its second as :func:`compare_windows` compares two windows, and each component's exclusive
    self time is tested across the halves too, so a service that became slow on its own ranks
    even when no end-to-end change is significant yet."""
    limits = thresholds or Thresholds()
    early, late = split_halves(spans)
    comparison = compare_windows(early, late, thresholds=limits)
    board = _Board()
    for suspect in comparison.suspects:
        board.note(suspect.component, score=suspect.score, traces=suspect.exemplars,
                   reason="; ".join(suspect.reasons))  # fmt: skip
        if suspect.version:
            board.versions[suspect.component] = suspect.version
    _score_self_time(
        spantable.SpanTable.build(early), spantable.SpanTable.build(late), board, limits=limits
    )
    ranked = board.ranked(depth=comparison.depth, exemplars=limits.exemplars)
    return dataclasses.replace(comparison, suspects=ranked)


def _score_self_time(
    early: spantable.SpanTable, late: spantable.SpanTable, board: _Board, *, limits: Thresholds
) -> None:
    """Components whose spans' own (exclusive) time rose significantly from the first half to
    the second, scored by their share of the rise in self time per trace across all of them."""
    rises: dict[str, tuple[float, spantable.MannWhitney, IntArray]] = {}
    traces_early = max(1, int(np.count_nonzero(early.root_of_trace >= 0)))
    traces_late = max(1, int(np.count_nonzero(late.root_of_trace >= 0)))
    for name in sorted(set(early.components) & set(late.components)):
        before = early.self_time[early.component == early.components.index(name)]
        rows = np.flatnonzero(late.component == late.components.index(name))
        after = late.self_time[rows]
        if before.size < limits.min_samples or after.size < limits.min_samples:
            continue
        test = spantable.mann_whitney_u(before.astype(np.float64), after.astype(np.float64))
        ratio = (float(np.median(after)) + 1.0) / (float(np.median(before)) + 1.0)
        if (
            test.p_value < limits.alpha
            and test.effect >= limits.min_effect
            and ratio >= limits.min_ratio
        ):
            rise = float(after.sum()) / traces_late - float(before.sum()) / traces_early
            rises[name] = (max(rise, 0.0), test, rows)
    total = sum(r for r, _, _ in rises.values())
    for name, (rise, test, rows) in rises.items():
        share = rise / total if total > 0 else 1.0 / len(rises)
        reason = (
            f"{name}'s own time per span rose from the first half of the window to the second "
            f"(Mann-Whitney z={test.z:.1f}, p={test.p_value:.2g}, effect A={test.effect:.2f}); "
            f"{share:.0%} of the rise in self time"
        )
        traces = _exemplars(late, rows, by=late.self_time, count=limits.exemplars)
        board.note(name, score=max(0.1, share), traces=traces, reason=reason)
