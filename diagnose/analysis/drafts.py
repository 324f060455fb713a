"""A hypothesis in the making (:class:`Draft`) and the confidence policy every ranking rule
reads; see :mod:`diagnose.analysis.ranking` and docs/analysis.md."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from diagnose.analysis import components as components_
from diagnose.domain import models


@dataclass(frozen=True)
class ConfidencePolicy:
    """How confidence is computed and when the analysis abstains (docs/analysis.md)."""

    abstain_below: float = 0.35
    """The best hypothesis needs at least this confidence, else the analysis abstains."""
    tie_margin: float = 0.05
    """A leader whose ordering score is within this share of the runner-up's is a coin flip
    between two explanations: its relative confidence fades to half at an exact tie."""
    strength_scale: float = 10.0
    """Strength ``1 - exp(-score / strength_scale)``: a 10σ component gives 0.63."""
    near_s: float = 900.0
    """A change up to 15 minutes before the onset explains it fully…"""
    decay_s: float = 1800.0
    """…and older ones fade with this time constant (long before = weak)."""
    slack_s: float = 90.0
    """Onsets are estimated: a change this much after one still counts as before it."""
    change_bonus: float = 0.6
    """A fully matching change multiplies a component's rank by 1 + this."""
    max_hypotheses: int = 8
    trace_weight: float = 0.5
    """A trace suspect of score ``s`` multiplies its hypothesis's ordering score by 1 + this × s."""
    trace_fit: float = 0.8
    """The least fit of a component the traces name: its own time or errors changed."""
    canary_fit: float = 0.9
    """Fit of a failing canary whose rollout the cluster evidence shows (``trace_fit`` if not)."""
    waiting_penalty: float = 0.6
    """A component that calls, in the traces, a suspect seen only there: × this."""
    off_path_penalty: float = 0.4
    """A workload the trace back end has no spans of, while it has the request path's: × this."""
    path_services: int = 3
    """The back end has the request path's spans when it lists at least this many services."""
    node_late_s: float = 600.0
    """A node's trouble is reported after it began (the kubelet's and node controller's grace
    periods, probe thresholds): a node event up to this long after an onset still fits it."""
    node_min_workloads: int = 2
    """A node is blamed only when it hosts at least this many anomalous workloads that no
    change of their own explains: with one, the workload itself is the simpler explanation."""
    node_symptom: float = 0.5
    """The workloads a blamed node hosts are its symptoms: their ordering score × this."""
    drift_fit: float = 0.75
    """An unexplained component already drifting up before the window's data: its start, and
    so its cause, cannot be placed."""
    cause_weights: tuple[tuple[str, float], ...] = ()
    """Optional (cause kind, factor) pairs on the ordering score of that kind's hypotheses
    (a playbook's ``weights``); kinds not named keep factor 1."""


@dataclass(frozen=True)
class Draft:
    """A hypothesis before confidence: its ordering score and what supports it."""

    kind: models.CauseKind
    component: str
    score: float
    strength: float
    fit: float  # how well the explanation fits: change precedence, own signals
    summary: str
    evidence: tuple[str, ...]
    counter: tuple[str, ...]
    change: str | None
    onset: datetime | None


def describe(component: components_.ComponentScore) -> str:
    parts = []
    for signal in component.signals[:2]:
        detail = f" {signal.detail}" if signal.detail else ""
        if signal.thin and signal.baseline > 0:
            # no spread to measure: the level's ratio says what the data can
            ratio = signal.after / signal.baseline
            change = f"{ratio:.3g}× its level (a baseline of a few samples)"
        else:
            change = f"{signal.z:+.1f}σ"
        if signal.ended is not None:
            change += f" (over: back within its baseline from {models.format_time(signal.ended)})"
        parts.append(f"{signal.kind} {signal.metric}{detail} {change}")
    return ", ".join(parts) or "no scored signals"
