"""Signals → components: how anomalous each is, since when, and how likely it is the root.

A component's strength is the sum of its best three signal scores, compressed and discounted
(1, ½, ¼). Its onset is the earliest onset among its signals that reach half its best score.
Its root likelihood (``rank``) counts its own signals (resources, its own errors, a database's or
an external dependency's signals) fully and inherited ones (latency, traffic, saturation) at
:attr:`RankingPolicy.inherited_weight`, then discounts a component whose onset clearly follows
the earliest one, and a caller whose callee is anomalous at the same time.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from diagnose.analysis import scoring, signals
from diagnose.domain import models

OWN_KINDS = frozenset({*signals.RESOURCE_KINDS, "errors", "database", "availability"})
"""Signal kinds a component produces itself rather than inherits from its callees."""


@dataclass(frozen=True)
class RankingPolicy:
    """How components are ordered; each number is explained in docs/analysis.md."""

    inherited_weight: float = 0.35
    """Latency, traffic and saturation count this much towards a root: callers inherit them."""
    later_penalty: float = 0.6
    """A component whose onset follows the earliest anomalous onset after the baseline's end
    (the earliest of all when none is after it) by more than the tolerance."""
    caller_penalty: float = 0.6
    """The inherited part of the rank (latency, traffic, saturation) of a caller whose callee
    is anomalous and started no later than it; its own signals' part is kept."""
    tolerance_steps: int = 3
    """Onsets closer than this many steps (and at least ``tolerance_s``) count as simultaneous."""
    tolerance_s: float = 60.0
    drift_t: float = 8.0
    """A steady climb before the onset counts as a drift at this t-statistic of its slope."""
    drift_points: int = 20
    """A drift needs at least this many points before the onset."""


@dataclass(frozen=True)
class SignalScore:
    """One signal's result, as reported."""

    metric: str
    kind: str
    detail: str
    query: str
    evidence: str
    z: float
    baseline: float
    after: float
    onset: datetime | None
    thin: bool = False  # scored against a thin baseline (docs/analysis.md, step 1)
    ended: datetime | None = None  # back within its baseline from then on, before the alert

    def to_dict(self) -> dict[str, models.JSON]:
        return {
            "metric": self.metric,
            "kind": self.kind,
            "detail": self.detail,
            "query": self.query,
            "evidence": self.evidence,
            "z": _round(self.z),
            "baseline": _round(self.baseline),
            "after": _round(self.after),
            "onset": models.format_time(self.onset) if self.onset else None,
            "thin_baseline": self.thin,
            "ended": models.format_time(self.ended) if self.ended else None,
        }


@dataclass(frozen=True)
class ComponentScore:
    """How anomalous a component is and how likely it is the root cause."""

    component: str
    score: float  # strength: compressed z of its best signals
    rank: float  # root likelihood, for ordering
    onset: datetime | None
    anomalous: bool
    own: bool  # has anomalous signals of its own (resources, errors, database)
    signals: tuple[SignalScore, ...]
    rows: tuple[int, ...]  # rows of the signal matrix, best first
    evidence: str | None = None  # id of the derived evidence describing it
    since: datetime | None = None  # when its rise began: the onset, or the start of the data
    # when a latency or error signal was already drifting up before it (see _drifting)
    resolution_s: float = 0.0  # the sampling interval of the signals that place its onset: the
    # onset is known to within about one of these
    own_rank: float = 0.0  # the part of ``rank`` its own signals give (resources, errors, …)

    def to_dict(self) -> dict[str, models.JSON]:
        return {
            "component": self.component,
            "score": _round(self.score),
            "rank": _round(self.rank),
            "onset": models.format_time(self.onset) if self.onset else None,
            "anomalous": self.anomalous,
            "own": self.own,
            "evidence": self.evidence,
            "signals": [s.to_dict() for s in self.signals],
        }


def compress(z: float) -> float:
    """Linear up to 10, logarithmic above: a 1000-sigma CPU jump should not drown everything."""
    return z if z <= 10 else 10.0 * (1.0 + math.log(z / 10.0))


