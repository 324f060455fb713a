"""The real ``kubernetes`` client reads a scenario's objects from the lab's Kubernetes API."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import kubernetes
import pytest

from diagnose.lab import kubeapi, lab
from tests.conftest import LabRunFactory
from tests.lab import conftest

pytestmark = pytest.mark.lab


@pytest.fixture
def shifted(lab_run: LabRunFactory, tmp_path: Path) -> lab.LabRun:
    return lab_run(conftest.write_scenario(tmp_path / "s", postgres=False))


@pytest.fixture
def api(shifted: lab.LabRun) -> Iterator[kubernetes.client.ApiClient]:
    config = kubernetes.client.Configuration()
    assert shifted.endpoints.kubernetes_url is not None
    config.host = shifted.endpoints.kubernetes_url
    with kubernetes.client.ApiClient(config) as client:
        yield client


def _recorded(text: str, run: lab.LabRun) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC) + run.offset


def test_deployments_and_replicasets_list_with_shifted_timestamps(
    api: kubernetes.client.ApiClient, shifted: lab.LabRun
) -> None:
    apps = kubernetes.client.AppsV1Api(api)
    (deployment,) = apps.list_namespaced_deployment("shop").items
    (replicaset,) = apps.list_namespaced_replica_set("shop", label_selector="app=checkout").items
    assert deployment.metadata.creation_timestamp == _recorded("2026-01-01T00:00:00Z", shifted)
    assert replicaset.metadata.annotations["deployment.kubernetes.io/revision"] == "14"
    assert replicaset.metadata.creation_timestamp == _recorded("2026-01-09T08:30:00Z", shifted)
    assert apps.read_namespaced_deployment("checkout", "shop").spec.replicas == 2


def test_pods_keep_their_last_terminated_state(
    api: kubernetes.client.ApiClient, shifted: lab.LabRun
) -> None:
    (pod,) = kubernetes.client.CoreV1Api(api).list_namespaced_pod("shop").items
    terminated = pod.status.container_statuses[0].last_state.terminated
    assert terminated.reason == "OOMKilled"
    assert terminated.finished_at == _recorded("2026-01-09T08:45:00Z", shifted)


def test_events_list_with_field_selectors_and_as_events_k8s_io(
    api: kubernetes.client.ApiClient, shifted: lab.LabRun
) -> None:
    core = kubernetes.client.CoreV1Api(api)
    assert len(core.list_namespaced_event("shop").items) == 2
    (scaled,) = core.list_namespaced_event(
        "shop", field_selector="involvedObject.name=checkout"
    ).items
    assert scaled.first_timestamp == _recorded("2026-01-09T08:30:00Z", shifted)
    events = kubernetes.client.EventsV1Api(api).list_namespaced_event("shop").items
    backoff = next(e for e in events if e.reason == "BackOff")
    assert backoff.event_time == _recorded("2026-01-09T08:40:00.123456Z", shifted)
    assert backoff.regarding.name == "other"


def test_configmaps_secrets_and_other_namespaces(api: kubernetes.client.ApiClient) -> None:
    core = kubernetes.client.CoreV1Api(api)
    assert [c.metadata.name for c in core.list_namespaced_config_map("shop").items] == [
        "checkout-config"
    ]
    assert core.list_namespaced_secret("shop").items == []
    assert core.list_namespaced_pod("elsewhere").items == []


def test_an_unknown_object_is_a_404(api: kubernetes.client.ApiClient) -> None:
    with pytest.raises(kubernetes.client.ApiException) as caught:
        kubernetes.client.AppsV1Api(api).read_namespaced_deployment("nope", "shop")
    assert caught.value.status == 404


def test_label_selectors_follow_kubernetes_syntax() -> None:
    labels = {"app": "checkout", "tier": "web"}
    assert kubeapi.matches_labels(labels, "app=checkout,tier in (web, api)")
    assert kubeapi.matches_labels(labels, "app==checkout,!canary,tier notin (db)")
    assert not kubeapi.matches_labels(labels, "app!=checkout")
    assert not kubeapi.matches_labels(labels, "canary")
