"""The Kubernetes-state scenarios (tests/kubernetes_scenarios), evaluated through the real CLI
and the lab: every object is served by the lab's Kubernetes API and read by the real client,
with no metrics at all."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_cli_lab import _diagnose, _env

pytestmark = [pytest.mark.slow, pytest.mark.lab]

FOLDER = Path(__file__).resolve().parents[1] / "kubernetes_scenarios"
NAMES = sorted(p.parent.name for p in FOLDER.glob("*/scenario.yaml"))


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One ``diagnose eval`` over the whole folder (one lab per scenario, as users run it)."""
    state = tmp_path_factory.mktemp("state")
    done = _diagnose("eval", str(FOLDER), "--json", env=_env(state), timeout=900)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_every_faulty_object_comes_first_and_nothing_abstains(evaluated: dict[str, Any]) -> None:
    """AC@1 is 1 on every class, no run abstains, and the ranking is in confidence order."""
    summary = evaluated["summary"]
    assert summary["scenarios"] == len(NAMES) and summary["errors"] == 0, summary
    wrong = {c["scenario"]: c["verdict"] for c in evaluated["cases"] if c["rank"] != 1}
    assert wrong == {}
    assert summary["abstentions"]["made"] == 0, summary
    assert summary["confidence_out_of_order"] == [], summary


def test_each_leader_cites_the_kubectl_command_that_shows_it(evaluated: dict[str, Any]) -> None:
    """The leading hypothesis of every scenario cites a record whose query is a kubectl
    command (``describe``, ``get``), which the on-call engineer can run again."""
    for case in evaluated["cases"]:
        queries = {e["id"]: e["query"] for e in case["evidence"]}
        cited = [queries.get(e, "") for e in case["hypotheses"][0]["evidence"]]
        assert any(q.startswith("kubectl ") for q in cited), (case["scenario"], cited)


def test_the_proposed_fix_is_the_one_the_scenario_expects(evaluated: dict[str, Any]) -> None:
    """The first fix proposed is the truth's (a rollback, scaling back up, …), dry-run against
    the lab's API when the agent can carry it out."""
    assert evaluated["summary"]["fix_accuracy"] == 1.0, [
        (c["scenario"], c["truth"].get("fix"), [f["kind"] for f in c["fixes"]])
        for c in evaluated["cases"]
    ]
    for case in evaluated["cases"]:
        for fix in case["fixes"]:
            if fix.get("action"):
                assert fix["dry_run_result"]["outcome"] == "accepted", (case["scenario"], fix)
