"""Postmortem drafts from a finished (or paused) run: pure functions, no I/O, no clock.

A draft is made from what the run stored: its checkpointed state, its evidence bundle and its
audit-log entries (:class:`RunRecord`). Every timeline line cites a reference that resolves to
one of those stores:

- ``ev-…``: an evidence record in the bundle (``evidence.jsonl``);
- ``manifest.json#trigger``, ``manifest.json#now``: the bundle's manifest (the trigger as
  received, the time the run started);
- ``audit:KEY``: the run's audit-log entry with that key (``audit:approval:1``,
  ``audit:decision``, ``audit:action:fix-1``, ``audit:proposal:fix-1``);
- whatever reference the caller gives for the resolution (``queue-job:N`` for a PagerDuty
  ``incident.resolved`` delivery) and for the incident's own log (:class:`IncidentEvent`:
  ``queue-job:N#log-entry:ID`` for a PagerDuty log entry stored with that job).

Impact is computed from the bundle's series (request rate, error ratio), never guessed: what
cannot be computed is written as *unknown*, with the reason.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from diagnose.analysis import signals as signals_
from diagnose.domain import models, reasoning

UNKNOWN = "unknown"
TRIGGER_REF = "manifest.json#trigger"
STARTED_REF = "manifest.json#now"
SLOTH_OBJECTIVE = "slo:objective:ratio"
"""Sloth's recording rule holding an SLO's objective (0.999); with ``slo:time_period:days``."""
SLOTH_PERIOD = "slo:time_period:days"
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


@dataclass(frozen=True)
class Line:
    """One timeline line; ``ref`` names the stored record it comes from."""

    at: datetime
    what: str
    ref: str
    kind: str = ""  # alert | change | culprit | onset | started | proposal | approval |
    # rejection | action | applied | verification | recovery | data_end | resolved


@dataclass(frozen=True)
class Marker:
    """A moment drawn on the plots."""

    at: datetime
    label: str
    kind: str  # alert | onset | change | decision | action | recovered | resolved


@dataclass(frozen=True)
class Plot:
    """One series to draw, from the bundle, with the moments that matter marked."""

    name: str
    title: str
    times: tuple[float, ...]  # unix seconds
    values: tuple[float | None, ...]
    evidence: str
    markers: tuple[Marker, ...]


@dataclass(frozen=True)
class Requests:
    """Requests of one service between the onset and the end of the impact, from its series."""

    service: str
    total: float
    failed: float
    excess: float  # failed above the pre-onset error ratio
    baseline_ratio: float
    baseline_rate: float  # requests per second before the onset
    evidence: str


@dataclass(frozen=True)
class Impact:
    onset: datetime | None
    end: datetime | None
    end_kind: str  # recovered | resolved | ongoing | unknown
    data_end: datetime | None
    duration: str
    requests: tuple[Requests, ...]
    requests_text: tuple[str, ...]
    budget: str


@dataclass(frozen=True)
class Postmortem:
    title: str
    run_id: str
    summary: tuple[str, ...]
    impact: Impact
    timeline: tuple[Line, ...]
    root_cause: tuple[str, ...]
    contributing: tuple[str, ...]
    went_well: tuple[str, ...]
    went_badly: tuple[str, ...]
    actions: tuple[str, ...]
    plots: tuple[Plot, ...]
    cited: Mapping[str, str] = field(default_factory=dict)  # ref → what it is


# --- drafting ---------------------------------------------------------------------------------


def draft(
    record: RunRecord,
    *,
    slo: Slo | None = None,
    resolution: Resolution | None = None,
    title: str | None = None,
    policy: DraftPolicy | None = None,
    default_slo: Slo | None = None,
    incident_log: Sequence[IncidentEvent] = (),
    incident_log_missing: str | None = None,
) -> Postmortem:
    """The postmortem draft of one run.

    ``slo`` wins over a Sloth objective in the evidence, which wins over ``default_slo``.
    ``incident_log`` adds the incident's own moments to the timeline; ``incident_log_missing``
    says why that log could not be read (a thing that went badly)."""
    policy = policy or DraftPolicy()
    facts = _Facts.of(record, policy=policy)
    impact = _impact(
        facts, slo=slo or _slo_in_evidence(facts) or default_slo, resolution=resolution
    )
    timeline = _timeline(facts, impact=impact, resolution=resolution)
    timeline = sorted(
        [*timeline, *(Line(e.at, e.what, e.ref, e.kind) for e in incident_log)],
        key=lambda line: line.at,
    )
    unread = (
        [
            f"The incident's own log could not be read ({incident_log_missing}): its "
            "acknowledgements and escalations are missing from the timeline."
        ]
        if incident_log_missing
        else []
    )
    went_badly = _went_badly(facts, impact=impact, extra=unread)
    plots = _plots(facts, impact=impact, timeline=timeline)
    return Postmortem(
        title=title or str(facts.trigger.get("title") or facts.run_id),
        run_id=facts.run_id,
        summary=tuple(_summary(facts, impact=impact)),
        impact=impact,
        timeline=tuple(timeline),
        root_cause=tuple(_root_cause(facts)),
        contributing=tuple(_contributing(facts)),
        went_well=tuple(_went_well(facts, impact=impact)),
        went_badly=tuple(went_badly),
        actions=tuple(_actions(facts, impact=impact, slo_known=_has_slo(impact))),
        plots=tuple(plots),
        cited=_cited(
            facts,
            refs=_refs_of(timeline, impact=impact, plots=plots),
            resolution=resolution,
            incident_log=incident_log,
        ),
    )


@dataclass
class _Facts:
    """The run's stored data, indexed for drafting."""

    run_id: str
    state: Mapping[str, Any]
    trigger: Mapping[str, Any]
    evidence: dict[str, models.Evidence]
    audit: list[Mapping[str, Any]]
    hypotheses: list[dict[str, Any]]
    components: dict[str, dict[str, Any]]
    abstained: bool
    signals: signals_.Signals | None
    policy: DraftPolicy

    @classmethod
    def of(cls, record: RunRecord, *, policy: DraftPolicy) -> _Facts:
        state = record.state
        correlation = state.get("correlation") or {}
        hypotheses = list(correlation.get("hypotheses") or [])
        window = state.get("window")
        metrics = [e for e in record.evidence if e.source == "prometheus"]
        found = None
        if window and metrics:
            found = signals_.build_signals(metrics, window=models.Window.from_dict(window))
        return cls(
            run_id=str(state.get("run_id") or UNKNOWN),
            state=state,
            trigger=state.get("trigger") or {},
            evidence={e.id: e for e in record.evidence},
            audit=list(record.audit),
            hypotheses=hypotheses,
            components={c["component"]: c for c in correlation.get("components") or []},
            abstained=bool(correlation.get("abstained", not hypotheses)),
            signals=found,
            policy=policy,
        )

    @property
    def top(self) -> dict[str, Any] | None:
        return self.hypotheses[0] if self.hypotheses else None

    @property
    def root(self) -> dict[str, Any] | None:
        """The component the top hypothesis names (when the run did not abstain)."""
        top = self.top
        if top is None or self.abstained:
            return None
        return self.components.get(str(top["component"]))

    @property
    def alerting(self) -> dict[str, Any] | None:
        return self.components.get(str(self.trigger.get("service") or ""))

    @property
    def onset(self) -> tuple[datetime, str] | None:
        """The root's onset (else the earliest anomalous component's), with its evidence."""
        root = self.root
        candidates = [root] if root and root.get("onset") else []
        if not candidates:
            candidates = sorted(
                (c for c in self.components.values() if c.get("anomalous") and c.get("onset")),
                key=lambda c: str(c["onset"]),
            )
        for component in candidates:
            if component.get("evidence") in self.evidence:
                return models.parse_time(component["onset"]), str(component["evidence"])
        return None

    def entries(self, kind: str) -> list[Mapping[str, Any]]:
        return [e for e in self.audit if e.get("kind") == kind]

    @property
    def decision(self) -> Mapping[str, Any] | None:
        decided = self.state.get("decision")
        return decided if isinstance(decided, Mapping) else None


