"""Generate the Kubernetes-state scenarios (scenario format 1; docs/kubernetes.md).

    python tests/kubernetes_scenarios/generate.py

Each scenario is the namespace ``shop`` (frontend → checkout → cart, catalog) on three nodes,
with one fault that shows in the objects' state, not in metrics: most carry no metrics (a pod
that never started has none), those in ``METRICS`` carry the services' HTTP metrics. Most carry
a decoy rollout of another workload; one has the whole namespace installed minutes before the
alert. docs/kubernetes.md lists each class with its scenarios.
"""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import yaml

HERE = Path(__file__).resolve().parent
NS = "shop"
AT = "2026-02-01T10:00:00Z"
WORKLOADS = ("frontend", "checkout", "cart", "catalog")
NODES = ("worker-a", "worker-b", "worker-c")
Obj = dict[str, Any]


def _meta(name: str, created: str = "2026-01-20T08:00:00Z", **extra: Any) -> Obj:
    return {"name": name, "namespace": NS, "creationTimestamp": created, **extra}


def _container(app: str, image: str) -> Obj:
    return {
        "name": "server",  # every chart names its container alike
        "image": image,
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
        "env": [{"name": "UPSTREAM_URL", "value": f"http://{app}-upstream"}],
    }


class Shop:
    """The objects of one healthy namespace, to be broken by a scenario."""

    def __init__(self, created: str = "2026-01-20T08:00:00Z") -> None:
        self.created = created
        self.objects: list[Obj] = []
        self.logs: dict[str, list[str]] = {}  # pod → its log lines
        for index, app in enumerate(WORKLOADS):
            self._workload(app, image=f"shop/{app}:1.{index}", node=NODES[index % 3])
        for node in NODES:
            self.objects.append(_node(node))

    def _workload(self, app: str, *, image: str, node: str) -> None:
        labels = {"app": app}
        template = {
            "metadata": {"labels": labels},
            "spec": {"containers": [_container(app, image)]},
        }
        rs = f"{app}-5f7c9"
        annotations = {"deployment.kubernetes.io/revision": "1"}
        self.objects += [
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": _meta(app, self.created, labels=labels, annotations=dict(annotations)),
                "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": template},
                "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2},
            },
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": _meta(
                    rs,
                    self.created,
                    labels=labels,
                    annotations=dict(annotations),
                    ownerReferences=[_owner("Deployment", app)],
                ),
                "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": template},
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": _meta(app, self.created),
                "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
            },
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": _meta(
                    f"{app}-x8k2p", self.created, labels={"kubernetes.io/service-name": app}
                ),
                "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.1.0.1"], "conditions": {"ready": True}}],
            },
        ]
        for suffix in ("q7w2x", "z9m4k"):
            self.objects.append(_pod(f"{rs}-{suffix}", app, rs=rs, node=node, created=self.created))

    def find(self, kind: str, name: str) -> Obj:
        return next(o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name)

    def pods(self, app: str) -> list[Obj]:
        return [
            o
            for o in self.objects
            if o["kind"] == "Pod" and o["metadata"]["labels"].get("app") == app
        ]

    def rollout(self, app: str, *, at: str, **container: Any) -> str:
        """A new revision of ``app`` whose container has these fields; returns the RS name."""
        deployment = self.find("Deployment", app)
        template = copy.deepcopy(deployment["spec"]["template"])
        template["spec"]["containers"][0].update(container)
        deployment["spec"]["template"] = template
        deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "2"
        rs = f"{app}-8d6b4"
        self.objects.append(
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": _meta(
                    rs,
                    at,
                    labels={"app": app},
                    annotations={"deployment.kubernetes.io/revision": "2"},
                    ownerReferences=[_owner("Deployment", app)],
                ),
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": app}},
                    "template": template,
                },
            }
        )
        self.event(
            "Normal",
            "ScalingReplicaSet",
            ("Deployment", app),
            f"Scaled up replica set {rs} to 2",
            at=at,
        )
        return rs

    def event(
        self,
        type_: str,
        reason: str,
        involved: tuple[str, str],
        message: str,
        *,
        at: str,
        count: int = 1,
    ) -> None:
        kind, name = involved
        self.objects.append(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": _meta(f"{name}.{len(self.objects):x}", at),
                "type": type_,
                "reason": reason,
                "message": message,
                "involvedObject": {"kind": kind, "name": name, "namespace": NS},
                "firstTimestamp": at,
                "lastTimestamp": AT,
                "count": count,
            }
        )


def _owner(kind: str, name: str) -> Obj:
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "name": name,
        "uid": f"uid-{name}",
        "controller": True,
    }


def _pod(name: str, app: str, *, rs: str, node: str | None, created: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": _meta(
            name, created, labels={"app": app}, ownerReferences=[_owner("ReplicaSet", rs)]
        ),
        "spec": {"nodeName": node, "containers": [_container(app, f"shop/{app}:1")]},
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "server", "ready": True, "restartCount": 0, "state": {"running": {}}}
            ],
        },
    }


def _node(name: str) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {},
        "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]},
    }


def _replace_pods(
    shop: Shop, app: str, rs: str, status: Obj, *, created: str = "2026-02-01T09:45:00Z"
) -> list[str]:
    """The pods of ``app`` replaced by new ones of ``rs`` in this state; returns their names."""
    for pod in shop.pods(app):
        shop.objects.remove(pod)
    names = []
    for suffix in ("b4n6c", "h2j8d"):
        pod = _pod(f"{rs}-{suffix}", app, rs=rs, node="worker-b", created=created)
        pod["status"] = copy.deepcopy(status)
        shop.objects.append(pod)
        names.append(pod["metadata"]["name"])
    return names


def _waiting(why: str, text: str, **last: Any) -> Obj:
    status: Obj = {"name": "server", "ready": False, "restartCount": 7 if last else 0}
    status["state"] = {"waiting": {"reason": why, "message": text}}
    if last:
        status["lastState"] = {"terminated": last}
    return {"phase": "Running" if last else "Pending", "containerStatuses": [status]}


# --- the scenarios ----------------------------------------------------------------------------


