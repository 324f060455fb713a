"""A query step finer than every scrape interval: the grid takes the records' own interval."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from diagnose.analysis import signals
from diagnose.domain import models
from tests.support import synthetic

MINUTES = 60


def _record(metric: str, *, every_s: float, rows: dict[str, list[float]]) -> models.Evidence:
    """One record of several workloads' series, a sample every ``every_s`` seconds."""
    raw = []
    for service, values in rows.items():
        t = synthetic.START.timestamp() + every_s * np.arange(len(values))
        labels = {"__name__": metric, "service": service, "namespace": "shop"}
        raw.append({"labels": labels, "t": t.tolist(), "v": list(values)})
    return models.Evidence.make(
        source="prometheus",
        query=f'{{__name__="{metric}",namespace="shop"}}',
        window=None,
        status=models.Status.OK,
        summary=f"{len(raw)} series",
        raw=raw,
    )


def _jobs(every_s: float) -> models.Evidence:
    """Two workloads' job counters, ten and twenty jobs a second, sampled every ``every_s``."""
    count = int(MINUTES * 60 / every_s)
    return _record(
        "jobs_total",
        every_s=every_s,
        rows={s: (np.arange(count) * every_s * r).tolist() for s, r in (("a", 10), ("b", 20))},
    )


def _memory(every_s: float) -> models.Evidence:
    rng = np.random.default_rng(5)
    count = int(MINUTES * 60 / every_s)
    return _record(
        "container_memory_working_set_bytes",
        every_s=every_s,
        rows={s: (1e8 + rng.normal(0, 1e6, count)).tolist() for s in ("a", "b")},
    )


def _up() -> models.Evidence:
    """A gauge that never changes: it says nothing of its interval."""
    return _record("up", every_s=5.0, rows={s: [1.0] * (MINUTES * 12) for s in ("a", "b")})


WINDOW = models.Window(synthetic.START, synthetic.START + timedelta(minutes=MINUTES))


def _jobs_rate(found: signals.Signals, service: str) -> np.ndarray:
    (row,) = [
        i
        for i, info in enumerate(found.info)
        if info.metric == "jobs_total" and info.component == service
    ]
    return np.asarray(found.values[row])


def test_minute_data_asked_for_every_five_seconds_is_read_every_minute() -> None:
    """Every record is sampled once a minute and the scope asks for 5 s: the grid steps a
    minute (one point per real sample, the last one kept), and the rates are those of the same
    data read at its own step."""
    records = [_jobs(60.0), _memory(60.0), _up()]
    fine = signals.build_signals(records, window=WINDOW, step_s=5.0)
    native = signals.build_signals(records[:2], window=WINDOW, step_s=60.0)
    assert fine.grid.step == 60.0
    assert set(fine.widths.tolist()) == {1}
    assert fine.grid.start + fine.grid.step * (fine.grid.size - 1) >= native.grid.times[-1]
    for service in ("a", "b"):
        rate, expected = _jobs_rate(fine, service), _jobs_rate(native, service)
        assert np.nanmedian(rate) == np.nanmedian(expected)
        assert np.nanmax(np.abs(rate[5:-5] - np.nanmedian(expected))) < 1e-6


def test_one_record_at_the_fine_step_keeps_the_fine_grid() -> None:
    """A record sampled every 5 s beside minute data: the grid stays at 5 s and the minute
    data is held on it, one real sample per twelve steps."""
    found = signals.build_signals([_jobs(60.0), _memory(5.0)], window=WINDOW, step_s=5.0)
    assert found.grid.step == 5.0
    rows = [i for i, info in enumerate(found.info) if info.metric == "jobs_total"]
    assert rows and all(found.width(r) == 12 for r in rows)
