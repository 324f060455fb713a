"""A short recording of five-minute statistics: two samples before the alert's incident, one
in it. No spread can be measured from two, yet a jump of forty times the level is no noise,
and the change one period before it is what the on-call needs to see."""

from __future__ import annotations

from datetime import timedelta

import pytest

from diagnose.analysis import correlating
from diagnose.domain import models
from tests.support import synthetic as syn

PERIOD = 300.0

P99 = {  # p99 latency per five-minute period, seconds
    "storefront": (0.30, 0.32, 2.10),  # the alerting entry point: it waits on search
    "search": (0.050, 0.059, 1.99),  # the culprit
    "catalog": (0.020, 0.021, 0.041),  # doubles: too little for a thin baseline
    "reviews": (0.110, 0.100, 0.105),
}


def _run(*, step_s: float | None) -> correlating.Correlation:
    start = syn.START
    window = models.Window(start, start + timedelta(seconds=2 * PERIOD + 150))
    trigger = models.Trigger(
        "alertmanager",
        "storefront p99 above 1s",
        "storefront",
        syn.NAMESPACE,
        start + timedelta(seconds=2 * PERIOD + 60),
    )
    cluster = syn.cluster(
        replicasets=syn.rollout("reviews", at=start + timedelta(seconds=100)),
        configs=[syn.configmap("search-config", updated=start + timedelta(seconds=420))],
        window=window,
    )
    return correlating.correlate(
        trigger=trigger,
        window=window,
        metrics=[syn.p99_summary(P99, start=start.timestamp(), period=PERIOD)],
        cluster=cluster,
        now=window.end,
        step_s=step_s,
    )


@pytest.mark.parametrize("step_s", [None, 6.0])
def test_a_forty_fold_jump_on_a_two_sample_baseline_is_found_with_its_change(
    step_s: float | None,
) -> None:
    """Read at the statistics' own step or laid on a 6 s grid (three raw samples, held), the
    same answer: search's config edit, one period before its jump, ranks first."""
    result = _run(step_s=step_s)
    best = result.hypotheses[0]
    assert (best.kind, best.component, best.change) == (
        models.CauseKind.CONFIG,
        "search",
        "configmap/search-config",
    )
    # no spread was measured, so no sigmas are claimed: the level's ratio is what it shows
    assert "× its level (a baseline of a few samples)" in best.summary
    assert "σ" not in best.summary.split("became anomalous:")[1]
    anomalous = {c.component for c in result.components if c.anomalous}
    assert "catalog" not in anomalous and "reviews" not in anomalous
    (note,) = [n for n in result.notes if n.startswith("thin baseline")]
    assert "search" in note and "3.5 times" in note
