"""The database behind a slow service, on the lab's real servers: the probes run though the
ranking names the service, and postgres_exporter series scraped in another namespace are found."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.slow]

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def _run(scenario: str, state_dir: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "diagnose"), "run", "--scenario",
         str(SCENARIOS / scenario), "--json"],
        env=env | {"DIAGNOSE_STATE_DIR": str(state_dir), "NO_COLOR": "1"},
        capture_output=True, text=True, timeout=240, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_a_lock_holder_behind_a_slow_service_is_the_root_cause(tmp_path: Path) -> None:
    """With only the service's metrics slow and failing, the probes still run and the blocking
    session's database is named first, citing the probe."""
    result = _run("db-lock-behind-checkout", tmp_path)
    top = result["hypotheses"][0]
    assert (top["kind"], top["component"]) == ("database", "postgres/shop")
    sources = {e["id"]: e["source"] for e in result["evidence"]}
    assert "postgres" in {sources.get(e) for e in top["evidence"]}


def test_exporter_series_in_another_namespace_are_gathered(tmp_path: Path) -> None:
    """pg_* series scraped in namespace monitoring are found by datname and queried."""
    result = _run("db-lock-exporter-elsewhere", tmp_path)
    queried = [
        e
        for e in result["evidence"]
        if e["source"] == "prometheus" and "pg_locks_count" in e["query"]
    ]
    assert queried and all(e["status"] == "ok" for e in queried)
    assert (result["hypotheses"][0]["kind"], result["hypotheses"][0]["component"]) == (
        "database",
        "postgres/shop",
    )