# --- impact -----------------------------------------------------------------------------------


def _impact(facts: _Facts, *, slo: Slo | None, resolution: Resolution | None) -> Impact:
    onset = facts.onset
    data_end = _data_end(facts)
    recovered = _recovery(facts)
    verified = _verified_recovery(facts)
    if onset is None:
        end, end_kind = None, UNKNOWN
        duration = "unknown: no onset was found in the series"
    elif recovered is not None:
        end, end_kind = recovered[0], "recovered"
        duration = f"{_span(end - onset[0])} (onset to recovery in the series)"
    elif verified is not None:
        end, end_kind = verified[0], "recovered"
        duration = f"{_span(end - onset[0])} (onset to the verification that saw recovery)"
    elif resolution is not None:
        end, end_kind = resolution.at, "resolved"
        duration = (
            f"{_span(resolution.at - onset[0])} (onset to the incident's resolution; "
            "recovery is not visible in the stored series)"
        )
    else:
        end, end_kind = None, "ongoing"
        seen = _span(data_end - onset[0]) if data_end else UNKNOWN
        duration = f"at least {seen} (still anomalous when the stored data ends); end unknown"
    requests = _requests(facts, onset=onset[0] if onset else None, end=end)
    return Impact(
        onset=onset[0] if onset else None,
        end=end,
        end_kind=end_kind,
        data_end=data_end,
        duration=duration,
        requests=tuple(requests),
        requests_text=tuple(_requests_text(facts, requests=requests, onset=onset)),
        budget=_budget(facts, requests=requests, slo=slo, onset=onset[0] if onset else None),
    )


def _data_end(facts: _Facts) -> datetime | None:
    if facts.signals is None or facts.signals.grid.size == 0:
        window = facts.state.get("window")
        return models.parse_time(window["end"]) if window else None
    return _time(float(facts.signals.grid.times[-1]))


def _lead_signal(component: Mapping[str, Any] | None) -> dict[str, Any] | None:
    ranked = _ranked_signals(component)
    return ranked[0] if ranked else None


