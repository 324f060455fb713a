"""The diagnosis state machine.

``intake → scope → (gather_metrics ‖ gather_changes ‖ gather_traces) → correlate
→ probe_db? → reason → propose → approve → act? → verify? → report``

The steps up to ``propose`` are the pipeline's (``graphs/pipeline.py``, shared with ``diagnose
replay`` and ``diagnose tune``); their nodes here only adapt them to the graph's state and keep
their evidence in the bundle. Every probe and analysis happens before ``approve``.
``approve`` holds only the ``interrupt()`` and the routing, because LangGraph re-runs the whole
node on resume; the only way into ``act`` is through ``approve`` with a valid approval, and
``act`` by default only hands the exact command to a human (execution mode:
``graphs/acting.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime
from langgraph.types import Command, RetryPolicy, interrupt

from diagnose import playbook, telemetry
from diagnose.analysis import signals
from diagnose.domain import errors, models
from graphs import acting, approval, gathering, pipeline, reasoning, remembering, reporting
from graphs.state import Context, DiagnosisState, Recalled, Run

Update = DiagnosisState
Node = Callable[[DiagnosisState, Runtime[Context]], Update]


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
    manifest = {
        "trigger": trigger.to_dict(),
        "window": window.to_dict(),
        "now": state["now"],
        "database": runtime.context.database_name,
    }
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


def _run(state: DiagnosisState, runtime: Runtime[Context]) -> Run:
    return Run.of(state, database_name=runtime.context.database_name)


def _gather(step: gathering.Gatherer) -> Node:
    """A gather step as a node: its evidence kept in the bundle, its summaries in state."""

    def node(state: DiagnosisState, runtime: Runtime[Context]) -> Update:
        found = step(_run(state, runtime), context=runtime.context)
        update: Update = {"notes": list(found.notes)}
        if found.evidence:
            kept = _keep(state, runtime, found.evidence)
            update = kept | {"notes": [*found.notes, *kept["notes"]]}
        return update | ({"plan": list(found.plan)} if found.plan is not None else {})

    return node


def check_stops(state: DiagnosisState, runtime: Runtime[Context]) -> Update:
    """Count the requests of the log statements that stopped (``gathering.check_stops``). The
    bundle is loaded only when there is a trace back end to ask and a log read to look at."""
    logged = any(
        e["kind"] == models.EvidenceKind.LOGS and e["status"] == models.Status.OK
        for e in state.get("evidence", [])
    )
    if runtime.context.traces is None or not logged:
        return {"notes": []}
    evidence = runtime.context.store.load(state["run_id"])
    found = gathering.check_stops(_run(state, runtime), context=runtime.context, evidence=evidence)
    update: Update = {"notes": list(found.notes)}
    if found.evidence:
        kept = _keep(state, runtime, found.evidence)
        update = kept | {"notes": [*found.notes, *kept["notes"]]}
    return update


def correlate(state: DiagnosisState, runtime: Runtime[Context]) -> Update:
    """Rank root-cause hypotheses from everything gathered (pure analysis)."""
    evidence = runtime.context.store.load(state["run_id"])
    correlated = pipeline.correlate(_run(state, runtime), evidence=evidence)
    runtime.context.store.put(state["run_id"], correlated.derived)
    derived = [e.to_dict(with_raw=False) for e in correlated.derived]
    return {"correlation": correlated.correlation, "evidence": derived}


def needs_database(state: DiagnosisState, runtime: Runtime[Context]) -> str:
    """Probe the database when one is configured and the incident shows latency or errors, the
    evidence points at it, a playbook asks, or no hypothesis is strong enough
    (``graphs/databases.py``)."""
    probe = pipeline.should_probe(
        _run(state, runtime),
        correlation=state.get("correlation") or {},
        configured=runtime.context.database is not None,
    )
    return "probe_db" if probe else "reason"


def probe_db(state: DiagnosisState, runtime: Runtime[Context]) -> Update:
    """Run the read-only probe catalogue and fold its findings into the ranking."""
    source = runtime.context.database
    assert source is not None  # routed here only when configured
    run = _run(state, runtime)
    found = pipeline.probe_database(run, source=source, workers=runtime.context.policy.workers)
    probed = pipeline.probe(run, correlation=state.get("correlation") or {}, probes=found)
    kept = _keep(state, runtime, found)
    return kept | {"correlation": probed.correlation, "db_fixes": probed.db_fixes}


def reason(state: DiagnosisState, runtime: Runtime[Context]) -> Update:
    """Ask the language model, when one is configured, and settle its answer in code; its
    reading is kept in the bundle, so a replay settles the same claims."""
    context = runtime.context
    reasoned = pipeline.reason(
        _run(state, runtime),
        correlation=state.get("correlation") or {},
        evidence=context.store.load(state["run_id"]),
        reasoner=context.reasoner,
        budget=context.budget,
        toolbox=lambda digest: reasoning.toolbox_for(state, runtime=runtime, digest=digest),
    )
    if reasoned.record is None:  # no model; the ranking may still carry the commits
        return {"reasoning": reasoned.block, "correlation": reasoned.correlation}
    context.store.put(state["run_id"], [reasoned.record])
    return {
        "reasoning": reasoned.block,
        "correlation": reasoned.correlation,
        "evidence": [e.to_dict(with_raw=False) for e in reasoned.gathered],
        "notes": list(reasoned.notes),
    }


def propose(state: DiagnosisState, runtime: Runtime[Context]) -> Update:
    """Attach catalogue fixes to the best hypotheses, each with its sweep for the same fault
    elsewhere, its exact patch and server-side dry run, and its content digest."""
    context = runtime.context
    evidence = context.store.load(state["run_id"])
    correlation = state.get("correlation") or {}
    proposed = pipeline.propose(
        _run(state, runtime),
        correlation=correlation,
        evidence=evidence,
        db_fixes=state.get("db_fixes", []),
        min_confidence=context.fix_min_confidence,
    )
    fixes, made = acting.prepare(proposed, state=state, context=context, evidence=evidence)
    dry_runs = [e.of_kind(models.EvidenceKind.DRY_RUN) for e in made]
    context.store.put(state["run_id"], dry_runs)
    hypotheses = correlation.get("hypotheses", [])
    for fix in fixes:
        entry = {"fix": fix, "hypothesis": hypotheses[fix["hypothesis"]]}
        _audit(runtime, state, kind="proposal", key=f"proposal:{fix['id']}", entry=entry)
    rejections = (
        remembering.past_rejections(context.audit, run_id=state["run_id"], correlation=correlation)
        if context.audit is not None
        else []
    )
    return {
        "fixes": fixes,
        "past_rejections": rejections,
        "memory": _recall(runtime, state),
        "evidence": [e.to_dict(with_raw=False) for e in dry_runs],
    }


def _recall(runtime: Runtime[Context], state: DiagnosisState) -> Recalled:
    """Similar past incidents, and the hypotheses people rejected before on this evidence."""
    memory = runtime.context.memory
    return remembering.recall(memory, state) if memory is not None else {}


def _audit(
    runtime: Runtime[Context], state: DiagnosisState, *, kind: str, key: str, entry: Any
) -> None:
    if runtime.context.audit is not None:
        runtime.context.audit.append(state["run_id"], kind=kind, key=key, entry=entry)


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
    for name, step in pipeline.GATHERERS.items():
        graph.add_node(name, _timed(name, _gather(step)), retry_policy=retry)
    graph.add_node("check_stops", _timed("check_stops", check_stops), retry_policy=retry)
    graph.add_node("correlate", _timed("correlate", correlate))
    graph.add_node("probe_db", _timed("probe_db", probe_db), retry_policy=retry)
    graph.add_node("reason", _timed("reason", reason))
    graph.add_node("propose", _timed("propose", propose))
    graph.add_node("approve", approve)
    graph.add_node("act", _timed("act", act))
    graph.add_node("verify", _timed("verify", verify))
    graph.add_node("report", _timed("report", report))
    graph.add_edge(START, "intake")
    graph.add_edge("intake", "scope")
    for name in pipeline.GATHERERS:
        graph.add_edge("scope", name)
    graph.add_edge(list(pipeline.GATHERERS), "check_stops")
    graph.add_edge("check_stops", "correlate")
    graph.add_conditional_edges("correlate", needs_database, ["probe_db", "reason"])
    graph.add_edge("probe_db", "reason")
    graph.add_edge("reason", "propose")
    graph.add_edge("propose", "approve")
    graph.add_conditional_edges("act", after_act, ["verify", "report"])
    graph.add_edge("verify", "report")
    graph.add_edge("report", END)
    return graph.compile(checkpointer=checkpointer)


# --- helpers ---------------------------------------------------------------------------------


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