def image_pull(shop: Shop) -> dict[str, Any]:
    shop.rollout(
        "catalog", at="2026-02-01T09:30:00Z", env=[{"name": "LOG_LEVEL", "value": "debug"}]
    )
    rs = shop.rollout("cart", at="2026-02-01T09:44:00Z", image="shop/cart:2.0-rc")
    message = 'Back-off pulling image "shop/cart:2.0-rc"'
    for pod in _replace_pods(shop, "cart", rs, _waiting("ImagePullBackOff", message)):
        shop.event(
            "Warning",
            "Failed",
            ("Pod", pod),
            'Failed to pull image "shop/cart:2.0-rc": not found',
            at="2026-02-01T09:45:30Z",
            count=9,
        )
    return _truth(
        "deploy",
        "cart",
        "deployment/cart@2",
        "rollback",
        "cart's new image tag does not exist; a catalog rollout before it is unrelated",
    )


def missing_secret(shop: Shop) -> dict[str, Any]:
    rs = shop.rollout(
        "checkout", at="2026-02-01T09:40:00Z", envFrom=[{"secretRef": {"name": "checkout-psp"}}]
    )
    _replace_pods(
        shop,
        "checkout",
        rs,
        _waiting("CreateContainerConfigError", 'secret "checkout-psp" not found'),
    )
    return _truth(
        "deploy",
        "checkout",
        "deployment/checkout@2",
        "rollback",
        "checkout's new revision reads a Secret that does not exist",
    )


def crash_loop(shop: Shop) -> dict[str, Any]:
    rs = shop.rollout("checkout", at="2026-02-01T09:35:00Z", image="shop/checkout:1.9")
    last = {
        "reason": "Error",
        "exitCode": 1,
        "message": "panic: DATABASE_URL: missing port",
        "finishedAt": "2026-02-01T09:58:00Z",
    }
    _replace_pods(
        shop,
        "checkout",
        rs,
        _waiting("CrashLoopBackOff", "back-off 5m0s restarting failed container", **last),
    )
    return _truth(
        "deploy", "checkout", "deployment/checkout@2", "rollback", "checkout 1.9 exits at start-up"
    )


def quota(shop: Shop) -> dict[str, Any]:
    shop.objects.append(
        {
            "apiVersion": "v1",
            "kind": "ResourceQuota",
            "metadata": _meta("compute", "2026-02-01T09:20:00Z"),
            "spec": {"hard": {"pods": "8"}},
            "status": {"hard": {"pods": "8"}, "used": {"pods": "8"}},
        }
    )
    rs = shop.rollout("cart", at="2026-02-01T09:42:00Z", image="shop/cart:1.3")
    for pod in shop.pods("cart"):
        shop.objects.remove(pod)
    deployment = shop.find("Deployment", "cart")
    deployment["status"] = {"replicas": 0, "readyReplicas": 0, "availableReplicas": 0}
    shop.event(
        "Warning",
        "FailedCreate",
        ("ReplicaSet", rs),
        f'Error creating: pods "{rs}-x" is forbidden: exceeded quota: compute, '
        "requested: pods=1, used: pods=8, limited: pods=8",
        at="2026-02-01T09:42:05Z",
        count=14,
    )
    return _truth(
        "resource",
        f"namespace/{NS}",
        None,
        "hand_over",
        "the namespace's quota refuses cart's new pods; cart's rollout only asked for them",
    )


def unschedulable(shop: Shop) -> dict[str, Any]:
    rs = shop.rollout(
        "catalog", at="2026-02-01T09:41:00Z", resources={"requests": {"memory": "64Gi"}}
    )
    status = {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient memory.",
            }
        ],
    }
    for pod in _replace_pods(shop, "catalog", rs, status):
        shop.find("Pod", pod)["spec"].pop("nodeName")
        shop.event(
            "Warning",
            "FailedScheduling",
            ("Pod", pod),
            "0/3 nodes are available: 3 Insufficient memory.",
            at="2026-02-01T09:41:10Z",
            count=20,
        )
    return _truth(
        "resource",
        "catalog",
        "deployment/catalog@2",
        "rollback",
        "catalog's new revision requests more memory than any node has",
    )


def probe_port(shop: Shop) -> dict[str, Any]:
    shop.rollout("frontend", at="2026-02-01T09:30:00Z", image="shop/frontend:1.1")
    rs = shop.rollout(
        "checkout",
        at="2026-02-01T09:43:00Z",
        readinessProbe={"httpGet": {"path": "/ready", "port": 9090}},
    )
    status = {
        "phase": "Running",
        "containerStatuses": [
            {"name": "server", "ready": False, "restartCount": 0, "state": {"running": {}}}
        ],
    }
    for pod in _replace_pods(shop, "checkout", rs, status):
        shop.find("Pod", pod)["spec"]["containers"][0]["readinessProbe"] = {
            "httpGet": {"path": "/ready", "port": 9090}
        }
        shop.event(
            "Warning",
            "Unhealthy",
            ("Pod", pod),
            "Readiness probe failed: dial tcp 10.1.0.9:9090: connect: connection refused",
            at="2026-02-01T09:43:30Z",
            count=60,
        )
    return _truth(
        "deploy",
        "checkout",
        "deployment/checkout@2",
        "rollback",
        "checkout's readiness probe checks a port it does not listen on; a frontend rollout "
        "before it is unrelated",
    )


def scaled_to_zero(shop: Shop) -> dict[str, Any]:
    deployment = shop.find("Deployment", "cart")
    deployment["spec"]["replicas"] = 0
    deployment["status"] = {"replicas": 0}
    for pod in shop.pods("cart"):
        shop.objects.remove(pod)
    shop.find("EndpointSlice", "cart-x8k2p")["endpoints"] = []
    shop.event(
        "Normal",
        "ScalingReplicaSet",
        ("Deployment", "cart"),
        "Scaled down replica set cart-5f7c9 to 0 from 2",
        at="2026-02-01T09:50:00Z",
    )
    return _truth("resource", "cart", None, "scale", "someone scaled cart to zero")


def selector(shop: Shop) -> dict[str, Any]:
    shop.rollout("catalog", at="2026-02-01T09:38:00Z", image="shop/catalog:1.4")
    shop.find("Service", "cart")["spec"]["selector"] = {"app": "cart-svc"}
    shop.find("EndpointSlice", "cart-x8k2p")["endpoints"] = []
    return _truth(
        "config",
        "cart",
        None,
        "restore_service",
        "cart's Service selector was edited to a label no pod carries",
    )


