"""Spans as columns: the span table (one row per span, components and operations as codes,
self time and critical-path time per span) and the statistics the trace comparison rests on
(Mann-Whitney U with its effect size, a two-proportion test, quantiles). Pure numpy."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from diagnose.domain import traces as tracing
from diagnose.domain.models import JSON

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
QUANTILES = (0.5, 0.95, 0.99)
MAX_DEPTH = 400


# --- statistics -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MannWhitney:
    """Mann-Whitney U of the incident sample against the baseline.

    ``u`` counts (baseline, incident) pairs where the incident value is larger, ties counting
    one half; ``effect`` is ``u / (n_baseline * n_incident)``, the probability that a random
    incident value exceeds a random baseline one (0.5: no difference).
    """

    u: float
    effect: float
    z: float
    p_value: float
    n_baseline: int
    n_incident: int

    def to_dict(self) -> dict[str, JSON]:
        return {
            "u": round(self.u, 3),
            "effect": round(self.effect, 4),
            "z": round(self.z, 4),
            "p_value": float(f"{self.p_value:.4g}"),
            "n_baseline": self.n_baseline,
            "n_incident": self.n_incident,
        }


def mann_whitney_u(
    baseline: Sequence[float] | FloatArray, incident: Sequence[float] | FloatArray
) -> MannWhitney:
    """Two-sided Mann-Whitney U test, normal approximation with tie and continuity corrections
    (as ``scipy.stats.mannwhitneyu(method="asymptotic")``)."""
    x = np.asarray(baseline, dtype=np.float64)
    y = np.asarray(incident, dtype=np.float64)
    n1, n2 = x.size, y.size
    if n1 == 0 or n2 == 0:
        return MannWhitney(0.0, 0.5, 0.0, 1.0, n1, n2)
    _, inverse, counts = np.unique(np.concatenate([x, y]), return_inverse=True, return_counts=True)
    ends = np.cumsum(counts).astype(np.float64)
    ranks = (ends - (counts - 1) / 2.0)[inverse]
    u = float(ranks[n1:].sum() - n2 * (n2 + 1) / 2.0)
    n = n1 + n2
    ties = float(np.sum(counts.astype(np.float64) ** 3 - counts))
    variance = n1 * n2 / 12.0 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    mean = n1 * n2 / 2.0
    if variance <= 0:
        return MannWhitney(u, u / (n1 * n2), 0.0, 1.0, n1, n2)
    z = (abs(u - mean) - 0.5) / math.sqrt(variance)
    z = max(z, 0.0) * (1.0 if u >= mean else -1.0)
    p_value = min(1.0, math.erfc(abs(z) / math.sqrt(2.0)))
    return MannWhitney(u, u / (n1 * n2), z, p_value, n1, n2)


def two_proportion_p(errors_a: int, total_a: int, errors_b: int, total_b: int) -> float:
    """Two-sided p-value of a pooled two-proportion z-test (1.0 when nothing can be said)."""
    if total_a == 0 or total_b == 0:
        return 1.0
    pooled = (errors_a + errors_b) / (total_a + total_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / total_a + 1 / total_b))
    if spread == 0:
        return 1.0
    z = (errors_b / total_b - errors_a / total_a) / spread
    return math.erfc(abs(z) / math.sqrt(2.0))


def quantiles(values: FloatArray) -> tuple[float, ...]:
    if values.size == 0:
        return tuple(0.0 for _ in QUANTILES)
    return tuple(float(v) for v in np.quantile(values, QUANTILES))


# --- the columnar span table ------------------------------------------------------------------


def component_of(span: tracing.SpanPayload, *, leaf: bool) -> str:
    """Where a span's time is spent: its service, or for a client span with no child span,
    the thing it called (``postgres/<db>``, ``<db.system>/<db>``, ``external/<host>``)."""
    if not leaf or span["kind"] not in (tracing.SpanKind.CLIENT, tracing.SpanKind.PRODUCER):
        return span["service"]
    attrs = span["attrs"]
    system = attrs.get("db.system")
    if system:
        name = attrs.get("db.name", attrs.get("db.namespace", attrs.get("server.address", "")))
        prefix = "postgres" if system == "postgresql" else str(system)
        return f"{prefix}/{name}" if name else prefix
    peer = attrs.get("peer.service", attrs.get("server.address", attrs.get("net.peer.name")))
    return f"external/{peer}" if peer else span["service"]


def codes(values: Iterable[str]) -> tuple[IntArray, list[str]]:
    index: dict[str, int] = {}
    codes = [index.setdefault(v, len(index)) for v in values]
    return np.asarray(codes, dtype=np.int64), list(index)


@dataclass(frozen=True)
class SpanTable:
    """Spans as columns. ``parent`` is a row index (-1 for a root or a missing parent)."""

    spans: Sequence[tracing.SpanPayload]
    trace: IntArray
    trace_ids: list[str]
    parent: IntArray
    group: IntArray  # (service, operation)
    groups: list[tuple[str, str]]
    component: IntArray
    components: list[str]
    start: IntArray  # µs
    duration: IntArray  # µs
    failed: BoolArray
    own_failure: BoolArray  # failed, and no child failed
    critical: IntArray  # µs of this span's own time on its trace's critical path
    self_time: IntArray  # µs of duration not covered by children (children clipped)
    root_of_trace: IntArray  # per trace code: the row of its root, or -1

    @property
    def size(self) -> int:
        return int(self.trace.size)

    @classmethod
    def build(cls, spans: Sequence[tracing.SpanPayload]) -> SpanTable:
        trace, trace_ids = codes(s["trace_id"] for s in spans)
        rows = {(s["trace_id"], s["span_id"]): i for i, s in enumerate(spans)}
        parent = np.asarray(
            [rows.get((s["trace_id"], s["parent_id"] or ""), -1) for s in spans], dtype=np.int64
        )
        start = np.asarray([s["start_us"] for s in spans], dtype=np.int64)
        duration = np.asarray([s["duration_us"] for s in spans], dtype=np.int64)
        failed = np.asarray([tracing.span_failed(s) for s in spans], dtype=np.bool_)
        has_child = np.zeros(len(spans), dtype=np.bool_)
        has_child[parent[parent >= 0]] = True
        child_failed = np.zeros(len(spans), dtype=np.bool_)
        child_failed[parent[(parent >= 0) & failed]] = True
        group, groups = codes(f"{s['service']}\0{s['operation']}" for s in spans)
        component, components = codes(
            component_of(s, leaf=not has_child[i]) for i, s in enumerate(spans)
        )
        critical, roots = _critical_path(trace, len(trace_ids), parent, start, duration)
        return cls(
            spans=spans,
            trace=trace,
            trace_ids=trace_ids,
            parent=parent,
            group=group,
            groups=[(g.split("\0")[0], g.split("\0", 1)[1]) for g in groups],
            component=component,
            components=components,
            start=start,
            duration=duration,
            failed=failed,
            own_failure=failed & ~child_failed,
            critical=critical,
            self_time=_self_time(parent, start, duration),
            root_of_trace=roots,
        )


def _self_time(parent: IntArray, start: IntArray, duration: IntArray) -> IntArray:
    """Duration minus the children's durations clipped to the parent (floored at zero)."""
    has = parent >= 0
    p = parent[has]
    end = start + duration
    clipped = np.minimum(end[has], end[p]) - np.maximum(start[has], start[p])
    covered = np.bincount(p, weights=np.maximum(clipped, 0), minlength=parent.size)
    return np.maximum(duration - covered.astype(np.int64), 0)