def score_components(
    found: signals.Signals,
    scores: scoring.Scores,
    *,
    policy: scoring.ScoringPolicy,
    ranking: RankingPolicy,
    baseline_end: datetime | None = None,
) -> list[ComponentScore]:
    """Every component with at least one scored signal, best root candidate first.
    ``baseline_end``: where the scores' baseline ends (onsets before it set no reference for
    the later-onset penalty)."""
    by_component: dict[str, list[int]] = {}
    for row, info in enumerate(found.info):
        if scores.scored[row]:
            by_component.setdefault(info.component, []).append(row)
    times = found.grid.times
    drafts = [
        _draft(name, rows, found=found, scores=scores, times=times, policy=policy, ranking=ranking)
        for name, rows in by_component.items()
    ]
    return _rank(
        drafts, grid=found.grid, edges=found.edges, ranking=ranking, baseline_end=baseline_end
    )


def ended_before_symptom(
    found: signals.Signals,
    scores: scoring.Scores,
    ranked: Sequence[ComponentScore],
    *,
    symptom: str,
    ranking: RankingPolicy,
) -> tuple[scoring.Scores, dict[str, datetime]]:
    """A cause is still under way when its effect begins. The rows of other components whose
    anomaly was over (``Scores.ended``) before the alerted component's own rise began, by more
    than two onsets' uncertainty (the later-onset tolerance), are scored by where they are now:
    an earlier episode, not the cause of this one. Returns the scores and, per component
    affected, when its symptom began. Nothing changes when the alerted component shows no
    anomaly of its own (nothing says when the symptom began)."""
    alerted = next(
        (c for c in ranked if same_workload(c.component, symptom) and c.anomalous and c.onset),
        None,
    )
    if alerted is None or alerted.onset is None or scores.ended is None or scores.now is None:
        return scores, {}
    # a rise already drifting up before its onset began with the data (``since``)
    start = alerted.since or alerted.onset
    began = start.timestamp()
    floor = max(ranking.tolerance_steps * found.grid.step, ranking.tolerance_s)
    score = scores.score.copy()
    affected: dict[str, datetime] = {}
    for row in np.flatnonzero(np.isfinite(scores.ended)):
        info = found.info[int(row)]
        if same_workload(info.component, alerted.component):
            continue
        tolerance = max(floor, 2 * max(found.interval_s(int(row)), alerted.resolution_s))
        if float(scores.ended[row]) + tolerance < began:
            score[row] = float(scores.now[row])
            affected[info.component] = start
    if not affected:
        return scores, {}
    return dataclasses.replace(scores, score=score), affected


def _draft(
    name: str,
    rows: list[int],
    *,
    found: signals.Signals,
    scores: scoring.Scores,
    times: np.ndarray,
    policy: scoring.ScoringPolicy,
    ranking: RankingPolicy,
) -> ComponentScore:
    rows = sorted(rows, key=lambda r: -float(scores.score[r]))
    external = name.startswith(("external/", "postgres/"))
    # a slice of a service's requests (one route) stands in for the whole, never beside it
    wholes: dict[tuple[str, str, str], int] = {}
    for r in rows:
        info = found.info[r]
        wholes.setdefault((info.metric, info.kind, info.part_of or info.detail), r)
    best = [compress(float(scores.score[r])) for r in list(wholes.values())[:3]]
    strength = sum(w * s for w, s in zip((1.0, 0.5, 0.25), best, strict=False))
    top = float(scores.score[rows[0]])
    anomalous_rows = [r for r in rows if scores.score[r] >= policy.anomalous]
    own_rows = [r for r in anomalous_rows if external or found.info[r].kind in OWN_KINDS]
    own = max((compress(float(scores.score[r])) for r in own_rows), default=0.0)
    inherited = max(
        (compress(float(scores.score[r])) for r in anomalous_rows if r not in own_rows), default=0.0
    )
    leading = [r for r in anomalous_rows if scores.score[r] >= 0.5 * top]
    onset_index = min((int(scores.onset[r]) for r in leading), default=-1)
    resolution = max((found.interval_s(r) for r in leading), default=found.grid.step)
    since_index = onset_index
    if onset_index > 0 and any(
        _drifting(r, found=found, scores=scores, until=onset_index, ranking=ranking)
        for r in rows
        if found.info[r].kind in ("latency", "errors") and scores.signed[r] > 0
    ):
        since_index = 0
    return ComponentScore(
        component=name,
        score=strength,
        rank=own + ranking.inherited_weight * inherited if anomalous_rows else 0.1 * strength,
        own_rank=own if anomalous_rows else 0.0,
        onset=_at(times, onset_index),
        anomalous=bool(anomalous_rows),
        own=bool(own_rows),
        signals=tuple(_signal(r, found=found, scores=scores, times=times) for r in rows[:5]),
        rows=tuple(rows),
        since=_at(times, since_index),
        resolution_s=resolution,
    )