def node_down(shop: Shop) -> dict[str, Any]:
    node = shop.find("Node", "worker-b")
    node["status"]["conditions"] = [
        {
            "type": "Ready",
            "status": "Unknown",
            "reason": "NodeStatusUnknown",
            "lastTransitionTime": "2026-02-01T09:52:00Z",
        }
    ]
    node["spec"]["taints"] = [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]
    for pod in shop.objects:
        if pod["kind"] == "Pod" and pod["spec"].get("nodeName") == "worker-b":
            pod["status"]["containerStatuses"][0]["ready"] = False
            pod["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
            shop.event(
                "Warning",
                "NodeNotReady",
                ("Pod", pod["metadata"]["name"]),
                "Node is not ready",
                at="2026-02-01T09:52:30Z",
            )
    shop.rollout("frontend", at="2026-02-01T09:40:00Z", image="shop/frontend:1.1")
    return _truth(
        "resource",
        "node/worker-b",
        None,
        "cordon",
        "worker-b stopped reporting; its pods are not ready",
    )


def _node_lost(shop: Shop, node_name: str, *, ready: Obj, at: str) -> list[str]:
    """``node_name`` goes ``ready`` (its Ready condition); its pods lose readiness and each gets
    a ``NodeNotReady`` event; returns their names."""
    node = shop.find("Node", node_name)
    node["status"]["conditions"] = [{"type": "Ready", "lastTransitionTime": at, **ready}]
    names = []
    for pod in shop.objects:
        if pod["kind"] == "Pod" and pod["spec"].get("nodeName") == node_name:
            pod["status"]["containerStatuses"][0]["ready"] = False
            pod["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
            names.append(pod["metadata"]["name"])
            shop.event("Warning", "NodeNotReady", ("Pod", names[-1]), "Node is not ready", at=at)
    return names


def kubelet_down(shop: Shop) -> dict[str, Any]:
    """worker-c's kubelet stops posting status: its cart pods are evicted and hang Terminating
    (nothing on the node confirms the deletion); a checkout rollout before it is a decoy."""
    shop.rollout("checkout", at="2026-02-01T09:45:00Z", image="shop/checkout:1.2")
    ready = {
        "status": "Unknown",
        "reason": "NodeStatusUnknown",
        "message": "Kubelet stopped posting node status.",
    }
    pods = _node_lost(shop, "worker-c", ready=ready, at="2026-02-01T09:52:00Z")
    shop.find("Node", "worker-c")["spec"]["taints"] = [
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}
    ]
    for name in pods:
        shop.find("Pod", name)["metadata"]["deletionTimestamp"] = "2026-02-01T09:57:00Z"
    return _truth(
        "resource",
        "node/worker-c",
        None,
        "cordon",
        "worker-c's kubelet stopped posting node status; cart's pods on it hang Terminating "
        "and checkout's calls to cart fail; a checkout rollout before it is unrelated",
    )


def runtime_down(shop: Shop) -> dict[str, Any]:
    """worker-b's container runtime is down: the kubelet reports NotReady and says why."""
    shop.rollout("frontend", at="2026-02-01T09:41:00Z", image="shop/frontend:1.1")
    ready = {
        "status": "False",
        "reason": "KubeletNotReady",
        "message": "container runtime is down, PLEG is not healthy: pleg was last seen active "
        "3m10s ago; threshold is 3m0s",
    }
    pods = _node_lost(shop, "worker-b", ready=ready, at="2026-02-01T09:53:00Z")
    shop.find("Pod", pods[0])["status"]["phase"] = "Unknown"
    return _truth(
        "resource",
        "node/worker-b",
        None,
        "cordon",
        "worker-b's container runtime is down; checkout's pods on it are not ready",
    )


def no_pods(shop: Shop) -> dict[str, Any]:
    """cart wants two replicas and has none, and the events that said why have expired."""
    shop.rollout("catalog", at="2026-02-01T09:20:00Z", image="shop/catalog:1.5")
    for pod in shop.pods("cart"):
        shop.objects.remove(pod)
    shop.find("Deployment", "cart")["status"] = {"replicas": 0, "availableReplicas": 0}
    shop.find("EndpointSlice", "cart-x8k2p")["endpoints"] = []
    return _truth(
        "config",
        "cart",
        None,
        "hand_over",
        "cart has no pod at all and no event is left to say why (an admission webhook refused "
        "them over an hour ago); a catalog rollout is unrelated",
    )


def unbound_claim(shop: Shop) -> dict[str, Any]:
    """catalog's new revision mounts a claim of a StorageClass that does not exist."""
    shop.rollout("frontend", at="2026-02-01T09:25:00Z", image="shop/frontend:1.1")
    shop.objects.append(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": _meta("catalog-cache", "2026-02-01T09:40:00Z"),
            "spec": {
                "storageClassName": "fast-ssd",
                "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "10Gi"}},
            },
            "status": {"phase": "Pending"},
        }
    )
    shop.event(
        "Warning",
        "ProvisioningFailed",
        ("PersistentVolumeClaim", "catalog-cache"),
        'storageclass.storage.k8s.io "fast-ssd" not found',
        at="2026-02-01T09:40:05Z",
        count=30,
    )
    message = "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    status = {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
            }
        ],
    }
    for pod in _replace_pods(
        shop, "catalog", "catalog-5f7c9", status, created="2026-02-01T09:40:00Z"
    ):
        shop.find("Pod", pod)["spec"].pop("nodeName")
        shop.event("Warning", "FailedScheduling", ("Pod", pod), message, at="2026-02-01T09:40:10Z")
    return _truth(
        "config",
        "catalog",
        None,
        "hand_over",
        "catalog's claim names a StorageClass that does not exist, so it never binds and its "
        "pods stay Pending; a frontend rollout is unrelated",
    )


def endpoints_not_ready(shop: Shop) -> dict[str, Any]:
    """checkout's pods run but have not been Ready for hours; the events that said why are
    gone, and its Service lists only endpoints that are not ready."""
    for pod in shop.pods("checkout"):
        pod["status"]["containerStatuses"][0]["ready"] = False
        pod["status"]["conditions"] = [{"type": "Ready", "status": "False"}]
    shop.find("EndpointSlice", "checkout-x8k2p")["endpoints"] = [
        {"addresses": [f"10.1.0.{i}"], "conditions": {"ready": False}} for i in (4, 5)
    ]
    shop.rollout("cart", at="2026-02-01T09:35:00Z", image="shop/cart:1.3")
    return _truth(
        "config",
        "checkout",
        None,
        "none",
        "checkout's pods fail readiness, so its Service routes nowhere; a cart rollout is "
        "unrelated",
    )


