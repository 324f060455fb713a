"""``diagnose run --run-id``: the CLI drives runs as the service's workers do
(``Agent.start_or_resume``), so a run id already in the checkpoint store is carried on, not
started over."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DIAGNOSE = str(Path(sys.executable).parent / "diagnose")


def _run(run_id: str, *, state: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    env |= {"DIAGNOSE_STATE_DIR": str(state), "DIAGNOSE_KUBERNETES_ENABLED": "false"}
    env |= {"NO_COLOR": "1", "COLUMNS": "200"}
    args = ["run", "--service", "checkout", "--run-id", run_id, "--json"]
    return subprocess.run([DIAGNOSE, *args], env=env, capture_output=True, text=True, timeout=120)


def test_a_stored_run_id_is_carried_on_not_started_over(tmp_path: Path) -> None:
    """Running a finished run's id again runs no step and reports the stored run unchanged."""
    first = _run("run-twice", state=tmp_path)
    assert "· intake…" in first.stderr, first.stderr
    again = _run("run-twice", state=tmp_path)
    assert (again.returncode, again.stdout) == (first.returncode, first.stdout)
    assert "· intake…" not in again.stderr, again.stderr
