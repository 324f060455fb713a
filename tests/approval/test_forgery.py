"""An approval for one fix never carries out another: answers naming another fix's digest,
decisions forged into the checkpoint, fixes edited after approval and decisions replayed from
another run are all refused at the act step, and nothing is sent to the cluster."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langgraph.types import Command

from diagnose.lab import kubeapi, lab
from graphs import approval, runner
from tests.approval.conftest import (
    AgentFactory,
    Crash,
    approval_of,
    crash_before,
    lab_settings,
    writes,
)

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def _config(run_id: str) -> Any:
    return {"configurable": {"thread_id": run_id}}


def _two_fixes(paused: runner.Paused) -> tuple[dict[str, Any], dict[str, Any]]:
    first, second = (f for f in paused.state["fixes"] if f.get("action"))
    return first, second


def test_an_answer_naming_another_fixs_digest_is_refused_and_asked_again(
    bad_deploy: lab.LabRun, kube: kubeapi.KubeApiServer, agents: AgentFactory, tmp_path: Path
) -> None:
    agent = agents(lab_settings(bad_deploy, kube, state_dir=tmp_path / "s", execute=True))
    paused = agent.start(bad_deploy.trigger)
    a, b = _two_fixes(paused)
    answer = approval_of(paused, b["id"]) | {"fix_digest": a["digest"]}
    again = agent.resume(paused.run_id, answer)
    assert again.waiting and "decision" not in again.state
    assert any("not the fix you read" in p for p in again.state["approval_errors"])
    assert writes(kube, dry_run=False) == []


def _approved_then_crashed(
    agents: AgentFactory, settings: Any, trigger: Any
) -> tuple[runner.Agent, runner.Paused]:
    """Approve the first Kubernetes fix; the process stops as ``act`` begins."""
    crashing = agents(settings, progress=crash_before("act"))
    paused = crashing.start(trigger)
    first, _ = _two_fixes(paused)
    with pytest.raises(Crash):
        crashing.resume(paused.run_id, approval_of(paused, first["id"]))
    snapshot = crashing.graph.get_state(_config(paused.run_id))
    assert snapshot.next == ("act",)
    return agents(settings), paused


def _other_fix(state: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
    b = next(f for f in state["fixes"] if f.get("action") and f["id"] != decision["fix"])
    return decision | {"fix": b["id"]}


def _forged_decision_and_approvals(
    state: dict[str, Any], decision: dict[str, Any]
) -> dict[str, Any]:
    b = next(f for f in state["fixes"] if f.get("action") and f["id"] != decision["fix"])
    forged = decision | {"fix": b["id"], "fix_digest": b["digest"]}
    return {"decision": forged, "approvals": [forged]}


def _edited_fix(state: dict[str, Any], decision: dict[str, Any]) -> dict[str, Any]:
    fixes = [dict(f) for f in state["fixes"]]
    target = next(f for f in fixes if f["id"] == decision["fix"])
    body = [dict(op) for op in target["patch"]["body"]]
    template = dict(body[0]["value"])
    template["spec"] = dict(template["spec"]) | {
        "containers": [{"name": "checkout", "image": "attacker/miner:latest"}]
    }
    body[0] = body[0] | {"value": template}
    target["patch"] = target["patch"] | {"body": body}
    target["digest"] = approval.digest(target, run_id=state["run_id"])
    forged = decision | {"fix_digest": target["digest"]}
    return {"fixes": fixes, "decision": forged, "approvals": [forged]}


Tamper = Callable[[dict[str, Any], dict[str, Any]], dict[str, Any]]
TAMPERING: dict[str, tuple[Tamper, str]] = {
    "decision points at another fix": (
        lambda s, d: {"decision": _other_fix(s, d)},
        "it changed after approval, or the approval is another's",
    ),
    "decision and approvals forged for another fix": (
        _forged_decision_and_approvals,
        "the audit log holds no approval",
    ),
    "fix edited after approval, digests recomputed": (
        _edited_fix,
        "the audit log holds no approval",
    ),
}


@pytest.mark.parametrize("how", sorted(TAMPERING))
def test_a_checkpoint_tampered_between_approval_and_action_is_refused(
    how: str,
    bad_deploy: lab.LabRun,
    kube: kubeapi.KubeApiServer,
    agents: AgentFactory,
    tmp_path: Path,
) -> None:
    settings = lab_settings(bad_deploy, kube, state_dir=tmp_path / "s", execute=True)
    agent, paused = _approved_then_crashed(agents, settings, bad_deploy.trigger)
    state = dict(agent.graph.get_state(_config(paused.run_id)).values)
    tamper, reason = TAMPERING[how]
    update = tamper(state, state["decision"])
    agent.graph.update_state(
        _config(paused.run_id), Command(goto="act", update=update), as_node="approve"
    )
    done = agent.recover(paused.run_id)
    (action,) = done.state["actions"]
    assert (action["executed"], action["outcome"]) == (False, "refused"), action
    assert reason in action["why_not_executed"]
    assert writes(kube, dry_run=False) == []
    assert "verification" not in done.state


def test_a_decision_replayed_from_another_run_is_refused(
    bad_deploy: lab.LabRun, kube: kubeapi.KubeApiServer, agents: AgentFactory, tmp_path: Path
) -> None:
    settings = lab_settings(bad_deploy, kube, state_dir=tmp_path / "s")
    agent = agents(settings)
    earlier = agent.start(bad_deploy.trigger)
    first, _ = _two_fixes(earlier)
    old = agent.resume(earlier.run_id, approval_of(earlier, first["id"]))
    assert old.state["decision"]["fix"] == first["id"]
    executing = agents(
        settings.model_copy(update={"execute": True, "kubernetes_write_url": kube.url})
    )
    later = executing.start(bad_deploy.trigger)
    replay = {"decision": old.state["decision"], "approvals": old.state["approvals"]}
    executing.graph.update_state(
        _config(later.run_id), Command(goto="act", update=replay), as_node="approve"
    )
    done = executing.recover(later.run_id)
    (action,) = done.state["actions"]
    assert (action["executed"], action["outcome"]) == (False, "refused")
    assert "digest" in action["why_not_executed"]
    assert writes(kube, dry_run=False) == []


def test_untampered_the_crashed_run_finishes_and_applies_the_approved_fix(
    bad_deploy: lab.LabRun, kube: kubeapi.KubeApiServer, agents: AgentFactory, tmp_path: Path
) -> None:
    """The control for the tampering cases: the same path without tampering does act."""
    settings = lab_settings(bad_deploy, kube, state_dir=tmp_path / "s", execute=True)
    agent, paused = _approved_then_crashed(agents, settings, bad_deploy.trigger)
    done = agent.recover(paused.run_id)
    (action,) = done.state["actions"]
    assert (action["executed"], action["outcome"]) == (True, "accepted")
    assert len(writes(kube, dry_run=False)) == 1
