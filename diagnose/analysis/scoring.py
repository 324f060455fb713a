"""Robust anomaly scores and onsets for every signal at once.

Each row is compared with its own baseline (the part of the window well before the trigger):
``z = (x - median) / scale`` with ``scale = max(IQR / 1.349, floor)``. The onset is the split
that best separates the row into a before and an after (a two-segment mean-shift statistic over
the clipped, direction-aware z), and the score is the median z after the onset: a sustained
shift, not a spike. All of it is vectorised over rows.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ScoringPolicy:
    """How signals are scored. Each number is explained in docs/analysis.md."""

    guard_s: float = 900.0
    """The baseline ends this long before the trigger at most (alerts fire minutes after)."""
    guard_fraction: float = 0.5
    """…and at least this share of the data before the trigger stays in the baseline."""
    min_baseline_points: int = 6
    """Fewer real samples than this before the baseline ends: the baseline is thin (below)."""
    thin_floor: float = 0.5
    """A thin baseline (at least one real sample, fewer than ``min_baseline_points``: a short
    recording at five-minute statistics) shows no spread, so its scale is at least this share
    of its level: only a shift of several times the level counts (3.5 times for
    ``anomalous``), and a fall can reach at most two sigmas."""
    relative_floor: float = 0.05
    """The scale is at least this share of the baseline median (flat baselines don't explode)."""
    absolute_floor: float = 1e-9
    """…and at least this, for baselines stuck at zero."""
    error_floor: float = 0.01
    """Error ratios: one percentage point is the least change worth a unit of z."""
    latency_floor_s: float = 0.002
    """Latencies: two milliseconds is the least change worth a unit of z."""
    clip: float = 20.0
    """z is clipped to ±clip for the onset search, so one spike cannot place the onset."""
    min_segment: int = 2
    """Onsets leave at least this many points (and one real sample) on either side…"""
    coarse_step_s: float = 10.0
    """…or one point when the grid's step is at least this long (a grid of one-minute or
    five-minute points: three samples must be able to show a before and an after)."""
    anomalous: float = 5.0
    """A signal is anomalous when its median z after the onset reaches this."""
    rebaseline_from: float = 1.0
    """A row this far off whose onset lies inside its baseline and within ``guard_s`` of the
    trigger (the data starts shortly before the fault, so the baseline had to keep half of it)
    is scored again against a baseline that ends at its onset; when too little data is left
    before the onset, its baseline is reported too short."""
    recent_s: float = 120.0
    """A row anomalous after an onset earlier than this before the trigger, whose every real
    sample from then on (at least two of them) is back under ``anomalous``, had ended before
    the alert fired (``Scores.ended``). Its score is kept: an episode that ended minutes
    before the alert is often the same trouble (measured in docs/analysis.md), but the report
    must say it is over."""


@dataclass(frozen=True)
class Scores:
    """Per-row results: ``score`` ≥ 0 in the bad direction, ``onset`` a grid index (-1 when not
    scored), and the baseline's median and scale and the level after the onset."""

    score: Array
    signed: Array
    onset: IntArray
    median: Array
    scale: Array
    after: Array
    scored: BoolArray
    short_baseline: BoolArray
    """Rows whose onset lies inside the baseline with too little data before it to end the
    baseline there: their score is understated (the baseline holds part of the shift)."""
    thin: BoolArray
    """Rows scored against fewer than ``min_baseline_points`` real samples (see
    ``thin_floor``)."""
    ended: Array | None = None
    """When each row's anomaly ended, epoch seconds, for rows back within their baseline
    before the trigger (see ``recent_s``); NaN for the others."""
    now: Array | None = None
    """For those rows, their largest oriented z since then: where they are now."""


def baseline_end(*, times: Array, trigger_at: float, policy: ScoringPolicy) -> float:
    """The end of the baseline: well before the trigger, but never most of the data."""
    before = max(0.0, trigger_at - float(times[0])) if times.size else 0.0
    guard = min(policy.guard_s, policy.guard_fraction * before)
    return trigger_at - guard


def score_rows(
    values: Array,
    *,
    times: Array,
    trigger_at: float,
    directions: npt.NDArray[np.int_],
    floors: Array,
    policy: ScoringPolicy,
    widths: IntArray | None = None,
    quantised: BoolArray | None = None,
    ratios: BoolArray | None = None,
) -> Scores:
    """Score every row against its own baseline and find its onset. ``widths``: grid steps per
    real sample of each row (repeated samples are not more evidence: counts are of real ones).
    ``quantised``: rows of counts or rates of counts (traffic) whose baseline may be idle; for
    those, a rise from an idle baseline is measured against the least non-zero value the row
    ever shows (a recorded ``rate1m`` going from 0 to one request a minute is one step of the
    data, not millions of sigmas). ``ratios``: rows that are shares in [0, 1] (a success ratio):
    their floor alone sets the least change worth a unit, not a share of their level (a success
    ratio at 1.0 would otherwise need a fall of five points for one sigma)."""
    widths = np.ones(values.shape[0], dtype=np.intp) if widths is None else widths
    end = baseline_end(times=times, trigger_at=trigger_at, policy=policy)
    score = functools.partial(
        _scored,
        values,
        times=times,
        directions=directions,
        floors=floors,
        policy=policy,
        widths=widths,
        quantised=quantised,
        ratios=ratios,
    )
    first = score(ends=np.full(values.shape[0], end))
    if not times.size:
        return first
    scores = _rebaselined(
        first,
        score,
        values=values,
        times=times,
        trigger_at=trigger_at,
        end=end,
        directions=directions,
        policy=policy,
    )
    ended, now = _ended(
        scores,
        values=values,
        times=times,
        trigger_at=trigger_at,
        directions=directions,
        widths=widths,
        policy=policy,
    )
    return dataclasses.replace(scores, ended=ended, now=now)


def _rebaselined(
    first: Scores,
    score: functools.partial[Scores],
    *,
    values: Array,
    times: Array,
    trigger_at: float,
    end: float,
    directions: npt.NDArray[np.int_],
    policy: ScoringPolicy,
) -> Scores:
    """Rows whose onset lies inside the baseline, close to the trigger, scored again against
    a baseline that ends at that onset (see ``ScoringPolicy.rebaseline_from``)."""
    onset_at = times[np.clip(first.onset, 0, times.size - 1)]
    # the data starts so shortly before the trigger that the baseline (half of it) reaches
    # into the guard: an onset there is the incident's, and the baseline must end before it
    inside = (
        first.scored
        & ~first.thin
        & (onset_at < end)
        & (onset_at >= trigger_at - policy.guard_s)
        & (
            _jump(values, first, onset_at=onset_at, times=times, directions=directions)
            >= policy.rebaseline_from
        )
    )
    if not inside.any():
        return first
    again = score(ends=np.where(inside, onset_at, end))
    use = inside & again.scored & ~again.thin  # a thin baseline is no better than the first
    return Scores(
        score=np.where(use, again.score, first.score),
        signed=np.where(use, again.signed, first.signed),
        onset=np.where(use, again.onset, first.onset),
        median=np.where(use, again.median, first.median),
        scale=np.where(use, again.scale, first.scale),
        after=np.where(use, again.after, first.after),
        scored=first.scored,
        short_baseline=inside & ~use,
        thin=first.thin,
    )


def _ended(
    scores: Scores,
    *,
    values: Array,
    times: Array,
    trigger_at: float,
    directions: npt.NDArray[np.int_],
    widths: IntArray,
    policy: ScoringPolicy,
) -> tuple[Array, Array]:
    """When each anomalous row came back within its baseline for good, if it did before the
    trigger (see ``ScoringPolicy.recent_s``), NaN otherwise; and its largest oriented z
    since."""
    step = float(times[1] - times[0]) if times.size > 1 else 0.0
    since = trigger_at - np.maximum(policy.recent_s, 2 * np.maximum(widths, 1) * step)
    onset_at = times[np.clip(scores.onset, 0, times.size - 1)]
    ended = np.full(values.shape[0], np.nan)
    now = np.full(values.shape[0], np.nan)
    # only anomalous rows whose onset came before the last stretch can have ended: a few
    rows = np.flatnonzero(
        scores.scored & ~scores.thin & (scores.score >= policy.anomalous) & (onset_at < since)
    )
    if not rows.size:
        return ended, now
    with np.errstate(invalid="ignore", divide="ignore"):
        z = (values[rows] - scores.median[rows, None]) / scores.scale[rows, None]
    oriented = np.where(directions[rows, None] == 0, np.abs(z), z * directions[rows, None])
    present = (times[None, :] >= since[rows, None]) & np.isfinite(oriented)
    samples = present.sum(axis=1) / np.maximum(widths[rows], 1)
    over = np.isfinite(oriented) & (oriented >= policy.anomalous)
    calm = ~np.any(present & over, axis=1)
    last = np.where(over.any(axis=1), times.size - 1 - np.argmax(over[:, ::-1], axis=1), -1)
    done = (samples >= 2) & calm & (last >= 0)
    after_last = times[np.clip(last + 1, 0, times.size - 1)]
    level = np.max(np.where(present, oriented, -np.inf), axis=1)
    ended[rows] = np.where(done, after_last, np.nan)
    now[rows] = np.where(done, np.maximum(level, 0.0), np.nan)
    return ended, now


def _jump(
    values: Array,
    first: Scores,
    *,
    onset_at: Array,
    times: Array,
    directions: npt.NDArray[np.int_],
) -> Array:
    """Each row's shift at its onset, in scale units and the bad direction: the level after
    it against the median of what came before it (not against the baseline, which may hold
    the shift)."""
    before = np.where(times[None, :] < onset_at[:, None], values, np.nan)
    _, level, _, _ = row_quantiles(before, (0.5, 0.5, 0.5))
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = (first.after - level) / first.scale
    shift = np.where(directions == 0, np.abs(shift), shift * directions)
    return np.nan_to_num(shift, nan=0.0)


def _scored(
    values: Array,
    *,
    ends: Array,
    times: Array,
    directions: npt.NDArray[np.int_],
    floors: Array,
    policy: ScoringPolicy,
    widths: IntArray,
    quantised: BoolArray | None,
    ratios: BoolArray | None,
) -> Scores:
    """Every row scored against the baseline before its own end (``ends``, epoch seconds)."""
    in_baseline = times[None, :] < ends[:, None]
    base = np.where(in_baseline, values, np.nan)
    q25, median, q75, steps = row_quantiles(base, (0.25, 0.5, 0.75))
    count = steps / np.maximum(widths, 1)
    thin = (count < policy.min_baseline_points) & (steps > 0)
    relative = policy.relative_floor * np.abs(median)
    if ratios is not None:
        relative = np.where(ratios, 0.0, relative)
    relative = np.where(thin, np.maximum(relative, policy.thin_floor * np.abs(median)), relative)
    scale = np.maximum.reduce([(q75 - q25) / 1.349, relative, floors])
    if quantised is not None and quantised.any():
        scale = np.where(
            quantised & (median == 0), np.maximum(scale, _least_positive(values)), scale
        )
    with np.errstate(invalid="ignore"):
        z = (values - median[:, None]) / scale[:, None]
    oriented = z * np.where(directions == 0, 1, directions)[:, None]
    step = float(times[1] - times[0]) if times.size > 1 else 0.0
    onset, sign = _onsets(
        oriented,
        directions=directions,
        widths=widths,
        segment_steps=1 if step >= policy.coarse_step_s else policy.min_segment,
        clip=policy.clip,
    )
    after_mask = np.arange(values.shape[1])[None, :] >= onset[:, None]
    _, after_z, _, _ = row_quantiles(np.where(after_mask, oriented, np.nan), (0.5, 0.5, 0.5))
    signed = after_z * np.where(directions == 0, sign, directions)
    score = np.where(directions == 0, np.abs(after_z), np.maximum(after_z, 0.0))
    scored = (steps > 0) & np.isfinite(score)
    _, after_level, _, _ = row_quantiles(np.where(after_mask, values, np.nan), (0.5, 0.5, 0.5))
    return Scores(
        score=np.where(scored, score, 0.0),
        signed=np.where(scored, signed, 0.0),
        onset=np.where(scored, onset, -1),
        median=median,
        scale=scale,
        after=after_level,
        scored=scored,
        short_baseline=np.zeros(values.shape[0], dtype=bool),
        thin=scored & thin,
    )


def _least_positive(values: Array) -> Array:
    """Each row's smallest value above zero (0 when it has none)."""
    with np.errstate(invalid="ignore"):
        positive = np.where(values > 0, values, np.inf)
    least = np.min(positive, axis=1) if values.shape[1] else np.full(values.shape[0], np.inf)
    return np.where(np.isfinite(least), least, 0.0)


def row_quantiles(
    values: Array, qs: tuple[float, float, float]
) -> tuple[Array, Array, Array, npt.NDArray[np.int_]]:
    """Three NaN-ignoring quantiles of each row and its count of values, by one sort (numpy's
    nanquantile loops over rows in Python when NaNs are present)."""
    ordered = np.sort(values, axis=1)
    count = np.sum(~np.isnan(values), axis=1)
    out = [_quantile_of_sorted(ordered, count, q) for q in qs]
    return out[0], out[1], out[2], count


def _quantile_of_sorted(ordered: Array, count: npt.NDArray[np.int_], q: float) -> Array:
    position = q * np.maximum(count - 1, 0)
    low = np.floor(position).astype(np.intp)
    high = np.minimum(low + 1, np.maximum(count - 1, 0))
    rows = np.arange(ordered.shape[0])
    fraction = position - low
    value = ordered[rows, low] * (1 - fraction) + ordered[rows, high] * fraction
    return np.where(count > 0, value, np.nan)


def _onsets(
    oriented: Array,
    *,
    directions: npt.NDArray[np.int_],
    widths: IntArray,
    segment_steps: int,
    clip: float,
) -> tuple[IntArray, Array]:
    """The best split of each row into two means (CUSUM's maximum-likelihood change point),
    searched in the bad direction (either direction when ``direction == 0``), leaving at least
    ``segment_steps`` steps and one real sample on either side."""
    filled = np.clip(np.nan_to_num(oriented, nan=0.0), -clip, clip)
    n = filled.shape[1]
    if n < 2 * segment_steps:
        return np.zeros(filled.shape[0], dtype=np.intp), np.ones(filled.shape[0])
    k = np.arange(1, n)
    prefix = np.cumsum(filled, axis=1)[:, :-1]
    total = prefix[:, -1:] + filled[:, -1:]
    mean_before = prefix / k
    mean_after = (total - prefix) / (n - k)
    statistic = np.sqrt(k * (n - k) / n) * (mean_after - mean_before)
    statistic = np.where(directions[:, None] == 0, np.abs(statistic), statistic)
    # a real sample at least, each side: coarse data may show a fault in one sample before the
    # alert fires
    segment = np.maximum(segment_steps, widths)[:, None]
    edge = (k[None, :] < segment) | (k[None, :] > n - segment)
    statistic[edge] = -np.inf
    best = np.argmax(statistic, axis=1)
    rows = np.arange(filled.shape[0])
    raw = np.sqrt(k[best] * (n - k[best]) / n) * (mean_after[rows, best] - mean_before[rows, best])
    return (k[best]).astype(np.intp), np.where(raw < 0, -1.0, 1.0)
