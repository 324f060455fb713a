"""The records every layer speaks: windows, triggers, evidence, changes, hypotheses, fixes.

All are frozen dataclasses. Graph state must stay plain data (msgpack-serialisable), so each
record converts to and from a dict of JSON types with ``to_dict``/``from_dict``; timestamps
travel as ISO 8601 strings in UTC.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NotRequired, Required, TypedDict

JSON = Any
"""A value made only of dict, list, str, int, float, bool and None."""


def parse_time(value: str | datetime) -> datetime:
    """Parse an ISO 8601 timestamp (a trailing ``Z`` allowed) into an aware UTC datetime."""
    if isinstance(value, datetime):
        moment = value
    else:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    """Format an aware datetime as ISO 8601 in UTC with a ``Z`` suffix."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class WindowData(TypedDict):
    """A :class:`Window` as plain data."""

    start: str
    end: str


class TriggerData(TypedDict):
    """A :class:`Trigger` as plain data (what graph state and the queue carry)."""

    source: str
    title: str
    service: str
    namespace: str
    at: str
    labels: dict[str, str]
    incident_id: str | None


class EvidenceData(TypedDict):
    """An :class:`Evidence` record as plain data; ``raw`` only where the bundle keeps it."""

    id: str
    source: str
    query: str
    window: WindowData | None
    status: str
    summary: str
    kind: str
    raw: NotRequired[JSON]


class CommitBrief(TypedDict):
    """One commit of a range, as a hypothesis carries it: its files by path only."""

    sha: str
    subject: str
    files: list[str]


class SuspectData(TypedDict):
    """A commit's file that bears on the evidence, and why (best first in a range)."""

    sha: str
    file: str
    why: str


CodeData = TypedDict(
    "CodeData",
    {
        "repository": str,
        "from": str,  # the revision before the rollout
        "to": str,  # the revision after it
        "change": str,  # the rollout the range belongs to
        "commits": list[CommitBrief],
        "suspects": list[SuspectData],
        "summary": NotRequired[str],  # the range in a few words ("3 commits, none touching …")
    },
)
"""The commit range a hypothesis bears on (docs/changes.md)."""


class DeliveryData(TypedDict):
    """The Argo CD, Flux or Helm sync that applied a rollout (docs/changes.md)."""

    tool: str
    name: str
    id: str
    revision: str
    changed_keys: list[str]


class HypothesisData(TypedDict):
    """A :class:`Hypothesis` as plain data (the ranking in graph state and reports)."""

    kind: str
    component: str
    change: str | None
    confidence: float
    summary: str
    evidence: list[str]
    counter_evidence: list[str]
    onset: str | None
    code: NotRequired[CodeData]  # the commit range it bears on (docs/changes.md)
    delivery: NotRequired[DeliveryData]  # the sync that applied its rollout, if one did


class FixData(TypedDict):
    """A :class:`Fix` as plain data."""

    id: str
    kind: str
    target: str
    command: str
    rollback: str
    verify: str
    risk: str
    blast_radius: str
    hypothesis: int
    dry_run: str | None
    action: JSON


class DryRunData(TypedDict, total=False):
    """What the server-side dry run of a proposed fix said, or why none was run."""

    outcome: Required[str]  # accepted, refused, unreachable, not run
    message: Required[str]
    evidence: str  # the dry run's (or the refused resolution's) evidence id
    query: str
    result: JSON


class ProposedFix(FixData, total=False):
    """A fix as the run's state holds it: :class:`FixData` with what the propose step and the
    dry runs added (graph state's ``fixes``)."""

    verify_levels: dict[str, float]  # baseline and incident level of the verify query
    outside_playbook: str  # why it comes after the matched playbook's fixes
    sweep: list[dict[str, str]]  # the same fault elsewhere, for a reviewer
    patch: JSON  # the exact patch resolved before approval; None: not carried out by the agent
    digest: str  # the content hash an approval names
    dry_run_result: DryRunData


class DecisionData(TypedDict):
    """A :class:`Decision` as plain data; the accounts behind it only when known."""

    verdict: str
    approver: str
    reason: str
    at: str
    fix: str | None
    checked_evidence: list[str]
    fix_digest: str | None
    via: NotRequired[str]
    os_user: NotRequired[str]
    kube_user: NotRequired[str]


