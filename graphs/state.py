"""What the diagnosis graph carries between nodes, and what it is handed to work with.

State is plain data (dicts, lists, strings, numbers) so every checkpoint serialises with
msgpack under strict deserialisation, and a paused run resumes in another process. Clients,
pools and arrays never enter it: nodes reach the world through :class:`Context`, which the
composition root (``diagnose.wiring``) builds and LangGraph hands to every node.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, NotRequired, TypedDict

from diagnose import playbook
from diagnose.domain import code as code_ports
from diagnose.domain import database as database_ports
from diagnose.domain import errors, models, ports, reasoning
from diagnose.domain import logs as log_ports
from diagnose.domain import traces as trace_ports


def merge_dicts(left: dict[str, float], right: dict[str, float]) -> dict[str, float]:
    """Reducer for parallel nodes that each add their own keys."""
    return {**left, **right}


class PlannedQuery(TypedDict, total=False):
    """One metric query ``gather_metrics`` planned: run, or dropped over the series budget."""

    query: str
    metric: str
    family: str
    reason: str
    run: bool
    step_s: float  # the step it was read at (its sampling interval when coarser)


class DatabaseFix(TypedDict):
    """A fix the database's findings support, tied to its hypothesis by summary."""

    summary: str
    fix: models.FixData


class PastRejection(TypedDict):
    """An earlier run's fix for the same component that a human rejected, and why."""

    run_id: str
    component: str
    approver: str | None
    reason: str | None
    at: str | None


class HypothesisBrief(TypedDict):
    """A hypothesis as memory keeps it."""

    kind: str
    component: str
    change: str | None
    confidence: float
    summary: str


class DecisionBrief(TypedDict):
    """A decision as memory keeps it."""

    verdict: str
    approver: str
    reason: str
    at: str
    fix: str | None


class RecordedTrigger(TypedDict):
    title: str
    service: str
    namespace: str
    at: str


class RunRecord(TypedDict):
    """What a finished run leaves for later incidents (``graphs.remembering.run_record``)."""

    run_id: str
    at: str
    trigger: RecordedTrigger
    playbook: str | None  # the matched playbook's name
    components: list[str]
    evidence: list[str]  # the evidence fingerprint (``graphs.remembering.fingerprint``)
    hypotheses: list[HypothesisBrief]
    abstained: bool
    decision: DecisionBrief | None
    about: HypothesisBrief | None  # the hypothesis the decision was about
    verification: models.VerificationData | None


class SimilarRun(TypedDict):
    """A past run on the same components, and what turned out to be true (fields as memory
    returned them)."""

    run_id: str
    at: str | None
    title: str | None
    similarity: float
    outcome: str
    decision: DecisionBrief | None
    about: HypothesisBrief | None
    top: HypothesisBrief | None


class RejectedAgain(TypedDict):
    """A current hypothesis people rejected before on evidence this alike."""

    hypothesis: int  # its index in the ranking
    kind: str
    component: str
    change: str | None
    run_id: str  # the run where it was rejected
    approver: str | None
    reason: str | None
    at: str | None
    similarity: float
    note: str


class Recalled(TypedDict, total=False):
    """What memory says of the run (``graphs.remembering.recall``)."""

    similar: list[SimilarRun]  # past runs on the same components, most alike first
    rejected_again: list[RejectedAgain]  # current hypotheses rejected before on alike evidence


class CorrelationData(TypedDict, total=False):
    """The analysis's ranking as graph state holds it (``Correlation.to_dict()`` but the
    derived evidence, which state keeps as evidence)."""

    hypotheses: list[models.HypothesisData]  # best first
    components: list[dict[str, Any]]  # the components in scope, their signals and onsets
    changes: list[dict[str, Any]]  # the changes found, with their precedence
    abstained: bool
    notes: list[str]


class SettledData(TypedDict):
    """Code's verdict on one of the model's claims (``graphs.reasoning.Settled.to_dict()``)."""

    claim: reasoning.ClaimData
    outcome: str  # confirms, added, refused
    confidence: float | None
    confirms: int | None
    reasons: list[str]


