"""KubernetesConnector.read_state with the real ``kubernetes`` client against the lab's API:
every kind of object whose state the analysis reads comes back as its state payload."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from connectors import kubernetes
from diagnose.domain import cluster
from diagnose.domain.models import Status

pytestmark = pytest.mark.lab

NS = "shop"


def _meta(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NS, "creationTimestamp": "2026-01-10T09:00:00Z", **extra}


_CONTAINER = {
    "name": "server",
    "image": "shop/cart:3.1",
    "ports": [{"name": "http", "containerPort": 8080}],
    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8081}},
    "livenessProbe": {"tcpSocket": {"port": "http"}},
}

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
APPLIED = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "cart", "namespace": NS},
    "spec": {
        "selector": {"app": "cart", "tier": "web"},
        "ports": [{"port": 80, "targetPort": 8080}],
    },
}

OBJECTS: list[dict[str, Any]] = [
    {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(
            "cart-6c9d-x2x4z",
            labels={"app": "cart"},
            deletionTimestamp="2026-01-10T09:59:00Z",
            ownerReferences=[{"kind": "ReplicaSet", "name": "cart-6c9d", "controller": True}],
        ),
        "spec": {
            "nodeName": "worker-a",
            "initContainers": [{"name": "migrate", "image": "shop/migrate:1"}],
            "containers": [_CONTAINER],
        },
        "status": {
            "phase": "Pending",
            "initContainerStatuses": [
                {
                    "name": "migrate",
                    "ready": True,
                    "restartCount": 0,
                    "state": {"terminated": {"reason": "Completed", "exitCode": 0}},
                }
            ],
            "containerStatuses": [
                {
                    "name": "server",
                    "ready": False,
                    "restartCount": 0,
                    "state": {
                        "waiting": {
                            "reason": "ImagePullBackOff",
                            "message": 'Back-off pulling image "shop/cart:3.1"\nsecond line',
                        }
                    },
                }
            ],
        },
    },
    {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta("search-0", labels={"app": "search"}),
        "spec": {
            "containers": [{"name": "app", "image": "search:1"}],
            "volumes": [
                {"name": "data", "persistentVolumeClaim": {"claimName": "data-search-0"}},
                {"name": "tmp", "emptyDir": {}},
            ],
        },
        "status": {
            "phase": "Pending",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient memory.",
                }
            ],
        },
    },
    {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": _meta("search"),
        "spec": {
            "replicas": 2,
            "template": {
                "metadata": {"labels": {"app": "search"}},
                "spec": {"serviceAccountName": "indexer", "containers": [_CONTAINER]},
            },
        },
        "status": {"readyReplicas": 1},
    },
    {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "worker-a", "labels": {"topology.kubernetes.io/zone": "eu-1a"}},
        "spec": {"taints": [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]},
        "status": {
            "conditions": [
                {"type": "MemoryPressure", "status": "True"},
                {
                    "type": "Ready",
                    "status": "Unknown",
                    "reason": "NodeStatusUnknown",
                    "message": "Kubelet stopped posting node status.",
                    "lastTransitionTime": "2026-01-10T09:58:00Z",
                },
            ]
        },
    },
    {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta("cart", annotations={LAST_APPLIED: json.dumps(APPLIED)}),
        "spec": {"selector": {"app": "cart"}, "ports": [{"port": 80, "targetPort": "web"}]},
    },
    {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": _meta("cart-abcde", labels={"kubernetes.io/service-name": "cart"}),
        "addressType": "IPv4",
        "endpoints": [
            {"addresses": ["10.0.0.1"], "conditions": {"ready": False}},
            {"addresses": ["10.0.0.2"], "conditions": {"ready": True}},
        ],
    },
    {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": _meta("compute"),
        "spec": {"hard": {"pods": "10"}},
        "status": {"hard": {"pods": "10"}, "used": {"pods": "10"}},
    },
    {"apiVersion": "v1", "kind": "LimitRange", "metadata": _meta("defaults"), "spec": {}},
    {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta("data-search-0"),
        "spec": {"storageClassName": "zonal-ssd"},
        "status": {"phase": "Pending"},
    },
    {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta("data-search-1"),
        "spec": {"storageClassName": "zonal-ssd", "volumeName": "pv-7f3a"},
        "status": {"phase": "Bound"},
    },
    {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": "pv-7f3a"},
        "spec": {
            "claimRef": {"namespace": NS, "name": "data-search-1"},
            "nodeAffinity": {
                "required": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {
                                    "key": "topology.kubernetes.io/zone",
                                    "operator": "In",
                                    "values": ["eu-1c"],
                                }
                            ]
                        }
                    ]
                }
            },
        },
        "status": {"phase": "Bound"},
    },
    {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("default")},
    {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta("cart-ingress"),
        "spec": {
            "podSelector": {"matchLabels": {"app": "cart"}},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "checkout"}}}]}],
        },
    },
]


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kubernetes.KubernetesConnector]:
    from diagnose.lab import kubeapi

    server = kubeapi.KubeApiServer.serve(OBJECTS, workdir=tmp_path_factory.mktemp("kubeapi"))
    connector = kubernetes.KubernetesConnector(server.url)
    try:
        yield connector
    finally:
        connector.close()
        server.stop()


def _one(reader: kubernetes.KubernetesConnector, kind: str, name: str) -> Any:
    evidence = reader.read_state(kind=kind, namespace=NS)
    assert evidence.status is Status.OK, evidence.summary
    return next(item for item in evidence.raw if item["name"] == name)


def test_every_state_kind_is_served_and_read(reader: kubernetes.KubernetesConnector) -> None:
    """Each state kind lists through the real client; an absent one is empty, not an error."""
    statuses = {k: reader.read_state(kind=k, namespace=NS).status for k in cluster.STATE_KINDS}
    assert statuses == {k: Status.EMPTY if k == "deployments" else Status.OK for k in statuses}


def test_a_waiting_container_keeps_its_reason_first_message_line_and_spec(
    reader: kubernetes.KubernetesConnector,
) -> None:
    """A pod's waiting reason and message come with the container's ports and probes."""
    pod = _one(reader, "pods", "cart-6c9d-x2x4z")
    init, main = pod["statuses"]
    assert (init["init"], init["terminated_reason"], init["exit_code"]) == (True, "Completed", 0)
    assert main["waiting_reason"] == "ImagePullBackOff"
    assert main["waiting_message"] == 'Back-off pulling image "shop/cart:3.1"'
    assert main["ports"] == [{"name": "http", "port": 8080}]
    assert main["probes"]["readiness"] == {"port": "8081", "path": "/ready", "kind": "http"}
    assert main["probes"]["liveness"] == {"port": "http", "path": "", "kind": "tcp"}
    assert (pod["owner"], pod["node"]) == ("replicaset/cart-6c9d", "worker-a")
    assert pod["deleting"] is True  # Terminating: its deletionTimestamp is set


def test_an_unscheduled_pod_carries_the_schedulers_message(
    reader: kubernetes.KubernetesConnector,
) -> None:
    """PodScheduled=False keeps the scheduler's reason for the pod."""
    pod = _one(reader, "pods", "search-0")
    assert pod["unschedulable"] == "0/3 nodes are available: 3 Insufficient memory."
    assert pod["claims"] == ["data-search-0"]