class ActionData(TypedDict, total=False):
    """What the act step did with the approved fix, or why it did nothing."""

    fix: Required[str | None]  # the fix's id (None: a refused decision named none)
    executed: Required[bool]
    outcome: Required[str]  # accepted, already applied, refused, handed over, unreachable…
    verify: Required[str]  # the query that shows whether it worked
    command: str | None
    digest: str | None
    key: str  # the idempotency key recorded on the object and in the audit log
    patch: JSON
    why_not_executed: str
    message: str
    evidence: str
    resumed: bool  # recorded before a restart, reported again and not sent again


class VerificationSample(TypedDict):
    """One poll of the verification query while the fix is watched."""

    at: str
    value: float | None  # the worst series' latest value; None when the query gave none
    recovered: bool


class VerificationData(TypedDict):
    """How watching the executed fix's verification query ended."""

    query: str
    watched_s: float
    levels: dict[str, float]  # baseline and incident level, as proposed
    outcome: str  # recovered, not recovered, unknown
    why: str
    samples: list[VerificationSample]


@dataclass(frozen=True)
class Window:
    """A closed time interval ``[start, end]``."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"window ends ({self.end}) before it starts ({self.start})")

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def to_dict(self) -> WindowData:
        return {"start": format_time(self.start), "end": format_time(self.end)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Window:
        return cls(start=parse_time(data["start"]), end=parse_time(data["end"]))


@dataclass(frozen=True)
class Trigger:
    """What the pager said: the agent starts from this alone."""

    source: str
    title: str
    service: str
    namespace: str
    at: datetime
    labels: Mapping[str, str] = field(default_factory=dict)
    incident_id: str | None = None

    def to_dict(self) -> TriggerData:
        return {
            "source": self.source,
            "title": self.title,
            "service": self.service,
            "namespace": self.namespace,
            "at": format_time(self.at),
            "labels": dict(self.labels),
            "incident_id": self.incident_id,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, JSON]) -> Trigger:
        return cls(
            source=str(data["source"]),
            title=str(data["title"]),
            service=str(data["service"]),
            namespace=str(data.get("namespace") or ""),
            at=parse_time(data["at"]),
            labels={str(k): str(v) for k, v in (data.get("labels") or {}).items()},
            incident_id=data.get("incident_id"),
        )


class Status(StrEnum):
    """How a call to the outside world ended."""

    OK = "ok"
    EMPTY = "empty"
    ERROR = "error"
    DENIED = "denied"


class EvidenceKind(StrEnum):
    """What a piece of evidence is an answer to, set by the step that asked: the pipeline picks
    evidence by kind, never by reading its query."""

    UNKNOWN = "unknown"  # recorded before evidence had kinds
    LABELS = "labels"  # the metric label names in scope
    SERIES_LIST = "series_list"  # the series found by label
    SAMPLING = "sampling"  # a metric's sampling interval (count_over_time)
    SERIES = "series"  # a metric's samples (a range query, or raw samples)
    DEPLOYMENTS = "deployments"
    REPLICASETS = "replicasets"
    CONFIGS = "configs"  # ConfigMaps and Secrets (names and content digests)
    PODS = "pods"
    EVENTS = "events"
    STATE = "state"  # the current state of one kind of Kubernetes object (domain.cluster)
    TRACE_SERVICES = "trace_services"  # the services a trace back end saw
    SPANS = "spans"  # sampled traces of one service in one window
    LOGS = "logs"  # one pod's log as templates (domain.logs)
    REQUESTS = "requests"  # a stopped log statement's operation: its traces, its requests counted
    COMMITS = "commits"  # a rollout's commit range in the application's repository (domain.code)
    DELIVERIES = "deliveries"  # Argo CD, Flux and Helm syncs targeting the namespace
    PROBE = "probe"  # a catalogue probe's answer from the database
    PLAN = "plan"  # the generic plan of a statement a probe singled out
    DERIVED = "derived"  # a finding of the analysis
    TOOL = "tool"  # the answer to one of the model's tool calls
    MODEL = "model"  # the model's reading, recorded so a replay gives the same answer
    DRY_RUN = "dry_run"  # a fix's resolution and server-side dry run


def evidence_id(source: str, query: str, window: Window | None) -> str:
    """A stable id for a piece of evidence: the same question over the same window, the same id.

    Stable ids make a replayed bundle cite the same ids as the live run it came from.
    """
    key = json.dumps([source, query, window.to_dict() if window else None], sort_keys=True)
    return "ev-" + hashlib.sha256(key.encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Evidence:
    """One answer from the outside world (or one derived finding), citable by id.

    ``query`` is what an engineer re-runs to see the same thing (PromQL, a kubectl command, SQL).
    ``raw`` is the response in a compact JSON shape documented by the port that produced it; it
    travels in the evidence bundle, not in graph state.
    """

    id: str
    source: str
    query: str
    window: Window | None
    status: Status
    summary: str
    raw: JSON = None
    kind: EvidenceKind = EvidenceKind.UNKNOWN

    @classmethod
    def make(
        cls,
        *,
        source: str,
        query: str,
        window: Window | None,
        status: Status,
        summary: str,
        raw: JSON = None,
        kind: EvidenceKind = EvidenceKind.UNKNOWN,
    ) -> Evidence:
        """Build evidence whose id is derived from its source, query and window."""
        return cls(
            id=evidence_id(source, query, window),
            source=source,
            query=query,
            window=window,
            status=status,
            summary=summary,
            raw=raw,
            kind=kind,
        )

    def without_raw(self) -> Evidence:
        return replace(self, raw=None)

    def of_kind(self, kind: EvidenceKind) -> Evidence:
        """The same evidence, labelled with what it answers."""
        return replace(self, kind=kind)

    def to_dict(self, *, with_raw: bool = True) -> EvidenceData:
        data: EvidenceData = {
            "id": self.id,
            "source": self.source,
            "query": self.query,
            "window": self.window.to_dict() if self.window else None,
            "status": self.status.value,
            "summary": self.summary,
            "kind": self.kind.value,
        }
        if with_raw:
            data["raw"] = self.raw
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, JSON]) -> Evidence:
        window = data.get("window")
        return cls(
            id=str(data["id"]),
            source=str(data["source"]),
            query=str(data["query"]),
            window=Window.from_dict(window) if window else None,
            status=Status(data["status"]),
            summary=str(data["summary"]),
            raw=data.get("raw"),
            kind=EvidenceKind(data.get("kind") or EvidenceKind.UNKNOWN),
        )


class ChangeKind(StrEnum):
    """What kind of change was made to the cluster."""

    ROLLOUT = "rollout"  # a new ReplicaSet revision (image, env, resources in the pod template)
    CONFIG = "config"  # a ConfigMap or Secret edited
    SCALE = "scale"  # replicas or HPA bounds changed
    LIMITS = "limits"  # resource requests/limits changed
    NODE = "node"  # node-level events (NotReady, pressure)
    RESTART = "restart"  # container restarts, OOMKills


@dataclass(frozen=True)
class Change:
    """Something that changed in the cluster at a known time, attributed to a component."""

    kind: ChangeKind
    ref: str  # "deployment/checkout@14", "configmap/checkout-config"
    component: str  # the workload it belongs to
    namespace: str
    at: datetime
    detail: str
    evidence: str  # id of the evidence it was read from

    def to_dict(self) -> dict[str, JSON]:
        return {
            "kind": self.kind.value,
            "ref": self.ref,
            "component": self.component,
            "namespace": self.namespace,
            "at": format_time(self.at),
            "detail": self.detail,
            "evidence": self.evidence,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, JSON]) -> Change:
        return cls(
            kind=ChangeKind(data["kind"]),
            ref=str(data["ref"]),
            component=str(data["component"]),
            namespace=str(data["namespace"]),
            at=parse_time(data["at"]),
            detail=str(data["detail"]),
            evidence=str(data["evidence"]),
        )


class CauseKind(StrEnum):
    """Root-cause kinds, as scored by SCENARIOS.md."""

    DEPLOY = "deploy"
    CONFIG = "config"
    DATABASE = "database"
    DEPENDENCY = "dependency"
    RESOURCE = "resource"
    TRAFFIC = "traffic"


@dataclass(frozen=True)
class Hypothesis:
    """A ranked root-cause claim. Confidence is computed by code, never by a model."""

    kind: CauseKind
    component: str
    confidence: float
    summary: str
    evidence: tuple[str, ...]
    counter_evidence: tuple[str, ...] = ()
    change: str | None = None
    onset: datetime | None = None

    def to_dict(self) -> HypothesisData:
        return {
            "kind": self.kind.value,
            "component": self.component,
            "change": self.change,
            "confidence": round(self.confidence, 4),
            "summary": self.summary,
            "evidence": list(self.evidence),
            "counter_evidence": list(self.counter_evidence),
            "onset": format_time(self.onset) if self.onset else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, JSON]) -> Hypothesis:
        onset = data.get("onset")
        return cls(
            kind=CauseKind(data["kind"]),
            component=str(data["component"]),
            change=data.get("change"),
            confidence=float(data["confidence"]),
            summary=str(data["summary"]),
            evidence=tuple(data.get("evidence") or ()),
            counter_evidence=tuple(data.get("counter_evidence") or ()),
            onset=parse_time(onset) if onset else None,
        )


class Risk(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class Fix:
    """A catalogue action proposed for one hypothesis. Nothing runs without approval."""

    id: str
    kind: str  # a name of the fix catalogue (diagnose.domain.fixes.CATALOGUE)
    target: str  # "deployment/checkout"
    command: str  # the exact command a human would run
    rollback: str  # how to undo it
    verify: str  # the PromQL (or SQL) whose recovery shows it worked
    risk: Risk
    blast_radius: str
    hypothesis: int  # index of the hypothesis it addresses
    dry_run: str | None = None
    action: JSON = None  # a Kubernetes catalogue action as data (ports.ActionSpec); None: manual

    def to_dict(self) -> FixData:
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "command": self.command,
            "rollback": self.rollback,
            "verify": self.verify,
            "risk": self.risk.value,
            "blast_radius": self.blast_radius,
            "hypothesis": self.hypothesis,
            "dry_run": self.dry_run,
            "action": self.action,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, JSON]) -> Fix:
        return cls(
            id=str(data["id"]),
            kind=str(data["kind"]),
            target=str(data["target"]),
            command=str(data["command"]),
            rollback=str(data["rollback"]),
            verify=str(data["verify"]),
            risk=Risk(data["risk"]),
            blast_radius=str(data["blast_radius"]),
            hypothesis=int(data["hypothesis"]),
            dry_run=data.get("dry_run"),
            action=data.get("action"),
        )


class Verdict(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"


@dataclass(frozen=True)
class Decision:
    """A named human's answer at the approval step."""

    verdict: Verdict
    approver: str
    reason: str
    at: datetime
    fix: str | None = None  # the approved fix id; None on rejection
    checked_evidence: tuple[str, ...] = ()  # evidence ids the approver says they looked at
    fix_digest: str | None = None  # the approved fix's content hash: that exact fix, no other
    via: str = ""  # the path it came through: terminal, cli, kubectl, api ("" before it was kept)
    os_user: str = ""  # the OS account (user@host) that ran the approving command, if any
    kube_user: str = ""  # the kubeconfig current context's user, through kubectl diagnose

    def __post_init__(self) -> None:
        if not self.approver.strip():
            raise ValueError("a decision needs a named approver")
        if self.verdict is Verdict.APPROVE and not self.fix:
            raise ValueError("an approval must name the fix it approves")
        if self.verdict is Verdict.APPROVE and not self.checked_evidence:
            raise ValueError("an approval must name the evidence the approver checked")

    def to_dict(self) -> DecisionData:
        data: DecisionData = {
            "verdict": self.verdict.value,
            "approver": self.approver,
            "reason": self.reason,
            "at": format_time(self.at),
            "fix": self.fix,
            "checked_evidence": list(self.checked_evidence),
            "fix_digest": self.fix_digest,
        }
        if self.via:  # where it came from and the accounts behind it: kept only when known
            data["via"] = self.via
        if self.os_user:
            data["os_user"] = self.os_user
        if self.kube_user:
            data["kube_user"] = self.kube_user
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, JSON]) -> Decision:
        return cls(
            verdict=Verdict(data["verdict"]),
            approver=str(data["approver"]),
            reason=str(data.get("reason") or ""),
            at=parse_time(data["at"]),
            fix=data.get("fix"),
            checked_evidence=tuple(data.get("checked_evidence") or ()),
            fix_digest=data.get("fix_digest"),
            via=str(data.get("via") or ""),
            os_user=str(data.get("os_user") or ""),
            kube_user=str(data.get("kube_user") or ""),
        )


def cited_ids(hypotheses: Sequence[Hypothesis]) -> set[str]:
    """Every evidence id a list of hypotheses cites, for checking that they all exist."""
    return {ev for h in hypotheses for ev in (*h.evidence, *h.counter_evidence)}