def named_target_port(shop: Shop) -> dict[str, Any]:
    """cart's Service targets a port by name (``web``) while cart's containers declare no
    ports at all: the name resolves to nothing."""
    shop.find("Service", "cart")["spec"]["ports"] = [{"port": 80, "targetPort": "web"}]
    for obj in shop.objects:
        if obj["kind"] in ("Deployment", "ReplicaSet") and obj["metadata"]["name"].startswith(
            "cart"
        ):
            obj["spec"]["template"]["spec"]["containers"][0].pop("ports", None)
    for pod in shop.pods("cart"):
        pod["spec"]["containers"][0].pop("ports", None)
    return _truth(
        "config",
        "cart",
        None,
        "hand_over",
        "cart's Service targets port name web, which no container of cart declares",
    )


def target_port_edited(shop: Shop) -> dict[str, Any]:
    """cart's Service was edited by hand to targetPort 8081; cart's containers expose 8080
    and a metrics port, so only the Service's last-applied configuration says which it was."""
    shop.rollout("catalog", at="2026-02-01T09:36:00Z", image="shop/catalog:1.4")
    ports = [{"name": "http", "containerPort": 8080}, {"name": "metrics", "containerPort": 9100}]
    for obj in shop.objects:
        if obj["kind"] in ("Deployment", "ReplicaSet") and obj["metadata"]["name"].startswith(
            "cart"
        ):
            obj["spec"]["template"]["spec"]["containers"][0]["ports"] = copy.deepcopy(ports)
    for pod in shop.pods("cart"):
        pod["spec"]["containers"][0]["ports"] = copy.deepcopy(ports)
    service = shop.find("Service", "cart")
    applied = copy.deepcopy({k: service[k] for k in ("apiVersion", "kind", "spec")})
    applied["metadata"] = {"name": "cart", "namespace": NS}
    service["metadata"]["annotations"] = {
        "kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied, sort_keys=True)
    }
    service["spec"]["ports"] = [{"port": 80, "targetPort": 8081}]
    return _truth(
        "config",
        "cart",
        None,
        "restore_service",
        "cart's Service targetPort was edited by hand to 8081; the last-applied configuration "
        "says 8080",
    )


def volume_zone(shop: Shop) -> dict[str, Any]:
    """catalog's claim is bound to a zonal volume in eu-1c; the eu-1c node pool was scaled
    away, so catalog's new pods cannot be placed anywhere. A frontend rollout is a decoy."""
    shop.rollout("frontend", at="2026-02-01T09:30:00Z", image="shop/frontend:1.1")
    for node, zone in zip(NODES, ("eu-1a", "eu-1b", "eu-1c"), strict=True):
        shop.find("Node", node)["metadata"]["labels"] = {"topology.kubernetes.io/zone": zone}
    shop.objects.remove(shop.find("Node", "worker-c"))
    for pod in shop.pods("cart"):
        pod["spec"]["nodeName"] = "worker-a"
    shop.objects += [
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": _meta("catalog-data"),
            "spec": {"storageClassName": "zonal-ssd", "volumeName": "pv-4c1e9a"},
            "status": {"phase": "Bound"},
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": "pv-4c1e9a", "creationTimestamp": "2026-01-20T08:00:00Z"},
            "spec": {
                "claimRef": {"namespace": NS, "name": "catalog-data"},
                "storageClassName": "zonal-ssd",
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
    ]
    message = "0/2 nodes are available: 2 node(s) had volume node affinity conflict."
    status = {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
            }
        ],
    }
    volumes = [{"name": "data", "persistentVolumeClaim": {"claimName": "catalog-data"}}]
    shop.find("Deployment", "catalog")["spec"]["template"]["spec"]["volumes"] = volumes
    for pod in _replace_pods(shop, "catalog", "catalog-5f7c9", status, created=AT_EVICTED):
        spec = shop.find("Pod", pod)["spec"]
        spec.pop("nodeName")
        spec["volumes"] = copy.deepcopy(volumes)
        shop.event("Warning", "FailedScheduling", ("Pod", pod), message, at=AT_EVICTED, count=25)
    return _truth(
        "config",
        "persistentvolumeclaim/catalog-data",
        None,
        "hand_over",
        "catalog's claim is bound to a volume in zone eu-1c, where no node is left; a frontend "
        "rollout is unrelated",
    )


AT_EVICTED = "2026-02-01T09:48:00Z"


def unresolved_service(shop: Shop) -> dict[str, Any]:
    """checkout's new revision points CART_URL at cart-svc, a name no Service has: its pods
    run and are Ready, and its logs fail to resolve the name on every cart call."""
    rs = shop.rollout(
        "checkout",
        at="2026-02-01T09:46:00Z",
        env=[
            {"name": "UPSTREAM_URL", "value": "http://checkout-upstream"},
            {"name": "CART_URL", "value": "http://cart-svc:8080"},
        ],
    )
    running = {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [
            {"name": "server", "ready": True, "restartCount": 0, "state": {"running": {}}}
        ],
    }
    for pod in _replace_pods(shop, "checkout", rs, running, created="2026-02-01T09:46:00Z"):
        shop.logs[pod] = _log_lines(
            "checkout",
            start="2026-02-01T09:46:00Z",
            failing="ERROR [http-nio-8080-exec-{n}] CartClient: cart call failed: "
            "java.net.UnknownHostException: cart-svc: Name or service not known",
            failing_from="2026-02-01T09:46:20Z",
        )
    return _truth(
        "deploy",
        "checkout",
        "deployment/checkout@2",
        "rollback",
        "checkout's new revision names cart-svc in CART_URL; no Service has that name and "
        "checkout's logs fail to resolve it",
    )


