"""The gather steps: what the run reads from the outside world before any analysis.

Each step is ``gather_<what>(run, *, context) -> Gathered``: it asks its ports, labels each
answer with its :class:`~diagnose.domain.models.EvidenceKind` and says what it could not look
at. The steps run side by side and know nothing of each other; the pipeline lists them in
:data:`graphs.pipeline.GATHERERS`. :func:`check_stops` runs after them all: it follows up on
what the logs found, with a question to the trace back end.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from diagnose.analysis import discovery
from diagnose.analysis import logs as log_analysis
from diagnose.analysis import traces as trace_analysis
from diagnose.domain import cluster, models, ports
from graphs.state import Context, GatherPolicy, PlannedQuery, Run

Kind = models.EvidenceKind


@dataclass(frozen=True)
class Gathered:
    """What one gather step brought back: evidence (raw included, for the bundle), notes on
    what it could not look at, and (metrics) the queries it planned."""

    evidence: tuple[models.Evidence, ...] = ()
    notes: tuple[str, ...] = ()
    plan: tuple[PlannedQuery, ...] | None = None


class Gatherer(Protocol):
    """A gather step: the run's evidence from some of the context's ports."""

    def __call__(self, run: Run, *, context: Context) -> Gathered: ...


def gather_metrics(run: Run, *, context: Context) -> Gathered:
    """Discover the series in scope by label, then pull each metric family over the window."""
    source = context.metrics
    if source is None:
        return Gathered(notes=("metrics: no Prometheus configured (set DIAGNOSE_PROMETHEUS_URL)",))
    labels = source.label_names(window=run.window).of_kind(Kind.LABELS)
    gathered = [labels]
    plan: list[PlannedQuery] = []
    if labels.status is models.Status.OK:
        more, plan = _series(source, run=run, context=context, names=list(labels.raw or []))
        gathered += more
    gathered += _playbook_queries(source, run=run, context=context, plan=plan)
    return Gathered(evidence=tuple(gathered), plan=tuple(plan))


def _series(
    source: ports.MetricSource, *, run: Run, context: Context, names: list[str]
) -> tuple[list[models.Evidence], list[PlannedQuery]]:
    """The series found in scope and their samples, and the plan of queries (run or dropped)."""
    trigger, window = run.trigger, run.window
    selectors = discovery.scope_selectors(trigger, label_names=names)
    series = source.find_series(selectors, window=window).of_kind(Kind.SERIES_LIST)
    gathered = [series]
    if series.status is not models.Status.OK:
        return gathered, []
    found = list(series.raw or [])
    neighbours = discovery.components_in_scope(found, trigger=trigger)
    more = discovery.neighbour_selectors(neighbours, label_names=names)
    if more:
        extra = source.find_series(more, window=window).of_kind(Kind.SERIES_LIST)
        gathered.append(extra)
        found += extra.raw or [] if extra.status is models.Status.OK else []
    found = list({tuple(sorted(s.items())): s for s in found}.values())
    budget = context.policy.max_series
    planned = discovery.plan_queries(
        found, trigger=trigger, max_series=budget, components=neighbours
    )
    dropped = discovery.dropped_metrics(
        found, trigger=trigger, max_series=budget, components=neighbours
    )
    planned = _with_databases(planned, run=run, context=context, names=names)
    plan = [_plain(p) | {"run": True} for p in planned]
    plan += [_plain(p) | {"run": False} for p in dropped]
    context.progress(f"gather: {len(planned)} metric families in scope")
    probes, steps = _sampling_steps(planned, run=run, context=context)
    for entry, step in zip(plan, steps, strict=False):
        entry["step_s"] = step
    assert run.step_s is not None  # set by scope
    calls = [
        _reading(source, p.query, window=window, step=step, scope=run.step_s)
        for p, step in zip(planned, steps, strict=True)
    ]
    gathered += probes
    gathered += [e.of_kind(Kind.SERIES) for e in in_parallel(calls, workers=context.policy.workers)]
    return gathered, plan


def _reading(
    source: ports.MetricSource, query: str, *, window: models.Window, step: float, scope: float
) -> Callable[[], models.Evidence]:
    """How to read one metric: a range query at the scope's step, or, for a metric sampled
    more coarsely than that, its raw samples at their own times (a range query at the coarse
    step would move each sample to the next step boundary, minutes late)."""
    if step > scope:
        return functools.partial(source.query_samples, query, window=window)
    return functools.partial(source.query_range, query, window=window, step_s=step)


def _sampling_steps(
    planned: Sequence[discovery.PlannedQuery], *, run: Run, context: Context
) -> tuple[list[models.Evidence], list[float]]:
    """Each metric's sampling interval, counted by Prometheus (``count_over_time`` per ten
    minutes), and the step to read it at: never finer than the interval, since a finer step
    only repeats each sample. The probes' answers are kept as evidence (their raw reduced to
    the interval, so they are never read as series)."""
    source = context.metrics
    assert source is not None and run.step_s is not None
    probes = {i: discovery.interval_probe(p.query) for i, p in enumerate(planned)}
    asked = {i: q for i, q in probes.items() if q}
    calls = [
        functools.partial(source.query_range, q, window=run.window, step_s=discovery.PROBE_WINDOW_S)
        for q in asked.values()
    ]
    answers = dict(zip(asked, in_parallel(calls, workers=context.policy.workers), strict=True))
    intervals = {i: discovery.sampling_interval(a) for i, a in answers.items()}
    steps = [discovery.query_step(intervals.get(i), step_s=run.step_s) for i in range(len(planned))]
    kept = [
        dataclasses.replace(a, raw={"interval_s": intervals[i]})
        if a.status is models.Status.OK
        else a
        for i, a in answers.items()
    ]
    return [e.of_kind(Kind.SAMPLING) for e in kept], steps


def _with_databases(
    planned: list[discovery.PlannedQuery], *, run: Run, context: Context, names: Sequence[str]
) -> list[discovery.PlannedQuery]:
    """The plan with the ``pg_*`` series of the databases the workloads use, wherever their
    exporter runs (by ``datname``, by the host names in the workloads' environment); these
    replace the same metrics scoped to the namespace."""
    source = context.metrics
    assert source is not None  # called from gather_metrics
    deployments = []
    if context.cluster is not None:
        listed = context.cluster.list_deployments(namespace=run.trigger.namespace)
        deployments = list(listed.raw or []) if listed.status is models.Status.OK else []
    scope = discovery.databases_in_scope(deployments, configured=context.database_name)
    selectors = discovery.database_selectors(scope, label_names=names)
    if not selectors:
        return planned
    found = source.find_series(selectors, window=run.window)
    if found.status is not models.Status.OK:
        return planned
    extra = discovery.plan_database_queries(list(found.raw or []), scope=scope)
    replaced = {p.metric for p in extra}
    return [p for p in planned if p.metric not in replaced] + extra


def _playbook_queries(
    source: ports.MetricSource, *, run: Run, context: Context, plan: list[PlannedQuery]
) -> list[models.Evidence]:
    """Run the matched playbook's queries (their results are analysed like discovered series)
    and add them to the plan."""
    queries = (run.playbook or {}).get("queries", [])
    if not queries:
        return []
    assert run.playbook is not None and run.step_s is not None
    name = run.playbook["name"]
    plan += [
        {
            "query": q["query"],
            "metric": q["series"],
            "family": "playbook",
            "reason": f"playbook {name}: {q['signal']} ({q['kind']})",
            "run": True,
        }
        for q in queries
    ]
    calls = [
        functools.partial(source.query_range, q["query"], window=run.window, step_s=run.step_s)
        for q in queries
    ]
    return [e.of_kind(Kind.SERIES) for e in in_parallel(calls, workers=context.policy.workers)]


def gather_changes(run: Run, *, context: Context) -> Gathered:
    """Read the rollout history, config edits, pods and events of the namespace."""
    source = context.cluster
    if source is None:
        return Gathered(notes=("changes: no Kubernetes API configured: rollouts not considered",))
    namespace, window = run.trigger.namespace, run.window
    calls: list[Callable[[], models.Evidence]] = [
        lambda: source.list_deployments(namespace=namespace).of_kind(Kind.DEPLOYMENTS),
        lambda: source.list_replicasets(namespace=namespace).of_kind(Kind.REPLICASETS),
        lambda: source.list_configs(namespace=namespace).of_kind(Kind.CONFIGS),
        lambda: source.list_pods(namespace=namespace).of_kind(Kind.PODS),
        lambda: source.list_events(namespace=namespace, window=window).of_kind(Kind.EVENTS),
    ]
    return Gathered(evidence=tuple(in_parallel(calls, workers=context.policy.workers)))


def gather_state(run: Run, *, context: Context) -> Gathered:
    """Read what the cluster looks like now: pods, workloads, nodes, Services, EndpointSlices,
    quotas, LimitRanges, PVCs, ServiceAccounts and NetworkPolicies (docs/kubernetes.md)."""
    source = context.cluster
    if not isinstance(source, cluster.ClusterStateSource):
        return Gathered(notes=("state: the Kubernetes API in use cannot read object state",))
    namespace = run.trigger.namespace
    calls: list[Callable[[], models.Evidence]] = [
        functools.partial(source.read_state, kind=kind, namespace=namespace)
        for kind in cluster.STATE_KINDS
    ]
    gathered = in_parallel(calls, workers=context.policy.workers)
    return Gathered(evidence=tuple(e.of_kind(Kind.STATE) for e in gathered))


def gather_traces(run: Run, *, context: Context) -> Gathered:
    """Sample traces through the alerting service and through every other service the trace
    back end saw (at most ``trace_services`` of them), in a baseline and an incident window."""
    source = context.traces
    if source is None:
        return Gathered(
            notes=("traces: no Tempo or Jaeger configured: call graph from labels only",)
        )
    trigger, policy = run.trigger, context.policy
    baseline, incident = trace_windows(run.window, at=trigger.at, policy=policy)
    listed = source.list_services(window=incident) if policy.trace_services else None
    listed = listed.of_kind(Kind.TRACE_SERVICES) if listed else None
    listed_others = _other_services(listed, alerted=trigger.service)
    others = listed_others[: policy.trace_services]
    share = max(1, policy.trace_sample // max(1, len(others))) if others else 0
    calls: list[Callable[[], models.Evidence]] = [
        functools.partial(
            source.sample_spans,
            service=service,
            namespace=trigger.namespace or None,
            window=w,
            limit_traces=policy.trace_sample if service == trigger.service else share,
        )
        for service in [trigger.service, *others]
        for w in (baseline, incident)
        if w is not None
    ]
    sampled = [e.of_kind(Kind.SPANS) for e in in_parallel(calls, workers=policy.workers)]
    notes = []
    if left := len(listed_others) - len(others):
        notes.append(
            f"traces: {left} more service(s) the trace back end lists were not sampled (at most "
            f"{policy.trace_services} besides the alerted one, in the back end's order; "
            "DIAGNOSE_TRACES_MAX_SERVICES): a stop or slowdown seen only there is not in the "
            "traces"
        )
    return Gathered(evidence=(*([listed] if listed else []), *sampled), notes=tuple(notes))


def _other_services(listed: models.Evidence | None, *, alerted: str) -> list[str]:
    """The services the trace back end lists besides the alerted one, in its order."""
    if listed is None or listed.status is not models.Status.OK or not isinstance(listed.raw, list):
        return []
    return [str(s) for s in listed.raw if str(s) != alerted]


def trace_windows(
    window: models.Window, *, at: datetime, policy: GatherPolicy
) -> tuple[models.Window | None, models.Window]:
    """The incident window (up to ``incident_s`` before the trigger, to the window's end) and
    the baseline before it (None when the lookback leaves less than a minute for it)."""
    start = max(window.start, at - timedelta(seconds=policy.incident_s))
    incident = models.Window(start=start, end=max(start, window.end))
    baseline_end = start - timedelta(seconds=policy.baseline_gap_s)
    if (baseline_end - window.start).total_seconds() < 60:
        return None, incident
    return models.Window(start=window.start, end=baseline_end), incident


def gather_logs(run: Run, *, context: Context) -> Gathered:
    """Each pod's log as templates (``docs/logs.md``): the baseline before the incident
    window the traces use, and the incident; the alerted service first."""
    source = context.logs
    if source is None:
        return Gathered(notes=("logs: no log source configured: logs not read",))
    _, incident = trace_windows(run.window, at=run.trigger.at, policy=context.policy)
    read = source.read_logs(
        namespace=run.trigger.namespace,
        window=run.window,
        incident_from=incident.start,
        services=(run.trigger.service,),
    )
    notes = tuple(
        f"logs: {e.summary}"
        for e in read
        if e.status in (models.Status.ERROR, models.Status.DENIED)
    )
    return Gathered(evidence=tuple(e.of_kind(Kind.LOGS) for e in read), notes=notes)


def check_stops(run: Run, *, context: Context, evidence: Sequence[models.Evidence]) -> Gathered:
    """Ask the trace back end about the log statements that stopped (``docs/logs.md``): the
    traces of each one's latest lines tell the operation it ran in, and one search per window
    counts that operation's requests while it logged and since. A statement whose requests
    stopped arriving is a caller's doing; one whose requests go on unlogged is the service's
    own code path gone quiet. The statements of at most ``stop_checks`` services (three each),
    the most requests missing first; nothing is asked without a trace back end or a stopped
    statement."""
    source = context.traces
    if source is None:
        return Gathered()
    policy = context.policy
    checks = log_analysis.stop_checks(evidence, services=policy.stop_checks)
    if not checks:
        return Gathered()
    context.progress(f"traces: counting the requests of {len(checks)} stopped log statement(s)")
    traces = list(dict.fromkeys(trace for check in checks for _, trace in check.lines))
    reads = in_parallel(
        [functools.partial(source.get_trace, trace, window=run.window) for trace in traces],
        workers=policy.workers,
    )
    read = [e.of_kind(Kind.REQUESTS) for e in reads]
    if all(e.status in (models.Status.ERROR, models.Status.DENIED) for e in read):
        note = (
            "traces: the trace back end read none of the stopped log statements' traces (its "
            "answers are in the evidence): their requests were not counted"
        )
        return Gathered(evidence=tuple(read), notes=(note,))
    spans = trace_analysis.spans_of(e for e in read if e.status is models.Status.OK)
    asked: dict[tuple[str, str, models.Window], None] = {}
    unknown = []
    for check in checks:
        operations = log_analysis.operations_at(check, spans=spans)
        if not operations:
            unknown.append(check.service)
        for service, operation in operations:
            asked |= dict.fromkeys((service, operation, w) for w in (check.before, check.after))
    calls = [
        functools.partial(
            source.count_requests,
            service=service,
            operation=operation,
            window=window,
            limit=policy.stop_count_limit,
        )
        for service, operation, window in asked
    ]
    counted = [e.of_kind(Kind.REQUESTS) for e in in_parallel(calls, workers=policy.workers)]
    notes = []
    if unknown:
        notes.append(
            f"traces: the operation of {len(unknown)} stopped log statement(s) "
            f"({', '.join(sorted(set(unknown)))}) is unknown (its lines' traces were not found "
            "or hold no server span of the service): their requests were not counted"
        )
    return Gathered(evidence=(*read, *counted), notes=tuple(notes))


def in_parallel(
    calls: Sequence[Callable[[], models.Evidence]], *, workers: int
) -> list[models.Evidence]:
    """Each call's answer, in order, at most ``workers`` in flight at once."""
    if not calls:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(calls)))) as pool:
        return list(pool.map(lambda call: call(), calls))


def _plain(planned: discovery.PlannedQuery) -> PlannedQuery:
    return {
        "query": planned.query,
        "metric": planned.metric,
        "family": planned.family,
        "reason": planned.reason,
    }
