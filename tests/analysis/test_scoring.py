"""Scores and onsets of single signals: steps are found where they are, noise is not a step."""

from __future__ import annotations

import numpy as np
import pytest

from diagnose.analysis import scoring, signals, transforms

POLICY = scoring.ScoringPolicy()


def _score(values: np.ndarray, *, trigger_index: int, direction: int = 1) -> scoring.Scores:
    rows = np.atleast_2d(values).astype(float)
    times = np.arange(rows.shape[1], dtype=float) * 5.0
    return scoring.score_rows(
        rows,
        times=times,
        trigger_at=float(times[trigger_index]),
        directions=np.full(rows.shape[0], direction),
        floors=np.full(rows.shape[0], 1e-9),
        policy=POLICY,
    )


def test_a_step_change_is_anomalous_with_its_onset() -> None:
    """A 50% level shift over 1% noise is scored high and its onset is the step's index."""
    rng = np.random.default_rng(3)
    values = 100 + rng.normal(0, 1, 720)
    values[600:] += 50
    scores = _score(values, trigger_index=650)
    assert scores.score[0] >= POLICY.anomalous
    assert abs(int(scores.onset[0]) - 600) <= 2


def test_noise_alone_is_not_anomalous() -> None:
    """Gaussian noise, heavy-tailed noise and a lone spike never reach the threshold."""
    rng = np.random.default_rng(4)
    rows = np.vstack([100 + rng.normal(0, 1, (200, 720)), 100 + rng.standard_t(3, (200, 720))])
    rows[0, 650] += 50
    scores = _score(rows, trigger_index=680, direction=0)
    assert float(scores.score.max()) < POLICY.anomalous


def test_a_drop_is_ignored_when_only_a_rise_is_bad() -> None:
    """Direction matters: latency falling is not an incident."""
    values = np.r_[np.full(600, 1.0), np.full(120, 0.2)] + np.random.default_rng(5).normal(
        0, 0.01, 720
    )
    assert _score(values, trigger_index=650, direction=1).score[0] == 0.0
    assert _score(values, trigger_index=650, direction=-1).score[0] >= POLICY.anomalous


def test_a_flat_baseline_does_not_explode() -> None:
    """A constant baseline with a 1% wiggle afterwards is not an anomaly (relative floor)."""
    values = np.r_[np.full(600, 50.0), np.full(120, 50.5)]
    assert _score(values, trigger_index=650).score[0] < POLICY.anomalous


def test_a_counter_reset_is_not_a_change_in_rate() -> None:
    """A counter that restarts from zero keeps its rate."""
    counter = np.cumsum(np.full(720, 10.0))
    counter[400:] -= counter[399]
    rates = signals.counter_rate(counter[None, :], step=5.0)
    assert np.allclose(rates[0, 1:], 2.0)


def test_gaps_in_a_counter_spread_the_increase() -> None:
    """Missing samples: the increase is divided over the time since the last sample."""
    counter = np.cumsum(np.full(20, 10.0))
    counter[5:8] = np.nan
    rates = signals.counter_rate(counter[None, :], step=5.0)
    assert np.allclose(rates[0, 8], 2.0)
    assert np.isnan(rates[0, 6])


def test_histogram_quantile_matches_prometheus_interpolation() -> None:
    """Half the observations under 0.1 and all under 0.2: p75 is 0.15."""
    bounds = np.array([0.1, 0.2, np.inf])
    cumulative = np.array([[50.0], [100.0], [100.0]])
    value = signals.histogram_quantile(0.75, bounds=bounds, cumulative=cumulative)
    assert np.isclose(value[0], 0.15)


def test_row_quantiles_ignore_nans() -> None:
    """Quantiles per row skip missing values, as numpy's nanquantile would."""
    rng = np.random.default_rng(6)
    rows = rng.normal(size=(50, 40))
    rows[rng.random(rows.shape) < 0.3] = np.nan
    low, mid, high, _ = scoring.row_quantiles(rows, (0.25, 0.5, 0.75))
    expected = np.nanquantile(rows, [0.25, 0.5, 0.75], axis=1)
    assert np.allclose(np.vstack([low, mid, high]), expected)


def test_a_step_finer_than_the_scrape_interval_does_not_make_rates_jump() -> None:
    """15 s scrapes read at a 5 s step repeat each value; rates stay flat, not 0, 0, 3x."""
    scraped = np.cumsum(np.full(240, 30.0))  # 2/s at a 15 s scrape
    repeated = np.repeat(np.vstack([scraped, 2 * scraped]), 3, axis=1)
    width = signals.native_width(repeated)
    rates = transforms.smooth_rate(transforms.counter_rate(repeated, step=5.0), width=width)
    assert width == 3
    assert np.allclose(rates[0, 10:-10], 2.0)