def unresolved_decoy(shop: Shop) -> dict[str, Any]:
    """checkout's CART_URL names cart-api, which no Service is called, since long before; its
    logs resolve fine (a search domain serves the name). The fault is catalog's crash loop."""
    checkout = shop.find("Deployment", "checkout")
    env = checkout["spec"]["template"]["spec"]["containers"][0]["env"]
    env.append({"name": "CART_URL", "value": "http://cart-api:8080"})
    rs = shop.rollout("catalog", at="2026-02-01T09:38:00Z", image="shop/catalog:1.6")
    last = {
        "reason": "Error",
        "exitCode": 2,
        "message": "fatal: config: unknown field 'cache_ttl'",
        "finishedAt": "2026-02-01T09:57:00Z",
    }
    _replace_pods(
        shop, "catalog", rs, _waiting("CrashLoopBackOff", "back-off 5m0s restarting", **last)
    )
    return _truth(
        "deploy",
        "catalog",
        "deployment/catalog@2",
        "rollback",
        "catalog 1.6 exits at start-up; checkout's CART_URL names a Service that does not exist, "
        "but its logs show no failed lookup",
    )


LOGS_END = "2026-02-01T10:04:00Z"


def _log_lines(
    app: str, *, start: str, failing: str = "", failing_from: str = "", end: str = LOGS_END
) -> list[str]:
    """A pod's log: a request line every 20 s from ``start`` to ``end``, and from
    ``failing_from`` the ``failing`` line every 5 s."""
    at, stop = _epoch(start), _epoch(end)
    broken = _epoch(failing_from) if failing else stop + 1
    lines, n = [], 0
    while at <= stop:
        n += 1
        if at >= broken:
            lines.append(f"{_stamp(at)} {failing.format(n=n % 8 + 1)}")
            at += 5
            continue
        lines.append(
            f"{_stamp(at)} INFO  [http-nio-8080-exec-{n % 8 + 1}] {app}: GET / 200 {8 + n % 5}ms"
        )
        at += 20
    return lines


def _epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def _stamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def fresh_install(shop: Shop) -> dict[str, Any]:
    """The whole namespace installed minutes ago: only cart is broken (its Secret is missing)."""
    rs = "cart-5f7c9"
    _replace_pods(
        shop,
        "cart",
        rs,
        _waiting("CreateContainerConfigError", 'secret "cart-redis" not found'),
        created="2026-02-01T09:52:00Z",
    )
    return _truth(
        "config",
        "cart",
        None,
        "hand_over",
        "installed together; only cart cannot start: its Secret is missing",
    )


# --- the remaining classes of the issue: admission, scheduling, start-up, runtime, routing, nodes


def _refused(shop: Shop, app: str, rs: str, message: str, *, at: str) -> None:
    """``app``'s new ReplicaSet ``rs`` cannot create a pod (its old pods are gone)."""
    for pod in shop.pods(app):
        shop.objects.remove(pod)
    shop.find("Deployment", app)["status"] = {"replicas": 0, "availableReplicas": 0}
    shop.find("EndpointSlice", f"{app}-x8k2p")["endpoints"] = []
    shop.event(
        "Warning",
        "FailedCreate",
        ("ReplicaSet", rs),
        f'Error creating: pods "{rs}-x" is forbidden: {message}',
        at=at,
        count=12,
    )


def limit_range(shop: Shop) -> dict[str, Any]:
    """A LimitRange added to the namespace caps a container at one CPU: catalog's pods, which
    ask for two, are refused. A frontend rollout is a decoy."""
    shop.rollout("frontend", at="2026-02-01T09:30:00Z", image="shop/frontend:1.1")
    shop.objects.append(
        {
            "apiVersion": "v1",
            "kind": "LimitRange",
            "metadata": _meta("cpu-cap", "2026-02-01T09:44:00Z"),
            "spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}}]},
        }
    )
    rs = shop.rollout("catalog", at="2026-02-01T09:45:00Z", resources={"limits": {"cpu": "2"}})
    _refused(
        shop,
        "catalog",
        rs,
        "maximum cpu usage per Container is 1, but limit is 2",
        at="2026-02-01T09:45:05Z",
    )
    return _truth(
        "resource",
        f"namespace/{NS}",
        None,
        "hand_over",
        "a LimitRange caps containers at one CPU and refuses catalog's pods; a frontend rollout "
        "is unrelated",
    )


def service_account(shop: Shop) -> dict[str, Any]:
    """checkout's new revision runs as a ServiceAccount that does not exist."""
    shop.rollout("catalog", at="2026-02-01T09:25:00Z", image="shop/catalog:1.4")
    shop.objects.append(
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("default")}
    )
    rs = shop.rollout("checkout", at="2026-02-01T09:44:00Z", serviceAccountName="checkout-runner")
    template = shop.find("Deployment", "checkout")["spec"]["template"]["spec"]
    template["serviceAccountName"] = template["containers"][0].pop("serviceAccountName")
    shop.find("ReplicaSet", rs)["spec"]["template"] = copy.deepcopy(
        shop.find("Deployment", "checkout")["spec"]["template"]
    )
    _refused(
        shop,
        "checkout",
        rs,
        "error looking up service account shop/checkout-runner: serviceaccount "
        '"checkout-runner" not found',
        at="2026-02-01T09:44:05Z",
    )
    return _truth(
        "deploy",
        "checkout",
        "deployment/checkout@2",
        "rollback",
        "checkout's new revision names a ServiceAccount that does not exist; a catalog rollout "
        "is unrelated",
    )


def pod_security(shop: Shop) -> dict[str, Any]:
    """cart's new revision asks for a privileged container, which the namespace's Pod Security
    level refuses. It carries the services' metrics: cart goes silent, checkout fails; a catalog
    rollout is a decoy."""
    shop.rollout("catalog", at="2026-02-01T09:33:00Z", image="shop/catalog:1.4")
    rs = shop.rollout("cart", at="2026-02-01T09:46:00Z", securityContext={"privileged": True})
    _refused(
        shop,
        "cart",
        rs,
        'violates PodSecurity "baseline:latest": privileged (container "server" must not '
        "set securityContext.privileged=true)",
        at="2026-02-01T09:46:05Z",
    )
    return _truth(
        "deploy",
        "cart",
        "deployment/cart@2",
        "rollback",
        "cart's new revision asks for a privileged container; Pod Security refuses its pods; a "
        "catalog rollout is unrelated",
    )


