"""``diagnose finish`` takes one run, or ``--all``; an unknown run is an error that names it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DIAGNOSE = str(Path(sys.executable).parent / "diagnose")


def _finish(*args: str, state: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    env |= {"DIAGNOSE_STATE_DIR": str(state), "NO_COLOR": "1", "COLUMNS": "200"}
    return subprocess.run(
        [DIAGNOSE, "finish", *args], env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("args", [(), ("run-1", "--all")], ids=["neither", "both"])
def test_finish_needs_one_run_or_all(tmp_path: Path, args: tuple[str, ...]) -> None:
    """Neither a run nor --all, or both, is refused with what to give."""
    done = _finish(*args, state=tmp_path)
    assert done.returncode == 1 and "give one RUN_ID, or --all" in done.stderr


def test_finish_of_an_unknown_run_names_it(tmp_path: Path) -> None:
    """A run the checkpoint store does not hold is an error naming it, not a silent success."""
    done = _finish("run-nope", state=tmp_path)
    assert done.returncode == 1 and "no run 'run-nope'" in done.stderr


def test_finish_all_with_nothing_unfinished_says_nothing(tmp_path: Path) -> None:
    """With no run in the store, --all succeeds and prints nothing."""
    done = _finish("--all", state=tmp_path)
    assert (done.returncode, done.stdout) == (0, ""), done.stderr
