"""Against the lab's Kubernetes API (kmock speaking the API to the real client): dry runs are
shown before approval, an approved rollback sends exactly the expected request, a rejected one
sends none, execution off sends none, and the database is never written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from diagnose.lab import kubeapi, lab
from tests.approval.conftest import AgentFactory, approval_of, lab_settings, writes

pytestmark = [pytest.mark.lab, pytest.mark.slow]


def _deployment(kube: kubeapi.KubeApiServer, name: str) -> Any:
    config = kubernetes.client.Configuration(host=kube.url)
    with kubernetes.client.ApiClient(config) as api:
        return kubernetes.client.AppsV1Api(api).read_namespaced_deployment(name, "shop")


def _rollback(paused: Any, target: str = "deployment/checkout") -> dict[str, Any]:
    return next(f for f in paused.state["fixes"] if f["target"] == target)


def test_each_kubernetes_fix_is_dry_run_on_the_server_and_shown_before_approval(
    bad_deploy: lab.LabRun, kube: kubeapi.KubeApiServer, agents: AgentFactory, tmp_path: Path
) -> None:
    agent = agents(lab_settings(bad_deploy, kube, state_dir=tmp_path / "state"))
    paused = agent.start(bad_deploy.trigger)
    assert paused.waiting
    kube_fixes = [f for f in paused.state["fixes"] if f.get("action")]
    assert kube_fixes, "the scenario's rollback has a Kubernetes action"
    for fix in kube_fixes:
        assert fix["dry_run_result"]["outcome"] == "accepted", fix["dry_run_result"]
        assert "--dry-run=server" in fix["dry_run_result"]["query"]
    asked = {f["id"]: f["dry_run_result"] for f in paused.question["fixes"]}  # type: ignore[index]
    assert all(asked[f["id"]]["outcome"] == "accepted" for f in kube_fixes)
    dry = writes(kube, dry_run=True)
    assert {r["path"].rsplit("/", 1)[1] for r in dry} == {
        f["target"].split("/")[1] for f in kube_fixes
    }
    assert writes(kube, dry_run=False) == []
    assert _deployment(kube, "checkout").spec.template.spec.containers[0].image == (
        "shop/checkout:2.14.0"
    )


def test_an_approved_rollback_sends_exactly_the_approved_patch_once(
    bad_deploy: lab.LabRun, kube: kubeapi.KubeApiServer, agents: AgentFactory, tmp_path: Path
) -> None:
    settings = lab_settings(bad_deploy, kube, state_dir=tmp_path / "state", execute=True)
    agent = agents(settings)
    paused = agent.start(bad_deploy.trigger)
    fix = _rollback(paused)
    done = agent.resume(paused.run_id, approval_of(paused, fix["id"]))
    (sent,) = writes(kube, dry_run=False)
    key = f"{paused.run_id}/{fix['id']}/{fix['digest'][7:23]}"
    expected = json.loads(json.dumps(fix["patch"]["body"]))
    expected[1]["value"]["diagnose.dev/action"] = key
    assert sent["path"] == "/apis/apps/v1/namespaces/shop/deployments/checkout"
    assert sent["content_type"] == "application/json-patch+json"
    assert sent["query"] == {"fieldManager": "diagnose"}
    assert sent["body"] == expected
    template = expected[0]["value"]
    assert template["spec"]["containers"][0]["image"] == "shop/checkout:2.13.4"
    assert "pod-template-hash" not in template["metadata"]["labels"]
    live = _deployment(kube, "checkout")
    assert live.spec.template.spec.containers[0].image == "shop/checkout:2.13.4"
    assert live.metadata.annotations["diagnose.dev/action"] == key
    (action,) = done.state["actions"]
    assert (action["executed"], action["outcome"], action["key"]) == (True, "accepted", key)
    assert done.state["verification"]["outcome"] in ("recovered", "not recovered")


def test_a_rejected_fix_sends_no_write(
    bad_deploy: lab.LabRun, kube: kubeapi.KubeApiServer, agents: AgentFactory, tmp_path: Path
) -> None:
    agent = agents(lab_settings(bad_deploy, kube, state_dir=tmp_path / "s", execute=True))
    paused = agent.start(bad_deploy.trigger)
    answer = {"verdict": "reject", "approver": "bob", "reason": "the deploy was config-only"}
    done = agent.resume(paused.run_id, answer)
    assert done.state["decision"]["verdict"] == "reject"
    assert writes(kube, dry_run=False) == []
    assert "actions" not in done.state


def test_with_execution_off_an_approved_fix_is_handed_over_and_nothing_is_sent(
    bad_deploy: lab.LabRun, kube: kubeapi.KubeApiServer, agents: AgentFactory, tmp_path: Path
) -> None:
    agent = agents(lab_settings(bad_deploy, kube, state_dir=tmp_path / "state"))
    paused = agent.start(bad_deploy.trigger)
    fix = _rollback(paused)
    done = agent.resume(paused.run_id, approval_of(paused, fix["id"]))
    (action,) = done.state["actions"]
    assert action["executed"] is False and action["command"] == fix["command"]
    assert "DIAGNOSE_EXECUTE" in action["why_not_executed"]
    assert writes(kube, dry_run=False) == []
    assert "verification" not in done.state
