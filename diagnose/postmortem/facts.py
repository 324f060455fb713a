"""What a run found, read once from its stored data into typed records.

A draft is made from what the run stored: its checkpointed state, its evidence bundle and its
audit-log entries (:class:`RunRecord`). :meth:`Facts.of` reads them into frozen records
(the trigger, the ranked hypotheses, the scored components and their signals, the changes, the
proposed fixes, the decision, the audit entries), so the rest of the writer reads attributes,
not string keys; the values are the stored ones, unchanged. What the caller knows besides
(an objective, the resolution, the incident's own log) comes in as :class:`Slo`,
:class:`Resolution` and :class:`IncidentEvent`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from diagnose.analysis import signals as signals_
from diagnose.domain import models

UNKNOWN = "unknown"
SIGNAL_PREFERENCE = (
    "errors",
    "latency",
    "availability",
    "saturation",
    "throttling",
    "restarts",
    "memory",
    "cpu",
    "database",
    "traffic",
)
"""Which signals tell the story first: what users feel, then the resources behind it."""
STRONG_Z = 3.0

Series = tuple[np.ndarray, np.ndarray]
"""A signal's unix times and values."""


@dataclass(frozen=True)
class DraftPolicy:
    """The few judgements a draft makes, named."""

    recovered_band: float = 0.2
    """A signal has recovered when it stays within this share of its worst deviation from its
    baseline until the end of the data."""
    recovered_for_s: float = 180.0
    """…for at least this long (and at least three points)."""
    quick_diagnosis_s: float = 600.0
    """A diagnosis ready this soon after the alert counts as a thing that went well."""
    slow_detection_s: float = 300.0
    """An alert firing later than this after the onset counts as a thing that went badly."""
    signals_per_plot_component: int = 2
    max_changes: int = 10


@dataclass(frozen=True)
class Slo:
    """A request-based objective: ``target`` good requests out of all, over ``window_days``."""

    target: float
    window_days: float = 30.0
    source: str = "configured"

    def __post_init__(self) -> None:
        if not 0.0 < self.target < 1.0:
            raise ValueError(f"an SLO target is a ratio between 0 and 1, not {self.target}")
        if self.window_days <= 0:
            raise ValueError("an SLO window is longer than zero days")


@dataclass(frozen=True)
class Resolution:
    """When the incident was resolved, and the stored record that says so."""

    at: datetime
    ref: str
    detail: str = "incident resolved"


@dataclass(frozen=True)
class IncidentEvent:
    """A moment of the incident's own record (an acknowledgement, an escalation), the stored
    record it comes from (``ref``), and what that record is (``stored``)."""

    at: datetime
    what: str
    ref: str
    kind: str  # acknowledged | unacknowledged | escalated | resolved
    stored: str


@dataclass(frozen=True)
class RunRecord:
    """Everything a run stored: the checkpointed state, the bundle, the audit entries."""

    state: Mapping[str, Any]
    evidence: Sequence[models.Evidence]
    audit: Sequence[Mapping[str, Any]] = ()


# --- the run's findings, typed ------------------------------------------------------------------


@dataclass(frozen=True)
class Trigger:
    """The alert as received; empty strings where it said nothing."""

    title: str
    service: str
    namespace: str
    stamp: str  # when it fired, as received

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Trigger:
        return cls(
            title=str(data.get("title") or ""),
            service=str(data.get("service") or ""),
            namespace=str(data.get("namespace") or ""),
            stamp=str(data.get("at") or ""),
        )

    @property
    def at(self) -> datetime | None:
        return models.parse_time(self.stamp) if self.stamp else None


@dataclass(frozen=True)
class Signal:
    """One scored signal of a component."""

    kind: str
    metric: str
    detail: str
    query: str
    evidence: str
    z: float
    baseline: float

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Signal:
        return cls(
            kind=str(data.get("kind")),
            metric=str(data.get("metric")),
            detail=str(data.get("detail") or ""),
            query=str(data.get("query")),
            evidence=str(data.get("evidence")),
            z=float(data.get("z") or 0.0),
            baseline=float(data.get("baseline") or 0.0),
        )

    @property
    def strong(self) -> bool:
        return abs(self.z) >= STRONG_Z


