"""The diagnosis pipeline: gather → correlate → probe → reason → propose, as plain functions.

Each step takes the :class:`~graphs.state.Run` it works for, what the steps before it produced
and the ports it needs, and returns a typed result; none knows of LangGraph. The graph's nodes
(``graphs/diagnosis.py``) adapt them in a few lines each, and ``diagnose replay``, ``diagnose
tune`` and ``diagnose eval`` run the same steps: a saved bundle is replayed by :func:`replay`,
the model's reading included (recorded in the bundle by :func:`reason`), so a replay cannot
disagree with the run it replays.

To add a gather step, write ``gather_<what>(run, *, context) -> Gathered`` in
``graphs/gathering.py`` (labelling its evidence with a kind of
:class:`~diagnose.domain.models.EvidenceKind`) and add it to :data:`GATHERERS`: the graph runs
it beside the others, and :data:`GATHERED` says which kinds ``correlate`` reads.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from diagnose.analysis import correlating, fixing, ranking, scoring
from diagnose.domain import database as database_ports
from diagnose.domain import models
from diagnose.domain import reasoning as llm_reasoning
from graphs import coding, databases, gathering, proposing, reasoning
from graphs.state import CorrelationData, DatabaseFix, DiagnosisState, ReasoningBlock, Run
from sandbox import advising, catalogue
from sandbox import findings as db_findings

Kind = models.EvidenceKind

GATHERERS: Mapping[str, gathering.Gatherer] = {
    "gather_metrics": gathering.gather_metrics,
    "gather_changes": gathering.gather_changes,
    "gather_traces": gathering.gather_traces,
    "gather_state": gathering.gather_state,
    "gather_logs": gathering.gather_logs,
    "gather_code": coding.gather_code,
}
"""The gather steps, by node name: they run side by side after ``scope``, before ``correlate``."""

GATHERED = frozenset(
    {
        Kind.LABELS,
        Kind.SERIES_LIST,
        Kind.SAMPLING,
        Kind.SERIES,
        Kind.DEPLOYMENTS,
        Kind.REPLICASETS,
        Kind.CONFIGS,
        Kind.PODS,
        Kind.EVENTS,
        Kind.DELIVERIES,
        Kind.STATE,
        Kind.TRACE_SERVICES,
        Kind.SPANS,
        Kind.LOGS,
        Kind.REQUESTS,
        Kind.COMMITS,
    }
)
"""The kinds of evidence the gather steps produce: what ``correlate`` analyses."""

MODEL_SOURCE = "model"
"""The source of the evidence record that keeps the model's reading in the bundle."""


# --- correlate ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Correlated:
    """The ranking (``Correlation.to_dict()``) and the analysis's own findings as evidence."""

    correlation: CorrelationData
    derived: tuple[models.Evidence, ...]


def gathered(evidence: Sequence[models.Evidence]) -> list[models.Evidence]:
    """What the gather steps brought back (a bundle written before evidence had kinds: all
    but the analysis's findings)."""
    return [
        e
        for e in evidence
        if e.kind in GATHERED or (e.kind is Kind.UNKNOWN and e.source != "analysis")
    ]


def correlate(run: Run, *, evidence: Sequence[models.Evidence]) -> Correlated:
    """Rank root-cause hypotheses from everything gathered (pure analysis)."""
    mine = gathered(evidence)
    result = correlating.correlate(
        trigger=run.trigger,
        window=run.window,
        metrics=[e for e in mine if e.source == "prometheus" and isinstance(e.raw, list)],
        cluster=[e for e in mine if e.source == "kubernetes"],
        now=run.now,
        traces=[e for e in mine if e.source == "traces" and e.kind is not Kind.REQUESTS],
        logs=[e for e in mine if e.kind is Kind.LOGS],
        requests=[e for e in mine if e.kind is Kind.REQUESTS],
        policy=analysis_policy(run.playbook),
        step_s=run.step_s,
    )
    derived = tuple(e.of_kind(Kind.DERIVED) for e in result.derived)
    correlation = result.to_dict()
    del correlation["derived"]  # by id in the analysis's record; state keeps it as evidence
    return Correlated(correlation=cast(CorrelationData, correlation), derived=derived)


