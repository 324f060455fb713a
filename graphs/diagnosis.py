"""The diagnosis state machine.

``intake → scope → (gather_metrics ‖ gather_changes ‖ gather_traces) → correlate
→ probe_db? → reason → propose → approve → act? → verify? → report``

Every probe and analysis happens before ``approve``. ``approve`` holds only the
``interrupt()`` and the routing, because LangGraph re-runs the whole node on resume; the only
way into ``act`` is through ``approve`` with a valid approval, and ``act`` by default only
hands the exact command to a human (execution mode: see ``graphs/acting.py``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, RetryPolicy, interrupt

from diagnose import playbook, telemetry
from diagnose.analysis import correlating, discovery, fixing, ranking, scoring, signals
from diagnose.domain import database as database_ports
from diagnose.domain import errors, models
from graphs import acting, approval, databases, reasoning, remembering, reporting
from graphs.state import Context, DiagnosisState, GatherPolicy
from sandbox import advising, catalogue
from sandbox import findings as db_findings

Update = dict[str, Any]


_TRACED_PORTS = ("metrics", "cluster", "traces", "database", "reasoner", "dry_runner", "executor")
"""The ports to the outside world: with telemetry on, each call through them is a span."""


def _timed(name: str, fn: Callable[[DiagnosisState, Runtime[Context]], Update]) -> Any:
    """Wrap a node so it reports progress, records its wall time under ``timings_s`` and, with
    telemetry on, runs in a span of its own with a span around each call through a port."""

    def node(state: DiagnosisState, runtime: Runtime[Context]) -> Update:
        runtime.context.progress(f"{name}…")
        began = time.perf_counter()
        with telemetry.node_span(name, run_id=state["run_id"]):
            ports = telemetry.with_traced_ports(runtime.context, _TRACED_PORTS)
            update = fn(state, runtime.override(context=ports) if telemetry.enabled() else runtime)
        update["timings_s"] = {name: round(time.perf_counter() - began, 4)}
        return update

    node.__name__ = name
    return node


def intake(state: DiagnosisState, runtime: Runtime[Context]) -> Update:
    """Validate the trigger and pin the time the run started."""
    trigger = models.Trigger.from_dict(state["trigger"])
    if not trigger.service:
        raise errors.ConfigurationError("the trigger names no service: nothing to diagnose")
    return {"trigger": trigger.to_dict(), "now": models.format_time(runtime.context.clock())}


def scope(state: DiagnosisState, runtime: Runtime[Context]) -> Update:
    """Fix the time window and resolution from the trigger (never from the clock alone)."""
    policy = runtime.context.policy
    trigger = models.Trigger.from_dict(state["trigger"])
    now = models.parse_time(state["now"])
    start = trigger.at - timedelta(seconds=policy.lookback_s)
    end = min(now, trigger.at + timedelta(seconds=policy.after_s))
    if end <= start:
        end = trigger.at
    window = models.Window(start=start, end=end)
    step = max(1.0, float(math.ceil(window.seconds / policy.points_per_series)))
    manifest = {"trigger": trigger.to_dict(), "window": window.to_dict(), "now": state["now"]}
    matched = _playbook_for(trigger, runtime, step)
    runtime.context.store.write_manifest(state["run_id"], manifest | {"step_s": step} | matched)
    return {"window": window.to_dict(), "step_s": step} | matched


def _playbook_for(trigger: models.Trigger, runtime: Runtime[Context], step: float) -> Update:
    """The playbook matching the trigger, as plain data (its rendered queries and knobs)."""
    chosen = playbook.choose(runtime.context.playbooks, trigger)
    if chosen is None:
        return {}
    runtime.context.progress(f"playbook: {chosen.playbook.name}")
    window_s = max(60.0, 4 * step)
    return {
        "playbook": playbook.summary(
            chosen, trigger, window_s=window_s, kind_of=lambda n: signals.classify(n)[0]
        )
    }


def gather_metrics(state: DiagnosisState, runtime: Runtime[Context]) -> Update:
    """Discover the series in scope by label, then pull each metric family over the window."""
    source = runtime.context.metrics
    if source is None:
        return {"notes": ["metrics: no Prometheus configured (set DIAGNOSE_PROMETHEUS_URL)"]}
    trigger = models.Trigger.from_dict(state["trigger"])
    window = models.Window.from_dict(state["window"])
    labels = source.label_names(window=window)
    gathered = [labels]
    plan: list[dict[str, Any]] = []
    if labels.status is models.Status.OK:
        names = list(labels.raw or [])
        series = source.find_series(
            discovery.scope_selectors(trigger, label_names=names), window=window
        )
        gathered.append(series)
        if series.status is models.Status.OK:
            found = list(series.raw or [])
            neighbours = discovery.components_in_scope(found, trigger=trigger)
            more = discovery.neighbour_selectors(neighbours, label_names=names)
            if more:
                extra = source.find_series(more, window=window)
                gathered.append(extra)
                found += extra.raw or [] if extra.status is models.Status.OK else []
            found = list({tuple(sorted(s.items())): s for s in found}.values())
            budget = runtime.context.policy.max_series
            planned = discovery.plan_queries(
                found, trigger=trigger, max_series=budget, components=neighbours
            )
            dropped = discovery.dropped_metrics(
                found, trigger=trigger, max_series=budget, components=neighbours
            )
            planned = _with_databases(planned, state=state, runtime=runtime, names=names)
            plan = [_plain(p) | {"run": True} for p in planned]
            plan += [_plain(p) | {"run": False} for p in dropped]
            runtime.context.progress(f"gather: {len(planned)} metric families in scope")
            probes, steps = _sampling_steps(planned, state=state, runtime=runtime, window=window)
            for entry, step in zip(plan, steps, strict=False):
                entry["step_s"] = step
            calls = [
                _reading(source, p.query, window=window, step=step, scope=state["step_s"])
                for p, step in zip(planned, steps, strict=True)
            ]
            gathered += probes
            gathered += _in_parallel(calls, workers=runtime.context.policy.workers)
    gathered += _playbook_queries(state, runtime, plan=plan, window=window)
    return _keep(state, runtime, gathered) | {"plan": plan}


def _reading(
    source: Any, query: str, *, window: models.Window, step: float, scope: float
) -> Callable[[], models.Evidence]:
    """How to read one metric: a range query at the scope's step, or, for a metric sampled
    more coarsely than that, its raw samples at their own times (a range query at the coarse
    step would move each sample to the next step boundary, minutes late)."""
    if step > scope:
        return functools.partial(source.query_samples, query, window=window)
    return functools.partial(source.query_range, query, window=window, step_s=step)


def _sampling_steps(
    planned: Sequence[discovery.PlannedQuery],
    *,
    state: DiagnosisState,
    runtime: Runtime[Context],
    window: models.Window,
) -> tuple[list[models.Evidence], list[float]]:
    """Each metric's sampling interval, counted by Prometheus (``count_over_time`` per ten
    minutes), and the step to read it at: never finer than the interval, since a finer step
    only repeats each sample. The probes' answers are kept as evidence (their raw reduced to
    the interval, so they are never read as series)."""
    source = runtime.context.metrics
    assert source is not None
    probes = {i: discovery.interval_probe(p.query) for i, p in enumerate(planned)}
    asked = {i: q for i, q in probes.items() if q}
    calls = [
        functools.partial(source.query_range, q, window=window, step_s=discovery.PROBE_WINDOW_S)
        for q in asked.values()
    ]
    answers = dict(
        zip(asked, _in_parallel(calls, workers=runtime.context.policy.workers), strict=True)
    )
    intervals = {i: discovery.sampling_interval(a) for i, a in answers.items()}
    steps = [
        discovery.query_step(intervals.get(i), step_s=state["step_s"]) for i in range(len(planned))
    ]
    kept = [
        dataclasses.replace(a, raw={"interval_s": intervals[i]})
        if a.status is models.Status.OK
        else a
        for i, a in answers.items()
    ]
    return kept, steps


def _with_databases(
    planned: list[discovery.PlannedQuery],
    *,
    state: DiagnosisState,
    runtime: Runtime[Context],
    names: Sequence[str],
) -> list[discovery.PlannedQuery]:
    """The plan with the ``pg_*`` series of the databases the workloads use, wherever their
    exporter runs (by ``datname``, by the host names in the workloads' environment); these
    replace the same metrics scoped to the namespace."""
    source = runtime.context.metrics
    assert source is not None  # called from gather_metrics
    deployments = []
    if runtime.context.cluster is not None:
        listed = runtime.context.cluster.list_deployments(namespace=state["trigger"]["namespace"])
        deployments = list(listed.raw or []) if listed.status is models.Status.OK else []
    scope = discovery.databases_in_scope(deployments, configured=runtime.context.database_name)
    selectors = discovery.database_selectors(scope, label_names=names)
    if not selectors:
        return planned
    found = source.find_series(selectors, window=models.Window.from_dict(state["window"]))
    if found.status is not models.Status.OK:
        return planned
    extra = discovery.plan_database_queries(list(found.raw or []), scope=scope)
    replaced = {p.metric for p in extra}
    return [p for p in planned if p.metric not in replaced] + extra


def _playbook_queries(
    state: DiagnosisState,
    runtime: Runtime[Context],
    *,
    plan: list[dict[str, Any]],
    window: models.Window,
) -> list[models.Evidence]:
    """Run the matched playbook's queries (their results are analysed like discovered series)
    and add them to the plan."""
    source = runtime.context.metrics
    queries = (state.get("playbook") or {}).get("queries", [])
    if source is None or not queries:
        return []
    name = state["playbook"]["name"]
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
        functools.partial(source.query_range, q["query"], window=window, step_s=state["step_s"])
        for q in queries
    ]
    return _in_parallel(calls, workers=runtime.context.policy.workers)


def gather_changes(state: DiagnosisState, runtime: Runtime[Context]) -> Update:
    """Read the rollout history, config edits, pods and events of the namespace."""
    source = runtime.context.cluster
    if source is None:
        return {"notes": ["changes: no Kubernetes API configured: rollouts not considered"]}
    namespace = state["trigger"]["namespace"]
    window = models.Window.from_dict(state["window"])
    calls: list[Callable[[], models.Evidence]] = [
        lambda: source.list_deployments(namespace=namespace),
        lambda: source.list_replicasets(namespace=namespace),
        lambda: source.list_configs(namespace=namespace),
        lambda: source.list_pods(namespace=namespace),
        lambda: source.list_events(namespace=namespace, window=window),
    ]
    gathered = _in_parallel(calls, workers=runtime.context.policy.workers)
    return _keep(state, runtime, gathered)


def gather_traces(state: DiagnosisState, runtime: Runtime[Context]) -> Update:
    """Sample traces through the alerting service and through every other service the trace
    back end saw (at most ``trace_services`` of them), in a baseline and an incident window."""
    source = runtime.context.traces
    if source is None:
        return {"notes": ["traces: no Tempo or Jaeger configured: call graph from labels only"]}
    trigger = models.Trigger.from_dict(state["trigger"])
    policy = runtime.context.policy
    baseline, incident = trace_windows(
        models.Window.from_dict(state["window"]), at=trigger.at, policy=policy
    )
    listed = source.list_services(window=incident) if policy.trace_services else None
    others = _other_services(listed, alerted=trigger.service, limit=policy.trace_services)
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
    gathered = _in_parallel(calls, workers=policy.workers)
    return _keep(state, runtime, [*([listed] if listed else []), *gathered])


def _other_services(listed: models.Evidence | None, *, alerted: str, limit: int) -> list[str]:
    """The services the trace back end lists besides the alerted one, at most ``limit``."""
    if listed is None or listed.status is not models.Status.OK or not isinstance(listed.raw, list):
        return []
    return [str(s) for s in listed.raw if str(s) != alerted][:limit]


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


def correlate(state: DiagnosisState, runtime: Runtime[Context]) -> Update:
    """Rank root-cause hypotheses from everything gathered (pure analysis)."""
    evidence = runtime.context.store.load(state["run_id"])
    result = analyse(state, evidence=evidence)
    derived = [models.Evidence.from_dict(e) for e in result.pop("derived")]
    runtime.context.store.put(state["run_id"], derived)
    return {"correlation": result, "evidence": [e.to_dict(with_raw=False) for e in derived]}


def analyse(state: DiagnosisState, *, evidence: Sequence[models.Evidence]) -> dict[str, Any]:
    """The analysis of one run's evidence; shared by the live graph and ``diagnose replay``."""
    known = {e["id"] for e in state.get("evidence", [])}
    mine = [e for e in evidence if e.id in known] if known else list(evidence)
    result = correlating.correlate(
        trigger=models.Trigger.from_dict(state["trigger"]),
        window=models.Window.from_dict(state["window"]),
        metrics=[e for e in mine if e.source == "prometheus" and isinstance(e.raw, list)],
        cluster=[e for e in mine if e.source == "kubernetes"],
        now=models.parse_time(state["now"]),
        traces=[e for e in mine if e.source == "traces"],
        policy=analysis_policy(state.get("playbook")),
        step_s=state.get("step_s"),
    )
    data: dict[str, Any] = result.to_dict()
    data["derived"] = [e.to_dict() for e in result.derived]
    return data


def analysis_policy(matched: dict[str, Any] | None) -> correlating.AnalysisPolicy:
    """The analysis's thresholds and weights, with the matched playbook's over the defaults."""
    if not matched:
        return correlating.AnalysisPolicy()
    thresholds = matched.get("thresholds") or {}
    anomaly = scoring.ScoringPolicy()
    confidence = ranking.ConfidencePolicy()
    if "anomalous_z" in thresholds:
        anomaly = dataclasses.replace(anomaly, anomalous=float(thresholds["anomalous_z"]))
    if "abstain_below" in thresholds:
        confidence = dataclasses.replace(
            confidence, abstain_below=float(thresholds["abstain_below"])
        )
    if "change_window_minutes" in thresholds:
        confidence = dataclasses.replace(
            confidence, near_s=60.0 * float(thresholds["change_window_minutes"])
        )
    weights = tuple(sorted((str(k), float(v)) for k, v in (matched.get("weights") or {}).items()))
    confidence = dataclasses.replace(confidence, cause_weights=weights)
    cited = tuple((q["series"], q["query"]) for q in matched.get("queries", []))
    return correlating.AnalysisPolicy(anomaly=anomaly, confidence=confidence, cited_queries=cited)


def needs_database(state: DiagnosisState, runtime: Runtime[Context]) -> str:
    """Probe the database when one is configured and the incident shows latency or errors, the
    evidence points at it, a playbook asks, or no hypothesis is strong enough
    (``graphs/databases.py``)."""
    probe = databases.should_probe(
        state.get("correlation") or {},
        configured=runtime.context.database is not None,
        asked=bool((state.get("playbook") or {}).get("probes")),
    )
    return "probe_db" if probe else "reason"


def probe_db(state: DiagnosisState, runtime: Runtime[Context]) -> Update:
    """Run the read-only probe catalogue and fold its findings into the ranking."""
    source = runtime.context.database
    assert source is not None  # routed here only when configured
    name = runtime.context.database_name
    wanted = (state.get("playbook") or {}).get("probes", [])
    if wanted:
        gathered = run_probes(source, wanted, database=name, workers=runtime.context.policy.workers)
    else:
        gathered = source.run_catalogue(database=name)
    kept = _keep(state, runtime, gathered)
    found = db_findings.find_all(gathered)
    advice = advising.advise(found, default_database=name)
    hypotheses = databases.explain_waiting(
        state.get("correlation") or {}, [a.hypothesis for a in advice], findings=found
    )
    correlation = merge_hypotheses(
        state.get("correlation") or {},
        hypotheses,
        abstain_below=analysis_policy(state.get("playbook")).confidence.abstain_below,
    )
    db_fixes = [
        {"summary": h.summary, "fix": a.fix.to_dict()}
        for a, h in zip(advice, hypotheses, strict=True)
        if a.fix
    ]
    return kept | {"correlation": correlation, "db_fixes": db_fixes}


def run_probes(
    source: database_ports.DatabaseSource, names: Sequence[str], *, database: str, workers: int
) -> list[models.Evidence]:
    """The named catalogue probes (a playbook's request) and the generic plans of the
    statements they single out, as :meth:`run_catalogue` does for the whole catalogue."""
    probes = catalogue.load()
    calls = [
        functools.partial(
            source.run_probe, p.name, p.sql, params=p.params, database=database or None
        )
        for p in (probes.probe(n) for n in dict.fromkeys(names))
    ]
    found = _in_parallel(calls, workers=workers)
    chosen = [
        e for e in found if isinstance(e.raw, dict) and e.raw.get("probe") in probes.explain_from
    ]
    suspects = catalogue.suspect_statements(chosen, limit=probes.explain_max)
    plans = [
        functools.partial(source.explain_generic, s, database=database or None) for s in suspects
    ]
    return found + _in_parallel(plans, workers=workers)


def merge_hypotheses(
    correlation: dict[str, Any],
    extra: Sequence[models.Hypothesis],
    *,
    abstain_below: float | None = None,
) -> dict[str, Any]:
    """The correlation with more hypotheses ranked in by confidence; abstains as the analysis
    does when the best stays under its threshold (``abstain_below``, default the analysis's)."""
    merged = [models.Hypothesis.from_dict(h) for h in correlation.get("hypotheses", [])]
    merged += extra
    merged.sort(key=lambda h: -h.confidence)
    threshold = ranking.ConfidencePolicy().abstain_below if abstain_below is None else abstain_below
    abstained = not merged or merged[0].confidence < threshold
    notes = [n for n in correlation.get("notes", []) if not n.startswith("abstained")]
    if abstained:
        notes.append("abstained: the best hypothesis is below the confidence threshold")
    return correlation | {
        "hypotheses": [h.to_dict() for h in merged],
        "abstained": abstained,
        "notes": notes,
    }


def propose(state: DiagnosisState, runtime: Runtime[Context]) -> Update:
    """Attach catalogue fixes to the best hypotheses, each with its sweep for the same fault
    elsewhere, its exact patch and server-side dry run, and its content digest."""
    evidence = runtime.context.store.load(state["run_id"])
    fixes, dry_runs = acting.prepare(
        proposals(state, evidence=evidence, min_confidence=runtime.context.fix_min_confidence),
        state=state,
        context=runtime.context,
        evidence=evidence,
    )
    runtime.context.store.put(state["run_id"], dry_runs)
    hypotheses = (state.get("correlation") or {}).get("hypotheses", [])
    for fix in fixes:
        _audit(
            runtime,
            state,
            kind="proposal",
            key=f"proposal:{fix['id']}",
            entry={"fix": fix, "hypothesis": hypotheses[fix["hypothesis"]]},
        )
    return {
        "fixes": fixes,
        "past_rejections": past_rejections(runtime, state),
        "memory": _recall(runtime, state),
        "evidence": [e.to_dict(with_raw=False) for e in dry_runs],
    }


def _recall(runtime: Runtime[Context], state: DiagnosisState) -> dict[str, Any]:
    """Similar past incidents, and the hypotheses people rejected before on this evidence."""
    memory = runtime.context.memory
    return remembering.recall(memory, state) if memory is not None else {}


def past_rejections(runtime: Runtime[Context], state: DiagnosisState) -> list[dict[str, Any]]:
    """Earlier runs whose fixes for the same components a human rejected, with the reason:
    shown at the approval step so the same rejected idea is not waved through again."""
    log = runtime.context.audit
    if log is None:
        return []
    hypotheses = (state.get("correlation") or {}).get("hypotheses", [])[:3]
    components = {h["component"] for h in hypotheses}
    proposed: dict[str, set[str]] = {}
    rejected = []
    for entry in log.entries():
        if entry["run_id"] == state["run_id"]:
            continue
        body = entry["entry"]
        if entry["kind"] == "proposal":
            proposed.setdefault(str(entry["run_id"]), set()).add(body["hypothesis"]["component"])
        elif entry["kind"] == "decision" and body.get("verdict") == "reject":
            rejected.append((str(entry["run_id"]), body))
    return [
        {
            "run_id": run,
            "component": component,
            "approver": body.get("approver"),
            "reason": body.get("reason"),
            "at": body.get("at"),
        }
        for run, body in rejected
        for component in sorted(proposed.get(run, set()) & components)
    ][-10:]


def _audit(
    runtime: Runtime[Context], state: DiagnosisState, *, kind: str, key: str, entry: Any
) -> None:
    if runtime.context.audit is not None:
        runtime.context.audit.append(state["run_id"], kind=kind, key=key, entry=entry)


def proposals(
    state: DiagnosisState,
    *,
    evidence: Sequence[models.Evidence],
    min_confidence: float = fixing.MIN_CONFIDENCE,
) -> list[dict[str, Any]]:
    """Fixes for a correlation; shared by the live graph and ``diagnose replay``. Hypotheses
    below ``min_confidence`` get none, and an abstaining diagnosis none at all: a lead is not
    a reason to change production."""
    correlation = state.get("correlation") or {}
    if correlation.get("abstained"):
        return []
    hypotheses = [models.Hypothesis.from_dict(h) for h in correlation.get("hypotheses", [])]
    replicasets = [
        item
        for e in evidence
        if e.source == "kubernetes" and "replicasets" in e.query and isinstance(e.raw, list)
        for item in e.raw
    ]
    configs = [
        item
        for e in evidence
        if e.source == "kubernetes" and "configmaps" in e.query and isinstance(e.raw, list)
        for item in e.raw
    ]
    verify = verify_queries(correlation)
    levels = verify_levels(correlation)
    matched = state.get("playbook") or {}
    fixes = fixing.propose_fixes(
        hypotheses,
        namespace=state["trigger"]["namespace"],
        replicasets=replicasets,
        verify_queries=verify,
        sizing=_sizing(matched, evidence=evidence),
        min_confidence=min_confidence,
        configs=configs,
    )
    plain = [f.to_dict() for f in fixes]
    by_summary = {d["summary"]: d["fix"] for d in state.get("db_fixes", [])}
    for index, hypothesis in enumerate(hypotheses[:3]):
        if hypothesis.summary in by_summary and hypothesis.confidence >= min_confidence:
            plain.append(by_summary[hypothesis.summary] | {"hypothesis": index})
    plain.sort(key=lambda f: f["hypothesis"])
    for fix in plain:
        component = hypotheses[fix["hypothesis"]].component
        fix["verify_levels"] = levels.get(component, {}) if fix["verify"] else {}
    plain = fit_to_playbook(plain, matched=matched)
    return [f | {"id": f"fix-{n}"} for n, f in enumerate(plain, start=1)]


def fit_to_playbook(
    fixes: Sequence[dict[str, Any]], *, matched: dict[str, Any]
) -> list[dict[str, Any]]:
    """The fixes with the kinds the matched playbook lists first. A fix of another kind stays
    (a playbook must not hide the right fix), marked ``outside_playbook`` and after them; a
    playbook that lists no fixes changes nothing."""
    listed = [str(k) for k in matched.get("fixes") or []]
    if not listed:
        return list(fixes)
    outside = f"outside playbook {matched['name']}'s fixes ({', '.join(listed)})"
    marked = [f if f["kind"] in listed else f | {"outside_playbook": outside} for f in fixes]
    return sorted(marked, key=lambda f: "outside_playbook" in f)


def _sizing(matched: dict[str, Any], *, evidence: Sequence[models.Evidence]) -> fixing.Sizing:
    """The matched playbook's fix template parameters, and the replica counts on record."""
    templates = matched.get("fix_templates") or {}
    replicas = {
        str(item["name"]): int(item["replicas"])
        for e in evidence
        if e.source == "kubernetes" and " deployments " in e.query and isinstance(e.raw, list)
        for item in e.raw
        if item.get("replicas") is not None
    }
    return fixing.Sizing(
        scale_factor=(templates.get("scale") or {}).get("factor"),
        limit_multiplier=(templates.get("raise_limits") or {}).get("multiplier"),
        replicas=replicas,
    )


def approve(
    state: DiagnosisState, runtime: Runtime[Context]
) -> Command[Literal["act", "report", "approve"]]:
    """Ask a named human. Nothing but the interrupt and the routing happens here, and the
    one record an accepted approval needs: it is appended to the audit log (keyed by fix and
    approver, so a re-run appends nothing twice), where ``act`` looks for it."""
    answer = interrupt(approval.request(state))
    decision, problems = approval.validate(answer, state=state, now=runtime.context.clock())
    if decision is None:
        return Command(goto="approve", update={"approval_errors": problems})
    if decision.verdict is models.Verdict.REJECT:
        return Command(
            goto="report", update={"decision": decision.to_dict(), "approval_errors": []}
        )
    key = f"approval:{decision.fix}:{decision.approver}"
    _audit(runtime, state, kind="approval", key=key, entry=decision.to_dict())
    missing = approval.second_approver_needed(decision, state=state)
    if missing:
        approvals = [*state.get("approvals", []), decision.to_dict()]
        return Command(
            goto="approve", update={"approvals": approvals, "approval_errors": [missing]}
        )
    approvals = [*state.get("approvals", []), decision.to_dict()]
    return Command(
        goto="act",
        update={"decision": decision.to_dict(), "approvals": approvals, "approval_errors": []},
    )


def act(state: DiagnosisState, runtime: Runtime[Context]) -> Update:
    """Reachable only from ``approve``. Checks the decision against the fix on record (id,
    digest, approvers, the audit log's proposal), then hands the command to a human, or, in
    execution mode and for a Kubernetes catalogue action, applies it exactly once."""
    update = acting.act(state, context=runtime.context)
    action = update["actions"][-1]
    _audit(runtime, state, kind="action", key=f"action:{action['fix']}", entry=action)
    return update


def verify(state: DiagnosisState, runtime: Runtime[Context]) -> Update:
    """Watch the verification query of the fix just applied (execution mode only)."""
    return acting.verify(state, context=runtime.context)


def after_act(state: DiagnosisState) -> str:
    """Watch a fix that was applied; anything else goes straight to the report."""
    return "verify" if acting.executed(state) else "report"


def report(state: DiagnosisState, runtime: Runtime[Context]) -> Update:
    """Compile the final report of the run, and put the decision on record (approvals were
    recorded when they were given)."""
    if state.get("decision"):
        _audit(runtime, state, kind="decision", key="decision", entry=state["decision"])
    if runtime.context.memory is not None:
        runtime.context.memory.record(remembering.run_record(state))
    return {"report": reporting.build(state)}


def build(
    checkpointer: BaseCheckpointSaver[Any] | None = None,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """The compiled diagnosis graph."""
    retry = RetryPolicy(max_attempts=2, retry_on=errors.SourceUnavailable)
    graph = StateGraph(DiagnosisState, context_schema=Context)
    graph.add_node("intake", _timed("intake", intake))
    graph.add_node("scope", _timed("scope", scope))
    graph.add_node("gather_metrics", _timed("gather_metrics", gather_metrics), retry_policy=retry)
    graph.add_node("gather_changes", _timed("gather_changes", gather_changes), retry_policy=retry)
    graph.add_node("gather_traces", _timed("gather_traces", gather_traces), retry_policy=retry)
    graph.add_node("correlate", _timed("correlate", correlate))
    graph.add_node("probe_db", _timed("probe_db", probe_db), retry_policy=retry)
    graph.add_node("reason", _timed("reason", reasoning.reason))
    graph.add_node("propose", _timed("propose", propose))
    graph.add_node("approve", approve)
    graph.add_node("act", _timed("act", act))
    graph.add_node("verify", _timed("verify", verify))
    graph.add_node("report", _timed("report", report))
    graph.add_edge(START, "intake")
    graph.add_edge("intake", "scope")
    graph.add_edge("scope", "gather_metrics")
    graph.add_edge("scope", "gather_changes")
    graph.add_edge("scope", "gather_traces")
    graph.add_edge(["gather_metrics", "gather_changes", "gather_traces"], "correlate")
    graph.add_conditional_edges("correlate", needs_database, ["probe_db", "reason"])
    graph.add_edge("probe_db", "reason")
    graph.add_edge("reason", "propose")
    graph.add_edge("propose", "approve")
    graph.add_conditional_edges("act", after_act, ["verify", "report"])
    graph.add_edge("verify", "report")
    graph.add_edge("report", END)
    return graph.compile(checkpointer=checkpointer)


# --- helpers ---------------------------------------------------------------------------------


def _plain(planned: Any) -> dict[str, Any]:
    return {k: getattr(planned, k) for k in ("query", "metric", "family", "reason")}


def _in_parallel(
    calls: Sequence[Callable[[], models.Evidence]], *, workers: int
) -> list[models.Evidence]:
    if not calls:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(calls)))) as pool:
        return list(pool.map(lambda call: call(), calls))


