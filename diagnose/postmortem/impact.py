"""A run's impact, computed from the bundle's series (request rate, error ratio), never guessed:
when it began and ended, the requests that failed, the error budget they burned. What cannot be
computed is written as *unknown*, with the reason."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from diagnose.postmortem import facts as facts_
from diagnose.postmortem import wording

SLOTH_OBJECTIVE = "slo:objective:ratio"
"""Sloth's recording rule holding an SLO's objective (0.999); with ``slo:time_period:days``."""
SLOTH_PERIOD = "slo:time_period:days"


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

    @property
    def slo_known(self) -> bool:
        return not self.budget.startswith("unknown: no SLO")


def measure(
    facts: facts_.Facts,
    *,
    slo: facts_.Slo | None,
    default_slo: facts_.Slo | None,
    resolution: facts_.Resolution | None,
) -> Impact:
    """The impact of the run's incident. ``slo`` wins over a Sloth objective in the evidence,
    which wins over ``default_slo``."""
    slo = slo or slo_in_evidence(facts) or default_slo
    onset = facts.onset
    data_end = facts.data_end
    recovered = recovery(facts)
    verified = facts.verified_recovery()
    if onset is None:
        end, end_kind = None, facts_.UNKNOWN
        duration = "unknown: no onset was found in the series"
    elif recovered is not None:
        end, end_kind = recovered[0], "recovered"
        duration = f"{wording.span(end - onset[0])} (onset to recovery in the series)"
    elif verified is not None:
        end, end_kind = verified[0], "recovered"
        duration = f"{wording.span(end - onset[0])} (onset to the verification that saw recovery)"
    elif resolution is not None:
        end, end_kind = resolution.at, "resolved"
        duration = (
            f"{wording.span(resolution.at - onset[0])} (onset to the incident's resolution; "
            "recovery is not visible in the stored series)"
        )
    else:
        end, end_kind = None, "ongoing"
        seen = wording.span(data_end - onset[0]) if data_end else facts_.UNKNOWN
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


def recovery(facts: facts_.Facts) -> tuple[datetime, str] | None:
    """When the root's (else the alerting service's) lead signal came back, if it did."""
    onset = facts.onset
    component = facts.root or (facts.alerting if facts.abstained else None)
    lead = component.lead_signal() if component else None
    if onset is None or lead is None or component is None:
        return None
    series = facts.series(component=component.name, signal=lead)
    if series is None:
        return None
    times, values = series
    after = times >= onset[0].timestamp()
    deviation = np.abs(values[after] - lead.baseline)
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
    return facts_.moment(float(start)), lead.evidence


def _trailing_true(flags: np.ndarray) -> int:
    count = 0
    for flag in flags[::-1]:
        if not flag:
            break
        count += 1
    return count


def _requests(
    facts: facts_.Facts, *, onset: datetime | None, end: datetime | None
) -> list[Requests]:
    """Requests and failures of the alerting service and of the root, from their series."""
    if onset is None or facts.signals is None:
        return []
    names = [facts.trigger.service]
    root = facts.root
    if root and root.name not in names:
        names.append(root.name)
    found = []
    for name in names:
        counted = _count_requests(facts, service=name, onset=onset, end=end)
        if counted is not None:
            found.append(counted)
    return found


def _count_requests(
    facts: facts_.Facts, *, service: str, onset: datetime, end: datetime | None
) -> Requests | None:
    assert facts.signals is not None
    grid = facts.signals.grid
    candidates = facts.rows(component=service, kind="errors")
    candidates.sort(key=lambda row: "client" in row[0].metric)  # the service's own side first
    for info, ratio in candidates:
        rates = [
            v for i, v in facts.rows(component=service, kind="traffic") if i.metric == info.metric
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
    facts: facts_.Facts, *, requests: Sequence[Requests], onset: tuple[datetime, str] | None
) -> list[str]:
    if onset is None:
        return ["unknown (no onset was found, so there is no interval to count over)"]
    lines = [
        f"{r.service}: ≈ {wording.count(r.failed)} failed requests of ≈ "
        f"{wording.count(r.total)} (≈ {wording.count(r.excess)} above the pre-onset error "
        f"ratio of {r.baseline_ratio:.2%}), estimated from the request-rate and error-ratio "
        f"series in {wording.refs([r.evidence])}"
        for r in requests
    ]
    counted = {r.service for r in requests}
    service = facts.trigger.service
    if service and service not in counted:
        lines.append(f"{service}: unknown (no request/error-ratio series for it in the evidence)")
    return lines or ["unknown (no request/error-ratio series in the evidence)"]


def slo_in_evidence(facts: facts_.Facts) -> facts_.Slo | None:
    """Sloth's ``slo:objective:ratio`` for the alerting service, when the bundle carries it."""
    service = facts.trigger.service
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
    return facts_.Slo(target=target, window_days=days, source=f"{SLOTH_OBJECTIVE} in the evidence")


def _budget(
    facts: facts_.Facts,
    *,
    requests: Sequence[Requests],
    slo: facts_.Slo | None,
    onset: datetime | None,
) -> str:
    service = facts.trigger.service
    if slo is None:
        return (
            f"unknown: no SLO target is configured for {service or 'the service'} "
            f"(`--slo-target`) or found in the evidence (`{SLOTH_OBJECTIVE}`)"
        )
    counted = next((r for r in requests if r.service == service), None)
    objective = f"{wording.percent(slo.target)} objective ({slo.source})"
    if onset is None:
        return (
            f"unknown: the {objective} is known, but no onset was found, so there is no "
            "interval to count failures over"
        )
    if counted is None or counted.baseline_rate <= 0:
        return (
            f"unknown: the {objective} is known, but no request series of {service} gives a "
            "rate to measure it against"
        )
    budget = (1.0 - slo.target) * counted.baseline_rate * slo.window_days * 86400
    share = counted.failed / budget if budget > 0 else math.inf
    return (
        f"≈ {share:.1%} of the {slo.window_days:g}-day error budget of {service}'s "
        f"{objective}: ≈ {wording.count(counted.failed)} failed requests against a budget of "
        f"≈ {wording.count(budget)}, assuming the pre-onset rate of "
        f"{counted.baseline_rate:.3g} req/s held over the whole window"
    )