@dataclass(frozen=True)
class Component:
    """A scored component: whether and when it became anomalous, and its signals."""

    name: str
    anomalous: bool
    onset_stamp: str  # as stored; empty when it has none
    evidence: str
    signals: tuple[Signal, ...]

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Component:
        return cls(
            name=str(data["component"]),
            anomalous=bool(data.get("anomalous")),
            onset_stamp=str(data.get("onset") or ""),
            evidence=str(data.get("evidence") or ""),
            signals=tuple(Signal.of(s) for s in data.get("signals") or []),
        )

    @property
    def onset(self) -> datetime | None:
        return models.parse_time(self.onset_stamp) if self.onset_stamp else None

    def ranked_signals(self) -> list[Signal]:
        """The signals, the telling ones first: strong ones (|z| ≥ 3) by what users feel first
        (errors, latency, …, resources), then the rest by strength."""

        def telling(signal: Signal) -> tuple[int, int, float]:
            z = abs(signal.z)
            order = SIGNAL_PREFERENCE.index(signal.kind) if signal.kind in SIGNAL_PREFERENCE else 99
            return (0, order, -z) if signal.strong else (1, 0, -z)

        return sorted(self.signals, key=telling)

    def lead_signal(self) -> Signal | None:
        ranked = self.ranked_signals()
        return ranked[0] if ranked else None


@dataclass(frozen=True)
class Hypothesis:
    """A ranked root-cause claim as the run stored it."""

    kind: str
    component: str
    change: str | None
    confidence: float
    summary: str
    evidence: tuple[str, ...]
    counter_evidence: tuple[str, ...]
    code: Mapping[str, object] | None = None  # the commit range it bears on (docs/changes.md)

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Hypothesis:
        return cls(
            kind=str(data["kind"]),
            component=str(data["component"]),
            change=data.get("change") or None,
            confidence=float(data["confidence"]),
            summary=str(data["summary"]),
            evidence=tuple(data.get("evidence") or ()),
            counter_evidence=tuple(data.get("counter_evidence") or ()),
            code=data.get("code") or None,
        )


@dataclass(frozen=True)
class Change:
    """A change the analysis read, with the time it was stored with."""

    kind: str
    ref: str
    detail: str
    stamp: str
    evidence: str  # the listing it was read from

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Change:
        return cls(
            kind=str(data["kind"]),
            ref=str(data["ref"]),
            detail=str(data["detail"]),
            stamp=str(data["at"]),
            evidence=str(data.get("evidence") or ""),
        )

    @property
    def at(self) -> datetime:
        return models.parse_time(self.stamp)


@dataclass(frozen=True)
class Fix:
    """A proposed fix, as far as a draft tells of it."""

    id: str
    kind: str
    target: str
    command: str
    verify: str
    hypothesis: int | None

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Fix:
        return cls(
            id=str(data["id"]),
            kind=str(data.get("kind")),
            target=str(data.get("target")),
            command=str(data.get("command")),
            verify=str(data.get("verify")),
            hypothesis=data.get("hypothesis"),
        )


@dataclass(frozen=True)
class Decision:
    """The answer at the approval step (``None`` where the stored answer says nothing)."""

    verdict: str | None
    approver: str | None
    reason: str | None
    fix: str | None

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Decision:
        return cls(
            verdict=data.get("verdict"),
            approver=data.get("approver"),
            reason=data.get("reason"),
            fix=data.get("fix"),
        )


@dataclass(frozen=True)
class Proposal:
    """The fix an audit entry says was proposed (``None`` where it says nothing)."""

    id: str | None
    kind: str | None
    target: str | None

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> Proposal:
        return cls(id=data.get("id"), kind=data.get("kind"), target=data.get("target"))