def _children(parent: IntArray, end: IntArray) -> tuple[IntArray, IntArray]:
    """CSR children lists, each sorted by end time, latest first."""
    has = np.flatnonzero(parent >= 0)
    order = has[np.lexsort((-end[has], parent[has]))]
    offsets = np.zeros(parent.size + 1, dtype=np.int64)
    np.add.at(offsets, parent[order] + 1, 1)
    return order, np.cumsum(offsets)


def _critical_path(
    trace: IntArray, traces: int, parent: IntArray, start: IntArray, duration: IntArray
) -> tuple[IntArray, IntArray]:
    """Each span's own time on its trace's critical path, and each trace's root row.

    From the root's end, walk back: the child that finishes last before the cursor is on the
    path; the gaps between path children are the parent's own time (Jaeger's algorithm).
    """
    end = start + duration
    order, offsets = _children(parent, end)
    critical = np.zeros(parent.size, dtype=np.int64)
    roots = np.full(traces, -1, dtype=np.int64)
    for row in np.flatnonzero(parent < 0):  # the longest parentless span roots its trace
        current = roots[trace[row]]
        if current < 0 or duration[row] > duration[current]:
            roots[trace[row]] = row
    walk = _PathWalk(order.tolist(), offsets.tolist(), start.tolist(), end.tolist(), critical)
    for row in roots[roots >= 0].tolist():
        walk.visit(row, walk.end[row], depth=0)
    return critical, roots


@dataclass
class _PathWalk:
    order: list[int]
    offsets: list[int]
    start: list[int]
    end: list[int]
    critical: IntArray
    own: dict[int, int] = field(default_factory=dict)

    def visit(self, row: int, upper: int, *, depth: int) -> None:
        begin = self.start[row]
        cursor = min(self.end[row], upper)
        own = 0
        if depth < MAX_DEPTH:
            for child in self.order[self.offsets[row] : self.offsets[row + 1]]:
                child_end = min(self.end[child], cursor)
                child_start = max(self.start[child], begin)
                if child_start >= child_end:
                    continue
                own += cursor - child_end
                self.visit(child, child_end, depth=depth + 1)
                cursor = child_start
                if cursor <= begin:
                    break
        self.critical[row] += own + max(cursor - begin, 0)
