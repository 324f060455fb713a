"""Raw range-query series → per-component signals on one time grid.

Counters become per-second rates (resets and gaps handled), histograms become p95/p99 latency
and an error ratio per component, summaries keep their quantiles, gauges stay as they are.
Series of one component and metric are aggregated (summed, or the max for quantiles) so pod
churn during a rollout does not break a signal in two. Everything is stacked into 2-D arrays:
one row per series or signal, one column per grid step.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from diagnose.analysis import aligning, discovery, transforms
from diagnose.domain import models

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]

Grid = aligning.Grid
LOOKBACK_S = aligning.LOOKBACK_S
has_series = aligning.has_series
native_width = aligning.native_width
counter_rate = transforms.counter_rate
histogram_quantile = transforms.histogram_quantile

STATUS_LABELS = (
    "http_response_status_code",
    "http_status_code",
    "status_code",
    "response_code",
    "code",
    "status",
    "grpc_code",
)
"""Labels that carry a response status; 5xx (and gRPC server faults) count as errors."""

CLIENT_LABELS = ("server_address", "net_peer_name", "peer_service", "destination_service_name")
"""Labels that name the callee on client-side metrics."""

ROUTE_LABELS = ("http_route", "route", "uri", "handler", "grpc_method", "source_workload")
"""Labels that cut a service's requests into slices (its routes, or its callers for a mesh that
sees no routes): a slow or failing slice is scored on its own, so the rest of the traffic
cannot hide it."""
RESTART_WINDOW_S = 600.0
"""Restart counters are read as restarts over this trailing window, not as a rate."""
ROUTE_MIN_SHARE = 0.05
"""A slice is scored when it carries at least this share of its component's requests."""
MAX_ROUTES = 8
"""At most this many slices per component and metric, the busiest."""

_GRPC_FAULTS = frozenset({"Internal", "Unavailable", "DeadlineExceeded", "Unknown", "DataLoss"})
_IDENTITY = frozenset(
    {
        *discovery.SERVICE_LABELS,
        *STATUS_LABELS,
        "__name__",
        "le",
        "quantile",
        "pod_name",
        "instance",
        "id",
        "image",
        "node",
        "endpoint",
        "metrics_path",
        "uid",
        "container_id",
        "kubernetes_pod_name",
        "pod_template_hash",
        "http_route",
        "route",
        "handler",
        "path",
        "uri",
        "method",
        "http_request_method",
        "operation",
        "source_workload",
        "reporter",
        "url_scheme",
        "network_protocol_version",
        "server_port",
        "otel_scope_name",
        "otel_scope_version",
        "service_namespace",
        "service_instance_id",
        "kubernetes_name",
        "app_kubernetes_io_instance",
    }
)


@dataclass(frozen=True)
class SignalInfo:
    """What one row of the signal matrix is."""

    component: str
    metric: str  # the metric name it was computed from
    kind: str  # cpu | memory | throttling | restarts | latency | errors | traffic | database |
    # availability | other
    direction: int  # +1 up is bad, -1 down is bad, 0 either way is notable
    query: str  # PromQL that re-computes it
    evidence: str  # id of the evidence whose series it came from
    detail: str  # sub-labels or quantile, for people
    part_of: str = ""  # for one slice of a service's requests, the detail of the whole
    granule: float = 0.0  # the least change the data can show (a rate read from counts: one
    # count over its window), so a series rising from 0 to one request in twenty minutes is
    # not a million-sigma event


@dataclass(frozen=True)
class Signals:
    """Signals on a grid: ``values[i]`` is described by ``info[i]``; ``widths[i]`` is how many
    grid steps one real sample of it spans (1 when the data is at least as coarse as the grid;
    10 for samples a minute apart read at a 6 s step, each repeated ten times), so statistics
    count real samples, not repeats."""

    grid: Grid
    values: Array
    info: list[SignalInfo]
    edges: frozenset[tuple[str, str]]  # (caller, callee) pairs seen in client-side labels
    widths: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    read: frozenset[str] = frozenset()  # ids of the records with a series of some component

    def width(self, row: int) -> int:
        return int(self.widths[row]) if row < len(self.widths) else 1

    def interval_s(self, row: int) -> float:
        """The native sampling interval of a row, in seconds (at least the grid step)."""
        return self.width(row) * self.grid.step


