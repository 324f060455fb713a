"""KubernetesConnector with the real ``kubernetes`` client, against objects served over HTTP
by the lab's kmock-based API server, and against tiny local servers that say no."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from connectors import kubernetes
from diagnose.domain import errors
from diagnose.domain.models import Status, Window, parse_time

NS = "shop"
SECRET_VALUE = "aHVudGVyMg=="
WINDOW = Window(start=parse_time("2026-01-10T09:00:00Z"), end=parse_time("2026-01-10T11:00:00Z"))
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NS, "creationTimestamp": "2026-01-01T00:00:00Z", **extra}


def _template(image: str, **resources: dict[str, str]) -> dict[str, Any]:
    container = {"name": "app", "image": image, "resources": resources}
    return {"spec": {"containers": [container, {"name": "sidecar", "image": "envoy:1.30"}]}}


def _replicaset(name: str, *, revision: int, image: str, created: str, memory: str) -> dict:
    owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "checkout", "uid": "u1"}
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": _meta(
            name,
            creationTimestamp=created,
            annotations={"deployment.kubernetes.io/revision": str(revision)},
            ownerReferences=[{**owner, "controller": True}],
        ),
        "spec": {
            "replicas": 3 if revision == 14 else 0,
            "template": _template(image, limits={"memory": memory}, requests={"cpu": "100m"}),
        },
    }


OBJECTS: list[dict[str, Any]] = [
    {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(
            "checkout",
            labels={"app": "checkout"},
            annotations={"deployment.kubernetes.io/revision": "14", LAST_APPLIED: "{}"},
        ),
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": _template("shop/checkout:2.14"),
        },
        "status": {"availableReplicas": 2},
    },
    _replicaset(
        "checkout-7d9f8",
        revision=14,
        image="shop/checkout:2.14",
        created="2026-01-10T10:00:00Z",
        memory="128Mi",
    ),
    _replicaset(
        "checkout-5c4b2",
        revision=13,
        image="shop/checkout:2.13",
        created="2026-01-03T08:00:00Z",
        memory="256Mi",
    ),
    {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(
            "checkout-7d9f8-abc",
            labels={"app": "checkout"},
            ownerReferences=[{"kind": "ReplicaSet", "name": "checkout-7d9f8", "controller": True}],
        ),
        "spec": {"nodeName": "node-1"},
        "status": {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "app",
                    "restartCount": 4,
                    "ready": False,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": {
                        "terminated": {
                            "reason": "OOMKilled",
                            "exitCode": 137,
                            "finishedAt": "2026-01-10T10:05:00Z",
                        }
                    },
                },
                {"name": "sidecar", "restartCount": 0, "ready": True, "state": {"running": {}}},
            ],
        },
    },
    {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(
            "checkout-config",
            # applied with b=3 and c, then edited: b is now 2 and c is gone
            annotations={LAST_APPLIED: json.dumps({"data": {"a": "1", "b": "3", "c": "gone"}})},
            managedFields=[
                {"manager": "kubectl", "operation": "Update", "time": "2026-01-05T00:00:00Z"},
                {"manager": "helm", "operation": "Update", "time": "2026-01-10T09:55:00Z"},
            ],
        ),
        "data": {"b": "2", "a": "1"},
    },
    {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(
            "checkout-db",
            annotations={LAST_APPLIED: json.dumps({"data": {"password": SECRET_VALUE}})},
            managedFields=[
                {
                    "manager": "kubectl",
                    "operation": "Update",
                    "time": "2026-01-10T09:58:00Z",
                    "fieldsV1": {"f:data": {".": {}, "f:password": {}}},
                }
            ],
        ),
        "data": {"password": SECRET_VALUE},
    },
    {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": _meta("checkout.backoff"),
        "type": "Warning",
        "reason": "BackOff",
        "message": "Back-off restarting failed container",
        "involvedObject": {"kind": "Pod", "name": "checkout-7d9f8-abc", "namespace": NS},
        "firstTimestamp": "2026-01-10T10:01:00Z",
        "lastTimestamp": "2026-01-10T10:06:00Z",
        "count": 5,
    },
    {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": _meta("checkout.scaled"),
        "type": "Normal",
        "reason": "ScalingReplicaSet",
        "message": "Scaled up replica set checkout-7d9f8 to 3",
        "involvedObject": {"kind": "Deployment", "name": "checkout", "namespace": NS},
        "eventTime": "2026-01-10T10:00:00.000001Z",
        "series": {"count": 2, "lastObservedTime": "2026-01-10T10:00:30.000000Z"},
    },
    {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": _meta("checkout.old"),
        "type": "Normal",
        "reason": "Pulled",
        "message": "long before the incident",
        "involvedObject": {"kind": "Pod", "name": "checkout-5c4b2-xyz", "namespace": NS},
        "firstTimestamp": "2026-01-03T08:00:00Z",
        "lastTimestamp": "2026-01-03T08:00:00Z",
        "count": 1,
    },
]


@pytest.fixture(scope="module")
def kube_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from diagnose.lab import kubeapi  # the lab lands separately

    server = kubeapi.KubeApiServer.serve(OBJECTS, workdir=tmp_path_factory.mktemp("kubeapi"))
    try:
        yield str(server.url)
    finally:
        server.stop()


@pytest.fixture
def connect() -> Iterator[Callable[..., kubernetes.KubernetesConnector]]:
    """Make connectors that are closed after the test."""
    made: list[kubernetes.KubernetesConnector] = []

    def make(host: str, **kwargs: Any) -> kubernetes.KubernetesConnector:
        made.append(kubernetes.KubernetesConnector(host, **kwargs))
        return made[-1]

    yield make
    for connector in made:
        connector.close()


# --- objects served by the lab's API server ---------------------------------------------------


@pytest.mark.lab
def test_deployments_carry_revision_selector_and_images(kube_url: str, connect) -> None:
    evidence = connect(kube_url).list_deployments(namespace=NS)
    assert (evidence.status, evidence.source) == (Status.OK, "kubernetes")
    assert evidence.query == "kubectl get deployments -n shop -o yaml"
    assert evidence.raw == [
        {
            "name": "checkout",
            "namespace": NS,
            "created": "2026-01-01T00:00:00Z",
            "labels": {"app": "checkout"},
            "selector": {"app": "checkout"},
            "replicas": 3,
            "available": 2,
            "revision": 14,
            "images": ["shop/checkout:2.14", "envoy:1.30"],
            "annotations": {"deployment.kubernetes.io/revision": "14"},
            "configs": [],
            "env": {},
        }
    ]


@pytest.mark.lab
def test_replicasets_carry_owner_revision_and_resources_oldest_first(
    kube_url: str, connect
) -> None:
    evidence = connect(kube_url).list_replicasets(namespace=NS)
    assert "replicasets" in evidence.query
    old, new = evidence.raw
    assert (old["name"], old["revision"], new["revision"]) == ("checkout-5c4b2", 13, 14)
    assert new["owner"] == "deployment/checkout"
    assert new["created"] == "2026-01-10T10:00:00Z"
    assert (old["replicas"], new["replicas"]) == (0, 3)
    assert new["resources"] == {
        "app": {"limits": {"memory": "128Mi"}, "requests": {"cpu": "100m"}},
        "sidecar": {"limits": {}, "requests": {}},
    }
    assert old["resources"]["app"]["limits"] == {"memory": "256Mi"}


@pytest.mark.lab
def test_pods_carry_owner_and_last_termination(kube_url: str, connect) -> None:
    [pod] = connect(kube_url).list_pods(namespace=NS).raw
    assert (pod["owner"], pod["node"], pod["phase"]) == (
        "replicaset/checkout-7d9f8",
        "node-1",
        "Running",
    )
    app, sidecar = pod["containers"]
    assert app == {
        "name": "app",
        "restarts": 4,
        "ready": False,
        "last_terminated_reason": "OOMKilled",
        "last_terminated_at": "2026-01-10T10:05:00Z",
        "last_exit_code": 137,
    }
    assert (sidecar["last_terminated_reason"], sidecar["last_exit_code"]) == (None, None)


@pytest.mark.lab
def test_configmaps_carry_keys_digest_and_last_managed_time(kube_url: str, connect) -> None:
    evidence = connect(kube_url).list_configs(namespace=NS)
    configmap = next(c for c in evidence.raw if c["kind"] == "configmap")
    assert configmap["keys"] == ["a", "b"]
    assert configmap["updated"] == "2026-01-10T09:55:00Z"
    assert configmap["created"] == "2026-01-01T00:00:00Z"
    assert configmap["digest"].startswith("sha256:") and len(configmap["digest"]) == 71
    assert configmap["drifted"] == ["b", "c"]  # names of what changed since the last apply
    assert LAST_APPLIED not in configmap["annotations"]
    assert "gone" not in json.dumps(configmap)  # never a value


@pytest.mark.lab
def test_secrets_are_metadata_only(kube_url: str, connect) -> None:
    evidence = connect(kube_url).list_configs(namespace=NS)
    secret = next(c for c in evidence.raw if c["kind"] == "secret")
    assert secret["keys"] == ["password"]  # from managedFields, not from the data
    assert secret["digest"] == ""
    assert secret["updated"] == "2026-01-10T09:58:00Z"
    assert SECRET_VALUE not in json.dumps(evidence.raw)
    assert LAST_APPLIED not in secret["annotations"]


@pytest.mark.lab
def test_events_are_kept_when_they_overlap_the_window(kube_url: str, connect) -> None:
    evidence = connect(kube_url).list_events(namespace=NS, window=WINDOW)
    assert evidence.window == WINDOW
    scaled, backoff = evidence.raw
    assert scaled == {
        "type": "Normal",
        "reason": "ScalingReplicaSet",
        "object": "deployment/checkout",
        "namespace": NS,
        "message": "Scaled up replica set checkout-7d9f8 to 3",
        "first": "2026-01-10T10:00:00.000001Z",
        "last": "2026-01-10T10:00:30Z",
        "count": 2,
    }
    assert (backoff["object"], backoff["count"], backoff["last"]) == (
        "pod/checkout-7d9f8-abc",
        5,
        "2026-01-10T10:06:00Z",
    )
    assert "1 outside the window left out" in evidence.summary


@pytest.mark.lab
def test_an_unknown_namespace_is_empty(kube_url: str, connect) -> None:
    evidence = connect(kube_url).list_pods(namespace="nowhere")
    assert (evidence.status, evidence.raw) == (Status.EMPTY, [])


# --- when the API says no -----------------------------------------------------------------------


def _status(code: int, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "status": "Failure",
        "code": code,
        "message": message,
        "reason": "Forbidden",
    }


def _list(*items: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": list(items)}


def test_403_is_denied_and_names_the_missing_permission(answering_server, connect) -> None:
    message = 'replicasets.apps is forbidden: User "diagnose" cannot list resource'
    server = answering_server(lambda path: (403, _status(403, message)))
    evidence = connect(server.url).list_replicasets(namespace=NS)
    assert evidence.status is Status.DENIED
    assert message in evidence.summary and "grant get/list/watch on replicasets" in evidence.summary


def test_forbidden_secrets_still_return_configmaps(answering_server, connect) -> None:
    configmap = next(o for o in OBJECTS if o["kind"] == "ConfigMap")

    def respond(path: str) -> tuple[int, object]:
        if "/secrets" in path:
            return 403, _status(403, "secrets is forbidden")
        return 200, _list(configmap)

    evidence = connect(answering_server(respond).url).list_configs(namespace=NS)
    assert evidence.status is Status.OK
    assert [c["kind"] for c in evidence.raw] == ["configmap"]
    assert "secrets skipped (denied)" in evidence.summary


def test_secrets_are_requested_as_metadata_only(answering_server, connect) -> None:
    server = answering_server(lambda path: (200, _list()))
    connect(server.url).list_configs(namespace=NS)
    accept = {path.split("?")[0]: headers["accept"] for path, headers in server.requests}
    assert accept["/api/v1/namespaces/shop/secrets"].startswith(
        "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
    )


def test_lists_are_read_page_by_page(answering_server, connect) -> None:
    pods = [next(o for o in OBJECTS if o["kind"] == "Pod")]

    def respond(path: str) -> tuple[int, object]:
        page = {**_list(*pods), "metadata": {"continue": "next"}}
        return 200, (_list(*pods) if "continue=next" in path else page)

    evidence = connect(answering_server(respond).url).list_pods(namespace=NS)
    assert len(evidence.raw) == 2


def test_a_refused_connection_is_an_error_that_says_what_to_do(
    closed_port_url: str, connect
) -> None:
    started = time.monotonic()
    evidence = connect(closed_port_url).list_pods(namespace=NS)
    assert time.monotonic() - started < 2
    assert evidence.status is Status.ERROR
    assert "could not be reached" in evidence.summary and "diagnose lab up" in evidence.summary


def test_a_hanging_server_is_an_error_within_the_timeout(hanging_url: str, connect) -> None:
    started = time.monotonic()
    evidence = connect(hanging_url, timeout_s=1).list_events(namespace=NS, window=WINDOW)
    assert time.monotonic() - started < 2
    assert evidence.status is Status.ERROR
    assert "did not answer within 1s" in evidence.summary


def test_5xx_is_retried_then_reported(answering_server, connect) -> None:
    server = answering_server(lambda path: (503, _status(503, "etcd leader changed")))
    evidence = connect(server.url).list_deployments(namespace=NS)
    assert len(server.requests) == 3
    assert evidence.status is Status.ERROR and "etcd leader changed" in evidence.summary


# --- credentials from the environment ---------------------------------------------------------


def _kubeconfig(path: Path, *, server: str) -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "lab", "cluster": {"server": server}}],
                "users": [{"name": "me", "user": {"token": "t0k3n"}}],
                "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "me"}}],
                "current-context": "lab",
            }
        )
    )
    return path


def test_from_environment_reads_the_named_context(tmp_path: Path, answering_server) -> None:
    server = answering_server(lambda path: (200, _list()))
    kubeconfig = _kubeconfig(tmp_path / "config", server=server.url)
    with kubernetes.KubernetesConnector.from_environment(
        context="lab", config_file=str(kubeconfig)
    ) as connector:
        assert connector.list_pods(namespace=NS).status is Status.EMPTY
    [(_, headers)] = server.requests
    assert headers["authorization"] == "Bearer t0k3n"


def test_from_environment_without_that_context_is_a_configuration_error(tmp_path: Path) -> None:
    kubeconfig = _kubeconfig(tmp_path / "config", server="http://127.0.0.1:1")
    with pytest.raises(errors.ConfigurationError, match="DIAGNOSE_KUBERNETES_CONTEXT"):
        kubernetes.KubernetesConnector.from_environment(context="prod", config_file=str(kubeconfig))