def analysis_policy(matched: Mapping[str, Any] | None) -> correlating.AnalysisPolicy:
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


# --- probe ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Probed:
    """The ranking with the database's findings folded in, and the fixes they support (by
    hypothesis summary)."""

    correlation: CorrelationData
    db_fixes: list[DatabaseFix]


def should_probe(run: Run, *, correlation: Mapping[str, Any], configured: bool) -> bool:
    """Whether to probe the database (``graphs/databases.py``)."""
    asked = bool((run.playbook or {}).get("probes"))
    return databases.should_probe(correlation, configured=configured, asked=asked)


def probe_database(
    run: Run, *, source: database_ports.DatabaseSource, workers: int
) -> list[models.Evidence]:
    """The database's answers: the probes the matched playbook asks for, or the whole
    read-only catalogue."""
    wanted = (run.playbook or {}).get("probes", [])
    name = run.database_name
    if wanted:
        found = run_probes(source, wanted, database=name, workers=workers)
    else:
        found = source.run_catalogue(database=name)
    return [e.of_kind(Kind.PROBE) for e in found]


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
    found = gathering.in_parallel(calls, workers=workers)
    chosen = [
        e for e in found if isinstance(e.raw, dict) and e.raw.get("probe") in probes.explain_from
    ]
    suspects = catalogue.suspect_statements(chosen, limit=probes.explain_max)
    plans = [
        functools.partial(source.explain_generic, s, database=database or None) for s in suspects
    ]
    return found + gathering.in_parallel(plans, workers=workers)


def probe(run: Run, *, correlation: Mapping[str, Any], probes: Sequence[models.Evidence]) -> Probed:
    """Fold the database's findings into the ranking (pure)."""
    found = db_findings.find_all(probes)
    advice = advising.advise(found, default_database=run.database_name)
    hypotheses = databases.explain_waiting(
        correlation, [a.hypothesis for a in advice], findings=found
    )
    merged = merge_hypotheses(
        correlation,
        hypotheses,
        abstain_below=analysis_policy(run.playbook).confidence.abstain_below,
    )
    db_fixes: list[DatabaseFix] = [
        {"summary": h.summary, "fix": a.fix.to_dict()}
        for a, h in zip(advice, hypotheses, strict=True)
        if a.fix
    ]
    return Probed(correlation=merged, db_fixes=db_fixes)


def merge_hypotheses(
    correlation: Mapping[str, Any],
    extra: Sequence[models.Hypothesis],
    *,
    abstain_below: float | None = None,
) -> CorrelationData:
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
    merged_in: CorrelationData = {
        "hypotheses": [h.to_dict() for h in merged],
        "abstained": abstained,
        "notes": notes,
    }
    return cast(CorrelationData, {**correlation, **merged_in})


# --- reason ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reasoned:
    """The model's part: its labelled reading (the state's ``reasoning`` block), the ranking
    with its settled claims merged in, the evidence its tool calls gathered, the note when it
    came to nothing, and the record of its reading for the bundle (None without a model)."""

    block: ReasoningBlock
    correlation: CorrelationData
    gathered: tuple[models.Evidence, ...] = ()
    notes: tuple[str, ...] = ()
    record: models.Evidence | None = None


ToolboxFor = Callable[[llm_reasoning.Digest], llm_reasoning.Toolbox]
"""The tools offered to the model over a digest (the ports live, the evidence on replay)."""