def build_signals(
    evidence: Sequence[models.Evidence], *, window: models.Window, step_s: float | None = None
) -> Signals:
    """Align every series on one grid and turn them into per-component signals. The grid's
    step is the finest of the records' and ``step_s`` (the scope's resolution), so records
    read at their own coarser interval are repeated on it, one real sample per ``width``."""
    usable = [e for e in evidence if aligning.series_of(e)]
    grid = aligning.grid_for(usable, window=window, step_s=step_s)
    builder = _Builder(grid)
    until = window.end.timestamp()
    blocks = [aligning.align(record, grid=grid) for record in usable]
    known = [b.width for b in blocks if b.width]
    fallback = round(float(np.median(known))) if known else 1
    for block in blocks:
        block.width = block.width or fallback
        builder.add(aligning.without_stale_tail(block, grid=grid, until=until))
    return builder.finish()


# --- classification -------------------------------------------------------------------------


_KINDS: tuple[tuple[str, re.Pattern[str], int], ...] = (
    ("throttling", re.compile(r"throttl"), 1),
    ("restarts", re.compile(r"restart|oom|terminated|evict"), 1),
    ("availability", re.compile(r"available|ready|(^|_)up$|healthy|success"), -1),
    ("errors", re.compile(r"error|fail|exception|5xx|panic|timeout|reject|dropped"), 1),
    ("database", re.compile(r"^pg_|^mysql_|lock|deadlock|blocked|conflict|idle_in_transaction"), 1),
    (
        "latency",
        re.compile(
            r"duration|latency|response_time|_seconds$|_seconds_(sum|count|bucket)$|wait|lag"
        ),
        1,
    ),
    ("cpu", re.compile(r"cpu"), 1),
    ("memory", re.compile(r"memory|_rss|heap|working_set|_mem_"), 1),
    (
        "saturation",
        re.compile(
            r"queue|pending|inflight|in_flight|connections|saturation|pool|goroutines|threads"
        ),
        1,
    ),
    ("traffic", re.compile(r"requests|request_count|calls|_count$|_total$"), 0),
)


def classify(metric: str) -> tuple[str, int]:
    """A signal's kind and bad direction, from its metric name."""
    lowered = metric.lower()
    for kind, pattern, direction in _KINDS:
        if pattern.search(lowered):
            return kind, direction
    return "other", 0


RESOURCE_KINDS = frozenset({"cpu", "memory", "throttling", "restarts"})
"""Signals that belong to the component itself, not inherited from what it calls."""


# --- building signals ------------------------------------------------------------------------


@dataclass
class _Pending:
    info: SignalInfo
    rows: list[Array]


