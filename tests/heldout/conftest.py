"""The held-out scenarios' metrics are generated, not committed: make sure they exist and are
not older than the generators (a stale file would test yesterday's scenario)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HELDOUT = Path(__file__).resolve().parent
GENERATORS = (HELDOUT / "generate.py", HELDOUT.parent / "scenarios" / "generate.py")


@pytest.fixture(scope="session", autouse=True)
def _heldout_metrics() -> None:
    generator = [sys.executable, str(HELDOUT / "generate.py")]
    listed = subprocess.run([*generator, "--names"], check=True, capture_output=True, text=True)
    newest = max(p.stat().st_mtime for p in GENERATORS)
    for name in listed.stdout.split():
        metrics = HELDOUT / name / "metrics.om"
        if not metrics.exists() or metrics.stat().st_mtime < newest:
            subprocess.run([*generator, "--only", name], check=True, capture_output=True)
