"""Patch semantics of the lab's Kubernetes API, and the write connector's three outcomes
(accepted, refused with the API's message, unreachable) through the real client."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors import kubernetes
from diagnose.analysis import fixing
from diagnose.domain import errors, models
from diagnose.lab import kubeapi
from graphs import approval
from sandbox import advising

DEPLOYMENT: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "checkout", "namespace": "shop", "annotations": {"a": "1"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "checkout"}},
        "template": {
            "metadata": {"labels": {"app": "checkout"}},
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "image": "shop/checkout:2",
                        "env": [{"name": "A", "value": "1"}],
                    },
                    {"name": "proxy", "image": "envoy:1.30"},
                ]
            },
        },
    },
}


def test_strategic_merge_merges_containers_by_name_and_honours_directives() -> None:
    patch = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "app", "resources": {"limits": {"memory": "1Gi"}}},
                        {"name": "proxy", "$patch": "delete"},
                        {"name": "new", "image": "x:1"},
                    ]
                }
            }
        },
        "metadata": {"annotations": {"a": None}},
    }
    merged = kubeapi.strategic_merge(DEPLOYMENT, patch)
    containers = merged["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["app", "new"]
    assert containers[0]["image"] == "shop/checkout:2"
    assert containers[0]["resources"] == {"limits": {"memory": "1Gi"}}
    assert containers[0]["env"] == [{"name": "A", "value": "1"}]
    assert merged["metadata"]["annotations"] == {}


def test_a_merge_patch_replaces_lists_whole() -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "y:2"}]}}}}
    merged = kubeapi.merge_patch(DEPLOYMENT, patch)
    assert merged["spec"]["template"]["spec"]["containers"] == [{"name": "app", "image": "y:2"}]


@pytest.mark.parametrize(
    ("patch", "content_type", "message"),
    [
        ({"spec": {"selector": {"matchLabels": {"app": "x"}}}}, kubeapi.MERGE_PATCH, "immutable"),
        (
            [{"op": "replace", "path": "/spec/template/metadata/labels", "value": {}}],
            kubeapi.JSON_PATCH,
            "does not match template",
        ),
        ({"spec": {"replicas": -1}}, kubeapi.STRATEGIC_PATCH, "must be >= 0"),
        ([{"op": "remove", "path": "/spec/nothing"}], kubeapi.JSON_PATCH, "could not be applied"),
        ({"spec": {}}, "application/yaml", "unknown format"),
    ],
)
def test_what_the_api_server_refuses_is_refused_with_its_reason(
    patch: Any, content_type: str, message: str
) -> None:
    with pytest.raises(kubeapi.Refused, match=message):
        kubeapi.patched(
            DEPLOYMENT, body=json.dumps(patch).encode(), content_type=content_type, built_in=True
        )


def test_strategic_merge_is_refused_for_custom_resources() -> None:
    with pytest.raises(kubeapi.Refused) as refused:
        kubeapi.apply_patch({}, {}, content_type=kubeapi.STRATEGIC_PATCH, built_in=False)
    assert refused.value.code == 415


def test_the_digest_names_one_fix_of_one_run_and_ignores_commentary() -> None:
    fix = {"id": "fix-1", "kind": "rollback", "command": "kubectl rollout undo", "patch": {"b": 1}}
    base = approval.digest(fix, run_id="run-a")
    assert (
        approval.digest(fix | {"dry_run_result": {"outcome": "x"}, "sweep": [1]}, run_id="run-a")
        == base
    )
    assert approval.digest(fix, run_id="run-b") != base
    assert approval.digest(fix | {"patch": {"b": 2}}, run_id="run-a") != base
    assert approval.digest(fix | {"id": "fix-2"}, run_id="run-a") != base


def test_the_marker_rides_in_every_patch_type() -> None:
    request: Any = {
        "patch_type": "json",
        "body": [{"op": "replace", "path": "/spec/replicas", "value": 3}],
    }
    body = kubernetes.with_marker(request, "k1")
    assert body[-1] == {
        "op": "add",
        "path": "/metadata/annotations/diagnose.dev~1action",
        "value": "k1",
    }
    request = {"patch_type": "strategic", "body": {"spec": {"replicas": 3}}}
    assert kubernetes.with_marker(request, "k1")["metadata"] == {
        "annotations": {"diagnose.dev/action": "k1"}
    }


def _hypothesis(change: str, component: str = "checkout") -> models.Hypothesis:
    return models.Hypothesis(
        kind=models.CauseKind.CONFIG,
        component=component,
        confidence=0.8,
        summary="",
        evidence=("ev-1",),
        change=change,
        onset=datetime(2026, 1, 1, tzinfo=UTC),
    )


def test_the_sweep_lists_other_workloads_using_the_changed_configmap() -> None:
    deployments = [
        {"name": "checkout", "images": ["a:1"], "configs": ["configmap/shared"]},
        {"name": "billing", "images": ["b:1"], "configs": ["configmap/shared", "secret/x"]},
        {"name": "search", "images": ["c:1"], "configs": ["configmap/other"]},
    ]
    found = fixing.sweep(
        {"kind": "config_revert"},
        hypothesis=_hypothesis("configmap/shared"),
        deployments=deployments,
        replicasets=[],
    )
    assert found == [{"target": "deployment/billing", "why": "uses configmap/shared too"}]


def test_the_database_sweep_lists_other_tables_with_the_same_scan_pattern() -> None:
    fix = {"kind": "create_index", "target": "postgres/shop/public.orders"}
    others = [
        {"summary": "orders scanned", "fix": fix},
        {
            "summary": "public.payments (9000 rows) is scanned sequentially",
            "fix": fix | {"target": "postgres/shop/public.payments"},
        },
        {"summary": "blocked", "fix": {"kind": "cancel_query", "target": "postgres/shop/pid/7"}},
    ]
    assert advising.sweep(fix, others=others) == [
        {"target": "postgres/shop/public.payments", "why": others[1]["summary"]}
    ]


# --- the write connector against the lab API ----------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[kubeapi.KubeApiServer]:
    with kubeapi.KubeApiServer.serve([DEPLOYMENT], workdir=tmp_path) as server:
        yield server


def _request(body: Any, patch_type: str = "strategic") -> Any:
    return {
        "path": "/apis/apps/v1/namespaces/shop/deployments/checkout",
        "namespace": "shop",
        "name": "checkout",
        "kind": "deployment",
        "patch_type": patch_type,
        "body": body,
    }


@pytest.mark.lab
def test_a_dry_run_is_accepted_and_stores_nothing(served: kubeapi.KubeApiServer) -> None:
    writer = kubernetes.KubernetesWriter(served.url, dry_run_only=True)
    tried = writer.patch(_request({"spec": {"replicas": 5}}), dry_run=True, marker="k")
    assert tried.raw["outcome"] == "accepted" and tried.raw["result"]["replicas"] == 5
    assert writer.marker(_request({})) is None
    with pytest.raises(errors.ConfigurationError, match="only dry-runs"):
        writer.patch(_request({"spec": {"replicas": 5}}), dry_run=False, marker="k")
    (logged,) = served.write_requests()
    assert logged["query"]["dryRun"] == "All"
    writer.close()


@pytest.mark.lab
def test_a_refused_patch_carries_the_apis_message(served: kubeapi.KubeApiServer) -> None:
    writer = kubernetes.KubernetesWriter(served.url)
    tried = writer.patch(_request({"spec": {"replicas": -3}}), dry_run=True, marker="k")
    assert tried.status is models.Status.ERROR
    assert tried.raw["outcome"] == "refused" and tried.raw["code"] == 422
    assert "must be >= 0" in tried.summary
    writer.close()


@pytest.mark.lab
def test_an_unreachable_api_is_reported_as_such() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    writer = kubernetes.KubernetesWriter(f"http://127.0.0.1:{port}", timeout_s=2)
    tried = writer.patch(_request({"spec": {"replicas": 3}}), dry_run=True, marker="k")
    assert tried.raw["outcome"] == "unreachable" and tried.status is models.Status.ERROR
    writer.close()


@pytest.mark.lab
def test_a_scale_resolves_against_the_live_replica_count(served: kubeapi.KubeApiServer) -> None:
    writer = kubernetes.KubernetesWriter(served.url)
    action: Any = {
        "op": "scale",
        "kind": "deployment",
        "namespace": "shop",
        "name": "checkout",
        "replicas": None,
    }
    resolved = writer.resolve(action)
    assert resolved.raw["body"] == {"spec": {"replicas": 4}}  # 2 * 3 // 2 + 1
    applied = writer.patch(resolved.raw, dry_run=False, marker="run-1/fix-1/abc")
    assert applied.raw["outcome"] == "accepted"
    assert writer.marker(resolved.raw) == "run-1/fix-1/abc"
    writer.close()