_QUANTILE_DETAIL = re.compile(r"^(?:(.*),)?(?:p|quantile=0?\.?)(\d+)(?:,(.*))?$")
_QUANTILE_NAME = re.compile(r"^(.*?)[:_.]?p(\d{2,3})$")


def _quantile(info: signals.SignalInfo) -> tuple[tuple[str, str, str], float] | None:
    """A latency row's family (component, metric family, other labels) and quantile, when it is
    one quantile of several (``p95`` of a histogram, ``quantile=0.99`` of a summary, a recording
    rule named ``…:p99``)."""
    if info.kind != "latency" or info.part_of:
        return None
    found = _QUANTILE_DETAIL.match(info.detail)
    if found:
        rest = ",".join(x for x in (found.group(1), found.group(3)) if x)
        return (info.component, info.metric, rest), float("0." + found.group(2))
    named = _QUANTILE_NAME.match(info.metric)
    if named and not info.detail.startswith("p"):
        return (info.component, named.group(1), info.detail), float("0." + named.group(2))
    return None


def settled_tails(found: signals.Signals, scores: scoring.Scores) -> scoring.Scores:
    """A quantile that rises only to where a higher quantile of the same latency already sat
    in the baseline (within one of its baseline scales): the slow requests were there before,
    and a few more of them crossed the lower quantile (a long poll, a timeout in a wide top
    bucket, a mode the series already had). Its score becomes the higher quantile's, which says
    how much the slow tail itself moved."""
    families: dict[tuple[str, str, str], list[tuple[float, int]]] = {}
    for row, info in enumerate(found.info):
        key = _quantile(info)
        if key is not None and scores.scored[row]:
            families.setdefault(key[0], []).append((key[1], row))
    score, signed = scores.score.copy(), scores.signed.copy()
    for members in families.values():
        members.sort()
        for index, (_, row) in enumerate(members):
            level = float(scores.after[row])
            settled = [
                float(scores.score[r])
                for _, r in members[index + 1 :]
                if np.isfinite(scores.median[r]) and 0 < level <= scores.median[r] + scores.scale[r]
            ]
            if settled and score[row] > min(settled):
                score[row] = min(settled)
                signed[row] = math.copysign(score[row], signed[row])
    return dataclasses.replace(scores, score=score, signed=signed)