class _Builder:
    """Accumulates signals block by block; :meth:`finish` stacks them."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        self.values: list[Array] = []
        self.info: list[SignalInfo] = []
        self.widths: list[int] = []
        self.read: set[str] = set()
        self.width = 1  # of the block being added
        self.granule = 0.0  # of the rows being emitted (see SignalInfo.granule)
        self.edges: set[tuple[str, str]] = set()
        self.samples: dict[str, tuple[str, Mapping[str, str]]] = {}
        self.seen: set[tuple[str, str, str, str]] = set()
        # per family (name without _sum/_count) and component: rate, evidence id, selector, width
        self.totals: dict[str, dict[str, dict[str, tuple[Array, str, str, int]]]] = {}

    def add(self, block: aligning.Block) -> None:
        if not block.labels:
            return
        self.width = block.width
        metric = block.labels[0].get("__name__") or _metric_from_query(block.evidence.query)
        components = [_component(labels) for labels in block.labels]
        self._note_edges(block.labels)
        keep = np.array(
            [
                c is not None and not _pod_total(lab)
                for c, lab in zip(components, block.labels, strict=True)
            ]
        )
        if not keep.any():
            return
        self.read.add(block.evidence.id)
        labels = [lab for lab, k in zip(block.labels, keep, strict=True) if k]
        comps = [c for c, k in zip(components, keep, strict=True) if k and c is not None]
        values = block.values[keep]
        self.samples = {c: (c, lab) for c, lab in reversed(list(zip(comps, labels, strict=True)))}
        family = discovery.family_of(metric, set(itertools.chain.from_iterable(labels)))
        if family == "histogram" and metric.endswith("_bucket"):
            self._histogram(block, metric=metric, labels=labels, comps=comps, values=values)
        elif family == "summary":
            self._summary(block, metric=metric, labels=labels, comps=comps, values=values)
        elif (
            family == "counter"
            or _is_counter(metric)
            or (family == "unknown" and _cumulative(values))
        ):
            self._counter(block, metric=metric, labels=labels, comps=comps, values=values)
        else:
            self._gauge(block, metric=metric, labels=labels, comps=comps, values=values)

    def finish(self) -> Signals:
        self._means()
        values = np.vstack(self.values) if self.values else np.empty((0, self.grid.size))
        widths = np.array(self.widths, dtype=np.intp)
        return Signals(
            self.grid, values, self.info, frozenset(self.edges), widths, frozenset(self.read)
        )

    # -- families --

    def _gauge(
        self,
        block: aligning.Block,
        *,
        metric: str,
        labels: list[dict[str, str]],
        comps: list[str],
        values: Array,
    ) -> None:
        kind, direction = classify(metric)
        self._grouped(
            block,
            metric=metric,
            labels=labels,
            comps=comps,
            values=values,
            kind=kind,
            direction=direction,
            how="sum",
            template="sum({sel})",
        )

    def _counter(
        self,
        block: aligning.Block,
        *,
        metric: str,
        labels: list[dict[str, str]],
        comps: list[str],
        values: Array,
    ) -> None:
        rates = transforms.smooth_rate(
            transforms.counter_rate(values, step=self.grid.step), width=self.width
        )
        if metric.endswith(("_sum", "_count")):
            self._keep_total(block, metric=metric, comps=comps, rates=rates)
        if metric.endswith("_sum"):
            return  # a sum of observations means nothing without its count (see _means)
        self.granule = self._count_granule()
        try:
            self._rates(block, metric=metric, labels=labels, comps=comps, rates=rates)
        finally:
            self.granule = 0.0

    def _keep_total(
        self, block: aligning.Block, *, metric: str, comps: list[str], rates: Array
    ) -> None:
        """Per component, the summed rate of a ``_sum`` or ``_count`` series, for :meth:`_means`."""
        family, _, part = metric.rpartition("_")
        index = {c: i for i, c in enumerate(dict.fromkeys(comps))}
        groups = np.array([index[c] for c in comps], dtype=np.intp)
        total = transforms.group_reduce(rates, groups, count=len(index), how="sum")
        kept = self.totals.setdefault(family, {}).setdefault(part, {})
        for comp, row in index.items():
            sel = _selector(block.evidence.query, metric=metric, sample=self.samples[comp])
            kept[comp] = (total[row], block.evidence.id, sel, self.width)

    def _means(self) -> None:
        """The mean of a latency histogram or summary (``_sum`` over ``_count``): unlike a
        quantile read from coarse buckets, it moves with a slow drift, and a summary without
        quantiles (Micrometer's timers) has no other latency."""
        for family, parts in sorted(self.totals.items()):
            kind, _ = classify(family + "_sum")
            if kind not in ("latency", "database") or set(parts) != {"sum", "count"}:
                continue
            window = self._range()
            for comp in sorted(set(parts["sum"]) & set(parts["count"])):
                total, evidence, sum_sel, width = parts["sum"][comp]
                count, _, count_sel, _ = parts["count"][comp]
                self.width = width
                with np.errstate(invalid="ignore", divide="ignore"):
                    mean = np.where(count > 0, total / count, np.nan)
                query = f"sum(rate({sum_sel}[{window}])) / sum(rate({count_sel}[{window}]))"
                self._emit(SignalInfo(comp, family, kind, 1, query, evidence, "mean"), mean)

    def _rates(
        self,
        block: aligning.Block,
        *,
        metric: str,
        labels: list[dict[str, str]],
        comps: list[str],
        rates: Array,
    ) -> None:
        kind, direction = classify(metric)
        if metric.endswith("_count") and kind in ("latency", "other", "database"):
            kind, direction = "traffic", 0  # a histogram's or summary's count is a request rate
        values, template = rates, f"sum(rate({{sel}}[{self._range()}]))"
        keep = np.ones(len(comps), dtype=bool)
        if kind == "traffic":
            # a slice of failures alone (outcome=SERVER_ERROR) is not a request rate: it rises
            # from nothing when errors begin; the error ratio below scores it
            keep = _not_failures_only(labels, comps)
        if kind == "restarts":
            # rare events: a crash loop restarts every few minutes, so its rate is mostly 0 and
            # its median after the onset too; the count over the last RESTART_WINDOW_S is not
            width = max(1, round(RESTART_WINDOW_S / self.grid.step))
            values = transforms.rolling_sum(np.nan_to_num(rates) * self.grid.step, width)
            template = f"sum(increase({{sel}}[{int(RESTART_WINDOW_S)}s]))"
        if keep.any():
            self._grouped(
                block,
                metric=metric,
                labels=[lab for lab, k in zip(labels, keep, strict=True) if k],
                comps=[c for c, k in zip(comps, keep, strict=True) if k],
                values=values[keep],
                kind=kind,
                direction=direction,
                how="sum",
                template=template,
            )
        self._error_ratio(block, metric=metric, labels=labels, comps=comps, rates=rates)

    def _summary(
        self,
        block: aligning.Block,
        *,
        metric: str,
        labels: list[dict[str, str]],
        comps: list[str],
        values: Array,
    ) -> None:
        kind, direction = classify(metric)
        if kind not in ("latency", "database", "saturation"):
            kind, direction = "latency", 1
        self._grouped(
            block,
            metric=metric,
            labels=labels,
            comps=comps,
            values=values,
            kind=kind,
            direction=direction,
            how="max",
            template="max({sel})",
            extra=("quantile",),
        )

    def _histogram(
        self,
        block: aligning.Block,
        *,
        metric: str,
        labels: list[dict[str, str]],
        comps: list[str],
        values: Array,
    ) -> None:
        rates = transforms.smooth_rate(
            transforms.counter_rate(values, step=self.grid.step), width=self.width
        )
        les = [lab.get("le", "+Inf") for lab in labels]
        keys = [(c, le) for c, le in zip(comps, les, strict=True)]
        index = {k: i for i, k in enumerate(dict.fromkeys(keys))}
        summed = transforms.group_reduce(
            rates, np.array([index[k] for k in keys], dtype=np.intp), count=len(index), how="sum"
        )
        kind, _ = classify(metric)
        kind = kind if kind in ("latency", "database") else "latency"
        by_component: dict[str, list[tuple[float, int]]] = {}
        for (comp, le), row in index.items():
            by_component.setdefault(comp, []).append((_bound(le), row))
        for comp, rows in sorted(by_component.items()):
            rows.sort()
            bounds = np.array([b for b, _ in rows])
            if not np.isinf(bounds[-1]):
                continue
            cumulative = np.nan_to_num(summed[[r for _, r in rows]], nan=0.0)
            cumulative = np.maximum.accumulate(cumulative, axis=0)
            for q in (0.95, 0.99):
                sel = _selector(block.evidence.query, metric=metric, sample=self.samples[comp])
                query = f"histogram_quantile({q}, sum by (le) (rate({sel}[{self._range()}])))"
                value = transforms.histogram_quantile(q, bounds=bounds, cumulative=cumulative)
                self._emit(
                    SignalInfo(comp, metric, kind, 1, query, block.evidence.id, f"p{int(q * 100)}"),
                    value,
                )
        self._route_quantiles(block, metric=metric, labels=labels, comps=comps, rates=rates)
        total = np.array([np.isinf(_bound(le)) for le in les])
        self.granule = self._count_granule()
        self._rates(
            block,
            metric=metric.removesuffix("_bucket") + "_count",
            labels=[lab for lab, keep in zip(labels, total, strict=True) if keep],
            comps=[c for c, keep in zip(comps, total, strict=True) if keep],
            rates=rates[total],
        )
        self.granule = 0.0

    def _route_quantiles(
        self,
        block: aligning.Block,
        *,
        metric: str,
        labels: list[dict[str, str]],
        comps: list[str],
        rates: Array,
    ) -> None:
        """p95 per busy slice (see :data:`ROUTE_LABELS`) of a component with several."""
        les = [lab.get("le", "+Inf") for lab in labels]
        routes = _routes(labels)
        inf = np.array([np.isinf(_bound(le)) for le in les])
        picked = _busy_slices(comps, routes, rates=rates, mask=inf)
        if not picked:
            return
        keys = [(c, r, le) for c, r, le in zip(comps, routes, les, strict=True)]
        keep = np.array([(c, r) in picked for c, r, _ in keys])
        if not keep.any():
            return
        kept = [k for k, ok in zip(keys, keep, strict=True) if ok]
        index = {k: i for i, k in enumerate(dict.fromkeys(kept))}
        summed = transforms.group_reduce(
            rates[keep],
            np.array([index[k] for k in kept], dtype=np.intp),
            count=len(index),
            how="sum",
        )
        kind, _ = classify(metric)
        kind = kind if kind in ("latency", "database") else "latency"
        by_slice: dict[tuple[str, str], list[tuple[float, int]]] = {}
        for (comp, route, le), row in index.items():
            by_slice.setdefault((comp, route), []).append((_bound(le), row))
        for (comp, route), rows in sorted(by_slice.items()):
            rows.sort()
            bounds = np.array([b for b, _ in rows])
            if not np.isinf(bounds[-1]):
                continue
            cumulative = np.maximum.accumulate(
                np.nan_to_num(summed[[r for _, r in rows]], nan=0.0), axis=0
            )
            label, _, value = route.partition("\x00")
            sub = ((label, value),)
            sel = _selector(block.evidence.query, metric=metric, sample=self.samples[comp], sub=sub)
            query = f"histogram_quantile(0.95, sum by (le) (rate({sel}[{self._range()}])))"
            p95 = transforms.histogram_quantile(0.95, bounds=bounds, cumulative=cumulative)
            detail = f"p95 {label}={value}"
            info = SignalInfo(comp, metric, kind, 1, query, block.evidence.id, detail, "p95")
            self._emit(info, p95)

    # -- helpers --

    def _grouped(
        self,
        block: aligning.Block,
        *,
        metric: str,
        labels: list[dict[str, str]],
        comps: list[str],
        values: Array,
        kind: str,
        direction: int,
        how: str,
        template: str,
        extra: tuple[str, ...] = (),
    ) -> None:
        keys = [(c, _sub_labels(lab, extra=extra)) for c, lab in zip(comps, labels, strict=True)]
        index = {k: i for i, k in enumerate(dict.fromkeys(keys))}
        groups = np.array([index[k] for k in keys], dtype=np.intp)
        reduced = transforms.group_reduce(values, groups, count=len(index), how=how)
        for (comp, sub), row in index.items():
            sel = _selector(block.evidence.query, metric=metric, sample=self.samples[comp], sub=sub)
            detail = ",".join(f"{k}={v}" for k, v in sub)
            info = SignalInfo(
                comp, metric, kind, direction, template.format(sel=sel), block.evidence.id, detail
            )
            self._emit(info, reduced[row])

    def _error_ratio(
        self,
        block: aligning.Block,
        *,
        metric: str,
        labels: list[dict[str, str]],
        comps: list[str],
        rates: Array,
    ) -> None:
        status_label = next((s for s in STATUS_LABELS if any(s in lab for lab in labels)), None)
        if status_label is None:
            return
        errors = np.array([_is_error(lab.get(status_label, "")) for lab in labels])
        index = {c: i for i, c in enumerate(dict.fromkeys(comps))}
        groups = np.array([index[c] for c in comps], dtype=np.intp)
        total = transforms.group_reduce(rates, groups, count=len(index), how="sum")
        failed = transforms.group_reduce(
            np.where(errors[:, None], rates, 0.0), groups, count=len(index), how="sum"
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(total > 0, failed / total, np.where(total == 0, 0.0, np.nan))
        window = self._range()
        faults = "5..|Internal|Unavailable|DeadlineExceeded|Unknown|DataLoss"
        for comp, row in index.items():
            sel = _selector(block.evidence.query, metric=metric, sample=self.samples[comp])
            bad = sel[:-1] + f',{status_label}=~"{faults}"}}'
            query = f"sum(rate({bad}[{window}])) / sum(rate({sel}[{window}]))"
            self._emit(
                SignalInfo(comp, metric, "errors", 1, query, block.evidence.id, "error ratio"),
                ratio[row],
            )
        routes = _routes(labels)
        picked = _busy_slices(comps, routes, rates=rates, mask=np.ones(len(comps), dtype=bool))
        if not picked:
            return
        slices = {k: i for i, k in enumerate(dict.fromkeys(zip(comps, routes, strict=True)))}
        groups = np.array([slices[k] for k in zip(comps, routes, strict=True)], dtype=np.intp)
        total = transforms.group_reduce(rates, groups, count=len(slices), how="sum")
        failed = transforms.group_reduce(
            np.where(errors[:, None], rates, 0.0), groups, count=len(slices), how="sum"
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(total > 0, failed / total, np.where(total == 0, 0.0, np.nan))
        for (comp, route), row in slices.items():
            if (comp, route) not in picked:
                continue
            label, _, value = route.partition("\x00")
            sub = ((label, value),)
            sel = _selector(block.evidence.query, metric=metric, sample=self.samples[comp], sub=sub)
            bad = sel[:-1] + f',{status_label}=~"{faults}"}}'
            query = f"sum(rate({bad}[{window}])) / sum(rate({sel}[{window}]))"
            detail = f"error ratio {label}={value}"
            info = SignalInfo(
                comp, metric, "errors", 1, query, block.evidence.id, detail, "error ratio"
            )
            self._emit(info, ratio[row])

    def _note_edges(self, labels: list[dict[str, str]]) -> None:
        for item in labels:
            outbound = item.get("dst_deployment")  # Linkerd's proxy, on the caller's pod
            caller = item.get("source_workload") or (
                _component_plain(item)
                if outbound or any(c in item for c in CLIENT_LABELS)
                else None
            )
            callee = item.get("destination_workload") or outbound or _callee(item)
            if caller and callee and caller not in (callee, "unknown"):
                self.edges.add((caller, callee))

    def _emit(self, info: SignalInfo, row: Array) -> None:
        key = (info.component, info.metric, info.kind, info.detail)
        if key in self.seen:
            return  # a histogram's +Inf bucket and its _count say the same thing
        self.seen.add(key)
        if self.granule and not info.granule and info.kind == "traffic":
            info = replace(info, granule=self.granule)
        self.info.append(info)
        self.values.append(row[None, :])
        self.widths.append(self.width)

    def _count_granule(self) -> float:
        """One count over the window a rate is read over: the least rise a count can show."""
        return 1.0 / (
            self.grid.step * (transforms.RATE_INTERVALS * self.width if self.width > 1 else 1)
        )

    def _range(self) -> str:
        """The rate window of cited queries: at least four real samples, and a minute."""
        seconds = max(transforms.RATE_INTERVALS * self.grid.step * self.width, 60.0)
        return f"{int(seconds)}s"


def _component(labels: Mapping[str, str]) -> str | None:
    """The component a series' signal counts for: an external callee for client-side series
    pointing outside the cluster, else :func:`discovery.component_of`."""
    callee = _callee(labels)
    if callee is not None and callee.startswith("external/"):
        return callee
    return discovery.component_of(labels)


def _component_plain(labels: Mapping[str, str]) -> str | None:
    return discovery.component_of(labels)


def _callee(labels: Mapping[str, str]) -> str | None:
    host = next((labels[c] for c in CLIENT_LABELS if labels.get(c)), None)
    if host is None:
        return None
    host = host.split(":")[0]
    if host.endswith((".svc", ".cluster.local")) or "." not in host:
        return host.split(".")[0]
    return f"external/{host}"


def _routes(labels: Sequence[Mapping[str, str]]) -> list[str]:
    """Each series' slice as ``label\x00value`` ("" when it has no route-like label)."""
    out = []
    for lab in labels:
        name = next((k for k in ROUTE_LABELS if lab.get(k)), None)
        out.append(f"{name}\x00{lab[name]}" if name else "")
    return out


def _busy_slices(
    comps: Sequence[str], routes: Sequence[str], *, rates: Array, mask: npt.NDArray[np.bool_]
) -> dict[tuple[str, str], str]:
    """The slices worth scoring on their own, as ``(component, value) → label``: at least two
    per component, each with :data:`ROUTE_MIN_SHARE` of its requests (``rates`` of the series
    that ``mask`` marks as request counts), the :data:`MAX_ROUTES` busiest."""
    volume: dict[str, dict[str, float]] = {}
    for comp, route, row, counted in zip(comps, routes, rates, mask, strict=True):
        if not route or not counted:
            continue
        finite = row[np.isfinite(row)]
        total = float(finite.sum()) if finite.size else 0.0
        volume.setdefault(comp, {})
        volume[comp][route] = volume[comp].get(route, 0.0) + total
    picked: dict[tuple[str, str], str] = {}
    for comp, per_route in volume.items():
        overall = sum(per_route.values())
        busy = sorted(
            (r for r, v in per_route.items() if overall > 0 and v >= ROUTE_MIN_SHARE * overall),
            key=lambda r: -per_route[r],
        )[:MAX_ROUTES]
        if len(per_route) < 2:
            continue
        for route in busy:
            picked[(comp, route)] = route.partition("\x00")[0]
    return picked


def _pod_total(labels: Mapping[str, str]) -> bool:
    """cAdvisor's pod-level cgroup series (``container=""`` or ``"POD"``) double-count."""
    name = labels.get("__name__", "")
    return name.startswith("container_") and labels.get("container", "x") in ("", "POD")


def _cumulative(values: Array) -> bool:
    """Whether series of a metric whose name does not say its type only ever go up: a counter
    exported without the ``_total`` suffix (ingress-nginx's ``..._requests``, exporters of the
    0.0.4 text format era). At least ten moves, at most 1 % of them down (resets); steps
    that repeat a sample (a grid finer than the scrape interval) are not moves."""
    steps = np.diff(values, axis=1)
    moves = steps[np.isfinite(steps) & (steps != 0)]
    return bool(moves.size >= 10 and (moves < 0).sum() <= 0.01 * moves.size)


def _is_counter(metric: str) -> bool:
    return metric.endswith(("_total", "_count", "_sum"))


def _not_failures_only(labels: Sequence[Mapping[str, str]], comps: Sequence[str]) -> Array:
    """Per series, False when its slice (component and non-identity labels) holds only error
    statuses."""
    status_label = next((s for s in STATUS_LABELS if any(s in lab for lab in labels)), None)
    if status_label is None:
        return np.ones(len(labels), dtype=bool)
    keys = [(c, _sub_labels(lab)) for c, lab in zip(comps, labels, strict=True)]
    healthy = {
        k for k, lab in zip(keys, labels, strict=True) if not _is_error(lab.get(status_label, ""))
    }
    return np.array([k in healthy for k in keys], dtype=bool)


def _is_error(status: str) -> bool:
    return status.startswith("5") or status in _GRPC_FAULTS


def _bound(le: str) -> float:
    try:
        return float(le)
    except ValueError:
        return float("inf")


def _sub_labels(
    labels: Mapping[str, str], *, extra: tuple[str, ...] = ()
) -> tuple[tuple[str, str], ...]:
    return tuple(
        sorted(
            (k, v)
            for k, v in labels.items()
            if (k not in _IDENTITY or k in extra)
            and "namespace" not in k
            and k not in CLIENT_LABELS
        )
    )


def _metric_from_query(query: str) -> str:
    match = re.search(r'__name__="([^"]+)"', query) or re.match(
        r"([A-Za-z_:][A-Za-z0-9_:]*)", query
    )
    return match.group(1) if match else query


def _selector(
    query: str,
    *,
    metric: str,
    sample: tuple[str, Mapping[str, str]],
    sub: tuple[tuple[str, str], ...] = (),
) -> str:
    """A selector for one component's series of ``metric``: the scope of the evidence's query
    plus the label that names the component."""
    scope = re.findall(r'(\w+)\s*(=~|!=|!~|=)\s*"((?:[^"\\]|\\.)*)"', query)
    matchers = {k: f'{k}{op}"{v}"' for k, op, v in scope if k != "__name__"}
    matchers.update(_component_matcher(*sample))
    for key, value in sub:
        matchers[key] = f'{key}="{value}"'
    return "{" + ",".join([f'__name__="{metric}"', *matchers.values()]) + "}"


def _component_matcher(component: str, sample: Mapping[str, str]) -> dict[str, str]:
    if component.startswith("external/"):
        label = next(c for c in CLIENT_LABELS if sample.get(c))
        return {label: f'{label}="{sample[label]}"'}
    if component.startswith("postgres/"):
        return {"datname": f'datname="{sample["datname"]}"'}
    if component.startswith("node/"):
        label = "node" if sample.get("node") else "instance"
        return {label: f'{label}="{sample[label]}"'}
    for label in discovery.SERVICE_LABELS:
        value = sample.get(label, "")
        if value and not (label == "container" and value == "POD"):
            if label == "pod":
                return {"pod": f'pod=~"{component}-.*"'}
            return {label: f'{label}="{value}"'}
    return {}
