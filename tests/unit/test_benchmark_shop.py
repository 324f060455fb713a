"""The analysis benchmark's input at coarse resolutions is what Prometheus would return."""

from __future__ import annotations

import itertools

from benchmarks import analysis


def test_sixty_second_data_at_a_five_second_step_repeats_each_sample_until_the_next() -> None:
    """Queried at 5 s, a series scraped every 60 s holds each value for twelve steps."""
    shop = analysis.make_shop(series=400, points=720, seed=3, step_s=5.0, sample_s=60.0)
    gauge = next(e for e in shop.metrics if "container_memory_working_set_bytes" in e.query).raw[0]
    runs = [len(list(group)) for _, group in itertools.groupby(gauge["v"])]
    assert len(gauge["t"]) == 720
    assert gauge["t"][1] - gauge["t"][0] == 5.0
    assert max(runs[:-1]) == 12 == min(runs[1:-1])


def test_five_minute_data_keeps_the_window_and_fires_the_pager_inside_it() -> None:
    """Five-minute data over the same hour: 12 points, and the alert within the window."""
    shop = analysis.make_shop(series=400, points=12, seed=3, step_s=300.0, sample_s=300.0)
    assert {len(s["t"]) for e in shop.metrics for s in e.raw} == {12}
    assert shop.window.start < shop.trigger.at <= shop.window.end
