"""What the approver is shown: dry runs, the same fault elsewhere, and what would prove the
diagnosis wrong (counter-evidence, alternatives), in the terminal and in the report."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from diagnose import rendering
from diagnose.lab import lab
from graphs import approval, reporting
from tests.approval.conftest import AgentFactory, kube_api, lab_settings
from tests.support import approvals

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def _canary(bad_deploy: lab.LabRun) -> dict[str, Any]:
    """A second deployment running checkout's bad image and mounting its ConfigMap."""
    dump = bad_deploy.workdir / "kubernetes" / "kubernetes-objects.json"
    objects = json.loads(dump.read_text(encoding="utf-8"))
    checkout = next(
        o for o in objects if o.get("kind") == "Deployment" and o["metadata"]["name"] == "checkout"
    )
    canary = copy.deepcopy(checkout)
    canary["metadata"] = {
        "name": "checkout-canary",
        "namespace": "shop",
        "creationTimestamp": checkout["metadata"]["creationTimestamp"],
        "labels": {"app": "checkout-canary"},
    }
    canary["spec"]["selector"] = {"matchLabels": {"app": "checkout-canary"}}
    canary["spec"]["template"]["metadata"]["labels"] = {"app": "checkout-canary"}
    canary["spec"]["template"]["spec"]["containers"][0]["image"] = "shop/checkout:2.14.0"
    return canary


def test_the_prompt_and_report_show_dry_runs_sweep_counter_evidence_and_alternatives(
    bad_deploy: lab.LabRun, agents: AgentFactory, tmp_path: Path
) -> None:
    with kube_api(bad_deploy, workdir=tmp_path / "kube", extra=[_canary(bad_deploy)]) as kube:
        agent = agents(lab_settings(bad_deploy, kube, state_dir=tmp_path / "s"))
        paused = agent.start(bad_deploy.trigger)
    rollback = next(f for f in paused.state["fixes"] if f["target"] == "deployment/checkout")
    assert {"target": "deployment/checkout-canary", "why": rollback["sweep"][0]["why"]} in (
        rollback["sweep"]
    )
    assert "shop/checkout:2.14.0" in rollback["sweep"][0]["why"]
    question: Any = paused.question
    challenges = question["what_would_prove_it_wrong"]
    assert [c["rank"] for c in challenges] == [1, 2, 3][: len(challenges)]
    top = challenges[0]
    assert top["alternatives"] and "deployment/checkout@14" in top["wrong_if"][0]
    countered = [c for c in challenges if c["counter_evidence"]]
    assert countered, "the scenario's decoys carry counter-evidence"
    counter = countered[0]["counter_evidence"][0]
    assert counter["summary"] and counter["query"]

    console = Console(record=True, width=200, color_system=None)
    rendering.show(console, paused.state, bundle_dir=tmp_path)
    screen = console.export_text()
    assert "is wrong if:" in screen and "alternatives:" in screen
    assert f"against: {counter['id']}" in screen
    assert "accepted" in screen and "same pattern elsewhere" in screen
    assert "deployment/checkout-canary" in screen

    report = reporting.build(paused.state)
    assert report["what_would_prove_it_wrong"] == challenges
    reported = next(f for f in report["fixes"] if f["id"] == rollback["id"])
    assert reported["dry_run_result"]["outcome"] == "accepted"
    assert reported["sweep"] == rollback["sweep"]


def test_the_terminal_question_shows_the_dry_run_and_answers_with_the_digest(
    bad_deploy: lab.LabRun, agents: AgentFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with kube_api(bad_deploy, workdir=tmp_path / "kube") as kube:
        paused = agents(lab_settings(bad_deploy, kube, state_dir=tmp_path / "s")).start(
            bad_deploy.trigger
        )
    fix = paused.state["fixes"][0]
    checked = approvals.flag(paused.state["correlation"]["hypotheses"][fix["hypothesis"]])
    typed = "\n".join([fix["id"], "alice", checked, "5xx began with rev 14"]) + "\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(typed))
    console = Console(record=True, width=200, color_system=None)
    answer = rendering.prompt_decision(console, paused.state)
    assert f"Dry run of {fix['id']}: accepted" in console.export_text()
    assert answer["fix_digest"] == fix["digest"] == approval.digest(fix, run_id=paused.run_id)