def _pending(shop: Shop, app: str, rs: str, message: str, *, at: str) -> None:
    """``app``'s pods replaced by Pending ones the scheduler cannot place."""
    status = {
        "phase": "Pending",
        "conditions": [
            {
                "type": "PodScheduled",
                "status": "False",
                "reason": "Unschedulable",
                "message": message,
            }
        ],
    }
    for pod in _replace_pods(shop, app, rs, status, created=at):
        shop.find("Pod", pod)["spec"].pop("nodeName")
        shop.event("Warning", "FailedScheduling", ("Pod", pod), message, at=at, count=20)


def node_selector(shop: Shop) -> dict[str, Any]:
    """catalog's new revision selects nodes labelled disktype=nvme; none is."""
    shop.rollout("cart", at="2026-02-01T09:32:00Z", image="shop/cart:1.3")
    rs = shop.rollout("catalog", at="2026-02-01T09:42:00Z", image="shop/catalog:1.5")
    for obj in (shop.find("Deployment", "catalog"), shop.find("ReplicaSet", rs)):
        obj["spec"]["template"]["spec"]["nodeSelector"] = {"disktype": "nvme"}
    _pending(
        shop,
        "catalog",
        rs,
        "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
        at="2026-02-01T09:42:10Z",
    )
    return _truth(
        "deploy",
        "catalog",
        "deployment/catalog@2",
        "rollback",
        "catalog's new revision selects nodes labelled disktype=nvme, which no node carries; a "
        "cart rollout before it is unrelated",
    )


def untolerated_taint(shop: Shop) -> dict[str, Any]:
    """Every node was tainted dedicated=batch; cart's pods, recreated after it, tolerate it not.
    It carries the services' metrics; a checkout rollout is a decoy."""
    shop.rollout("checkout", at="2026-02-01T09:38:00Z", image="shop/checkout:1.2")
    for node in NODES:
        shop.find("Node", node)["spec"]["taints"] = [
            {"key": "dedicated", "value": "batch", "effect": "NoSchedule"}
        ]
    _pending(
        shop,
        "cart",
        "cart-5f7c9",
        "0/3 nodes are available: 3 node(s) had untolerated taint {dedicated: batch}. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.",
        at="2026-02-01T09:48:00Z",
    )
    return _truth(
        "config",
        "cart",
        None,
        "hand_over",
        "every node is tainted dedicated=batch and cart's pods tolerate it not; a checkout "
        "rollout is unrelated",
    )


def run_container_error(shop: Shop) -> dict[str, Any]:
    """catalog's new revision runs a command its image does not have."""
    shop.rollout("cart", at="2026-02-01T09:30:00Z", image="shop/cart:1.3")
    rs = shop.rollout("catalog", at="2026-02-01T09:44:00Z", command=["/app/serve"])
    message = (
        "failed to create containerd task: failed to create shim task: OCI runtime create "
        'failed: exec: "/app/serve": stat /app/serve: no such file or directory: unknown'
    )
    _replace_pods(shop, "catalog", rs, _waiting("RunContainerError", message))
    return _truth(
        "deploy",
        "catalog",
        "deployment/catalog@2",
        "rollback",
        "catalog's new revision runs a command its image lacks; a cart rollout is unrelated",
    )


def init_container(shop: Shop) -> dict[str, Any]:
    """checkout's new revision adds a migration init container that fails on every start."""
    shop.rollout("frontend", at="2026-02-01T09:31:00Z", image="shop/frontend:1.1")
    rs = shop.rollout("checkout", at="2026-02-01T09:43:00Z", image="shop/checkout:1.3")
    init = {"name": "migrate", "image": "shop/checkout-migrate:1.3"}
    for obj in (shop.find("Deployment", "checkout"), shop.find("ReplicaSet", rs)):
        obj["spec"]["template"]["spec"]["initContainers"] = [dict(init)]
    status = {
        "phase": "Pending",
        "initContainerStatuses": [
            {
                "name": "migrate",
                "ready": False,
                "restartCount": 6,
                "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
                "lastState": {
                    "terminated": {
                        "reason": "Error",
                        "exitCode": 1,
                        "message": 'migration 0042 failed: column "total" already exists',
                        "finishedAt": "2026-02-01T09:58:00Z",
                    }
                },
            }
        ],
        "containerStatuses": [
            {
                "name": "server",
                "ready": False,
                "restartCount": 0,
                "state": {"waiting": {"reason": "PodInitializing"}},
            }
        ],
    }
    for pod in _replace_pods(shop, "checkout", rs, status):
        shop.find("Pod", pod)["spec"]["initContainers"] = [dict(init)]
    return _truth(
        "deploy",
        "checkout",
        "deployment/checkout@2",
        "rollback",
        "checkout 1.3's migration init container fails on every start; a frontend rollout is "
        "unrelated",
    )


def oom_killed(shop: Shop) -> dict[str, Any]:
    """cart is OOM-killed and crash-loops with no change of its own; a catalog rollout is a
    decoy. It carries the services' metrics: cart and checkout fail."""
    shop.rollout("catalog", at="2026-02-01T09:40:00Z", image="shop/catalog:1.4")
    last = {
        "reason": "OOMKilled",
        "exitCode": 137,
        "finishedAt": "2026-02-01T09:57:00Z",
    }
    _replace_pods(
        shop,
        "cart",
        "cart-5f7c9",
        _waiting("CrashLoopBackOff", "back-off 2m40s restarting failed container", **last),
        created="2026-01-20T08:00:00Z",
    )
    return _truth(
        "resource",
        "cart",
        None,
        "hand_over",
        "cart's containers are OOM-killed and crash-loop; a catalog rollout is unrelated",
    )


