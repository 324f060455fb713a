"""The held-out scenarios' metrics are generated, not committed: make sure they exist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

HELDOUT = Path(__file__).resolve().parent


@pytest.fixture(scope="session", autouse=True)
def _heldout_metrics() -> None:
    generator = [sys.executable, str(HELDOUT / "generate.py")]
    listed = subprocess.run([*generator, "--names"], check=True, capture_output=True, text=True)
    for name in listed.stdout.split():
        if not (HELDOUT / name / "metrics.om").exists():
            subprocess.run([*generator, "--only", name], check=True, capture_output=True)
