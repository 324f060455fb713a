"""Raw range-query series on one time grid: the grid, a record's series aligned on it (each
sample held until the next is due), and how many grid steps one real sample spans."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from diagnose.domain import models

Array = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.intp]


LOOKBACK_S = 300.0
"""Prometheus's default query lookback: after a series' last scrape, ``query_range`` repeats
that sample for this long (no staleness marker when the data simply ends, as in a recording)."""


@dataclass(frozen=True)
class Grid:
    """The common time axis: ``start + step * i`` (unix seconds) for ``i < size``."""

    start: float
    step: float
    size: int

    @property
    def times(self) -> Array:
        return self.start + self.step * np.arange(self.size, dtype=np.float64)


@dataclass
class Block:
    """The series of one evidence record, aligned on the grid; ``width`` is the grid steps per
    real sample (see :func:`native_width`)."""

    evidence: models.Evidence
    labels: list[dict[str, str]]
    values: Array
    width: int = 1


def has_series(record: models.Evidence) -> bool:
    """Whether a record holds series (labels, times, values) the analysis can read."""
    return bool(series_of(record))


def series_of(record: models.Evidence) -> list[Mapping[str, Any]]:
    raw = record.raw
    if record.status is not models.Status.OK or not isinstance(raw, list):
        return []
    return [s for s in raw if isinstance(s, Mapping) and "t" in s and "v" in s and "labels" in s]


def grid_for(
    records: Sequence[models.Evidence], *, window: models.Window, step_s: float | None = None
) -> Grid:
    lows, lasts, steps = [], [], []
    for record in records:
        for series in series_of(record)[:50]:
            t = np.asarray(series["t"], dtype=np.float64)
            spacing = float(np.median(np.diff(t))) if t.size > 1 else 0.0
            if t.size:
                lows.append(t[0])
                lasts.append((t[-1], spacing))
            if t.size > 1:
                steps.append(spacing)
    step = min(steps) if steps else 60.0
    if step_s and step_s > 0:
        step = min(step, step_s)
    # the last sample of a coarse record stands until the next is due, as Prometheus's
    # lookback has it (raw samples end at their last scrape)
    highs = [t + (min(gap, LOOKBACK_S) if gap >= 1.5 * step else 0.0) for t, gap in lasts]
    start = min(lows) if lows else window.start.timestamp()
    end = max(highs) if highs else window.end.timestamp()
    start = max(start, window.start.timestamp() - step)
    end = max(start, min(end, window.end.timestamp() + step))
    return Grid(start=start, step=step, size=round((end - start) / step) + 1)


def align(record: models.Evidence, *, grid: Grid) -> Block:
    series = series_of(record)
    labels = [dict(s["labels"]) for s in series]
    values = _on_grid(series, grid=grid)
    if values is None:
        spacing = _spacing(series)
        values = _held(_scatter(series, grid=grid), spacing=spacing, grid=grid)
        if max((len(s["t"]) for s in series), default=0) < RUNS_FROM:
            # too few samples for their runs to show the interval; their timestamps show it
            width = round(spacing / grid.step) if spacing >= 1.5 * grid.step else 1
            return Block(evidence=record, labels=labels, values=values, width=min(width, MAX_WIDTH))
    return Block(evidence=record, labels=labels, values=values, width=native_width(values))


def _spacing(series: Sequence[Mapping[str, Any]]) -> float:
    """The median time between a record's samples (of its first series with several)."""
    for s in series[:50]:
        if len(s["t"]) >= 2:
            return float(np.median(np.diff(np.asarray(s["t"], dtype=np.float64))))
    return 0.0