def _keep(
    state: DiagnosisState, runtime: Runtime[Context], gathered: Sequence[models.Evidence]
) -> Update:
    """Store the raw side in the bundle; keep the summaries in state."""
    runtime.context.store.put(state["run_id"], gathered)
    notes = [
        f"{e.source}: {e.summary}"
        for e in gathered
        if e.status in (models.Status.ERROR, models.Status.DENIED)
    ]
    return {"evidence": [e.to_dict(with_raw=False) for e in gathered], "notes": notes}


VERIFY_PREFERENCE = ("errors", "latency", "saturation", "throttling", "restarts", "memory", "cpu")
"""Which signal's recovery best shows a fix worked: what users feel first, resources after."""


def verify_levels(correlation: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per component, the baseline and incident level of the signal ``verify_queries`` picks:
    recovery is judged against them."""
    levels = {}
    for component in correlation.get("components", []):
        signals = [s for s in component.get("signals", []) if s.get("query")]
        if signals:
            best = min(signals, key=_verify_rank)
            if best.get("baseline") is not None and best.get("after") is not None:
                levels[component["component"]] = {
                    "baseline": float(best["baseline"]),
                    "incident": float(best["after"]),
                }
    return levels


def verify_queries(correlation: dict[str, Any]) -> dict[str, str]:
    """Per component, the query of its most telling anomalous signal: its recovery shows a fix
    worked."""
    queries = {}
    for component in correlation.get("components", []):
        signals = [s for s in component.get("signals", []) if s.get("query")]
        if signals:
            best = min(signals, key=_verify_rank)
            queries[component["component"]] = str(best["query"])
    return queries


def _verify_rank(signal: dict[str, Any]) -> tuple[int, float]:
    kind = str(signal.get("kind"))
    order = VERIFY_PREFERENCE.index(kind) if kind in VERIFY_PREFERENCE else len(VERIFY_PREFERENCE)
    strong = abs(float(signal.get("z") or 0.0)) >= 3.0
    return (order if strong else order + 100, -abs(float(signal.get("z") or 0.0)))
