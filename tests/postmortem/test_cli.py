"""``diagnose postmortem`` on bad input: a clear error, exit code 1, nothing written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def _postmortem(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    env |= {"DIAGNOSE_STATE_DIR": str(state_dir), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [str(BIN / "diagnose"), "postmortem", *args],
        env=env | {"DIAGNOSE_KUBERNETES_ENABLED": "false"},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_an_unknown_run_is_a_clear_error(tmp_path: Path) -> None:
    done = _postmortem("run-doesnotexist", state_dir=tmp_path)
    assert done.returncode == 1
    assert "no run 'run-doesnotexist'" in done.stderr
    assert not (tmp_path / "postmortems").exists()


def test_an_impossible_slo_target_is_refused_before_anything_is_read(tmp_path: Path) -> None:
    done = _postmortem("run-x", "--slo-target", "150", state_dir=tmp_path)
    assert done.returncode == 1
    assert "--slo-target 150.0: give a percentage below 100 (99.9) or a ratio" in done.stderr


def test_a_percentage_as_the_slo_setting_is_refused_with_what_to_write(tmp_path: Path) -> None:
    env = os.environ | {"DIAGNOSE_SLO_TARGET": "99.9"}
    done = subprocess.run(
        [str(BIN / "diagnose"), "postmortem", "run-x"],
        env={k: v for k, v in env.items() if k != "DIAGNOSE_STATE_DIR"}
        | {"DIAGNOSE_STATE_DIR": str(tmp_path), "DIAGNOSE_KUBERNETES_ENABLED": "false"},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 1
    assert "DIAGNOSE_SLO_TARGET: " in done.stderr
    assert "ratio strictly between 0 and 1 (0.999 for 99.9%), not 99.9" in done.stderr
    assert not (tmp_path / "postmortems").exists()