@dataclass(frozen=True)
class AuditEntry:
    """One audit-log entry of the run: a proposal, an approval, a decision, an action or a
    verification (``None`` where its body says nothing)."""

    key: str
    kind: str
    stamp: str  # when the log recorded it, as stored
    at: datetime  # when it happened: the body's own time, else ``stamp``
    decision: Decision  # an approval's, a decision's; an action's ``fix``
    proposed: Proposal  # a proposal's fix
    executed: bool  # an action that was applied (not handed over)
    command: str | None
    outcome: str | None  # a verification's; "unknown" when it names none
    why: str | None
    watched_until: datetime  # a verification's last sample, else ``stamp``

    @classmethod
    def of(cls, row: Mapping[str, Any]) -> AuditEntry:
        body: Mapping[str, Any] = row.get("entry") or {}
        proposal = row.get("kind") == "proposal"
        samples = body.get("samples") or []
        last = samples[-1].get("at") if samples and isinstance(samples[-1], Mapping) else None
        return cls(
            key=str(row.get("key")),
            kind=str(row.get("kind")),
            stamp=str(row["at"]),
            at=models.parse_time(body.get("at") or row["at"]),
            decision=Decision.of({} if proposal else body),
            proposed=Proposal.of((body.get("fix") or {}) if proposal else {}),
            executed=bool(body.get("executed")),
            command=body.get("command"),
            outcome=body.get("outcome", UNKNOWN),
            why=body.get("why"),
            watched_until=models.parse_time(last or row["at"]),
        )

    @property
    def recorded(self) -> datetime:
        return models.parse_time(self.stamp)

    @property
    def ref(self) -> str:
        return f"audit:{self.key}"


