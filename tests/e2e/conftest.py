"""The bundled scenarios' metrics are generated, not committed: make sure they exist."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


@pytest.fixture(scope="session", autouse=True)
def _scenario_metrics() -> None:
    for folder in sorted(SCENARIOS.glob("*/scenario.yaml")):
        if not (folder.parent / "metrics.om").exists():
            subprocess.run(
                [sys.executable, str(SCENARIOS / "generate.py"), "--only", folder.parent.name],
                check=True,
                capture_output=True,
            )
