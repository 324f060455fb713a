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


@pytest.mark.lab
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_diagnose_a_deployment_live_against_the_lab(tmp_path: Path) -> None:
    """`kubectl diagnose deploy/NAME -n NS --since 30m` reads the cluster and Prometheus it is
    pointed at, as it would in production (here: a scenario held up by `diagnose lab up`)."""
    import json

    from diagnose.lab import lab

    bin_dir = Path(sys.executable).parent
    scenario = Path(__file__).resolve().parents[1] / "scenarios" / "bad-deploy-5xx"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    env |= {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "DIAGNOSE_STATE_DIR": str(tmp_path),
    }
    up = subprocess.run(
        [str(bin_dir / "diagnose"), "lab", "up", str(scenario)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert up.returncode == 0, up.stderr
    try:
        [held] = lab.status(state_dir=tmp_path / "lab")
        live = env | {
            "DIAGNOSE_PROMETHEUS_URL": str(held.endpoints.prometheus_url),
            "DIAGNOSE_KUBERNETES_URL": str(held.endpoints.kubernetes_url),
        }
        done = subprocess.run(
            [
                "kubectl",
                "diagnose",
                "deploy/checkout",  # kubectl's own order: the resource first, `run` implied
                "-n",
                "shop",
                "--since",
                "30m",
                "--json",
            ],
            env=live,
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
        top = result["hypotheses"][0]
        assert (top["kind"], top["component"]) == ("deploy", "checkout")
        query = next(e["query"] for e in result["evidence"] if e["source"] == "kubernetes")
        assert query.startswith("kubectl get") and "-n shop" in query
    finally:
        subprocess.run([str(bin_dir / "diagnose"), "lab", "down"], env=env, timeout=60)