def _held(values: Array, *, spacing: float, grid: Grid) -> Array:
    """Samples further apart than the grid's step (raw samples, or a range query at a coarse
    step), each held until the next one for at most :data:`LOOKBACK_S`, as Prometheus answers a
    finer step: the record then looks like every other coarse record, one real sample per
    ``spacing / step`` steps."""
    if spacing < 1.5 * grid.step:
        return values
    hold = int(LOOKBACK_S // grid.step)
    valid = np.isfinite(values)
    index = np.where(valid, np.arange(values.shape[1]), -1)
    last = np.maximum.accumulate(index, axis=1)
    reach = (np.arange(values.shape[1])[None, :] - last) < hold
    filled = np.take_along_axis(values, np.maximum(last, 0), axis=1)
    return np.where(valid | ((last >= 0) & reach), filled, np.nan)


RUNS_FROM = 5
"""A row needs this many samples (four changes) for :func:`native_width` to read its runs."""

MAX_WIDTH = 600
"""At most this many grid steps per real sample (an hour of 6 s steps)."""


def native_width(values: Array, *, max_rows: int = 400) -> int:
    """Grid steps per real sample. A range query whose step is finer than the scrape interval
    repeats each sample until the next one arrives: a minute-apart series read at a 6 s step
    holds runs of about ten equal values (nine or eleven when a scrape is late). The width is the
    median run length between value changes, over the rows that change at least four times (a
    flat row says nothing); 1 when no row changes, or when the data is at least as coarse as
    the grid. 0 (unknown) when fewer than two rows change that often: the runs of one series
    may be the spacing of its events (a restart every three minutes), not of its scrapes; the
    caller then uses the width the other records agree on."""
    rows = values[:max_rows]
    if rows.size == 0:
        return 0 if len(rows) < 2 else 1
    finite = np.isfinite(rows)
    index = np.where(finite, np.arange(rows.shape[1]), -1)
    last = np.maximum.accumulate(index, axis=1)
    before = np.full_like(last, -1)
    before[:, 1:] = last[:, :-1]
    previous = np.take_along_axis(rows, np.maximum(before, 0), axis=1)
    change = finite & (before >= 0) & (rows != previous)
    eligible = (change.sum(axis=1) >= 4) & (finite.sum(axis=1) >= 5)
    if eligible.sum() < 2:
        return 0 if len(rows) < 2 or eligible.any() else 1
    row, column = np.nonzero(change[eligible])
    pooled = np.diff(column)[row[1:] == row[:-1]]
    return int(min(MAX_WIDTH, max(1, round(float(np.median(pooled))))))


def without_stale_tail(block: Block, *, grid: Grid, until: float) -> Block:
    """A record whose data stops before the window ends (a recording replayed later, a target
    gone) ends in Prometheus's lookback: every series repeats its last sample. Read as data,
    that flat tail is a sudden stop of every rate. Those repeated samples are blanked: the
    trailing run (at most :data:`LOOKBACK_S`) where no series of the record changes."""
    values = block.values
    finite = np.isfinite(values)
    present = np.flatnonzero(finite.any(axis=0))
    if present.size < 3 or grid.start + present[-1] * grid.step >= until - 2 * grid.step:
        return block
    last = int(present[-1])
    first = max(int(present[0]), last - int(LOOKBACK_S // grid.step))
    tail = values[:, first : last + 1]
    alive = finite[:, first : last + 1]
    same = np.all((tail[:, 1:] == tail[:, :-1]) | (~alive[:, 1:] & ~alive[:, :-1]), axis=0)
    changed = np.flatnonzero(~same)
    keep = first + (int(changed[-1]) + 1 if changed.size else 0)
    if keep >= last:
        return block
    trimmed = values.copy()
    trimmed[:, keep + 1 : last + 1] = np.nan
    return replace(block, values=trimmed)


def _on_grid(series: Sequence[Mapping[str, Any]], *, grid: Grid) -> Array | None:
    """The fast path: every series has one sample per grid step over the same span (what
    ``query_range`` returns for series present throughout). None when that is not so."""
    first = series[0]["t"]
    if not first or len(first) > grid.size:
        return None
    offset = round((first[0] - grid.start) / grid.step)
    span = first[-1] - first[0]
    if offset < 0 or abs(span - (len(first) - 1) * grid.step) > grid.step / 2:
        return None
    if any(
        len(s["t"]) != len(first) or s["t"][0] != first[0] or s["t"][-1] != first[-1]
        for s in series
    ):
        return None
    dense = np.array([s["v"] for s in series], dtype=np.float64)
    if dense.ndim != 2 or offset + dense.shape[1] > grid.size:
        return None
    values = np.full((len(series), grid.size), np.nan)
    values[:, offset : offset + dense.shape[1]] = dense
    return values


def _scatter(series: Sequence[Mapping[str, Any]], *, grid: Grid) -> Array:
    """The general path: place every sample at its nearest grid step."""
    lengths = np.fromiter((len(s["t"]) for s in series), dtype=np.intp, count=len(series))
    t = np.fromiter(itertools.chain.from_iterable(s["t"] for s in series), dtype=np.float64)
    v = np.array(list(itertools.chain.from_iterable(s["v"] for s in series)), dtype=np.float64)
    rows = np.repeat(np.arange(len(series)), lengths)
    cols = np.rint((t - grid.start) / grid.step).astype(np.intp)
    inside = (cols >= 0) & (cols < grid.size) & np.isfinite(v)
    values = np.full((len(series), grid.size), np.nan)
    values[rows[inside], cols[inside]] = v[inside]
    return values
