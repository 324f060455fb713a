"""Which series a draft plots (the root's and the alerting service's most telling signals),
with the moments that matter marked; :mod:`diagnose.postmortem.plotting` draws them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from diagnose.postmortem import facts as facts_
from diagnose.postmortem import impact as impact_
from diagnose.postmortem import timeline as timeline_
from diagnose.postmortem import wording


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


_MARKED = {
    "alert": ("alert fired", "alert"),
    "approval": ("approved", "decision"),
    "rejection": ("rejected", "decision"),
    "action": ("fix handed over", "action"),
    "applied": ("fix applied", "action"),
    "verification": ("verified", "recovered"),
}
"""Timeline kinds drawn as markers: their label and their marker kind."""


def plots(
    facts: facts_.Facts, *, impact: impact_.Impact, timeline: Sequence[timeline_.Line]
) -> list[Plot]:
    """The root's and the alerting service's most telling signals that have a series."""
    markers = tuple(_markers(facts, impact=impact, timeline=timeline))
    found: list[Plot] = []
    done: set[str] = set()
    for component in (facts.root, facts.alerting):
        if not component or component.name in done:
            continue
        done.add(component.name)
        ranked = component.ranked_signals()
        strong = [s for s in ranked if s.strong]
        drawn = 0
        for signal in strong or ranked:
            series = facts.series(component=component.name, signal=signal)
            if series is None:
                continue
            number = len(found) + 1
            found.append(
                _plot(number, name=component.name, signal=signal, series=series, markers=markers)
            )
            drawn += 1
            if drawn == facts.policy.signals_per_plot_component or not strong:
                break
    return found


def _plot(
    number: int,
    *,
    name: str,
    signal: facts_.Signal,
    series: facts_.Series,
    markers: tuple[Marker, ...],
) -> Plot:
    times, values = series
    label = " ".join(p for p in (signal.kind, signal.metric, signal.detail) if p)
    return Plot(
        name=f"plot-{number}-{wording.slug(name)}-{wording.slug(signal.kind)}",
        title=f"{name}: {label} (z={signal.z:+.1f})",
        times=tuple(float(t) for t in times),
        values=tuple(float(v) if math.isfinite(v) else None for v in values),
        evidence=signal.evidence,
        markers=markers,
    )


def _markers(
    facts: facts_.Facts, *, impact: impact_.Impact, timeline: Sequence[timeline_.Line]
) -> list[Marker]:
    found = []
    if impact.onset is not None:
        found.append(Marker(impact.onset, "onset", "onset"))
    culprit = facts.top.change if facts.top else None
    for line in timeline:
        if line.kind == "culprit":
            found.append(Marker(line.at, str(culprit), "change"))
        elif line.kind in _MARKED:
            label, kind = _MARKED[line.kind]
            found.append(Marker(line.at, label, kind))
    if impact.end is not None and impact.end_kind in ("recovered", "resolved"):
        found.append(Marker(impact.end, impact.end_kind, impact.end_kind))
    return found
