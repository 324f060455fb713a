"""Row-wise transforms of aligned series: counter rates (resets and gaps handled), rates spread
and smoothed over a few real samples, grouped sums and maxima, and histogram quantiles."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


def counter_rate(values: Array, *, step: float) -> Array:
    """Per-second increase between consecutive valid samples of each row; a drop is a counter
    reset (the new value is the increase since the restart). NaN where there is no previous
    sample."""
    if not np.isnan(values).any():
        return _dense_rate(values, step=step)
    n, m = values.shape
    valid = ~np.isnan(values)
    index = np.where(valid, np.arange(m), -1)
    last = np.maximum.accumulate(index, axis=1)
    previous = np.full_like(last, -1)
    previous[:, 1:] = last[:, :-1]
    has_previous = valid & (previous >= 0)
    rows = np.arange(n)[:, None]
    before = values[rows, np.clip(previous, 0, None)]
    increase = values - before
    increase = np.where(increase < 0, values, increase)
    elapsed = (np.arange(m)[None, :] - previous) * step
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = increase / elapsed
    return np.where(has_previous, rate, np.nan)


def _dense_rate(values: Array, *, step: float) -> Array:
    """:func:`counter_rate` without gaps: one subtraction and a reset fix-up."""
    rate = np.empty_like(values)
    rate[:, 0] = np.nan
    increase = np.subtract(values[:, 1:], values[:, :-1], out=rate[:, 1:])
    reset = increase < 0
    if reset.any():
        increase[reset] = values[:, 1:][reset]
    increase /= step
    return rate


RATE_INTERVALS = 4
"""Rates of data coarser than the grid are averaged over this many real samples, as
``rate(x[4m])`` is the rule for a one-minute scrape: per-step rates of repeated samples read
0, 0, …, 10x, and scrape jitter moves the 10x by a step either way."""


def smooth_rate(rate: Array, *, width: int) -> Array:
    """Rates of data coarser than the grid, over :data:`RATE_INTERVALS` real samples.

    ``rate`` holds per-step rates of repeated samples: zero while a sample repeats, the whole
    increase at the step a new one arrives. Each increase is spread evenly over the steps since
    the previous arrival (the counter interpolated between its real samples), and the rate at a
    step is the counter's rise over a window of four real samples centred on it, so the average
    does not lag the data (a trailing window would move every onset of a counter two samples
    late, behind the gauges beside it) and scrape jitter (a run of nine or eleven repeats instead
    of ten) moves it by a few percent, not by a whole sample. Steps past a row's last arrival are
    unknown (NaN). Data at least as coarse as the grid (``width`` 1) is left as it is."""
    if width <= 1:
        return rate
    return _spread(rate, span=RATE_INTERVALS * width)


def _spread(rate: Array, *, span: int) -> Array:
    """:func:`smooth_rate` for every row at once. Knots are the step before a row's first rate
    (counter 0) and each arrival; the counter is interpolated between knots, and each step
    takes its rise over ``span`` steps centred on it, clipped to the row's knots."""
    n, m = rate.shape
    padded = np.full((n, m + 1), np.nan)
    padded[:, 1:] = rate
    index = np.arange(m + 1)
    valid = np.isfinite(padded)
    arrive = valid & (padded != 0)
    first = np.where(valid.any(axis=1), valid.argmax(axis=1) - 1, m + 1)
    knot = arrive | (index[None, :] == first[:, None])
    counter = np.cumsum(np.where(arrive, padded, 0.0), axis=1)
    before = np.maximum.accumulate(np.where(knot, index, -1), axis=1)
    after = np.minimum.accumulate(np.where(knot, index, m + 1)[:, ::-1], axis=1)[:, ::-1]
    inside = (before >= 0) & (after <= m)
    rows = np.arange(n)[:, None]
    at_before = counter[rows, np.clip(before, 0, m)]
    at_after = counter[rows, np.clip(after, 0, m)]
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(after > before, (index - before) / (after - before), 0.0)
    line = np.where(inside, at_before + (at_after - at_before) * fraction, np.nan)
    last = np.max(np.where(knot, index, -1), axis=1)
    low = np.clip(index[None, :] - span // 2, first[:, None], last[:, None])
    high = np.clip(index[None, :] + span - span // 2, first[:, None], last[:, None])
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = (line[rows, high] - line[rows, low]) / (high - low)
    keep = (index[None, :] > first[:, None]) & (index[None, :] <= last[:, None])
    out = np.where(keep, spread, np.nan)
    idle = ~arrive.any(axis=1)  # no increase at all: zero over the span of its samples
    if idle.any():
        seen = np.max(np.where(valid, index, -1), axis=1)
        span_of = (index[None, :] > first[:, None]) & (index[None, :] <= seen[:, None])
        out[idle] = np.where(span_of[idle], 0.0, np.nan)
    return np.asarray(out[:, 1:], dtype=np.float64)


def rolling_sum(values: Array, width: int) -> Array:
    if width <= 1:
        return values
    cumulative = np.cumsum(values, axis=1)
    out = cumulative.copy()
    out[:, width:] = cumulative[:, width:] - cumulative[:, :-width]
    return out


def group_reduce(values: Array, groups: IntArray, *, count: int, how: str) -> Array:
    """Sum (NaN-aware; NaN where no member has a value) or max of rows by group index."""
    out = np.full((count, values.shape[1]), np.nan)
    if not len(groups):
        return out
    order = np.argsort(groups, kind="stable")
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    block = values[order]
    present = ~np.isnan(block)
    if how == "max":
        reduced = np.fmax.reduceat(block, starts, axis=0)
    else:
        reduced = np.add.reduceat(np.where(present, block, 0.0), starts, axis=0)
    seen = np.add.reduceat(present.astype(np.int32), starts, axis=0) > 0
    out[sorted_groups[starts]] = np.where(seen, reduced, np.nan)
    return out


def histogram_quantile(q: float, *, bounds: Array, cumulative: Array) -> Array:
    """Prometheus's ``histogram_quantile`` over rows of cumulative bucket rates (ascending
    ``le``, the last one +Inf), for every column at once."""
    total = cumulative[-1]
    rank = q * total
    above = cumulative >= rank[None, :]
    index = np.argmax(above, axis=0)
    finite = bounds[np.isfinite(bounds)]
    upper = bounds[index]
    lower = np.where(index > 0, bounds[np.maximum(index - 1, 0)], 0.0)
    count_below = np.where(
        index > 0, cumulative[np.maximum(index - 1, 0), np.arange(len(rank))], 0.0
    )
    count_in = cumulative[index, np.arange(len(rank))] - count_below
    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.clip((rank - count_below) / count_in, 0.0, 1.0)
    value = lower + (upper - lower) * np.nan_to_num(fraction, nan=1.0)
    top = finite[-1] if finite.size else np.nan
    value = np.where(np.isinf(upper), top, value)
    return np.where((total > 0) & np.isfinite(total), value, np.nan)
