"""When the graph probes the database, and how a probe's findings take their place in the ranking.

Probes are cheap, bounded and read-only, so ``probe_db`` runs whenever a database is configured
and the incident shows latency or errors anywhere in scope, not only when the ranking already
points at the database: a lock held by a migration, or a session left idle in its transaction,
shows in the metrics only as services that are slow or failing, never as a database series of
its own.

When a probe finds a session that holds others up (the root of a blocking chain, or a session
idle in a transaction that holds locks or the connections others need) and the services'
hypotheses are only that they are slow or failing (no resource signal of their own, no change
that precedes them), the database hypothesis is ranked above them, citing both the probe and
the services' evidence: the services wait on it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from diagnose.domain import models
from sandbox import findings as db_findings

SYMPTOM_KINDS = frozenset({"latency", "errors"})
"""Signals that show an incident users feel, whatever its cause."""

OWN_CAUSE_KINDS = frozenset({"cpu", "memory", "throttling", "restarts"})
"""Signals that are a component's own trouble: such a component is not merely waiting."""

SYMPTOM_Z = 5.0
"""A symptom counts from this z (the analysis's default threshold for an anomalous signal)."""

LEAD = 0.05
"""How far above the best waiting service an explaining database hypothesis is placed."""

CEILING = 0.95
"""No database hypothesis is lifted above this confidence."""


def should_probe(correlation: Mapping[str, Any], *, configured: bool, asked: bool) -> bool:
    """Probe when a database is configured and the incident shows latency or errors, when the
    evidence points at the database, when a playbook asks, or when nothing convinces."""
    if not configured:
        return False
    return (
        asked
        or bool(correlation.get("abstained", True))
        or points_at_database(correlation)
        or bool(symptomatic(correlation))
    )


def points_at_database(correlation: Mapping[str, Any]) -> bool:
    """A database hypothesis among the first three, or an anomalous database component or
    signal."""
    top = correlation.get("hypotheses", [])[:3]
    return any(h["kind"] == "database" for h in top) or any(
        str(c.get("component", "")).startswith("postgres/")
        or any(s.get("kind") == "database" for s in c.get("signals", []))
        for c in correlation.get("components", [])
        if c.get("anomalous")
    )


def symptomatic(correlation: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The anomalous components with an anomalous latency or error signal."""
    return [
        c
        for c in correlation.get("components", [])
        if c.get("anomalous")
        and any(
            s.get("kind") in SYMPTOM_KINDS and float(s.get("z") or 0.0) >= SYMPTOM_Z
            for s in c.get("signals", [])
        )
    ]


def waiting(
    correlation: Mapping[str, Any], hypotheses: Sequence[models.Hypothesis]
) -> list[models.Hypothesis]:
    """The hypotheses that say no more than "this service is slow or failing": their component
    shows latency or errors, no resource signal of its own, and no change is blamed."""
    components = {str(c.get("component")): c for c in symptomatic(correlation)}
    return [
        h
        for h in hypotheses
        if h.kind is not models.CauseKind.DATABASE
        and h.change is None
        and h.component in components
        and not _own_trouble(components[h.component])
    ]


def _own_trouble(component: Mapping[str, Any]) -> bool:
    return any(
        s.get("kind") in OWN_CAUSE_KINDS and float(s.get("z") or 0.0) >= SYMPTOM_Z
        for s in component.get("signals", [])
    )


def holders(findings: Sequence[db_findings.Finding]) -> list[db_findings.Finding]:
    """The findings that hold other sessions up: blocking-chain roots, and sessions idle in a
    transaction that hold locks, or whose database is short of connections."""
    saturated = {f.name for f in findings if isinstance(f, db_findings.Saturation)}
    return [
        f
        for f in findings
        if isinstance(f, db_findings.LockPileUp)
        or (
            isinstance(f, db_findings.IdleInTransaction)
            and (f.locks_held > 0 or f.database in saturated or "all" in saturated)
        )
    ]


def explain_waiting(
    correlation: Mapping[str, Any],
    found: Sequence[models.Hypothesis],
    *,
    findings: Sequence[db_findings.Finding],
) -> list[models.Hypothesis]:
    """The probe's hypotheses in their order, the one that best explains the services' wait
    per database placed above every service hypothesis that only waits (see the module
    docstring)."""
    current = [models.Hypothesis.from_dict(h) for h in correlation.get("hypotheses", [])]
    slow = waiting(correlation, current)
    cited = {e for f in holders(findings) for e in f.evidence}
    chosen: dict[str, int] = {}
    for index in sorted(range(len(found)), key=lambda i: -found[i].confidence):
        if slow and cited & set(found[index].evidence):
            chosen.setdefault(found[index].component, index)
    lifted = set(chosen.values())
    return [
        _above(h, slow=slow, correlation=correlation) if i in lifted else h
        for i, h in enumerate(found)
    ]


def _above(
    hypothesis: models.Hypothesis,
    *,
    slow: Sequence[models.Hypothesis],
    correlation: Mapping[str, Any],
) -> models.Hypothesis:
    best = max(h.confidence for h in slow)
    names = list(dict.fromkeys(h.component for h in slow))
    evidence = {
        str(c.get("component")): str(c["evidence"])
        for c in correlation.get("components", [])
        if c.get("evidence")
    }
    waited = tuple(evidence[n] for n in names if n in evidence)
    return dataclasses.replace(
        hypothesis,
        confidence=round(min(CEILING, max(hypothesis.confidence, best + LEAD)), 4),
        summary=f"{hypothesis.summary}; {', '.join(names)} slow or failing with no resource "
        "signal or change of their own: they wait on it",
        evidence=tuple(dict.fromkeys((*hypothesis.evidence, *waited))),
    )
