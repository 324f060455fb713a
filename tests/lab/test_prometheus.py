"""A real Prometheus serves a recorded scenario's metrics, at the recorded or shifted times."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from diagnose import scenario as scenario_format
from diagnose.domain import errors
from diagnose.lab import prometheus
from tests.conftest import LabRunFactory

SOCKSHOP = "sockshop/ss-carts-cpu-1"
CARTS_CPU = 'container_cpu_usage_seconds_total{container="carts"}'


def _query_range(url: str, query: str, *, start: float, end: float) -> list[Any]:
    params = urllib.parse.urlencode({"query": query, "start": start, "end": end, "step": 15})
    with urllib.request.urlopen(f"{url}/api/v1/query_range?{params}", timeout=10) as answer:
        return list(json.load(answer)["data"]["result"])


def test_missing_prometheus_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(
        errors.MissingTool, match=r"apt-get update && apt-get install -y prometheus"
    ):
        prometheus.find_tools(search_path=str(tmp_path))


@pytest.mark.lab
@pytest.mark.parametrize("shift", [False, True], ids=["recorded-times", "shifted"])
def test_promql_over_http_returns_the_series_at_the_scenario_times(
    shared_datasets: Path, lab_run: LabRunFactory, shift: bool
) -> None:
    run = lab_run(shared_datasets / SOCKSHOP, shift=shift)
    recorded = scenario_format.Scenario.load(shared_datasets / SOCKSHOP)
    assert run.endpoints.prometheus_url is not None
    assert (run.offset.total_seconds() > 0) is shift
    start, end = run.scenario.time.start.timestamp(), run.scenario.time.end.timestamp()
    assert start == recorded.time.start.timestamp() + run.offset.total_seconds()
    series = _query_range(run.endpoints.prometheus_url, CARTS_CPU, start=start, end=end)
    assert len(series) == 1
    times = [point[0] for point in series[0]["values"]]
    assert times[0] == start and times[-1] >= end - 15
    before = _query_range(
        run.endpoints.prometheus_url, CARTS_CPU, start=start - 3600, end=start - 600
    )
    assert before == []


@pytest.mark.lab
def test_backfill_of_a_sockshop_recording_takes_under_two_seconds(
    shared_datasets: Path, tmp_path: Path
) -> None:
    began = time.perf_counter()
    with prometheus.PrometheusServer.from_openmetrics(
        shared_datasets / SOCKSHOP / "metrics.om", workdir=tmp_path
    ) as server:
        assert time.perf_counter() - began < 2.0
        assert server.span == (1652565600.0, 1652566173.001)
