"""One rule on every path: an approval names at least one counter-evidence item it checked when
the fix's hypothesis has any. oomkill-memory-limit's raise_limits fix carries counter-evidence
(changes after the onset); the run is stored by ``diagnose run`` and approved by the CLI and the
HTTP API over the same store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from diagnose.server import app
from tests.server.conftest import TOKENS, make_settings, open_service, serving
from tests.support import approvals

pytestmark = [pytest.mark.lab, pytest.mark.slow]

BIN = Path(sys.executable).parent
SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "oomkill-memory-limit"
ALICE = {"Authorization": "Bearer alice-token-123"}


def _cli(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    return subprocess.run(
        [str(BIN / "diagnose"), *args],
        env=env | {"DIAGNOSE_STATE_DIR": str(state_dir), "NO_COLOR": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )


def _stored(state_dir: Path) -> tuple[Path, dict[str, Any]]:
    done = _cli("run", "--scenario", str(SCENARIO), "--json", state_dir=state_dir)
    assert done.returncode == 0, done.stderr
    return state_dir, json.loads(done.stdout)


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The scenario's run, waiting at the approval step in a state directory; the tests that
    use it leave it waiting."""
    return _stored(tmp_path_factory.mktemp("state"))


@pytest.fixture
def fresh(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A run of its own, for a test that decides it (the others find theirs still waiting,
    whatever order they run in)."""
    return _stored(tmp_path / "state")


def _countered(result: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    fix = result["fixes"][0]
    hypothesis = result["hypotheses"][fix["hypothesis"]]
    assert hypothesis["counter_evidence"], "the scenario's fix has counter-evidence against it"
    return fix, hypothesis


def test_diagnose_approve_without_counter_evidence_is_refused_naming_it(
    stored: tuple[Path, dict[str, Any]],
) -> None:
    """--checked with cited evidence only exits 1 and names the counter-evidence ids."""
    state_dir, result = stored
    fix, hypothesis = _countered(result)
    refused = _cli(
        "approve", result["run_id"], "--fix", fix["id"], "--checked", hypothesis["evidence"][0],
        "--approver", "alice", "--reason", "memory grew", state_dir=state_dir,
    )  # fmt: skip
    said = " ".join(refused.stderr.split())
    assert refused.returncode == 1 and "counter-evidence" in said
    assert hypothesis["counter_evidence"][0] in said
    shown = json.loads(_cli("show", result["run_id"], "--json", state_dir=state_dir).stdout)
    assert shown["waiting"] is True


def test_the_api_refuses_an_approval_without_counter_evidence(
    stored: tuple[Path, dict[str, Any]],
) -> None:
    """POST /api/v1/runs/RUN/approve citing only the hypothesis's evidence is 422."""
    state_dir, result = stored
    fix, hypothesis = _countered(result)
    body = {"fix": fix["id"], "reason": "memory grew", "checked_evidence": hypothesis["evidence"]}
    settings = make_settings(state_dir, api_tokens=TOKENS)
    with open_service(settings) as service, serving(app.create_app(service)) as url:
        run = f"{url}/api/v1/runs/{result['run_id']}"
        refused = httpx.post(f"{run}/approve", json=body, headers=ALICE)
        assert refused.status_code == 422
        assert hypothesis["counter_evidence"][0] in refused.json()["detail"]
        assert httpx.get(run, headers=ALICE).json()["waiting"] is True


def test_an_approval_naming_one_counter_evidence_item_goes_through(
    fresh: tuple[Path, dict[str, Any]],
) -> None:
    """The same approval with one counter-evidence id added is accepted and the run decided."""
    state_dir, result = fresh
    fix, hypothesis = _countered(result)
    done = _cli(
        "approve", result["run_id"], "--fix", fix["id"], "--checked", approvals.flag(hypothesis),
        "--approver", "alice", "--reason", "memory grew", "--json", state_dir=state_dir,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    decision = json.loads(done.stdout)["decision"]
    assert decision["checked_evidence"] == approvals.checked(hypothesis)