def database_full(shop: Shop) -> dict[str, Any]:
    """The orders database (a StatefulSet) cannot write its WAL: its disk is full and it
    crash-loops; checkout, rolled out shortly before, crash-loops too because the database
    refuses its connections. The database's state explains checkout's."""
    labels = {"app": "orders-db"}
    template = {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": "postgres", "image": "postgres:15"}]},
    }
    shop.objects += [
        {
            "apiVersion": "apps/v1",
            "kind": "StatefulSet",
            "metadata": _meta("orders-db", labels=labels),
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template},
            "status": {"replicas": 1, "readyReplicas": 0, "availableReplicas": 0},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta("orders-db"),
            "spec": {"selector": labels, "ports": [{"port": 5432, "targetPort": 5432}]},
        },
    ]
    db = _waiting(
        "CrashLoopBackOff",
        "back-off 5m0s restarting failed container",
        reason="Error",
        exitCode=1,
        message='PANIC: could not write to file "pg_wal/xlogtemp.29": No space left on device',
        finishedAt="2026-02-01T09:56:00Z",
    )
    db["containerStatuses"][0]["name"] = "postgres"
    pod = _pod("orders-db-0", "orders-db", rs="orders-db", node="worker-c", created=AT_EVICTED)
    pod["metadata"]["ownerReferences"] = [_owner("StatefulSet", "orders-db")]
    pod["spec"]["containers"] = copy.deepcopy(template["spec"]["containers"])
    pod["status"] = db
    shop.objects.append(pod)
    rs = shop.rollout("checkout", at="2026-02-01T09:40:00Z", image="shop/checkout:1.2")
    _replace_pods(
        shop,
        "checkout",
        rs,
        _waiting(
            "CrashLoopBackOff",
            "back-off 2m40s restarting failed container",
            reason="Error",
            exitCode=1,
            message="FATAL: could not connect to orders-db:5432: connection refused",
            finishedAt="2026-02-01T09:57:00Z",
        ),
    )
    return _truth(
        "resource",
        "orders-db",
        None,
        "hand_over",
        "the orders database's disk is full: it cannot write its WAL and crash-loops, refusing "
        "checkout's connections; checkout's rollout before it is unrelated",
    )


def network_policy(shop: Shop) -> dict[str, Any]:
    """A NetworkPolicy applied to cart admits only catalog: checkout's calls to cart time out.
    It carries the services' metrics; a frontend rollout is a decoy."""
    checkout = shop.find("Deployment", "checkout")
    env = checkout["spec"]["template"]["spec"]["containers"][0]["env"]
    env.append({"name": "CART_URL", "value": "http://cart:80"})
    shop.rollout("frontend", at="2026-02-01T09:35:00Z", image="shop/frontend:1.1")
    shop.objects.append(
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": _meta("cart-ingress", "2026-02-01T09:51:00Z"),
            "spec": {
                "podSelector": {"matchLabels": {"app": "cart"}},
                "policyTypes": ["Ingress"],
                "ingress": [{"from": [{"podSelector": {"matchLabels": {"app": "catalog"}}}]}],
            },
        }
    )
    return _truth(
        "config",
        "cart",
        None,
        "hand_over",
        "a NetworkPolicy on cart admits only catalog, shutting out checkout; a frontend rollout "
        "is unrelated",
    )


def node_pressure(shop: Shop) -> dict[str, Any]:
    """worker-a is under disk pressure: the kubelet evicts its pods (frontend's and catalog's)
    while it stays Ready; a checkout rollout is a decoy."""
    shop.rollout("checkout", at="2026-02-01T09:40:00Z", image="shop/checkout:1.2")
    node = shop.find("Node", "worker-a")
    node["status"]["conditions"].append(
        {
            "type": "DiskPressure",
            "status": "True",
            "reason": "KubeletHasDiskPressure",
            "message": "kubelet has disk pressure",
            "lastTransitionTime": "2026-02-01T09:50:00Z",
        }
    )
    node["spec"]["taints"] = [{"key": "node.kubernetes.io/disk-pressure", "effect": "NoSchedule"}]
    for pod in shop.objects:
        if pod["kind"] == "Pod" and pod["spec"].get("nodeName") == "worker-a":
            pod["status"] = {
                "phase": "Failed",
                "reason": "Evicted",
                "message": "The node was low on resource: ephemeral-storage.",
                "containerStatuses": [
                    {
                        "name": "server",
                        "ready": False,
                        "restartCount": 0,
                        "state": {
                            "terminated": {"reason": "ContainerStatusUnknown", "exitCode": 137}
                        },
                    }
                ],
            }
            shop.event(
                "Warning",
                "Evicted",
                ("Pod", pod["metadata"]["name"]),
                "The node was low on resource: ephemeral-storage.",
                at="2026-02-01T09:51:00Z",
            )
    return _truth(
        "resource",
        "node/worker-a",
        None,
        "cordon",
        "worker-a is under disk pressure and evicts its pods; a checkout rollout is unrelated",
    )


def _truth(kind: str, component: str, change: str | None, fix: str, detail: str) -> dict[str, Any]:
    cause = {"kind": kind, "component": component, "detail": detail}
    if change:
        cause["change"] = change
    return {"root_cause": cause, "fix": fix}


SCENARIOS: dict[str, tuple[Callable[[Shop], dict[str, Any]], str, str]] = {
    "k8s-image-pull": (image_pull, "frontend", "frontend: 5xx ratio above 5%"),
    "k8s-missing-secret": (missing_secret, "frontend", "frontend: checkout calls failing"),
    "k8s-crash-loop": (crash_loop, "checkout", "checkout: no ready replicas"),
    "k8s-quota": (quota, "cart", "cart: replicas unavailable"),
    "k8s-unschedulable": (unschedulable, "frontend", "frontend: catalog requests failing"),
    "k8s-probe-port": (probe_port, "frontend", "frontend: 5xx ratio above 5%"),
    "k8s-scaled-to-zero": (scaled_to_zero, "checkout", "checkout: cart unreachable"),
    "k8s-selector": (selector, "checkout", "checkout: cart unreachable"),
    "k8s-node-down": (node_down, "frontend", "frontend: p95 latency SLO burning"),
    "k8s-fresh-install": (fresh_install, "frontend", "frontend: 5xx ratio above 5%"),
    "k8s-kubelet-down": (kubelet_down, "frontend", "frontend: 5xx ratio above 5%"),
    "k8s-runtime-down": (runtime_down, "frontend", "frontend: checkout calls failing"),
    "k8s-no-pods": (no_pods, "checkout", "checkout: cart unreachable"),
    "k8s-unbound-claim": (unbound_claim, "frontend", "frontend: catalog requests failing"),
    "k8s-endpoints-not-ready": (
        endpoints_not_ready,
        "frontend",
        "frontend: checkout calls failing",
    ),
    "k8s-named-target-port": (named_target_port, "checkout", "checkout: cart unreachable"),
    "k8s-target-port-edited": (target_port_edited, "checkout", "checkout: cart unreachable"),
    "k8s-volume-zone": (volume_zone, "frontend", "frontend: catalog requests failing"),
    "k8s-unresolved-service": (unresolved_service, "frontend", "frontend: checkout errors"),
    "k8s-unresolved-decoy": (unresolved_decoy, "frontend", "frontend: catalog requests failing"),
    "k8s-limit-range": (limit_range, "frontend", "frontend: catalog requests failing"),
    "k8s-service-account": (service_account, "frontend", "frontend: checkout calls failing"),
    "k8s-pod-security": (pod_security, "checkout", "checkout: cart unreachable"),
    "k8s-node-selector": (node_selector, "frontend", "frontend: catalog requests failing"),
    "k8s-untolerated-taint": (untolerated_taint, "frontend", "frontend: 5xx ratio above 5%"),
    "k8s-run-container-error": (run_container_error, "frontend", "frontend: catalog errors"),
    "k8s-init-container": (init_container, "frontend", "frontend: checkout calls failing"),
    "k8s-oom-killed": (oom_killed, "checkout", "checkout: cart calls failing"),
    "k8s-database-full": (database_full, "frontend", "frontend: checkout calls failing"),
    "k8s-network-policy": (network_policy, "checkout", "checkout: cart unreachable"),
    "k8s-node-pressure": (node_pressure, "frontend", "frontend: 5xx ratio above 5%"),
}

