"""Metrics are read at their own sampling interval, learnt from Prometheus, never finer."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors import bundle
from diagnose import evaluation, wiring
from diagnose.lab import lab
from diagnose.settings import Settings
from tests.e2e.test_cli_lab import _diagnose, _env
from tests.lab.conftest import T0, write_scenario

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


def test_a_replay_of_minute_samples_ranks_as_the_run_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`diagnose replay` lays the raw minute samples on the run's own grid (its step is in the
    bundle's manifest), so the replayed hypotheses are the run's, confidences included."""
    monkeypatch.setenv("DIAGNOSE_STATE_DIR", str(tmp_path / "state"))
    folder = write_scenario(tmp_path / "small", postgres=False)
    (folder / "metrics.om").write_text(_failing_checkout())
    with lab.running(folder, now=datetime.now(UTC), workdir=tmp_path / "lab") as up:
        settings = wiring.with_endpoints(Settings(), up.endpoints)
        with wiring.open_agent(settings, progress=lambda _m: None, remember=False) as agent:
            paused = agent.start(up.trigger)
    ran = [
        (h["kind"], h["component"], h["confidence"], h["onset"])
        for h in paused.state["correlation"]["hypotheses"]
    ]
    bundle_dir = str(settings.bundles_dir / paused.run_id)
    done = _diagnose("replay", bundle_dir, "--json", env=_env(tmp_path / "state"))
    assert done.returncode == 0, done.stderr
    replayed = json.loads(done.stdout)["hypotheses"]
    assert ran[0][1] == "checkout" and ran[0][2] > 0
    assert [(h["kind"], h["component"], h["confidence"], h["onset"]) for h in replayed] == ran


def _failing_checkout() -> str:
    """Minute samples: checkout's 5xx share goes from 1 % to 30 % at minute 42 (the trigger is
    at minute 50), a steady cart beside it."""
    lines = ["# TYPE http_requests_total counter"]
    ok = failed = steady = 0.0
    for minute in range(60):
        at = T0 + 60 * minute + (minute * 7) % 5  # a little scrape jitter
        bad = 30.0 if minute >= 42 else 1.0
        ok, failed, steady = ok + 100.0 - bad, failed + bad, steady + 50.0
        lines.append(f'http_requests_total{{service="checkout",code="200"}} {ok} {at}')
        lines.append(f'http_requests_total{{service="checkout",code="500"}} {failed} {at}')
        lines.append(f'http_requests_total{{service="cart",code="200"}} {steady} {at}')
    return "\n".join([*lines, "# EOF", ""])