def test_claims_name_their_volume_and_volumes_their_node_affinity(
    reader: kubernetes.KubernetesConnector,
) -> None:
    """A bound claim names its PersistentVolume; the PV (read cluster-wide) its claim and the
    required node affinity, term by term."""
    claim = _one(reader, "persistentvolumeclaims", "data-search-1")
    assert (claim["phase"], claim["volume"], claim["storage_class"]) == (
        "Bound",
        "pv-7f3a",
        "zonal-ssd",
    )
    evidence = reader.read_state(kind="persistentvolumes", namespace=NS)
    assert evidence.query == "kubectl get persistentvolumes -o wide"
    (volume,) = evidence.raw
    assert volume["claim"] == f"{NS}/data-search-1"
    assert volume["node_affinity"] == [
        [{"key": "topology.kubernetes.io/zone", "operator": "In", "values": ["eu-1c"]}]
    ]


def test_nodes_are_read_cluster_wide_with_readiness_pressure_and_taints(
    reader: kubernetes.KubernetesConnector,
) -> None:
    """A node's Ready condition, its pressure conditions and taints are read."""
    evidence = reader.read_state(kind="nodes", namespace=NS)
    assert evidence.query == "kubectl get nodes -o wide"
    (node,) = evidence.raw
    assert (node["ready"], node["ready_reason"]) == ("Unknown", "NodeStatusUnknown")
    assert node["ready_message"] == "Kubelet stopped posting node status."
    assert node["labels"] == {"topology.kubernetes.io/zone": "eu-1a"}
    assert node["pressure"] == ["MemoryPressure"]
    assert node["taints"] == ["node.kubernetes.io/not-ready:NoExecute"]


def test_routing_objects_are_read(reader: kubernetes.KubernetesConnector) -> None:
    """Services, EndpointSlices and NetworkPolicies carry selectors, ports and readiness."""
    service = _one(reader, "services", "cart")
    assert service["selector"] == {"app": "cart"}
    assert service["ports"] == [{"name": "", "port": "80", "target_port": "web"}]
    assert service["applied"] == {
        "selector": {"app": "cart", "tier": "web"},
        "ports": [{"name": "", "port": "80", "target_port": "8080"}],
    }
    slice_ = _one(reader, "endpointslices", "cart-abcde")
    assert (slice_["service"], slice_["ready"], slice_["not_ready"]) == ("cart", 1, 1)
    policy = _one(reader, "networkpolicies", "cart-ingress")
    assert policy["ingress_isolated"] and policy["ingress_from"] == [{"app": "checkout"}]


def test_admission_objects_are_read(reader: kubernetes.KubernetesConnector) -> None:
    """Quotas with their use, LimitRanges, PVC phases, ServiceAccounts and workloads' specs."""
    assert _one(reader, "resourcequotas", "compute")["used"] == {"pods": "10"}
    assert _one(reader, "limitranges", "defaults")["resource"] == "limitrange"
    assert _one(reader, "persistentvolumeclaims", "data-search-0")["phase"] == "Pending"
    assert _one(reader, "serviceaccounts", "default")["resource"] == "serviceaccount"
    workload = _one(reader, "statefulsets", "search")
    assert (workload["resource"], workload["service_account"]) == ("statefulset", "indexer")
    assert (workload["replicas"], workload["ready_replicas"]) == (2, 1)
    assert workload["template_labels"] == {"app": "search"}


def test_an_unknown_state_kind_is_our_mistake(reader: kubernetes.KubernetesConnector) -> None:
    """Asking for a kind outside the table raises (a bug in the caller), it is not evidence."""
    with pytest.raises(ValueError, match="not a state kind"):
        reader.read_state(kind="secrets", namespace=NS)


def test_a_state_read_keeps_its_own_evidence_id_beside_the_timeline_read(
    reader: kubernetes.KubernetesConnector,
) -> None:
    """The state of pods and the change timeline's pods are two records: same ids would let
    one replace the other in the run's evidence (a node's failing pods were lost that way)."""
    assert reader.read_state(kind="pods", namespace=NS).id != reader.list_pods(namespace=NS).id
    deployments = reader.list_deployments(namespace=NS)
    assert reader.read_state(kind="deployments", namespace=NS).id != deployments.id