class ReasoningBlock(TypedDict, total=False):
    """The model's part of a run (``Reasoning.to_dict()`` and code's verdict on each claim),
    labelled as the model's: what it claimed, how the session ended and what it cost."""

    status: str  # accepted, rejected, stopped, unavailable
    model: str | None
    claims: list[reasoning.ClaimData]  # the model's words
    reasons: list[str]  # why the session ended as it did
    requests: int
    used: bool
    prompt_tokens: int
    completion_tokens: int
    calls: int
    failed_calls: int
    seconds: float
    settled: list[SettledData]  # per claim: confirms, added or refused, and why


class EvidenceBrief(TypedDict):
    """One evidence record as the result object lists it (no window, no kind)."""

    id: str
    source: str
    status: str
    query: str
    summary: str


class CounterEvidence(TypedDict):
    """Evidence against a hypothesis, with its query to re-run."""

    summary: str
    query: str
    id: str


class Challenge(TypedDict):
    """What would show one leading hypothesis wrong (``graphs.approval.challenges``)."""

    rank: int
    hypothesis: str  # "kind component"
    counter_evidence: list[CounterEvidence]
    alternatives: list[str]  # the other hypotheses, one line each
    wrong_if: list[str]  # the claim's own checkable conditions


class Timings(TypedDict):
    """Seconds per stage of the run (gather: the slowest gather step), and per step."""

    gather: float
    correlate: float
    reason: float
    total: float
    stages: dict[str, float]


class ModelCost(TypedDict):
    """What the language model cost the run."""

    used: bool
    status: str
    model: NotRequired[str | None]  # not in a replay's block
    prompt_tokens: int
    completion_tokens: int
    calls: int
    failed_calls: int
    seconds: float


class ResultData(TypedDict, total=False):
    """The object ``diagnose run --json`` prints (SCENARIOS.md, "What the agent reports");
    ``graphs.reporting.result`` fills every field (none when nothing ran)."""

    run_id: str | None
    hypotheses: list[models.HypothesisData]
    abstained: bool
    fixes: list[models.ProposedFix]
    notes: list[str]
    evidence: list[EvidenceBrief]
    decision: models.DecisionData | None
    rejected_before: list[PastRejection]
    playbook: dict[str, object] | None  # the matched playbook's name, file, queries and fixes
    past_incidents: Recalled
    timings_s: Timings
    llm: ModelCost
    reasoning: ReasoningBlock | None


class ReportData(ResultData, total=False):
    """The final report: the result plus what was decided and done."""

    trigger: models.TriggerData | None
    window: models.WindowData | None
    actions: list[models.ActionData]
    verification: models.VerificationData | None
    what_would_prove_it_wrong: list[Challenge]


class DiagnosisState(TypedDict, total=False):
    run_id: str
    trigger: models.TriggerData
    window: models.WindowData
    step_s: float
    now: str  # when the run started, ISO 8601
    evidence: Annotated[list[models.EvidenceData], operator.add]  # without raw
    notes: Annotated[list[str], operator.add]  # what could not be looked at, and why
    plan: list[PlannedQuery]  # the metric queries planned, and what was dropped
    correlation: CorrelationData
    db_fixes: list[DatabaseFix]
    reasoning: ReasoningBlock
    fixes: list[models.ProposedFix]
    playbook: dict[str, Any]  # playbook.summary(): the matched playbook, its queries and knobs
    past_rejections: list[PastRejection]
    memory: Recalled
    approval_errors: list[str]  # why the last answer at the approval step was refused
    decision: models.DecisionData  # the one that settled the run
    approvals: list[models.DecisionData]  # every approval given (high-risk fixes need two people)
    actions: list[models.ActionData]  # what the act step did or handed to a human
    verification: models.VerificationData  # after an executed fix: recovered or not, and why
    report: ReportData
    timings_s: Annotated[dict[str, float], merge_dicts]


