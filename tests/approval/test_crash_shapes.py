"""The two checkpoints a kill around the approval step leaves, made on purpose (a random kill
lands on them only now and then): each is finished by recovery, the approved patch sent once.

- killed as the approval was recorded: the audit log holds it, the run's state does not;
- killed after the approval step's output was saved but before the checkpoint after it:
  LangGraph lists no next step, though nothing after the approval has run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from diagnose import wiring
from diagnose.lab import lab
from diagnose.settings import Settings
from tests.approval.conftest import AgentFactory, approval_of, kube_api, lab_settings, writes

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]


def _answer_and_die(
    settings: Settings, run_id: str, answer: dict[str, Any], *, point: str, tmp: Path
) -> int:
    (tmp / "settings.json").write_text(settings.model_dump_json(), encoding="utf-8")
    (tmp / "answer.json").write_text(json.dumps(answer), encoding="utf-8")
    argv = [sys.executable, "-m", "tests.approval.dying", str(tmp / "settings.json"), run_id]
    argv += [str(tmp / "answer.json"), point]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == -9, done.stderr
    return done.returncode


def _kinds(settings: Settings, run_id: str) -> Counter[str]:
    log = wiring.open_audit(settings)
    try:
        return Counter(entry["kind"] for entry in log.entries(run_id))
    finally:
        log.close()


@pytest.mark.parametrize("point", ["approval-recorded", "step-saved"])
def test_a_run_killed_around_its_approval_is_finished_with_the_fix_applied_once(
    bad_deploy: lab.LabRun, agents: AgentFactory, tmp_path: Path, point: str
) -> None:
    """Recovery finishes the run from either checkpoint, sends the approved patch once and
    records each entry once."""
    with kube_api(bad_deploy, workdir=tmp_path / "kube") as kube:
        settings = lab_settings(bad_deploy, kube, state_dir=tmp_path / "s", execute=True)
        paused = agents(settings).start(bad_deploy.trigger)
        fix = paused.state["fixes"][0]
        _answer_and_die(
            settings, paused.run_id, approval_of(paused, fix["id"]), point=point, tmp=tmp_path
        )
        agent = agents(settings)
        before = agent.status(paused.run_id)
        snapshot = agent.graph.get_state({"configurable": {"thread_id": paused.run_id}})
        assert _kinds(settings, paused.run_id)["approval"] == 1
        assert writes(kube, dry_run=False) == [] and not before.finished
        if point == "approval-recorded":
            assert before.waiting and before.state.get("approvals", []) == []
        else:
            assert snapshot.next == () and not before.waiting
        done = agent.recover(paused.run_id)
        assert done.finished
        (action,) = done.state["actions"]
        assert (action["executed"], action["outcome"]) == (True, "accepted")
        assert len(writes(kube, dry_run=False)) == 1
        kinds = _kinds(settings, paused.run_id)
        assert kinds["approval"] == kinds["action"] == kinds["decision"] == 1, kinds


def _cli_env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    return env | {
        "NO_COLOR": "1",
        "DIAGNOSE_STATE_DIR": str(settings.state_dir),
        "DIAGNOSE_PROMETHEUS_URL": str(settings.prometheus_url),
        "DIAGNOSE_KUBERNETES_URL": str(settings.kubernetes_url),
        "DIAGNOSE_KUBERNETES_WRITE_URL": str(settings.kubernetes_write_url),
        "DIAGNOSE_EXECUTE": "true",
        "DIAGNOSE_FIX_MIN_CONFIDENCE": str(settings.fix_min_confidence),
        "DIAGNOSE_VERIFY_WATCH_S": str(settings.verify_watch_s),
        "DIAGNOSE_VERIFY_INTERVAL_S": str(settings.verify_interval_s),
    }


def test_finish_all_carries_on_every_run_a_crash_left_and_says_where_each_stands(
    bad_deploy: lab.LabRun, agents: AgentFactory, tmp_path: Path
) -> None:
    """``diagnose finish --all`` finishes the killed run (one PATCH) and leaves the run nobody
    answered waiting, one line each."""
    with kube_api(bad_deploy, workdir=tmp_path / "kube") as kube:
        settings = lab_settings(bad_deploy, kube, state_dir=tmp_path / "s", execute=True)
        killed = agents(settings).start(bad_deploy.trigger)
        fix = killed.state["fixes"][0]
        answer = approval_of(killed, fix["id"])
        _answer_and_die(settings, killed.run_id, answer, point="step-saved", tmp=tmp_path)
        unanswered = agents(settings).start(bad_deploy.trigger)
        done = subprocess.run(
            [str(Path(sys.executable).parent / "diagnose"), "finish", "--all"],
            env=_cli_env(settings),
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == [
            f"{killed.run_id}: finished",
            f"{unanswered.run_id}: waits for approval",
        ]
        assert len(writes(kube, dry_run=False)) == 1
        assert agents(settings).status(killed.run_id).finished