def reason(
    run: Run,
    *,
    correlation: CorrelationData,
    evidence: Sequence[models.Evidence],
    reasoner: llm_reasoning.Reasoner | None,
    budget: llm_reasoning.Budget,
    toolbox: ToolboxFor,
) -> Reasoned:
    """Ask the language model, when one is configured, and settle its answer in code
    (``graphs/reasoning.py``). The commits behind recent rollouts join the ranking first, now
    that the database's findings are known (``graphs/coding.py``)."""
    abstain_below = analysis_policy(run.playbook).confidence.abstain_below
    correlation = cast(
        CorrelationData,
        coding.attach_code(correlation, evidence=evidence, abstain_below=abstain_below),
    )
    if reasoner is None:
        return Reasoned(block=_block(llm_reasoning.absent()), correlation=correlation)
    state = cast(DiagnosisState, {"trigger": run.trigger.to_dict(), "correlation": correlation})
    digest = reasoning.digest_of(state, evidence=evidence, interleave=budget.digest_interleave)
    tools = toolbox(digest)
    outcome = reasoner.reason(digest, budget=budget, toolbox=tools)
    found = tuple(tools.gathered())
    known = {e.id: e for e in (*evidence, *found)}
    settled = reasoning.settle(
        outcome.claims, correlation=correlation, evidence=known, trigger_at=run.trigger.at
    )
    return Reasoned(
        block=_block(outcome, settled=settled),
        correlation=reasoning.merge_claims({**correlation}, settled),
        gathered=found,
        notes=tuple(reasoning.note_of(outcome)),
        record=recorded_reading(outcome, run=run),
    )


def _block(
    outcome: llm_reasoning.Reasoning, *, settled: Sequence[reasoning.Settled] | None = None
) -> ReasoningBlock:
    """The state's ``reasoning`` block: the session's outcome, and code's verdict per claim
    (none without a model)."""
    block = cast(ReasoningBlock, outcome.to_dict())
    if settled is not None:
        block["settled"] = [s.to_dict() for s in settled]
    return block


def evidence_toolbox(digest: llm_reasoning.Digest) -> llm_reasoning.Toolbox:
    """The one tool a model gets offline: read a piece of the digest's evidence in full."""
    return llm_reasoning.EvidenceToolbox.of(digest.evidence)


def recorded_reading(outcome: llm_reasoning.Reasoning, *, run: Run) -> models.Evidence:
    """The model's reading as an evidence record (claims, status, reasons, usage; not its raw
    answers), so a replay of the bundle settles the same claims."""
    raw = {
        "status": outcome.status.value,
        "model": outcome.model,
        "claims": [c.to_dict() for c in outcome.claims],
        "reasons": list(outcome.reasons),
        "usage": dataclasses.asdict(outcome.usage),
    }
    return models.Evidence.make(
        source=MODEL_SOURCE,
        query=f"the model's reading of run {run.run_id}'s digest",
        window=run.window,
        status=models.Status.OK,
        summary=f"{outcome.status.value}: {len(outcome.claims)} claim(s)",
        raw=raw,
        kind=Kind.MODEL,
    )


@dataclass(frozen=True)
class RecordedReasoner:
    """A :class:`~diagnose.domain.reasoning.Reasoner` that answers with the reading a bundle
    recorded: replaying a run never asks a model again."""

    reading: Mapping[str, Any]

    @classmethod
    def of(cls, evidence: Sequence[models.Evidence]) -> RecordedReasoner | None:
        """The bundle's recorded reading; None when the run asked no model."""
        found = [e for e in evidence if e.kind is Kind.MODEL and isinstance(e.raw, dict)]
        return cls(found[-1].raw) if found else None

    def reason(
        self,
        digest: llm_reasoning.Digest,
        *,
        budget: llm_reasoning.Budget,
        toolbox: llm_reasoning.Toolbox | None = None,
    ) -> llm_reasoning.Reasoning:
        raw = self.reading
        return llm_reasoning.Reasoning(
            status=llm_reasoning.ReasoningStatus(raw["status"]),
            claims=tuple(_claim(c) for c in raw.get("claims", [])),
            reasons=tuple(str(r) for r in raw.get("reasons", [])),
            usage=llm_reasoning.Usage(**raw.get("usage", {})),
            model=raw.get("model"),
        )


def _claim(data: Mapping[str, Any]) -> llm_reasoning.Claim:
    fix = data.get("fix")
    return llm_reasoning.Claim(
        kind=models.CauseKind(data["kind"]),
        component=str(data["component"]),
        change=data.get("change"),
        evidence=tuple(str(e) for e in data.get("evidence", [])),
        rationale=str(data["rationale"]),
        fix=llm_reasoning.FixProposal(str(fix["action"]), str(fix["target"])) if fix else None,
    )


