"""A baseline ends before the onset it is compared with: when the data starts shortly before
the fault, half of it (the usual baseline) would hold part of the fault."""

from __future__ import annotations

import numpy as np

from diagnose.analysis import scoring

STEP = 15.0
TIMES = np.arange(0.0, 20 * 60 + STEP, STEP)  # twenty minutes of data
TRIGGER = 14 * 60.0  # the baseline would end at 7 min (half the data before the trigger)


def _row(onset_s: float) -> np.ndarray:
    rng = np.random.default_rng(7)
    return np.where(onset_s <= TIMES, 20.0, 10.0) + rng.normal(0.0, 0.2, TIMES.size)


def _scores(row: np.ndarray) -> scoring.Scores:
    return scoring.score_rows(
        row[None, :],
        times=TIMES,
        trigger_at=TRIGGER,
        directions=np.array([1]),
        floors=np.array([0.0]),
        policy=scoring.ScoringPolicy(),
    )


def test_a_fault_inside_the_half_baseline_is_scored_against_the_data_before_it() -> None:
    """Onset at 4 min: the baseline ends there, its median is the level before, the shift is
    anomalous, and nothing is said to be short."""
    scores = _scores(_row(4 * 60.0))
    assert abs(scores.median[0] - 10.0) < 0.5
    assert scores.score[0] >= scoring.ScoringPolicy().anomalous
    assert TIMES[scores.onset[0]] == 4 * 60.0
    assert not scores.short_baseline[0]


def test_too_little_data_before_the_onset_is_said_to_be_short() -> None:
    """Onset at 45 s: three samples before it are no baseline; the row is flagged."""
    scores = _scores(_row(45.0))
    assert scores.short_baseline[0]


def test_a_fault_after_the_baseline_is_scored_as_before() -> None:
    """Onset at 10 min, after the baseline's end: nothing is scored again."""
    scores = _scores(_row(10 * 60.0))
    assert not scores.short_baseline[0]
    assert abs(scores.median[0] - 10.0) < 0.5 and scores.score[0] >= 5.0
