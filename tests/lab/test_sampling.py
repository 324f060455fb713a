"""Metrics are read at their own sampling interval, learnt from Prometheus, never finer."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors import bundle
from diagnose import evaluation, wiring
from diagnose.lab import lab
from diagnose.settings import Settings
from tests.lab.conftest import write_scenario

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def test_minute_samples_are_read_every_minute_not_every_few_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The small scenario is scraped once a minute (the scope's step is a few seconds): its
    interval is learnt by a probe kept as evidence, and it is read as raw samples at their own
    times, one a minute, neither repeated nor moved to a step boundary."""
    monkeypatch.setenv("DIAGNOSE_STATE_DIR", str(tmp_path / "state"))
    folder = write_scenario(tmp_path / "small", postgres=False)
    with lab.running(folder, now=datetime.now(UTC), workdir=tmp_path / "lab") as up:
        settings = wiring.with_endpoints(Settings(), up.endpoints)
        with wiring.open_agent(settings, progress=lambda _m: None, remember=False) as agent:
            paused = agent.start(up.trigger)
            if paused.waiting:
                agent.resume(paused.run_id, evaluation.REJECT)
    state = paused.state
    assert state["step_s"] < 60
    (entry,) = [p for p in state["plan"] if p["metric"] == "http_requests_total"]
    assert entry["step_s"] == 60.0
    queries = {e["query"]: e["summary"] for e in state["evidence"]}
    (read,) = [q for q in queries if q.startswith(entry["query"] + "[")]
    assert "raw samples" in queries[read]
    assert any(q.startswith("count_over_time(") for q in queries)
    records = bundle.read_evidence(settings.bundles_dir / paused.run_id)
    (samples,) = [r for r in records if r.query == read]
    gaps = {round(b - a) for s in samples.raw for a, b in itertools.pairwise(s["t"])}
    assert gaps == {60}
