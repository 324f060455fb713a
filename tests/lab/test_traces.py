"""A scenario's traces are served shifted, through the Jaeger and Tempo APIs of the trace server."""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import LabRunFactory
from tests.lab import conftest
from tests.traces import otlp_gen

pytestmark = pytest.mark.lab


def _get(url: str, **params: object) -> Any:
    query = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}?{query}", timeout=10) as answer:
        return json.load(answer)


def test_traces_are_found_in_the_shifted_window_only(
    lab_run: LabRunFactory, tmp_path: Path
) -> None:
    folder = conftest.write_scenario(tmp_path / "s", postgres=False, kubernetes=False)
    otlp_gen.write_document("slow_dependency", folder / "traces", traces_per_window=5)
    run = lab_run(folder)
    assert run.endpoints.jaeger_url and run.endpoints.tempo_url
    assert set(run.children) == {"prometheus", "traces"}
    (service, *_) = _get(f"{run.endpoints.jaeger_url}/api/services")["data"]
    window = otlp_gen.INCIDENT

    def traces_between(shift_s: float) -> list[Any]:
        start_us = int((window.start.timestamp() + shift_s) * 1e6)
        end_us = int((window.end.timestamp() + shift_s) * 1e6)
        found = _get(
            f"{run.endpoints.jaeger_url}/api/traces", service=service, start=start_us, end=end_us
        )
        return list(found["data"])

    assert traces_between(run.offset.total_seconds())
    assert traces_between(0) == []
