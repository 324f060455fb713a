"""A recording replayed after it ends: Prometheus's lookback repeats the last samples."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import timedelta

import numpy as np

from diagnose.analysis import correlating, signals
from diagnose.domain import models
from tests.support import synthetic

STEP = 5.0


def _requests(points: int, *, flat_tail: int) -> models.Evidence:
    """A busy request counter; its last ``flat_tail`` points repeat the sample before them."""
    rng = np.random.default_rng(3)
    counts = np.cumsum(rng.poisson(50, points)).astype(float)
    if flat_tail:
        counts[-flat_tail:] = counts[-flat_tail - 1]
    t = synthetic.START.timestamp() + STEP * np.arange(points)
    series = {
        "labels": {"__name__": "http_requests_total", "service": "shop", "namespace": "shop"},
        "t": t.tolist(),
        "v": counts.tolist(),
    }
    return models.Evidence.make(
        source="prometheus",
        query='{__name__="http_requests_total",namespace="shop"}',
        window=None,
        status=models.Status.OK,
        summary="1 series",
        raw=[series],
    )


def _coarse(
    metric: str, *, every_s: float, values: Callable[[int], list[float]]
) -> models.Evidence:
    """A record of two workloads' series sampled every ``every_s`` seconds (``values(k)`` for
    the k-th workload)."""
    rows = []
    for k, svc in enumerate(("worker", "mailer")):
        v = values(k)
        t = synthetic.START.timestamp() + every_s * np.arange(len(v))
        labels = {"__name__": metric, "service": svc, "namespace": "shop"}
        rows.append({"labels": labels, "t": t.tolist(), "v": v})
    return models.Evidence.make(
        source="prometheus",
        query=f'{{__name__="{metric}",namespace="shop"}}',
        window=None,
        status=models.Status.OK,
        summary="",
        raw=rows,
    )


def _rate(record: models.Evidence, *, window_end_s: float) -> np.ndarray:
    window = models.Window(synthetic.START, synthetic.START + timedelta(seconds=window_end_s))
    found = signals.build_signals([record], window=window)
    (row,) = [i for i, info in enumerate(found.info) if info.kind == "traffic"]
    return np.asarray(found.values[row])


def test_the_repeated_tail_of_data_that_stopped_early_is_no_sample_not_a_stop() -> None:
    """Data ends 7 minutes before the window; its last 5 minutes are lookback repeats."""
    rate = _rate(_requests(720, flat_tail=60), window_end_s=STEP * 720 + 120)
    assert np.all(np.isnan(rate[-59:]))
    assert np.nanmin(rate[-200:-60]) > 5


def test_a_flat_tail_that_reaches_the_window_end_is_kept() -> None:
    """Up to now: a counter that stopped moving is a real stop (no requests)."""
    rate = _rate(_requests(720, flat_tail=60), window_end_s=STEP * 719)
    assert np.all(rate[-50:] == 0)


def test_a_record_read_at_its_own_coarse_step_is_held_on_the_finer_grid() -> None:
    """A counter read every 60 s beside a record read every 5 s: on the 5 s grid each minute's
    sample is held until the next (as Prometheus answers a finer step), recognised as one real
    sample per twelve steps, and its rate is steady, not a spike every minute."""
    minutes = 70
    coarse = _coarse(
        "jobs_total",
        every_s=60.0,
        values=lambda k: (np.arange(minutes) * 600.0 * (k + 1)).tolist(),
    )
    window = models.Window(synthetic.START, synthetic.START + timedelta(minutes=minutes))
    found = signals.build_signals([_requests(840, flat_tail=0), coarse], window=window)
    (row,) = [
        i
        for i, info in enumerate(found.info)
        if info.metric == "jobs_total" and info.component == "worker"
    ]
    assert found.grid.step == STEP
    assert found.width(row) == 12
    inner = found.values[row][100:-100]
    assert np.nanmax(np.abs(inner - 10.0)) < 0.5


def test_three_raw_samples_five_minutes_apart_are_three_samples() -> None:
    """Five-minute statistics read as raw samples over a short window: three samples show too
    few value changes for their runs to give the interval, but their timestamps give it (sixty
    steps of 5 s each), so the thirty-odd grid points after holding are not thirty samples."""
    coarse = _coarse("queue_depth", every_s=300.0, values=lambda k: [4.0 + k, 5.0 + k, 40.0 + k])
    window = models.Window(synthetic.START, synthetic.START + timedelta(minutes=15))
    found = signals.build_signals([_requests(180, flat_tail=0), coarse], window=window)
    rows_of = [i for i, info in enumerate(found.info) if info.metric == "queue_depth"]
    assert rows_of and all(found.width(r) == 60 for r in rows_of)


def test_a_signal_too_short_to_score_is_named_in_the_notes() -> None:
    """A counter whose data begins forty seconds before the trigger has a few samples before
    the baseline ends, too few to measure its spread: the notes say it was scored against a
    thin baseline (never a silent judgement)."""
    record = _requests(24, flat_tail=0)
    trigger = models.Trigger(
        "manual", "shop slow", "shop", "shop", synthetic.START + timedelta(seconds=8 * STEP)
    )
    window = models.Window(synthetic.START, synthetic.START + timedelta(seconds=30 * STEP))
    result = correlating.correlate(
        trigger=trigger, window=window, metrics=[record], cluster=[], now=window.end
    )
    (note,) = [n for n in result.notes if "thin baseline" in n]
    assert "shop" in note and "fewer than 6 samples" in note


def test_a_signal_with_no_sample_before_the_baseline_ends_is_named_in_the_notes() -> None:
    """A counter that appears only after the baseline has ended (a pod started by the
    incident) has nothing to be compared with: it is not scored, and the notes say so."""
    late = _requests(200, flat_tail=0)
    for series in late.raw:
        series["labels"] = {**series["labels"], "service": "cart"}
        series["t"] = [t + 500 * STEP for t in series["t"]]
    late = dataclasses.replace(late, query='{__name__="http_requests_total",service="cart"}')
    trigger = models.Trigger(
        "manual", "shop slow", "shop", "shop", synthetic.START + timedelta(seconds=650 * STEP)
    )
    window = models.Window(synthetic.START, synthetic.START + timedelta(seconds=700 * STEP))
    result = correlating.correlate(
        trigger=trigger,
        window=window,
        metrics=[_requests(700, flat_tail=0), late],
        cluster=[],
        now=window.end,
    )
    (note,) = [n for n in result.notes if "not scored" in n]
    assert "cart" in note and "no sample before the incident" in note
    assert not any("thin baseline" in n for n in result.notes)