# --- propose --------------------------------------------------------------------------------


def propose(
    run: Run,
    *,
    correlation: Mapping[str, Any],
    evidence: Sequence[models.Evidence],
    db_fixes: Sequence[DatabaseFix] = (),
    min_confidence: float = fixing.MIN_CONFIDENCE,
) -> list[models.ProposedFix]:
    """The catalogue's fixes for the ranking, before their dry runs (``graphs/proposing.py``)."""
    return proposing.proposals(
        correlation,
        namespace=run.trigger.namespace,
        matched=run.playbook or {},
        evidence=evidence,
        db_fixes=db_fixes,
        min_confidence=min_confidence,
    )


# --- a saved run, replayed ------------------------------------------------------------------


@dataclass(frozen=True)
class Replayed:
    """What the pipeline concludes from a saved bundle."""

    correlation: CorrelationData
    reasoning: ReasoningBlock
    fixes: list[models.ProposedFix]
    db_fixes: list[DatabaseFix] = field(default_factory=list)
    derived: tuple[models.Evidence, ...] = ()


def replay(
    run: Run,
    *,
    evidence: Sequence[models.Evidence],
    reasoner: llm_reasoning.Reasoner | None = None,
    budget: llm_reasoning.Budget | None = None,
    toolbox: ToolboxFor = evidence_toolbox,
    min_confidence: float = fixing.MIN_CONFIDENCE,
) -> Replayed:
    """Correlate, probe, reason and propose over a bundle's evidence, as the run did: the
    database's recorded answers stand in for the probes, and the model's recorded reading for
    the model unless ``reasoner`` names one to ask instead."""
    correlated = correlate(run, evidence=evidence)
    correlation = correlated.correlation
    probes = [e for e in evidence if e.kind is Kind.PROBE]
    db_fixes: list[DatabaseFix] = []
    if should_probe(run, correlation=correlation, configured=bool(probes)):
        probed = probe(run, correlation=correlation, probes=probes)
        correlation, db_fixes = probed.correlation, probed.db_fixes
    seen = [e for e in evidence if e.kind not in (Kind.DERIVED, Kind.DRY_RUN, Kind.MODEL)]
    seen = [e for e in seen if e.source != "analysis"] + list(correlated.derived)
    reasoned = reason(
        run,
        correlation=correlation,
        evidence=seen,
        reasoner=reasoner or RecordedReasoner.of(evidence),
        budget=budget or llm_reasoning.Budget(),
        toolbox=toolbox,
    )
    fixes = propose(
        run,
        correlation=reasoned.correlation,
        evidence=seen,
        db_fixes=db_fixes,
        min_confidence=min_confidence,
    )
    return Replayed(
        correlation=reasoned.correlation,
        reasoning=reasoned.block,
        fixes=fixes,
        db_fixes=db_fixes,
        derived=correlated.derived,
    )


def replay_state(
    manifest: Mapping[str, object], *, evidence: Sequence[models.Evidence], run_id: str
) -> DiagnosisState:
    """A bundle replayed (``diagnose replay``), as the state the report and the terminal view
    read: the run's evidence, ranking, the model's reading and the fixes."""
    run = Run.from_manifest(manifest, run_id=run_id)
    replayed = replay(run, evidence=evidence)
    state: DiagnosisState = {
        "run_id": run_id,
        "trigger": run.trigger.to_dict(),
        "window": run.window.to_dict(),
        "now": models.format_time(run.now),
        "evidence": [
            e.to_dict(with_raw=False)
            for e in evidence
            if e.source != "analysis" and e.kind is not Kind.MODEL
        ],
        "correlation": replayed.correlation,
        "reasoning": replayed.reasoning,
        "fixes": replayed.fixes,
        "db_fixes": replayed.db_fixes,
    }
    if run.step_s is not None:
        state["step_s"] = run.step_s
    if run.playbook:
        state["playbook"] = dict(run.playbook)
    return state
