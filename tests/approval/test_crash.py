"""A process killed between the recorded approval and the action neither loses nor repeats
the action: the run is finished by another process, which looks the idempotency key up in the
audit log and on the object before sending anything."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from diagnose import wiring
from diagnose.lab import lab
from diagnose.settings import Settings
from tests.approval.conftest import AgentFactory, approval_of, kube_api, lab_settings, writes

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _answer_in_a_process(
    settings: Settings, run_id: str, answer: dict[str, Any], *, tmp: Path, die_before: str = ""
) -> subprocess.Popen[bytes]:
    (tmp / "settings.json").write_text(settings.model_dump_json(), encoding="utf-8")
    (tmp / "answer.json").write_text(json.dumps(answer), encoding="utf-8")
    argv = [sys.executable, "-m", "tests.approval.approving", str(tmp / "settings.json"), run_id]
    argv += [str(tmp / "answer.json")] + (["--die-before", die_before] if die_before else [])
    with (tmp / "child.log").open("ab") as log:
        return subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)


def _audit(settings: Settings, run_id: str) -> list[dict[str, Any]]:
    log = wiring.open_audit(settings)
    try:
        return log.entries(run_id)
    finally:
        log.close()


def test_killed_after_the_approval_was_recorded_the_action_is_done_once_on_resume(
    bad_deploy: lab.LabRun, agents: AgentFactory, tmp_path: Path
) -> None:
    with kube_api(bad_deploy, workdir=tmp_path / "kube") as kube:
        settings = lab_settings(bad_deploy, kube, state_dir=tmp_path / "s", execute=True)
        paused = agents(settings).start(bad_deploy.trigger)
        fix = paused.state["fixes"][0]
        child = _answer_in_a_process(
            settings, paused.run_id, approval_of(paused, fix["id"]), tmp=tmp_path, die_before="act"
        )
        assert child.wait(timeout=120) == 137, (tmp_path / "child.log").read_text()
        kinds = [e["kind"] for e in _audit(settings, paused.run_id)]
        assert "approval" in kinds and "action" not in kinds
        assert writes(kube, dry_run=False) == []
        finished = agents(settings).recover(paused.run_id)
        assert finished.state["actions"][0]["outcome"] == "accepted"
        assert len(writes(kube, dry_run=False)) == 1
        again = agents(settings).recover(paused.run_id)
        assert again.state["actions"] == finished.state["actions"]
        assert len(writes(kube, dry_run=False)) == 1
        actions = [e for e in _audit(settings, paused.run_id) if e["kind"] == "action"]
        assert len(actions) == 1


def test_killed_after_the_patch_landed_the_resumed_run_does_not_send_it_again(
    bad_deploy: lab.LabRun, agents: AgentFactory, tmp_path: Path
) -> None:
    with kube_api(bad_deploy, workdir=tmp_path / "kube", hold_writes_s=60) as kube:
        settings = lab_settings(bad_deploy, kube, state_dir=tmp_path / "s", execute=True)
        paused = agents(settings).start(bad_deploy.trigger)
        fix = paused.state["fixes"][0]
        child = _answer_in_a_process(
            settings, paused.run_id, approval_of(paused, fix["id"]), tmp=tmp_path
        )
        deadline = time.monotonic() + 120
        while not writes(kube, dry_run=False):
            assert time.monotonic() < deadline and child.poll() is None, "no PATCH arrived"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        kinds = [e["kind"] for e in _audit(settings, paused.run_id)]
        assert "action-intent" in kinds and "action" not in kinds
        finished = agents(settings).recover(paused.run_id)
        (action,) = finished.state["actions"]
        assert (action["executed"], action["outcome"]) == (True, "already applied")
        assert len(writes(kube, dry_run=False)) == 1
