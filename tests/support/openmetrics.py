"""A small OpenMetrics text reader for tests: ``metrics.om`` → SeriesPayload-shaped dicts.

Production reads Prometheus through its HTTP API; tests read scenario files directly and
emulate ``query_range`` (one sample per step, the latest at or before each step within the
five-minute lookback Prometheus uses), so the analysis sees what the connector would hand it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from diagnose.domain import models, ports

LOOKBACK_S = 300.0
"""Prometheus's default staleness lookback: a sample answers queries up to 5 minutes later."""

_SAMPLE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{(?P<labels>.*)\})?\s+(?P<rest>.+)$")
_LABEL = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


@dataclass
class RawSeries:
    """Every sample of one series as read from the file, in file order."""

    labels: dict[str, str]
    t: list[float] = field(default_factory=list)
    v: list[float] = field(default_factory=list)


def read(path: Path) -> tuple[dict[str, str], list[RawSeries]]:
    """Metric types (``# TYPE``) and the series of an OpenMetrics file."""
    with path.open(encoding="utf-8") as lines:
        return parse(lines)


def parse(lines: Iterable[str]) -> tuple[dict[str, str], list[RawSeries]]:
    """Metric types (``# TYPE``) and the series of OpenMetrics text."""
    types: dict[str, str] = {}
    series: dict[tuple[tuple[str, str], ...], RawSeries] = {}
    for text in lines:
        line = text.strip()
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split()
            if len(parts) >= 4 and parts[1] == "TYPE":
                types[parts[2]] = parts[3]
            continue
        sample = _parse_sample(line)
        if sample is None:
            continue
        labels, value, at = sample
        key = tuple(sorted(labels.items()))
        series.setdefault(key, RawSeries(labels=labels)).t.append(at)
        series[key].v.append(value)
    return types, list(series.values())


def _parse_sample(line: str) -> tuple[dict[str, str], float, float] | None:
    match = _SAMPLE.match(line)
    if match is None:
        return None
    labels = {"__name__": match["name"]}
    for key, value in _LABEL.findall(match["labels"] or ""):
        labels[key] = value.replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
    fields = match["rest"].split()
    if len(fields) < 2:
        return None  # no timestamp: not a recorded sample
    return labels, float(fields[0]), float(fields[1])


def query_range(
    series: Sequence[RawSeries], *, start: float, end: float, step: float
) -> list[ports.SeriesPayload]:
    """What ``query_range`` over these raw series returns: values on the step grid."""
    grid = np.arange(start, end + step / 2, step)
    out: list[ports.SeriesPayload] = []
    for item in series:
        values = _sample_on(grid, np.asarray(item.t), np.asarray(item.v))
        keep = ~np.isnan(values)
        if not keep.any():
            continue
        labels = dict(item.labels)
        out.append(
            {
                "labels": labels,
                "t": [float(x) for x in grid[keep]],
                "v": [float(x) for x in values[keep]],
            }
        )
    return out


def _sample_on(grid: np.ndarray, t: np.ndarray, v: np.ndarray) -> np.ndarray:
    order = np.argsort(t, kind="stable")
    t, v = t[order], v[order]
    index = np.searchsorted(t, grid, side="right") - 1
    valid = index >= 0
    clipped = np.clip(index, 0, None)
    fresh = valid & (grid - t[clipped] <= LOOKBACK_S)
    values = np.where(fresh, v[clipped], np.nan)
    return np.where(np.isfinite(values), values, np.nan)


def metric_evidence(
    series: Sequence[RawSeries],
    *,
    window: models.Window,
    step: float,
    selector: Mapping[str, str] | None = None,
) -> list[models.Evidence]:
    """One prometheus evidence record per metric name, as the graph's gather step makes them."""
    by_name: dict[str, list[RawSeries]] = {}
    for item in series:
        by_name.setdefault(item.labels["__name__"], []).append(item)
    start, end = window.start.timestamp(), window.end.timestamp()
    return [
        _evidence(name, items, window=window, start=start, end=end, step=step, selector=selector)
        for name, items in sorted(by_name.items())
    ]


def _evidence(
    name: str,
    items: Sequence[RawSeries],
    *,
    window: models.Window,
    start: float,
    end: float,
    step: float,
    selector: Mapping[str, str] | None,
) -> models.Evidence:
    matchers = [f'__name__="{name}"', *(f'{k}="{v}"' for k, v in (selector or {}).items())]
    query = "{" + ",".join(matchers) + "}"
    raw = query_range(items, start=start, end=end, step=step)
    status = models.Status.OK if raw else models.Status.EMPTY
    return models.Evidence.make(
        source="prometheus",
        query=query,
        window=window,
        status=status,
        summary=f"{len(raw)} series",
        raw=raw,
    )


def time_span(series: Sequence[RawSeries]) -> tuple[datetime, datetime]:
    """The first and last sample times in the data."""
    lows = [min(s.t) for s in series if s.t]
    highs = [max(s.t) for s in series if s.t]
    return _at(min(lows)), _at(max(highs))


def _at(unix: float) -> datetime:
    return datetime.fromtimestamp(unix, tz=UTC)
