"""After an applied fix the verification query is watched on the lab's Prometheus, for real.

The scenario's data is recorded, so a rollback in the lab changes no metric. What these tests
prove is the watch itself: it reads the query's live values and judges them against the
baseline and incident levels recorded with the fix. With the recorded data the errors are
still at incident level ("not recovered"); with a copy of the scenario whose 5xx counters stop
growing a minute after the trigger (time-shifted like every lab scenario, so the present is
past that minute) the error ratio is back at baseline ("recovered")."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from diagnose.lab import lab
from tests.approval.conftest import (
    BAD_DEPLOY,
    AgentFactory,
    approval_of,
    kube_api,
    lab_settings,
)

pytestmark = [pytest.mark.lab, pytest.mark.slow]

_SAMPLE = re.compile(r"^(?P<series>\S+\{[^}]*\}|\S+) (?P<value>\S+) (?P<ts>\d+(?:\.\d+)?)$")


def _errors_stop(scenario: Path, *, after: datetime) -> None:
    """Freeze every 5xx counter (histogram buckets, counts and sums) at its value at ``after``."""
    frozen: dict[str, str] = {}
    lines = []
    for text in (scenario / "metrics.om").read_text(encoding="utf-8").splitlines():
        found = _SAMPLE.match(text)
        kept = text
        if found and 'http_response_status_code="5' in found["series"]:
            series = found["series"]
            if float(found["ts"]) <= after.timestamp():
                frozen[series] = found["value"]
            elif series in frozen:
                kept = f"{series} {frozen[series]} {found['ts']}"
        lines.append(kept)
    (scenario / "metrics.om").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def recovering(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lab.LabRun]:
    folder = tmp_path_factory.mktemp("recovering") / "bad-deploy-recovers"
    shutil.copytree(BAD_DEPLOY, folder)
    at = yaml.safe_load((folder / "scenario.yaml").read_text(encoding="utf-8"))["trigger"]["at"]
    trigger = datetime.fromisoformat(str(at).replace("Z", "+00:00")).astimezone(UTC)
    _errors_stop(folder, after=trigger + timedelta(seconds=30))
    workdir = tmp_path_factory.mktemp("lab-recovering")
    with lab.running(folder, now=datetime.now(UTC), workdir=workdir) as run:
        yield run


def _applied_and_watched(run: lab.LabRun, agents: AgentFactory, tmp_path: Path) -> dict[str, Any]:
    with kube_api(run, workdir=tmp_path / "kube") as kube:
        settings = lab_settings(run, kube, state_dir=tmp_path / "s", execute=True)
        agent = agents(settings)
        paused = agent.start(run.trigger)
        fix = next(f for f in paused.state["fixes"] if f["target"] == "deployment/checkout")
        assert fix["verify_levels"]["incident"] > fix["verify_levels"]["baseline"]
        done = agent.resume(paused.run_id, approval_of(paused, fix["id"]))
    assert done.state["actions"][0]["executed"] is True
    return dict(done.state["verification"])


def test_errors_still_at_incident_level_are_reported_not_recovered(
    bad_deploy: lab.LabRun, agents: AgentFactory, tmp_path: Path
) -> None:
    verification = _applied_and_watched(bad_deploy, agents, tmp_path)
    assert verification["outcome"] == "not recovered"
    values = [s["value"] for s in verification["samples"]]
    assert values and all(v is not None for v in values)
    assert min(values) > sum(verification["levels"].values()) / 2


def test_errors_back_at_baseline_are_reported_recovered(
    recovering: lab.LabRun, agents: AgentFactory, tmp_path: Path
) -> None:
    verification = _applied_and_watched(recovering, agents, tmp_path)
    assert verification["outcome"] == "recovered", verification
    assert len(verification["samples"]) == 2