def _drifting(
    row: int, *, found: signals.Signals, scores: scoring.Scores, until: int, ranking: RankingPolicy
) -> bool:
    """Whether the row was already climbing steadily before ``until`` (the component's onset)
    and that climb, carried on, accounts for most of its level after it: a drift under way
    before the data, not a step at the onset. A least-squares line over the points before
    ``until``: its slope must stand out from the residual noise (t ≥ ``drift_t``) and its
    extrapolation must reach at least half the rise seen after ``until``."""
    values = found.values[row]
    width = found.width(row)  # one point per real sample: repeats are not independent
    before = np.flatnonzero(np.isfinite(values[:until]))[::width]
    after = np.flatnonzero(np.isfinite(values[until:]))[::width] + until
    if before.size < ranking.drift_points or after.size < 2:
        return False
    x, y = before.astype(float), values[before]
    dx = x - x.mean()
    leverage = float(np.sqrt(np.sum(dx**2)))
    slope = float(np.sum(dx * (y - y.mean()))) / leverage**2
    intercept = float(y.mean()) - slope * float(x.mean())
    resid = y - (slope * x + intercept)
    spread = float(np.sqrt(np.sum(resid**2) / (x.size - 2)))
    if spread <= 0 or slope <= 0 or slope * leverage / spread < ranking.drift_t:
        return False
    level = float(np.median(values[after]))
    start = float(np.median(y[: max(3, y.size // 4)]))
    projected = float(slope * np.median(after) + intercept)
    return level > start and projected - start >= 0.5 * (level - start)


def _rank(
    drafts: list[ComponentScore],
    *,
    grid: signals.Grid,
    edges: frozenset[tuple[str, str]],
    ranking: RankingPolicy,
    baseline_end: datetime | None = None,
) -> list[ComponentScore]:
    floor = max(ranking.tolerance_steps * grid.step, ranking.tolerance_s)
    onsets = {d.component: d.onset for d in drafts if d.anomalous and d.onset}
    resolutions = {d.component: d.resolution_s for d in drafts if d.anomalous and d.onset}
    # the reference is the first onset after the baseline's end: one inside the baseline is,
    # by the baseline's own definition, before the incident, and makes no later onset late
    late = {c: t for c, t in onsets.items() if baseline_end is None or t >= baseline_end}
    late = late or onsets
    first = min(late, key=lambda c: (late[c], c), default=None)
    ranked = []
    for draft in drafts:
        factor = 1.0
        # two onsets each known to within a sampling interval may differ by two of them
        tolerance = max(floor, 2 * max(draft.resolution_s, resolutions.get(first or "", 0.0)))
        if draft.onset and first and (draft.onset - onsets[first]).total_seconds() > tolerance:
            factor *= ranking.later_penalty
        rank = draft.rank
        if _calls_anomalous(draft, onsets=onsets, edges=edges, tolerance=tolerance):
            # a slow or failing callee explains its callers' latency and errors, not their
            # own CPU, memory or restarts: only the inherited part yields
            own = min(draft.own_rank, rank)
            rank = own + (rank - own) * ranking.caller_penalty
        ranked.append(_replace_rank(draft, rank * factor))
    return sorted(ranked, key=lambda d: (-d.rank, -d.score, d.component))


def _calls_anomalous(
    draft: ComponentScore,
    *,
    onsets: dict[str, datetime],
    edges: frozenset[tuple[str, str]],
    tolerance: float,
) -> bool:
    if draft.onset is None:
        return False
    for caller, callee in edges:
        if caller != draft.component or callee not in onsets:
            continue
        if (onsets[callee] - draft.onset).total_seconds() <= tolerance:
            return True
    return False


def _replace_rank(draft: ComponentScore, rank: float) -> ComponentScore:
    return dataclasses.replace(draft, rank=rank)


def _signal(
    row: int, *, found: signals.Signals, scores: scoring.Scores, times: np.ndarray
) -> SignalScore:
    info = found.info[row]
    return SignalScore(
        metric=info.metric,
        kind=info.kind,
        detail=info.detail,
        query=info.query,
        evidence=info.evidence,
        z=float(scores.signed[row]),
        baseline=float(scores.median[row]),
        after=float(scores.after[row]),
        onset=_at(times, int(scores.onset[row])),
        thin=bool(scores.thin[row]),
        ended=_ended_at(scores, row),
    )


def _ended_at(scores: scoring.Scores, row: int) -> datetime | None:
    if scores.ended is None or not math.isfinite(float(scores.ended[row])):
        return None
    return datetime.fromtimestamp(float(scores.ended[row]), tz=UTC)


def _at(times: np.ndarray, index: int) -> datetime | None:
    if index < 0 or index >= len(times):
        return None
    return datetime.fromtimestamp(float(times[index]), tz=UTC)


def _round(value: float) -> float | None:
    return round(value, 6) if math.isfinite(value) else None


def same_workload(a: str, b: str) -> bool:
    """Whether two names denote one workload (``checkout`` ~ ``checkout-service``)."""
    if a == b:
        return True
    na, nb = _norm(a), _norm(b)
    if na == nb:
        return True
    short, long = sorted((a, b), key=len)
    return long.startswith(short + "-") and long[len(short) + 1 :] in _SUFFIXES


_SUFFIXES = frozenset({"service", "svc", "server", "api", "app", "deployment", "v1", "v2"})


def _norm(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def names_of(items: Sequence[ComponentScore]) -> list[str]:
    return [c.component for c in items]