LOGGED = ("k8s-unresolved-service", "k8s-unresolved-decoy")
"""The scenarios whose pods have logs (``logs/<pod>.log``): every pod that has none yet logs
its requests from the window's start."""

METRICS: dict[str, dict[str, str]] = {
    "k8s-kubelet-down": {"cart": "silent", "checkout": "errors", "frontend": "errors"},
    "k8s-pod-security": {"cart": "silent", "checkout": "errors"},
    "k8s-untolerated-taint": {"cart": "silent", "checkout": "errors", "frontend": "errors"},
    "k8s-oom-killed": {"cart": "errors", "checkout": "errors"},
    "k8s-network-policy": {"checkout": "errors", "frontend": "errors"},
}
"""The scenarios that also carry metrics: per service, what its requests do from the fault
on (``errors``: half fail; ``silent``: no sample, its pods cannot be scraped)."""


def write(name: str) -> None:
    build, service, title = SCENARIOS[name]
    shop = Shop(
        created="2026-02-01T09:50:00Z" if name == "k8s-fresh-install" else "2026-01-20T08:00:00Z"
    )
    truth = build(shop)
    folder = HERE / name
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "kubernetes").mkdir(parents=True)
    scenario = {
        "format": 1,
        "name": name,
        "description": truth["root_cause"]["detail"],
        "time": {"start": "2026-02-01T09:00:00Z", "end": "2026-02-01T10:05:00Z"},
        "trigger": {
            "source": "pagerduty",
            "title": title,
            "service": service,
            "namespace": NS,
            "at": AT,
            "labels": {"severity": "critical"},
        },
        "truth": truth,
    }
    (folder / "scenario.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))
    (folder / "kubernetes" / "objects.yaml").write_text(
        yaml.safe_dump_all(shop.objects, sort_keys=False)
    )
    if name in METRICS:
        (folder / "metrics.om").write_text(_metrics(METRICS[name]))
    if name in LOGGED:
        (folder / "logs").mkdir()
        for pod in (o for o in shop.objects if o["kind"] == "Pod"):
            pod_name = pod["metadata"]["name"]
            app = pod["metadata"]["labels"]["app"]
            lines = shop.logs.get(pod_name) or _log_lines(app, start="2026-02-01T09:00:00Z")
            (folder / "logs" / f"{pod_name}.log").write_text("\n".join(lines) + "\n")


RATES = {"frontend": 20.0, "checkout": 10.0, "cart": 8.0, "catalog": 12.0}
"""Requests per second of each service's server."""
FAULT_AT = 3150  # seconds after 09:00: 09:52:30
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def _metrics(faults: dict[str, str]) -> str:
    """OpenMetrics text at a 15 s step over the scenario's time: the services' HTTP server
    histograms (OpenTelemetry names), and each Deployment's available replicas."""
    start = 1769936400  # 2026-02-01T09:00:00Z
    rng = np.random.default_rng(17)
    lines = [
        "# TYPE http_server_request_duration_seconds histogram",
        "# TYPE kube_deployment_status_replicas_available gauge",
    ]
    totals: dict[tuple[str, str], np.ndarray] = {}
    for t in range(0, 3901, 15):
        for app, rate in RATES.items():
            fault = faults.get(app) if t >= FAULT_AT else None
            if fault == "silent":
                continue
            failed = 0.5 if fault == "errors" else 0.002
            served = rate * 15 * (1 + 0.05 * rng.standard_normal())
            for code, share in (("200", 1 - failed), ("500", failed)):
                counts = totals.setdefault((app, code), np.zeros(len(BUCKETS) + 2))
                n = max(0.0, served * share)
                counts[: len(BUCKETS)] += n * np.array([0.6, 0.9, 0.98, 0.995, 1.0, 1.0])
                counts[len(BUCKETS)] += n
                counts[-1] += n * 0.045
                lines += _histogram(app, code, counts, at=start + t)
            available = 0 if faults.get(app) == "silent" and t >= FAULT_AT else 2
            lines.append(
                f'kube_deployment_status_replicas_available{{namespace="{NS}",'
                f'deployment="{app}"}} {available} {start + t}'
            )
    return "\n".join([*lines, "# EOF", ""])


def _histogram(app: str, code: str, counts: np.ndarray, *, at: int) -> list[str]:
    name = "http_server_request_duration_seconds"
    labels = (
        f'service_name="{app}",namespace="{NS}",http_route="/",http_request_method="GET",'
        f'http_response_status_code="{code}"'
    )
    out = [
        f'{name}_bucket{{{labels},le="{le}"}} {counts[i]:.1f} {at}' for i, le in enumerate(BUCKETS)
    ]
    out.append(f'{name}_bucket{{{labels},le="+Inf"}} {counts[len(BUCKETS)]:.1f} {at}')
    out.append(f"{name}_count{{{labels}}} {counts[len(BUCKETS)]:.1f} {at}")
    out.append(f"{name}_sum{{{labels}}} {counts[-1]:.3f} {at}")
    return out


if __name__ == "__main__":
    for scenario in SCENARIOS:
        write(scenario)