@pytest.mark.parametrize("interval", [1, 15, 30, 60, 300])
def test_native_width_counts_grid_steps_per_real_sample(interval: int) -> None:
    """Samples ``interval`` seconds apart with scrape jitter, read at a 6 s step (or at their own
    interval when coarser), are recognised as one real sample per ``interval / 6`` steps."""
    step = 6.0
    rng = np.random.default_rng(interval)
    span = 4 * 3600.0
    scraped_at = np.arange(0.0, span, interval) + rng.uniform(-0.4, 0.4, int(span // interval))
    grid = np.arange(0.0, span, step)
    rows = []
    for _ in range(20):
        counter = np.cumsum(rng.poisson(50.0, scraped_at.size)).astype(float)
        latest = np.searchsorted(scraped_at, grid, side="right") - 1
        rows.append(np.where(latest >= 0, counter[np.maximum(latest, 0)], np.nan))
    width = signals.native_width(np.array(rows))
    assert abs(width - max(1.0, interval / step)) <= 0.5


def test_minute_samples_read_at_a_fine_step_give_steady_rates() -> None:
    """A counter scraped every 60 s (jittered) and read at a 6 s step: rates over four real
    samples stay within a few percent of the true rate, never 0 or 10x."""
    rng = np.random.default_rng(7)
    scraped_at = np.arange(0.0, 7200.0, 60.0) + rng.uniform(-2.0, 2.0, 120)
    counter = scraped_at * 5.0  # 5/s
    grid = np.arange(0.0, 7200.0, 6.0)
    latest = np.searchsorted(scraped_at, grid, side="right") - 1
    row = np.where(latest >= 0, counter[np.maximum(latest, 0)], np.nan)
    rows = np.vstack([row, 3 * row])
    width = signals.native_width(rows)
    rates = transforms.smooth_rate(transforms.counter_rate(rows, step=6.0), width=width)
    inner = rates[0, 60:-60]
    assert width == 10
    assert np.nanmax(np.abs(inner - 5.0)) < 0.5


def test_one_series_of_rare_events_does_not_set_its_own_width() -> None:
    """A lone counter that moves every three minutes (a crash loop's restarts) says nothing
    about the scrape interval: its width is unknown (0), for the other records to settle."""
    row = np.repeat(np.arange(40.0), 36)[None, :]
    assert signals.native_width(row) == 0


def test_repeated_samples_do_not_count_as_baseline_points() -> None:
    """Five real samples repeated ten times each are five baseline points, a thin baseline
    (fifty grid points would be plenty): no spread can be measured from five, so the scale is
    half the level and a rise from 1 to 9 is 16 sigmas, not the 160 that 5 % of the level
    would make of it."""
    row = np.repeat(np.r_[np.ones(5), np.full(5, 9.0)], 10)[None, :]
    times = np.arange(row.shape[1], dtype=float) * 6.0
    common = {
        "times": times,
        "trigger_at": float(times[50]),
        "directions": np.array([1]),
        "floors": np.array([1e-9]),
        "policy": scoring.ScoringPolicy(guard_s=0.0),
    }
    repeated = scoring.score_rows(row, widths=np.array([10], dtype=np.intp), **common)
    assert repeated.scored[0] and repeated.thin[0]
    assert repeated.score[0] == pytest.approx(16.0)
    as_points = scoring.score_rows(row, widths=np.array([1], dtype=np.intp), **common)
    assert not as_points.thin[0]
    assert as_points.score[0] == pytest.approx(160.0)


def test_a_row_with_no_sample_before_the_baseline_ends_is_not_scored() -> None:
    """Data that begins after the baseline's end has nothing to compare with."""
    row = np.r_[np.full(50, np.nan), np.full(50, 3.0)][None, :]
    times = np.arange(row.shape[1], dtype=float) * 6.0
    scores = scoring.score_rows(
        row,
        times=times,
        trigger_at=float(times[40]),
        directions=np.array([1]),
        floors=np.array([1e-9]),
        policy=scoring.ScoringPolicy(guard_s=0.0),
    )
    assert not scores.scored[0] and not scores.thin[0]
    assert scores.score[0] == 0.0


def test_a_share_is_measured_in_points_not_as_a_share_of_its_level() -> None:
    """A success ratio steady at 1.0 that falls to 0.9: with ``ratios`` its floor (one point)
    sets the scale, ten sigmas; read like any level, five percent of 1.0 would make it two."""
    row = np.r_[np.ones(60), np.full(30, 0.9)][None, :]
    times = np.arange(row.shape[1], dtype=float) * 60.0
    common = {
        "times": times,
        "trigger_at": float(times[-1]),
        "directions": np.array([-1]),
        "floors": np.array([0.01]),
        "policy": scoring.ScoringPolicy(),
    }
    as_share = scoring.score_rows(row, ratios=np.array([True]), **common)
    as_level = scoring.score_rows(row, **common)
    assert as_share.score[0] == pytest.approx(10.0)
    assert as_level.score[0] == pytest.approx(2.0)