@dataclass(frozen=True)
class Run:
    """What every step of the pipeline knows of the run it works for, fixed by ``intake`` and
    ``scope``: from the graph's state (:meth:`of`), or from a bundle's manifest
    (:meth:`from_manifest`) when a saved run is replayed."""

    run_id: str
    trigger: models.Trigger
    window: models.Window
    now: datetime
    step_s: float | None = None  # None only in bundles written before the step was kept
    playbook: Mapping[str, Any] | None = None  # playbook.summary() of the matched playbook
    database_name: str = ""  # the database the probes looked at

    @classmethod
    def of(cls, state: DiagnosisState, *, database_name: str = "") -> Run:
        return cls(
            run_id=state["run_id"],
            trigger=models.Trigger.from_dict(state["trigger"]),
            window=models.Window.from_dict(state["window"]),
            now=models.parse_time(state["now"]),
            step_s=state.get("step_s"),
            playbook=state.get("playbook") or None,
            database_name=database_name,
        )

    @classmethod
    def from_manifest(cls, manifest: Mapping[str, object], *, run_id: str) -> Run:
        """The run a bundle's manifest describes (read from a file: each field checked)."""
        trigger, window, now = manifest.get("trigger"), manifest.get("window"), manifest.get("now")
        if not (isinstance(trigger, Mapping) and isinstance(window, Mapping) and now):
            raise errors.ConfigurationError(
                f"the manifest of bundle {run_id} lacks its trigger, window or start time: "
                "the bundle is damaged"
            )
        step_s, matched = manifest.get("step_s"), manifest.get("playbook")
        return cls(
            run_id=run_id,
            trigger=models.Trigger.from_dict(trigger),
            window=models.Window.from_dict(window),
            now=models.parse_time(str(now)),
            step_s=step_s if isinstance(step_s, int | float) else None,
            playbook=matched if isinstance(matched, Mapping) and matched else None,
            database_name=str(manifest.get("database") or ""),
        )


@dataclass(frozen=True)
class GatherPolicy:
    """How far and how finely to look."""

    lookback_s: float = 3600.0
    after_s: float = 600.0
    points_per_series: int = 720
    max_series: int = 20000
    workers: int = 4  # queries in flight at once against one source
    trace_sample: int = 150  # traces sampled per window (baseline, incident)
    trace_services: int = 12  # other services whose traces are read too (0: the alerted only)
    incident_s: float = 900.0  # traces: the incident window is the last 15 min to the trigger
    baseline_gap_s: float = 300.0  # …and the baseline ends 5 min before that starts
    code_ranges: int = 3  # rollouts in the window whose commits are read, newest first
    stop_checks: int = 4  # services whose stopped log statements' requests are counted
    stop_count_limit: int = 1000  # requests counted per operation and window, at most


@dataclass(frozen=True)
class ExecutionPolicy:
    """Whether approved Kubernetes fixes are carried out, and how long to watch them."""

    enabled: bool = False  # off: every approved fix is handed to a human as a command
    watch_s: float = 300.0  # how long to watch the verification query after applying
    interval_s: float = 15.0  # between two looks at it


def _utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Context:
    """The ports a run may use. Missing sources are None: the report says what was skipped."""

    store: ports.EvidenceStore
    audit: ports.AuditLog | None = None
    memory: ports.IncidentMemory | None = None  # past incidents, recalled and recorded
    metrics: ports.MetricSource | None = None
    cluster: ports.ClusterSource | None = None
    traces: trace_ports.TraceSource | None = None
    logs: log_ports.LogSource | None = None  # pod logs (Kubernetes API or Loki)
    repositories: code_ports.RepositorySource | None = None  # local clones of the apps' code
    database: database_ports.DatabaseSource | None = None
    database_name: str = ""  # the database the probes look at ("postgres/<name>")
    reasoner: reasoning.Reasoner | None = None
    budget: reasoning.Budget = field(default_factory=reasoning.Budget)
    policy: GatherPolicy = field(default_factory=GatherPolicy)
    playbooks: tuple[playbook.Loaded, ...] = ()  # matched against the trigger in ``scope``
    dry_runner: ports.ClusterWriter | None = None  # dry runs before approval (may be read creds)
    executor: ports.ClusterWriter | None = None  # write credentials; only in execution mode
    execution: ExecutionPolicy = field(default_factory=ExecutionPolicy)
    fix_min_confidence: float = 0.05  # hypotheses below it get no fix (analysis.fixing)
    clock: Callable[[], datetime] = _utcnow
    sleep: Callable[[float], None] = time.sleep
    progress: Callable[[str], None] = lambda _message: None
