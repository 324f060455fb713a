"""An anomaly that was over before the alert fired: an earlier episode. Its score is kept (on
recorded incidents it is as often the same trouble as not), but the report must say it ended,
and when, so nobody reads a finished CPU spike as one still burning."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import numpy as np

from diagnose.analysis import correlating, scoring
from diagnose.domain import models
from tests.support import synthetic as syn

POLICY = scoring.ScoringPolicy()
MINUTE = 60.0


def _score(values: np.ndarray, *, trigger_index: int) -> scoring.Scores:
    rows = np.atleast_2d(values).astype(float)
    times = np.arange(rows.shape[1], dtype=float) * MINUTE
    return scoring.score_rows(
        rows,
        times=times,
        trigger_at=float(times[trigger_index]),
        directions=np.full(rows.shape[0], 1),
        floors=np.full(rows.shape[0], 1e-9),
        policy=POLICY,
    )


def _level(*, rise: tuple[int, int], size: int = 56) -> np.ndarray:
    rng = np.random.default_rng(11)
    values = 1.0 + rng.normal(0, 0.02, size)
    values[rise[0] : rise[1]] += 5.0
    return values


def test_a_rise_over_before_the_trigger_keeps_its_score_and_says_when_it_ended() -> None:
    """Minutes 36-47 high, back from 48; the alert at 52: ended at 48, still anomalous."""
    scores = _score(_level(rise=(36, 48)), trigger_index=52)
    assert scores.score[0] >= POLICY.anomalous
    assert scores.ended is not None
    assert scores.ended[0] == 48 * MINUTE


def test_a_rise_still_on_at_the_trigger_has_not_ended() -> None:
    scores = _score(_level(rise=(36, 56)), trigger_index=52)
    assert scores.score[0] >= POLICY.anomalous
    assert scores.ended is not None and np.isnan(scores.ended[0])


def test_a_rise_that_comes_back_after_the_trigger_has_not_ended() -> None:
    """Quiet for the two minutes before the alert, high again after it: not over."""
    values = _level(rise=(36, 48))
    values[53:] += 5.0
    scores = _score(values, trigger_index=52)
    assert scores.ended is not None and np.isnan(scores.ended[0])


def test_a_return_within_the_last_samples_before_the_trigger_is_not_yet_an_end() -> None:
    """Back for one sample only when the alert fires: too little to call it over."""
    scores = _score(_level(rise=(36, 51)), trigger_index=52)
    assert scores.ended is not None and np.isnan(scores.ended[0])


STOREFRONT = (0.20, 1.5, 52, 60)  # the alerting entry point, slow from minute 52 on


def _steps(p99: dict[str, tuple[float, float, int, int]]) -> dict[str, np.ndarray]:
    """p99 per minute and service: (baseline, high, from, to)."""
    rng = np.random.default_rng(5)
    levels = {}
    for service, (base, high, rise, fall) in p99.items():
        values = base * (1 + rng.normal(0, 0.03, 60))
        values[rise:fall] = high
        levels[service] = values
    return levels


def _correlate(levels: Mapping[str, np.ndarray]) -> correlating.Correlation:
    """Sixty minutes of each service's p99; the storefront alerts at minute 55."""
    start = syn.START
    window = models.Window(start, start + timedelta(minutes=59))
    trigger = models.Trigger(
        "alertmanager",
        "storefront p99 above 1s",
        "storefront",
        syn.NAMESPACE,
        start + timedelta(minutes=55),
    )
    return correlating.correlate(
        trigger=trigger,
        window=window,
        metrics=[
            syn.p99_summary(
                {k: [float(x) for x in v] for k, v in levels.items()},
                start=start.timestamp(),
                period=MINUTE,
            )
        ],
        cluster=syn.cluster(window=window),
        now=window.end,
    )


def _with_orders_episode(
    rise: int, fall: int, *, storefront: tuple[float, float, int, int] = STOREFRONT
) -> correlating.Correlation:
    """Orders' p99 at 2 s from minute ``rise`` to ``fall``, beside the storefront's and a
    quiet catalog's."""
    return _correlate(
        _steps(
            {
                "storefront": storefront,
                "orders": (0.05, 2.0, rise, fall),
                "catalog": (0.03, 0.03, 0, 0),
            }
        )
    )


def test_the_report_says_which_component_was_over_before_the_alert() -> None:
    """Orders' episode ended at minute 50, two minutes before the storefront's rise: within
    two onsets' uncertainty of it, so it may have started it. It keeps its score, and the
    report says it is over."""
    result = _with_orders_episode(36, 50)
    by_name = {c.component: c for c in result.components}
    assert by_name["orders"].anomalous and by_name["storefront"].anomalous
    assert by_name["orders"].signals[0].ended == syn.START + timedelta(minutes=50)
    assert by_name["storefront"].signals[0].ended is None
    (note,) = [n for n in result.notes if n.startswith("over before the alert")]
    assert "orders" in note and "storefront" not in note
    assert not [n for n in result.notes if n.startswith("earlier episode")]
    told = [h.summary for h in result.hypotheses if h.component == "orders"]
    assert told and "over: back within its baseline from" in told[0]


def test_an_episode_over_before_the_symptom_began_is_not_its_cause() -> None:
    """Orders' episode ended at minute 48, four minutes before the storefront's rise began:
    a cause is still under way when its effect begins, so orders is scored by where it is
    now (normal) and the note says why."""
    result = _with_orders_episode(34, 48)
    by_name = {c.component: c for c in result.components}
    assert by_name["storefront"].anomalous
    assert not by_name["orders"].anomalous
    assert by_name["orders"].signals[0].ended == syn.START + timedelta(minutes=48)
    (note,) = [n for n in result.notes if n.startswith("earlier episode")]
    assert "orders" in note and "storefront" not in note.split("began")[0]
    assert all(h.component != "orders" for h in result.hypotheses)


def test_without_a_symptom_of_its_own_an_earlier_episode_keeps_its_score() -> None:
    """The alerted storefront shows nothing: nothing says when the symptom began, so the
    episode that ended before the alert is ranked as it was."""
    result = _with_orders_episode(34, 48, storefront=(0.20, 0.20, 0, 0))
    by_name = {c.component: c for c in result.components}
    assert by_name["orders"].anomalous
    assert result.hypotheses and result.hypotheses[0].component == "orders"
    assert not [n for n in result.notes if n.startswith("earlier episode")]


def test_a_symptom_drifting_up_since_the_data_began_had_begun_before_any_episode_ended() -> None:
    """The storefront's p99 has been climbing since the data begins (a drift, step 5 of
    docs/analysis.md): its rise began with the data, so orders' episode did not end before it
    and keeps its score."""
    rng = np.random.default_rng(8)
    minutes = np.arange(60)
    # a climb steep enough to explain half the rise after the step, shallow enough that the
    # step stands out of the climb's own baseline spread
    storefront = 0.20 + 0.01 * minutes + rng.normal(0, 0.001, 60)
    storefront[52:] += 0.45
    orders = 0.05 * (1 + rng.normal(0, 0.03, 60))
    orders[34:48] = 2.0
    catalog = 0.03 * (1 + rng.normal(0, 0.03, 60))
    result = _correlate({"storefront": storefront, "orders": orders, "catalog": catalog})
    start = syn.START
    by_name = {c.component: c for c in result.components}
    assert by_name["storefront"].anomalous
    assert by_name["storefront"].since == start
    assert by_name["orders"].anomalous
    assert by_name["orders"].signals[0].ended == start + timedelta(minutes=48)
    assert not [n for n in result.notes if n.startswith("earlier episode")]
