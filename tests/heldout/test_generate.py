"""The held-out generator writes what a real Prometheus would have stored: each target at its
own scrape interval, timestamps off the grid by a little jitter, a few missed scrapes, real
bucket layouts, and the same files on every run."""

from __future__ import annotations

import hashlib
import itertools
import statistics
from collections import defaultdict
from pathlib import Path

from tests.heldout import generate

HELDOUT = Path(__file__).resolve().parent


def _timestamps(scenario: str, *, starts: str) -> dict[str, list[float]]:
    """Timestamps of every series whose sample line starts with ``starts``."""
    out: dict[str, list[float]] = defaultdict(list)
    with (HELDOUT / scenario / "metrics.om").open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith(starts):
                head, _, rest = line.rpartition("} ")
                out[head].append(float(rest.split()[1]))
    return out


def _spacing(series: dict[str, list[float]]) -> float:
    return statistics.median(b - a for ts in series.values() for a, b in itertools.pairwise(ts))


def test_a_five_minute_scenario_is_sampled_every_five_minutes_with_jitter_and_gaps() -> None:
    """Five-minute data: 300 s apart, not on whole seconds, with some scrapes missed."""
    series = _timestamps("coarse-rollout-5m", starts="grpc_server_handled_total{")
    gaps = [b - a for ts in series.values() for a, b in itertools.pairwise(ts)]
    assert abs(_spacing(series) - 300) < 1
    assert any(ts % 1 for stamps in series.values() for ts in stamps)
    assert any(gap > 550 for gap in gaps)


def test_mixed_intervals_keep_each_exporter_at_its_own() -> None:
    """cAdvisor every 15 s, kube-state-metrics every 30 s, the applications every 60 s."""
    for starts, every in (
        ("container_cpu_usage_seconds_total{", 15),
        ("kube_deployment_status_replicas_available{", 30),
        ("http_requests_total{", 60),
    ):
        assert abs(_spacing(_timestamps("mixed-intervals", starts=starts)) - every) < 1, starts


def test_istio_scenario_uses_istios_default_buckets() -> None:
    """The Istio round-3 scenario's histograms carry exactly Istio's default bucket bounds."""
    bounds = set()
    with (HELDOUT / "istio-default-buckets" / "metrics.om").open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("istio_request_duration_milliseconds_bucket{"):
                bounds.add(line.split('le="', 1)[1].split('"', 1)[0])
    assert bounds == {f"{b:g}" for b in generate.ISTIO_DEFAULT_MS} | {"+Inf"}


def test_summaries_have_quantiles_and_no_buckets() -> None:
    """The summary scenario's latency is quantiles, _sum and _count only."""
    text = (HELDOUT / "summary-quantiles-15s" / "metrics.om").read_text(encoding="utf-8")
    assert "api_http_request_duration_seconds{" in text and 'quantile="0.99"' in text
    assert "api_http_request_duration_seconds_count{" in text
    assert "_bucket{" not in text


def test_counters_never_go_backwards_between_jittered_scrapes() -> None:
    """Interpolating a counter between grid steps keeps it monotonic (no fake resets)."""
    values: dict[str, list[float]] = defaultdict(list)
    with (HELDOUT / "configmap-envfrom-60s" / "metrics.om").open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("http_server_request_duration_seconds_count{"):
                head, _, rest = line.rpartition("} ")
                values[head].append(float(rest.split()[0]))
    assert values
    assert all(b >= a for v in values.values() for a, b in itertools.pairwise(v))


def test_generation_is_deterministic() -> None:
    """Two renders of one scenario are byte for byte the same (the generator is seeded)."""
    first = generate.render(generate.SCENARIOS["no-error-metric-60s"]().world)
    second = generate.render(generate.SCENARIOS["no-error-metric-60s"]().world)
    assert hashlib.sha256(first.encode()).digest() == hashlib.sha256(second.encode()).digest()
