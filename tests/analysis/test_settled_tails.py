"""A lower quantile that rises only to where a higher quantile of the same latency already sat
is a tail that was there before (a long poll in a wide top bucket), not a new slowness."""

from __future__ import annotations

import numpy as np

from diagnose.analysis import correlating
from diagnose.domain import models
from tests.analysis import test_traces_merge as merge

P95, P99 = "svc:request_latency_seconds:p95", "svc:request_latency_seconds:p99"


def _latencies(*, poller_p95_after: float) -> list[models.Evidence]:
    """``risk`` gets three times slower from the onset, p95 and p99 alike. ``poller``'s p99 has
    always sat in the 10-30 s bucket (its long polls); its p95 stays at 9 ms until the onset and
    is ``poller_p95_after`` seconds from then on."""
    rng = np.random.default_rng(3)
    t = merge.T0.timestamp() + merge.STEP * np.arange(int(merge.WINDOW.seconds / merge.STEP) + 1)
    after = t >= merge.ONSET.timestamp()
    rows: dict[str, list[dict[str, object]]] = {P95: [], P99: []}
    risk = 0.03 * np.where(after, 3.0, 1.0)
    rows[P95].append(merge._series(P95, "risk", t, risk * rng.normal(1, 0.05, t.size)))
    rows[P99].append(merge._series(P99, "risk", t, 1.4 * risk * rng.normal(1, 0.05, t.size)))
    poller_p95 = np.where(after, poller_p95_after, 0.009) * rng.normal(1, 0.02, t.size)
    rows[P95].append(merge._series(P95, "poller", t, poller_p95))
    rows[P99].append(merge._series(P99, "poller", t, rng.uniform(8.0, 28.0, t.size)))
    return [merge._evidence(name, series) for name, series in rows.items()]


def _run(metrics: list[models.Evidence]) -> correlating.Correlation:
    return merge.run(metrics)


def _z(result: correlating.Correlation, component: str, metric: str) -> float:
    found = next(c for c in result.components if c.component == component)
    return next(s.z for s in found.signals if s.metric == metric)


def test_a_quantile_rising_into_the_tail_its_higher_quantile_had_is_no_new_slowness() -> None:
    result = _run(_latencies(poller_p95_after=14.5))
    assert result.hypotheses[0].component == "risk"
    assert _z(result, "poller", P95) < 5  # the p99's own score: the tail did not move
    assert _z(result, "risk", P95) > 5


def test_a_quantile_rising_past_that_tail_keeps_its_score() -> None:
    """Beyond where the p99 ever sat (in its baseline's scale), the p95's rise is new."""
    result = _run(_latencies(poller_p95_after=200.0))
    assert _z(result, "poller", P95) > 1000
    assert result.hypotheses[0].component == "poller"
