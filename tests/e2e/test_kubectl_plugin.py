"""The CLI installs as a kubectl plugin that kubectl itself finds and runs."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_finds_and_runs_the_plugin() -> None:
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "kubectl-diagnose").exists(), "install the project: pip install -e ."
    env = os.environ | {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        ["kubectl", "diagnose", "--help"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "kubectl diagnose" in done.stdout
    assert "approve" in done.stdout