@dataclass(frozen=True)
class Facts:
    """The run's stored data, typed and indexed for drafting."""

    run_id: str
    trigger: Trigger
    window: models.Window | None
    started: datetime | None  # when the diagnosis started
    spent_s: float  # the seconds its steps took
    notes: tuple[str, ...]
    fixes: tuple[Fix, ...]
    decision: Decision | None
    evidence: Mapping[str, models.Evidence]
    audit: tuple[AuditEntry, ...]
    hypotheses: tuple[Hypothesis, ...]
    components: Mapping[str, Component]
    changes: tuple[Change, ...]
    abstained: bool
    signals: signals_.Signals | None
    policy: DraftPolicy

    @classmethod
    def of(cls, record: RunRecord, *, policy: DraftPolicy) -> Facts:
        state = record.state
        correlation = state.get("correlation") or {}
        hypotheses = tuple(Hypothesis.of(h) for h in correlation.get("hypotheses") or [])
        window = models.Window.from_dict(state["window"]) if state.get("window") else None
        metrics = [e for e in record.evidence if e.source == "prometheus"]
        found = None
        if window and metrics:
            found = signals_.build_signals(metrics, window=window)
        components = (Component.of(c) for c in correlation.get("components") or [])
        decided = state.get("decision")
        return cls(
            run_id=str(state.get("run_id") or UNKNOWN),
            trigger=Trigger.of(state.get("trigger") or {}),
            window=window,
            started=models.parse_time(state["now"]) if state.get("now") else None,
            spent_s=sum(float(v) for v in (state.get("timings_s") or {}).values()),
            notes=tuple(str(n) for n in state.get("notes") or []),
            fixes=tuple(Fix.of(f) for f in state.get("fixes") or []),
            decision=Decision.of(decided) if isinstance(decided, Mapping) else None,
            evidence={e.id: e for e in record.evidence},
            audit=tuple(AuditEntry.of(row) for row in record.audit),
            hypotheses=hypotheses,
            components={c.name: c for c in components},
            changes=tuple(Change.of(c) for c in correlation.get("changes") or []),
            abstained=bool(correlation.get("abstained", not hypotheses)),
            signals=found,
            policy=policy,
        )

    @property
    def top(self) -> Hypothesis | None:
        return self.hypotheses[0] if self.hypotheses else None

    @property
    def culprit(self) -> str | None:
        """The change the top hypothesis names (when the run did not abstain)."""
        top = self.top
        return top.change if top is not None and not self.abstained else None

    @property
    def root(self) -> Component | None:
        """The component the top hypothesis names (when the run did not abstain)."""
        top = self.top
        if top is None or self.abstained:
            return None
        return self.components.get(top.component)

    @property
    def alerting(self) -> Component | None:
        return self.components.get(self.trigger.service)

    @property
    def onset(self) -> tuple[datetime, str] | None:
        """The root's onset (else the earliest anomalous component's), with its evidence."""
        root = self.root
        candidates = [root] if root and root.onset_stamp else []
        if not candidates:
            candidates = sorted(
                (c for c in self.components.values() if c.anomalous and c.onset_stamp),
                key=lambda c: c.onset_stamp,
            )
        for component in candidates:
            if component.evidence in self.evidence:
                return models.parse_time(component.onset_stamp), component.evidence
        return None

    @property
    def data_end(self) -> datetime | None:
        """When the stored series end (else the run's window)."""
        if self.signals is None or self.signals.grid.size == 0:
            return self.window.end if self.window else None
        return moment(float(self.signals.grid.times[-1]))

    @property
    def diagnosed_at(self) -> datetime | None:
        """When the ranked diagnosis was ready: its first proposal, else the run's end."""
        proposals = self.entries("proposal")
        if proposals:
            return proposals[0].recorded
        if self.started is None:
            return None
        return self.started + timedelta(seconds=self.spent_s)

    def entries(self, kind: str) -> list[AuditEntry]:
        return [e for e in self.audit if e.kind == kind]

    def decided_fix(self) -> Fix | None:
        decision = self.decision
        if not decision or not decision.fix:
            return None
        return next((f for f in self.fixes if f.id == decision.fix), None)

    def verified_recovery(self) -> tuple[datetime, str] | None:
        """The watch after an applied fix saw the verification query recover (audit log)."""
        for entry in self.entries("verification"):
            if entry.outcome == "recovered":
                return entry.watched_until, entry.ref
        return None

    def failures(self) -> list[models.Evidence]:
        bad = (models.Status.ERROR, models.Status.DENIED)
        return [e for e in self.evidence.values() if e.status in bad]

    def unconfigured(self) -> list[str]:
        """The run's notes about sources it had no access to ("traces: no Tempo … configured")."""
        return [n for n in self.notes if _UNCONFIGURED.search(n)]

    def series(self, *, component: str, signal: Signal) -> Series | None:
        """A signal's values over time: rebuilt from the bundle's series as the analysis built
        them, or, for a signal computed by its own query (a playbook's), that query's answer for
        the component."""
        found = self.signals
        for row, info in enumerate(found.info if found is not None else []):
            if info.component == component and info.query == signal.query:
                assert found is not None
                return found.grid.times, found.values[row]
        record = self.evidence.get(signal.evidence)
        raw = record.raw if record is not None and isinstance(record.raw, list) else []
        mine = [
            s
            for s in raw
            if isinstance(s, Mapping)
            and component in (s.get("labels") or {}).values()
            and s.get("t")
        ]
        if len(mine) != 1:
            return None
        values = [math.nan if v is None else float(v) for v in mine[0].get("v") or []]
        return np.asarray(mine[0]["t"], dtype=float), np.asarray(values, dtype=float)

    def rows(self, *, component: str, kind: str) -> list[tuple[signals_.SignalInfo, np.ndarray]]:
        """The analysis' rows of one kind for one component."""
        found = self.signals
        if found is None:
            return []
        return [
            (info, found.values[row])
            for row, info in enumerate(found.info)
            if info.component == component and info.kind == kind
        ]


_UNCONFIGURED = re.compile(r"\bno\b.*\bconfigured\b")


def moment(unix: float) -> datetime:
    """A unix time as an aware datetime."""
    return datetime.fromtimestamp(unix, tz=UTC)