def _ranked_signals(component: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The component's signals, the telling ones first: strong ones (|z| ≥ 3) by what users
    feel first (errors, latency, …, resources), then the rest by strength."""
    if not component:
        return []

    def telling(signal: Mapping[str, Any]) -> tuple[int, int, float]:
        z = abs(float(signal.get("z") or 0.0))
        kind = str(signal.get("kind"))
        order = SIGNAL_PREFERENCE.index(kind) if kind in SIGNAL_PREFERENCE else 99
        return (0, order, -z) if z >= STRONG_Z else (1, 0, -z)

    return sorted(component.get("signals") or [], key=telling)


def _recovery(facts: _Facts) -> tuple[datetime, str] | None:
    """When the root's (else the alerting service's) lead signal came back, if it did."""
    onset = facts.onset
    component = facts.root or (facts.alerting if facts.abstained else None)
    lead = _lead_signal(component)
    if onset is None or lead is None or component is None:
        return None
    series = _series(facts, component=str(component["component"]), signal=lead)
    if series is None:
        return None
    times, values = series
    after = times >= onset[0].timestamp()
    base = float(lead.get("baseline") or 0.0)
    deviation = np.abs(values[after] - base)
    finite = np.isfinite(deviation)
    if not finite.any() or float(np.nanmax(deviation)) <= 0:
        return None
    inside = np.where(finite, deviation <= facts.policy.recovered_band * np.nanmax(deviation), 0)
    run = _trailing_true(inside.astype(bool))
    if run < 3:
        return None
    start = times[after][-run]
    if times[after][-1] - start < facts.policy.recovered_for_s:
        return None
    return _time(float(start)), str(lead["evidence"])


def _trailing_true(flags: np.ndarray) -> int:
    count = 0
    for flag in flags[::-1]:
        if not flag:
            break
        count += 1
    return count


def _series(
    facts: _Facts, *, component: str, signal: Mapping[str, Any]
) -> tuple[np.ndarray, np.ndarray] | None:
    """A signal's values over time: rebuilt from the bundle's series as the analysis built
    them, or, for a signal computed by its own query (a playbook's), that query's answer for
    the component."""
    found = facts.signals
    query = str(signal.get("query"))
    for row, info in enumerate(found.info if found is not None else []):
        if info.component == component and info.query == query:
            assert found is not None
            return found.grid.times, found.values[row]
    record = facts.evidence.get(str(signal.get("evidence")))
    raw = record.raw if record is not None and isinstance(record.raw, list) else []
    mine = [
        s
        for s in raw
        if isinstance(s, Mapping) and component in (s.get("labels") or {}).values() and s.get("t")
    ]
    if len(mine) != 1:
        return None
    values = [math.nan if v is None else float(v) for v in mine[0].get("v") or []]
    return np.asarray(mine[0]["t"], dtype=float), np.asarray(values, dtype=float)


def _rows(facts: _Facts, *, component: str, kind: str) -> list[tuple[signals_.SignalInfo, Any]]:
    found = facts.signals
    if found is None:
        return []
    return [
        (info, found.values[row])
        for row, info in enumerate(found.info)
        if info.component == component and info.kind == kind
    ]


def _requests(facts: _Facts, *, onset: datetime | None, end: datetime | None) -> list[Requests]:
    """Requests and failures of the alerting service and of the root, from their series."""
    if onset is None or facts.signals is None:
        return []
    names = [str(facts.trigger.get("service") or "")]
    root = facts.root
    if root and root["component"] not in names:
        names.append(str(root["component"]))
    found = []
    for name in names:
        counted = _count_requests(facts, service=name, onset=onset, end=end)
        if counted is not None:
            found.append(counted)
    return found


def _count_requests(
    facts: _Facts, *, service: str, onset: datetime, end: datetime | None
) -> Requests | None:
    assert facts.signals is not None
    grid = facts.signals.grid
    candidates = _rows(facts, component=service, kind="errors")
    candidates.sort(key=lambda row: "client" in row[0].metric)  # the service's own side first
    for info, ratio in candidates:
        rates = [
            v for i, v in _rows(facts, component=service, kind="traffic") if i.metric == info.metric
        ]
        if not rates:
            continue
        rate = np.nansum(np.vstack(rates), axis=0)
        times = grid.times
        before = times < onset.timestamp()
        during = ~before & (times <= (end.timestamp() if end else math.inf))
        base_ratio = _median(ratio[before])
        base_rate = _median(rate[before])
        bad = np.nan_to_num(ratio[during]) * np.nan_to_num(rate[during]) * grid.step
        over = np.clip(np.nan_to_num(ratio[during]) - base_ratio, 0.0, None)
        return Requests(
            service=service,
            total=float(np.nansum(rate[during]) * grid.step),
            failed=float(bad.sum()),
            excess=float((over * np.nan_to_num(rate[during]) * grid.step).sum()),
            baseline_ratio=base_ratio,
            baseline_rate=base_rate,
            evidence=info.evidence,
        )
    return None


def _median(values: np.ndarray) -> float:
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else 0.0


def _requests_text(
    facts: _Facts, *, requests: Sequence[Requests], onset: tuple[datetime, str] | None
) -> list[str]:
    if onset is None:
        return ["unknown (no onset was found, so there is no interval to count over)"]
    lines = [
        f"{r.service}: ≈ {_count(r.failed)} failed requests of ≈ {_count(r.total)} "
        f"(≈ {_count(r.excess)} above the pre-onset error ratio of {r.baseline_ratio:.2%}), "
        f"estimated from the request-rate and error-ratio series in {_refs([r.evidence])}"
        for r in requests
    ]
    counted = {r.service for r in requests}
    service = str(facts.trigger.get("service") or "")
    if service and service not in counted:
        lines.append(f"{service}: unknown (no request/error-ratio series for it in the evidence)")
    return lines or ["unknown (no request/error-ratio series in the evidence)"]


def _slo_in_evidence(facts: _Facts) -> Slo | None:
    """Sloth's ``slo:objective:ratio`` for the alerting service, when the bundle carries it."""
    service = str(facts.trigger.get("service") or "")
    values: dict[str, float] = {}
    for record in facts.evidence.values():
        for series in record.raw if isinstance(record.raw, list) else []:
            if not isinstance(series, Mapping):
                continue
            labels = series.get("labels") or {}
            name = labels.get("__name__")
            points = [v for v in series.get("v") or [] if isinstance(v, int | float)]
            if name in (SLOTH_OBJECTIVE, SLOTH_PERIOD) and service in labels.values() and points:
                values[str(name)] = float(points[-1])
    target = values.get(SLOTH_OBJECTIVE)
    if target is None or not 0.0 < target < 1.0:
        return None
    days = values.get(SLOTH_PERIOD) or 30.0
    return Slo(target=target, window_days=days, source=f"{SLOTH_OBJECTIVE} in the evidence")


def _budget(
    facts: _Facts, *, requests: Sequence[Requests], slo: Slo | None, onset: datetime | None
) -> str:
    service = str(facts.trigger.get("service") or "")
    if slo is None:
        return (
            f"unknown: no SLO target is configured for {service or 'the service'} "
            f"(`--slo-target`) or found in the evidence (`{SLOTH_OBJECTIVE}`)"
        )
    counted = next((r for r in requests if r.service == service), None)
    if onset is None:
        return (
            f"unknown: the {_percent(slo.target)} objective ({slo.source}) is known, but no "
            "onset was found, so there is no interval to count failures over"
        )
    if counted is None or counted.baseline_rate <= 0:
        return (
            f"unknown: the {_percent(slo.target)} objective ({slo.source}) is known, but no "
            f"request series of {service} gives a rate to measure it against"
        )
    budget = (1.0 - slo.target) * counted.baseline_rate * slo.window_days * 86400
    share = counted.failed / budget if budget > 0 else math.inf
    return (
        f"≈ {share:.1%} of the {slo.window_days:g}-day error budget of {service}'s "
        f"{_percent(slo.target)} objective ({slo.source}): ≈ {_count(counted.failed)} failed "
        f"requests against a budget of ≈ {_count(budget)}, assuming the pre-onset rate of "
        f"{counted.baseline_rate:.3g} req/s held over the whole window"
    )


def _has_slo(impact: Impact) -> bool:
    return not impact.budget.startswith("unknown: no SLO")


# --- timeline ---------------------------------------------------------------------------------


def _timeline(facts: _Facts, *, impact: Impact, resolution: Resolution | None) -> list[Line]:
    lines = [*_change_lines(facts), *_onset_lines(facts)]
    if facts.trigger.get("at"):
        title = facts.trigger.get("title") or "alert"
        lines.append(
            Line(
                models.parse_time(facts.trigger["at"]),
                f"alert fired ({title})",
                TRIGGER_REF,
                "alert",
            )
        )
    if facts.state.get("now"):
        started = models.parse_time(facts.state["now"])
        lines.append(Line(started, f"diagnosis {facts.run_id} started", STARTED_REF, "started"))
    lines += _audit_lines(facts)
    lines += _recovery_lines(facts, impact=impact)
    if resolution is not None:
        lines.append(Line(resolution.at, resolution.detail, resolution.ref, "resolved"))
    return sorted(lines, key=lambda line: line.at)


def _change_lines(facts: _Facts) -> list[Line]:
    window = facts.state.get("window")
    changes = (facts.state.get("correlation") or {}).get("changes") or []
    if not window:
        return []
    start, end = models.parse_time(window["start"]), models.parse_time(window["end"])
    culprit = (facts.top or {}).get("change") if not facts.abstained else None
    inside = [c for c in changes if start <= models.parse_time(c["at"]) <= end]
    onset = facts.onset
    anchor = onset[0] if onset else models.parse_time(facts.trigger.get("at") or window["end"])
    inside.sort(key=lambda c: abs((models.parse_time(c["at"]) - anchor).total_seconds()))
    lines = []
    for change in inside[: facts.policy.max_changes]:
        ref = _change_ref(facts, change)
        if ref is None:
            continue
        what = f"{change['kind']} {change['ref']}: {change['detail']}"
        kind = "change"
        if culprit and change["ref"] == culprit:
            what, kind = what + " (the change the top hypothesis names)", "culprit"
        lines.append(Line(models.parse_time(change["at"]), what, ref, kind))
    return lines


def _change_ref(facts: _Facts, change: Mapping[str, Any]) -> str | None:
    """The derived evidence of this change (else the listing it was read from)."""
    for record in facts.evidence.values():
        raw = record.raw
        if (
            record.source == "analysis"
            and isinstance(raw, Mapping)
            and (raw.get("ref"), raw.get("at")) == (change["ref"], change["at"])
        ):
            return record.id
    listing = str(change.get("evidence") or "")
    return listing if listing in facts.evidence else None


def _onset_lines(facts: _Facts) -> list[Line]:
    lines = []
    onset = facts.onset
    if onset is not None:
        name = (facts.root or {}).get("component") or "the earliest anomalous component"
        lead = _lead_signal(facts.root)
        how = f": {lead['kind']} {lead['metric']} {lead['detail']}".rstrip() if lead else ""
        lines.append(Line(onset[0], f"onset of the anomaly in {name}{how}", onset[1], "onset"))
    alerting = facts.alerting
    root_name = (facts.root or {}).get("component")
    if (
        alerting
        and alerting.get("anomalous")
        and alerting.get("onset")
        and alerting["component"] != root_name
        and alerting.get("evidence") in facts.evidence
    ):
        at = models.parse_time(alerting["onset"])
        what = f"alerting service {alerting['component']} becomes anomalous"
        lines.append(Line(at, what, str(alerting["evidence"]), "onset"))
    return lines


def _audit_lines(facts: _Facts) -> list[Line]:
    lines = []
    for entry in facts.audit:
        body = entry.get("entry") or {}
        key = str(entry.get("key"))
        kind = entry.get("kind")
        at = models.parse_time(body.get("at") or entry["at"])
        if kind == "proposal":
            fix = body.get("fix") or {}
            what = f"fix {fix.get('id')} proposed: {fix.get('kind')} {fix.get('target')}"
        elif kind == "approval":
            what = f"{body.get('approver')} approved {body.get('fix')}: {body.get('reason')}"
        elif kind == "decision" and body.get("verdict") == "reject":
            what = f"{body.get('approver')} rejected the proposed fixes: {body.get('reason')}"
            kind = "rejection"
        elif kind == "action":
            at = models.parse_time(entry["at"])
            what = _action_text(body)
            kind = "applied" if body.get("executed") else "action"
        elif kind == "verification":
            at = _verified_at(entry)
            why = f" ({body['why']})" if body.get("why") else ""
            what = f"verification of {key.partition(':')[2]}: {body.get('outcome', UNKNOWN)}{why}"
        else:
            continue
        lines.append(Line(at, what, f"audit:{key}", str(kind)))
    return lines


def _verified_at(entry: Mapping[str, Any]) -> datetime:
    """When a verification watch ended: its last sample, else when it was recorded."""
    samples = (entry.get("entry") or {}).get("samples") or []
    last = samples[-1].get("at") if samples and isinstance(samples[-1], Mapping) else None
    return models.parse_time(last or entry["at"])


def _verified_recovery(facts: _Facts) -> tuple[datetime, str] | None:
    """The watch after an applied fix saw the verification query recover (audit log)."""
    for entry in facts.entries("verification"):
        if (entry.get("entry") or {}).get("outcome") == "recovered":
            return _verified_at(entry), f"audit:{entry.get('key')}"
    return None


def _action_text(action: Mapping[str, Any]) -> str:
    if action.get("executed"):
        return f"fix {action.get('fix')} applied: `{action.get('command')}`"
    return (
        f"fix {action.get('fix')} handed to a human to apply (`{action.get('command')}`); "
        "whether and when it was applied is unknown"
    )


def _recovery_lines(facts: _Facts, *, impact: Impact) -> list[Line]:
    recovered = _recovery(facts)
    if recovered is not None:
        return [
            Line(
                recovered[0],
                "recovery: the lead signal is back near its baseline",
                recovered[1],
                "recovery",
            )
        ]
    lead = _lead_signal(facts.root)
    if impact.onset is None or impact.data_end is None or lead is None:
        return []
    if lead.get("evidence") not in facts.evidence:
        return []
    what = (
        f"stored data ends with {lead['kind']} {lead['metric']} {lead['detail']} still "
        f"away from its baseline: recovery unknown"
    )
    return [Line(impact.data_end, what.replace("  ", " "), str(lead["evidence"]), "data_end")]


# --- narrative sections -------------------------------------------------------------------------


def _summary(facts: _Facts, *, impact: Impact) -> list[str]:
    trigger = facts.trigger
    service = trigger.get("service") or UNKNOWN
    namespace = trigger.get("namespace") or UNKNOWN
    lines = [
        f"Alert: {trigger.get('title') or UNKNOWN} ({service} in {namespace}, "
        f"fired {trigger.get('at') or UNKNOWN}).",
    ]
    top = facts.top
    if top is None or facts.abstained:
        lines.append(
            "Root cause: not sure. The diagnosis abstained: the evidence was too weak to name one."
        )
    else:
        lines.append(
            f"Likely root cause ({_pct(top['confidence'])}, computed): {_inert(top['summary'])}."
        )
    lines.append(f"Duration: {impact.duration}.")
    lines.append(f"Decision: {_decision_text(facts)}.")
    return lines


def _decision_text(facts: _Facts) -> str:
    decision = facts.decision
    if decision is None:
        return (
            "none recorded (the run waits at the approval step)"
            if facts.state.get("fixes")
            else "none recorded"
        )
    if decision.get("verdict") == "reject":
        return f"{decision.get('approver')} rejected the proposed fixes ({decision.get('reason')})"
    return f"{decision.get('approver')} approved {decision.get('fix')} ({decision.get('reason')})"


def _root_cause(facts: _Facts) -> list[str]:
    top = facts.top
    if top is None:
        return ["Not sure: the diagnosis ranked no hypothesis. To be established by hand."]
    if facts.abstained:
        lines = ["Not sure: the diagnosis abstained. Its best candidates, none strong enough:"]
        lines += [f"- {_hypothesis_text(h)}" for h in facts.hypotheses[:3]]
        return lines
    lines = [_inert(top["summary"]), ""]
    lines.append(
        f"- kind: {top['kind']}; component: {top['component']}; "
        f"change: {top.get('change') or UNKNOWN}; confidence: {_pct(top['confidence'])} (computed)"
    )
    lines.append("- evidence: " + (_refs(top.get("evidence") or []) or "none cited"))
    lines.append("- counter-evidence: " + (_refs(top.get("counter_evidence") or []) or "none"))
    return lines


def _contributing(facts: _Facts) -> list[str]:
    others = facts.hypotheses[1:6] if not facts.abstained else []
    possible = [f"Possible: {_hypothesis_text(h)}" for h in others if float(h["confidence"]) > 0]
    ruled = [f"Ruled out: {_hypothesis_text(h)}" for h in others if float(h["confidence"]) <= 0]
    return possible + ruled or ["None identified by the diagnosis."]


def _hypothesis_text(hypothesis: Mapping[str, Any]) -> str:
    cited = _refs(hypothesis.get("evidence") or [])
    summary = _inert(hypothesis["summary"])
    return f"{summary} ({_pct(hypothesis['confidence'])}; {cited or 'no evidence'})"


def _inert(summary: str) -> str:
    """A hypothesis' summary for Markdown. The model's words (labelled so by code) go in a code
    span, redacted and on one line, so no link, image, emphasis or HTML in them is rendered."""
    if not summary.startswith(reasoning.MODEL_SAYS):
        return summary
    words = reasoning.model_text(summary[len(reasoning.MODEL_SAYS) :]).replace("`", "'")
    return f"{reasoning.MODEL_SAYS} `{words}`"


def _diagnosed_at(facts: _Facts) -> datetime | None:
    proposals = facts.entries("proposal")
    if proposals:
        return models.parse_time(proposals[0]["at"])
    if not facts.state.get("now"):
        return None
    spent = sum(float(v) for v in (facts.state.get("timings_s") or {}).values())
    return models.parse_time(facts.state["now"]) + timedelta(seconds=spent)


def _time_to_diagnose(facts: _Facts) -> timedelta | None:
    ready = _diagnosed_at(facts)
    if ready is None or not facts.trigger.get("at"):
        return None
    return ready - models.parse_time(facts.trigger["at"])


def _detection(facts: _Facts, *, impact: Impact) -> timedelta | None:
    if impact.onset is None or not facts.trigger.get("at"):
        return None
    return models.parse_time(facts.trigger["at"]) - impact.onset


def _went_well(facts: _Facts, *, impact: Impact) -> list[str]:
    lines = []
    took = _time_to_diagnose(facts)
    if took is not None and took.total_seconds() <= facts.policy.quick_diagnosis_s:
        lines.append(f"A ranked diagnosis was ready {_span(took)} after the alert.")
    detected = _detection(facts, impact=impact)
    if detected is not None and detected.total_seconds() <= facts.policy.slow_detection_s:
        lines.append(f"The alert fired {_span(detected)} after the onset.")
    decision = facts.decision
    fix = _decided_fix(facts)
    if decision and decision.get("verdict") == "approve" and fix and fix.get("hypothesis") == 0:
        lines.append(
            f"The fix for the top-ranked hypothesis ({fix['id']}) was approved by "
            f"{decision.get('approver')}."
        )
    failed = _failures(facts)
    if facts.evidence and not failed:
        lines.append(f"No source failed or refused ({len(facts.evidence)} evidence records).")
    return lines or ["Nothing the stored data shows as going well; to be written."]


def _went_badly(facts: _Facts, *, impact: Impact, extra: Sequence[str] = ()) -> list[str]:
    lines = list(extra)
    took = _time_to_diagnose(facts)
    if took is not None and took.total_seconds() > facts.policy.quick_diagnosis_s:
        lines.append(f"The diagnosis was ready only {_span(took)} after the alert.")
    detected = _detection(facts, impact=impact)
    if detected is not None and detected.total_seconds() > facts.policy.slow_detection_s:
        lines.append(f"The alert fired {_span(detected)} after the onset.")
    if facts.abstained:
        lines.append("The diagnosis abstained: no hypothesis was strong enough to name.")
    decision, fix = facts.decision, _decided_fix(facts)
    if decision and decision.get("verdict") == "reject":
        lines.append(
            f"The proposed fixes were rejected by {decision.get('approver')}: "
            f"{decision.get('reason')}."
        )
    elif decision and fix and fix.get("hypothesis") != 0:
        lines.append(f"The approved fix ({fix['id']}) was not for the top-ranked hypothesis.")
    lines += [
        f"{e.source} failed ({e.status.value}): {e.summary} [{e.id}](#{_anchor(e.id)})"
        for e in _failures(facts)
    ]
    lines += [f"Not consulted: {note}" for note in _unconfigured(facts)]
    return lines or ["Nothing the stored data shows as going badly; to be written."]


_UNCONFIGURED = re.compile(r"\bno\b.*\bconfigured\b")


def _unconfigured(facts: _Facts) -> list[str]:
    """The run's notes about sources it had no access to ("traces: no Tempo … configured")."""
    return [n for n in facts.state.get("notes") or [] if _UNCONFIGURED.search(str(n))]


def _failures(facts: _Facts) -> list[models.Evidence]:
    bad = (models.Status.ERROR, models.Status.DENIED)
    return [e for e in facts.evidence.values() if e.status in bad]


def _decided_fix(facts: _Facts) -> Mapping[str, Any] | None:
    decision = facts.decision
    if not decision or not decision.get("fix"):
        return None
    return next((f for f in facts.state.get("fixes") or [] if f["id"] == decision["fix"]), None)


def _actions(facts: _Facts, *, impact: Impact, slo_known: bool) -> list[str]:
    items = []
    top = facts.top
    if top and not facts.abstained and top.get("change"):
        items.append(
            f"Review {top['change']} and why the checks before it reached production did "
            "not stop it."
        )
    if facts.abstained or top is None:
        items.append("Establish the root cause by hand: the diagnosis could not name one.")
    decision, fix = facts.decision, _decided_fix(facts)
    if decision is None and facts.state.get("fixes"):
        first = facts.state["fixes"][0]
        items.append(
            f"Decide on the proposed fix {first['id']} ({first['kind']} {first['target']})."
        )
    applied = any((e.get("entry") or {}).get("executed") for e in facts.entries("action"))
    if fix is not None and not applied:
        items.append(
            f"Confirm {fix['id']} was applied (`{fix['command']}`) and that `{fix['verify']}` "
            "returned to its baseline."
        )
    elif fix is not None and _verified_recovery(facts) is None:
        items.append(
            f"{fix['id']} was applied but its verification did not see `{fix['verify']}` "
            "recover: check it by hand."
        )
    detected = _detection(facts, impact=impact)
    if detected is not None and detected.total_seconds() > facts.policy.slow_detection_s:
        items.append(f"Alert sooner: the alert fired {_span(detected)} after the onset.")
    items += [f"Restore access to {e.source}: {e.summary}" for e in _failures(facts)]
    items += [f"Configure the missing source: {note}" for note in _unconfigured(facts)]
    if not slo_known:
        items.append(
            f"Define an SLO for {facts.trigger.get('service') or 'the service'} so the next "
            "draft can compute the error budget burned."
        )
    return items


# --- plots ------------------------------------------------------------------------------------


def _plots(facts: _Facts, *, impact: Impact, timeline: Sequence[Line]) -> list[Plot]:
    """The root's and the alerting service's most telling signals that have a series."""
    markers = tuple(_markers(facts, impact=impact, timeline=timeline))
    plots: list[Plot] = []
    done: set[str] = set()
    for component in (facts.root, facts.alerting):
        if not component or component["component"] in done:
            continue
        name = str(component["component"])
        done.add(name)
        ranked = _ranked_signals(component)
        strong = [s for s in ranked if abs(float(s.get("z") or 0)) >= STRONG_Z]
        drawn = 0
        for signal in strong or ranked:
            series = _series(facts, component=name, signal=signal)
            if series is None:
                continue
            plots.append(
                _plot(len(plots) + 1, name=name, signal=signal, series=series, markers=markers)
            )
            drawn += 1
            if drawn == facts.policy.signals_per_plot_component or not strong:
                break
    return plots


def _plot(
    number: int,
    *,
    name: str,
    signal: Mapping[str, Any],
    series: tuple[np.ndarray, np.ndarray],
    markers: tuple[Marker, ...],
) -> Plot:
    times, values = series
    label = " ".join(str(p) for p in (signal["kind"], signal["metric"], signal["detail"]) if p)
    return Plot(
        name=f"plot-{number}-{_slug(name)}-{_slug(str(signal['kind']))}",
        title=f"{name}: {label} (z={float(signal.get('z') or 0):+.1f})",
        times=tuple(float(t) for t in times),
        values=tuple(float(v) if math.isfinite(v) else None for v in values),
        evidence=str(signal["evidence"]),
        markers=markers,
    )


def _markers(facts: _Facts, *, impact: Impact, timeline: Sequence[Line]) -> list[Marker]:
    found = []
    if impact.onset is not None:
        found.append(Marker(impact.onset, "onset", "onset"))
    culprit = (facts.top or {}).get("change")
    labels = {
        "alert": ("alert fired", "alert"),
        "culprit": (str(culprit), "change"),
        "approval": ("approved", "decision"),
        "rejection": ("rejected", "decision"),
        "action": ("fix handed over", "action"),
        "applied": ("fix applied", "action"),
        "verification": ("verified", "recovered"),
    }
    for line in timeline:
        if line.kind in labels:
            label, kind = labels[line.kind]
            found.append(Marker(line.at, label, kind))
    if impact.end is not None and impact.end_kind in ("recovered", "resolved"):
        found.append(Marker(impact.end, impact.end_kind, impact.end_kind))
    return found


# --- references -------------------------------------------------------------------------------


def _refs_of(timeline: Sequence[Line], *, impact: Impact, plots: Sequence[Plot]) -> list[str]:
    refs = [line.ref for line in timeline] + [r.evidence for r in impact.requests]
    return refs + [p.evidence for p in plots]


def _cited(
    facts: _Facts,
    *,
    refs: Sequence[str],
    resolution: Resolution | None,
    incident_log: Sequence[IncidentEvent] = (),
) -> dict[str, str]:
    refs = list(refs)
    logged = {e.ref: e.stored for e in incident_log}
    for hypothesis in facts.hypotheses[:6]:
        refs += [*hypothesis.get("evidence", []), *hypothesis.get("counter_evidence", [])]
    described: dict[str, str] = {}
    audit = {f"audit:{e.get('key')}": e for e in facts.audit}
    for ref in refs:
        if ref in described:
            continue
        if ref in facts.evidence:
            record = facts.evidence[ref]
            described[ref] = (
                f"{record.source} ({record.status.value}): {record.summary} — "
                f"`{_short(record.query)}`"
            )
        elif ref in audit:
            described[ref] = f"audit log, {audit[ref].get('kind')} entry of {audit[ref].get('at')}"
        elif ref == TRIGGER_REF:
            described[ref] = "the run's manifest: the trigger as received"
        elif ref == STARTED_REF:
            described[ref] = "the run's manifest: when the diagnosis started"
        elif resolution is not None and ref == resolution.ref:
            described[ref] = f"{resolution.detail} (stored as {ref})"
        elif ref in logged:
            described[ref] = logged[ref]
    return described


def _refs(ids: Sequence[str]) -> str:
    return ", ".join(f"[{i}](#{_anchor(i)})" for i in ids)


def _anchor(ref: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", ref.lower()).strip("-")


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "series"


def _short(query: str, limit: int = 240) -> str:
    flat = " ".join(query.split()).replace("`", "'")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# --- formatting -------------------------------------------------------------------------------


def _time(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, tz=UTC)


def _span(delta: timedelta) -> str:
    seconds = round(delta.total_seconds())
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{sign}{hours}h{minutes:02d}m"
    return f"{sign}{minutes}m{secs:02d}s" if minutes else f"{sign}{secs}s"


def _percent(ratio: float) -> str:
    return f"{ratio * 100:.6g}%"


def _pct(value: Any) -> str:
    return f"{float(value):.0%}"


def _count(value: float) -> str:
    if not math.isfinite(value):
        return UNKNOWN
    return f"{value:,.0f}"


# --- markdown ---------------------------------------------------------------------------------


def markdown(postmortem: Postmortem, *, images: Mapping[str, str] | None = None) -> str:
    """The draft as Markdown; ``images`` maps plot names to the file each was written to."""
    images = images or {}
    pm = postmortem
    impact = pm.impact
    out = [f"# Postmortem draft: {pm.title}", ""]
    out += [f"Run `{pm.run_id}`. Drafted from the run's stored evidence; unknowns are marked."]
    out += ["", "## Summary", "", *(f"- {line}" for line in pm.summary)]
    out += ["", "## Impact", ""]
    out.append(f"- Onset: {_when(impact.onset)}")
    ended = f" ({impact.end_kind})" if impact.end_kind != UNKNOWN else ""
    out.append(f"- End: {_when(impact.end)}{ended}")
    out.append(f"- Duration: {impact.duration}")
    out += [f"- Affected requests: {line}" for line in impact.requests_text]
    out.append(f"- Error budget burned: {impact.budget}")
    out += ["", "## Timeline (UTC)", ""]
    out += [
        f"- {_when(line.at)}: {line.what} — [{line.ref}](#{_anchor(line.ref)})"
        for line in pm.timeline
    ] or ["- unknown: nothing in the stored data could be placed in time"]
    out += ["", "## Root cause", "", *pm.root_cause]
    out += ["", "## Contributing factors", "", *(f"- {line}" for line in pm.contributing)]
    out += ["", "## What went well", "", *(f"- {line}" for line in pm.went_well)]
    out += ["", "## What went badly", "", *(f"- {line}" for line in pm.went_badly)]
    out += [
        "",
        "## Action items",
        "",
        *(f"- [ ] {item} (owner: unassigned)" for item in pm.actions),
    ]
    out += ["", "## Plots", ""]
    for plot in pm.plots:
        if plot.name in images:
            out += [
                f"![{plot.title}]({images[plot.name]})",
                "",
                f"{plot.title}, from [{plot.evidence}](#{_anchor(plot.evidence)}).",
                "",
            ]
    if not any(p.name in images for p in pm.plots):
        out += ["No plot: no series of the root or the alerting service in the evidence.", ""]
    out += ["## Evidence cited", ""]
    out += [f'- <a id="{_anchor(ref)}"></a>`{ref}`: {what}' for ref, what in pm.cited.items()]
    return "\n".join(out).rstrip() + "\n"


def _when(moment: datetime | None) -> str:
    return models.format_time(moment.replace(microsecond=0)) if moment else UNKNOWN
