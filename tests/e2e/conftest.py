"""The bundled scenarios' metrics are generated, not committed: make sure they exist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


@pytest.fixture(scope="session", autouse=True)
def _scenario_metrics() -> None:
    generator = [sys.executable, str(SCENARIOS / "generate.py")]
    listed = subprocess.run([*generator, "--names"], check=True, capture_output=True, text=True)
    for name in listed.stdout.split():
        if not (SCENARIOS / name / "metrics.om").exists():
            subprocess.run([*generator, "--only", name], check=True, capture_output=True)
