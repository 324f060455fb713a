"""The state kinds (``diagnose.domain.cluster.STATE_KINDS``) translated into the payloads of
``diagnose.domain.cluster``: what a workload, node or route looks like now."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import Any

from connectors.kubernetes import _common
from diagnose.domain import cluster

# --- state: what a workload, node or route looks like now ---------------------------------


_DELIVERY_KINDS = {
    "applications": ("argoproj.io", "v1alpha1"),
    "kustomizations": ("kustomize.toolkit.fluxcd.io", "v1"),
    "helmreleases": ("helm.toolkit.fluxcd.io", "v2"),
    "gitrepositories": ("source.toolkit.fluxcd.io", "v1"),
}
"""The delivery tools' custom resources read (plural → group, version)."""


_CLUSTER_WIDE = frozenset({"nodes", "persistentvolumes"})
"""The state kinds that are not namespaced: listed across the cluster."""


def _cluster_wide(call: Callable[..., Any], _namespace: str, **kwargs: Any) -> Any:
    """A cluster-scoped list call in the shape of a namespaced one."""
    return call(**kwargs)


def _pod_state(obj: _common.Obj) -> cluster.PodStatePayload:
    meta, spec, status = _common._parts(obj)
    specs = {
        str(c.get("name")): c
        for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    }
    statuses = [(s, True) for s in status.get("initContainerStatuses") or []]
    statuses += [(s, False) for s in status.get("containerStatuses") or []]
    scheduled: _common.Obj = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), {}
    )
    unschedulable = None
    if scheduled.get("status") == "False":
        unschedulable = str(scheduled.get("message") or scheduled.get("reason") or "")
    return {
        "resource": "pod",
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "owner": _common._owner(meta),
        "node": spec.get("nodeName"),
        "phase": str(status.get("phase") or "Unknown"),
        "created": _common._time(meta.get("creationTimestamp")) or "",
        "labels": dict(meta.get("labels") or {}),
        "deleting": bool(meta.get("deletionTimestamp")),
        "claims": [
            str(v["persistentVolumeClaim"].get("claimName"))
            for v in spec.get("volumes") or []
            if isinstance(v.get("persistentVolumeClaim"), Mapping)
        ],
        "unschedulable": unschedulable,
        "statuses": [
            _container_state(s, spec=specs.get(str(s.get("name")), {}), init=init)
            for s, init in statuses
        ],
    }


def _container_state(
    status: _common.Obj, *, spec: _common.Obj, init: bool
) -> cluster.ContainerStatePayload:
    waiting = (status.get("state") or {}).get("waiting") or {}
    last = (status.get("lastState") or {}).get("terminated")
    last = last or (status.get("state") or {}).get("terminated") or {}
    code = last.get("exitCode")
    payload = _container_spec(spec, init=init)
    payload["name"] = str(status.get("name") or payload["name"])
    payload["ready"] = bool(status.get("ready"))
    payload["restarts"] = int(status.get("restartCount") or 0)
    payload["waiting_reason"] = waiting.get("reason")
    payload["waiting_message"] = _line(waiting.get("message"))
    payload["terminated_reason"] = last.get("reason")
    payload["terminated_message"] = _line(last.get("message"))
    payload["exit_code"] = int(code) if code is not None else None
    payload["terminated_at"] = _common._time(last.get("finishedAt"))
    return payload


def _container_spec(spec: _common.Obj, *, init: bool) -> cluster.ContainerStatePayload:
    probes: dict[str, cluster.ProbePayload] = {}
    for part in ("liveness", "readiness", "startup"):
        probe = spec.get(f"{part}Probe")
        if isinstance(probe, Mapping):
            probes[part] = _probe(probe)
    return {
        "name": str(spec.get("name") or ""),
        "init": init,
        "image": str(spec.get("image") or ""),
        "ready": False,
        "restarts": 0,
        "waiting_reason": None,
        "waiting_message": None,
        "terminated_reason": None,
        "terminated_message": None,
        "exit_code": None,
        "terminated_at": None,
        "ports": [
            {"name": str(p.get("name") or ""), "port": int(p.get("containerPort") or 0)}
            for p in spec.get("ports") or []
        ],
        "probes": probes,
    }


def _probe(probe: _common.Obj) -> cluster.ProbePayload:
    for key, kind in (("httpGet", "http"), ("tcpSocket", "tcp"), ("grpc", "grpc")):
        action = probe.get(key)
        if isinstance(action, Mapping):
            path = str(action.get("path") or "")
            return {"port": str(action.get("port", "")), "path": path, "kind": kind}
    return {"port": "", "path": "", "kind": "exec"}


def _workload_state(obj: _common.Obj, *, resource: str) -> cluster.WorkloadStatePayload:
    meta, spec, status = _common._parts(obj)
    template = spec.get("template") or {}
    pod_spec = template.get("spec") or {}
    return {
        "resource": resource,
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "created": _common._time(meta.get("creationTimestamp")) or "",
        "replicas": int(spec.get("replicas", 1)),
        "ready_replicas": int(status.get("readyReplicas") or 0),
        "available_replicas": int(status.get("availableReplicas") or 0),
        "template_labels": dict((template.get("metadata") or {}).get("labels") or {}),
        "service_account": str(pod_spec.get("serviceAccountName") or "default"),
        "specs": [_container_spec(c, init=False) for c in pod_spec.get("containers") or []],
    }


def _node_state(obj: _common.Obj) -> cluster.NodeStatePayload:
    meta, spec, status = _common._parts(obj)
    conditions = {str(c.get("type")): c for c in status.get("conditions") or []}
    ready = conditions.get("Ready") or {}
    taints = [
        f"{t.get('key')}{'=' + str(t['value']) if t.get('value') else ''}:{t.get('effect')}"
        for t in spec.get("taints") or []
    ]
    return {
        "resource": "node",
        "name": meta["name"],
        "ready": str(ready.get("status") or "Unknown"),
        "ready_reason": str(ready.get("reason") or ""),
        "ready_message": _line(ready.get("message")) or "",
        "ready_since": _common._time(ready.get("lastTransitionTime")),
        "labels": {str(k): str(v) for k, v in (meta.get("labels") or {}).items()},
        "pressure": sorted(
            t for t, c in conditions.items() if t != "Ready" and c.get("status") == "True"
        ),
        "unschedulable": bool(spec.get("unschedulable")),
        "taints": taints,
    }


def _service_ports(spec: _common.Obj) -> list[dict[str, str]]:
    return [
        {
            "name": str(p.get("name") or ""),
            "port": str(p.get("port") or ""),
            "target_port": str(p.get("targetPort", p.get("port")) or ""),
        }
        for p in spec.get("ports") or []
        if isinstance(p, Mapping)
    ]


_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def _applied(meta: _common.Obj) -> cluster.AppliedServicePayload | None:
    """The selector and ports ``kubectl apply`` last wrote (its annotation); None when the
    Service carries none or it does not parse."""
    text = (meta.get("annotations") or {}).get(_LAST_APPLIED)
    try:
        applied = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    spec = applied.get("spec") if isinstance(applied, Mapping) else None
    if not isinstance(spec, Mapping):
        return None
    selector = spec.get("selector")
    return {
        "selector": {str(k): str(v) for k, v in selector.items()}
        if isinstance(selector, Mapping)
        else {},
        "ports": _service_ports(spec),
    }


def _service_state(obj: _common.Obj) -> cluster.ServiceStatePayload:
    meta, spec, _ = _common._parts(obj)
    ports = _service_ports(spec)
    return {
        "resource": "service",
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "created": _common._time(meta.get("creationTimestamp")) or "",
        "selector": {str(k): str(v) for k, v in (spec.get("selector") or {}).items()},
        "ports": ports,
        "applied": _applied(meta),
    }


def _endpointslice_state(obj: _common.Obj) -> cluster.EndpointSliceStatePayload:
    meta = obj.get("metadata") or {}
    endpoints = obj.get("endpoints") or []
    ready = sum(1 for e in endpoints if (e.get("conditions") or {}).get("ready", True) is not False)
    return {
        "resource": "endpointslice",
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "service": str((meta.get("labels") or {}).get("kubernetes.io/service-name") or ""),
        "ready": ready,
        "not_ready": len(endpoints) - ready,
    }


def _quota_state(obj: _common.Obj) -> cluster.QuotaStatePayload:
    meta, spec, status = _common._parts(obj)
    hard = status.get("hard") or spec.get("hard") or {}
    return {
        "resource": "resourcequota",
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "hard": {str(k): str(v) for k, v in hard.items()},
        "used": {str(k): str(v) for k, v in (status.get("used") or {}).items()},
    }


def _named_state(obj: _common.Obj, *, resource: str) -> cluster.NamedStatePayload:
    meta, _, status = _common._parts(obj)
    return {
        "resource": resource,
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "created": _common._time(meta.get("creationTimestamp")) or "",
        "phase": str(status.get("phase") or ""),
    }


def _claim_state(obj: _common.Obj) -> cluster.ClaimStatePayload:
    meta, spec, status = _common._parts(obj)
    return {
        "resource": "persistentvolumeclaim",
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "created": _common._time(meta.get("creationTimestamp")) or "",
        "phase": str(status.get("phase") or ""),
        "volume": str(spec.get("volumeName") or ""),
        "storage_class": str(spec.get("storageClassName") or ""),
    }


def _volume_state(obj: _common.Obj) -> cluster.VolumeStatePayload:
    meta, spec, status = _common._parts(obj)
    claim = spec.get("claimRef") or {}
    required = ((spec.get("nodeAffinity") or {}).get("required") or {}).get(
        "nodeSelectorTerms"
    ) or []
    return {
        "resource": "persistentvolume",
        "name": meta["name"],
        "claim": f"{claim.get('namespace')}/{claim.get('name')}" if claim.get("name") else "",
        "phase": str(status.get("phase") or ""),
        "node_affinity": [
            [
                {
                    "key": str(e.get("key") or ""),
                    "operator": str(e.get("operator") or ""),
                    "values": [str(v) for v in e.get("values") or []],
                }
                for e in term.get("matchExpressions") or []
            ]
            for term in required
            if isinstance(term, Mapping)
        ],
    }


def _policy_state(obj: _common.Obj) -> cluster.NetworkPolicyStatePayload:
    meta, spec, _ = _common._parts(obj)
    rules = spec.get("ingress")
    types = spec.get("policyTypes") or ["Ingress"]
    peers: list[dict[str, str]] = []
    for rule in rules or []:
        sources = rule.get("from")
        if not sources:
            peers.append({"*": "*"})  # a rule without "from" admits every peer
        for peer in sources or []:
            if "podSelector" in peer and "namespaceSelector" not in peer:
                labels = (peer.get("podSelector") or {}).get("matchLabels") or {}
                peers.append({str(k): str(v) for k, v in labels.items()} or {"*": "*"})
            else:
                peers.append({"*": "*"})  # other namespaces or address blocks: not judged here
    return {
        "resource": "networkpolicy",
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "created": _common._time(meta.get("creationTimestamp")) or "",
        "pod_selector": dict((spec.get("podSelector") or {}).get("matchLabels") or {}),
        "ingress_isolated": "Ingress" in types,
        "ingress_from": peers,
    }


def _line(value: Any) -> str | None:
    """A message's first line, cut at 300 characters (termination messages can be long)."""
    text = str(value or "").strip()
    return text.splitlines()[0][:300] if text else None


_STATE_READERS: dict[str, tuple[str, str, Callable[[_common.Obj], Any]]] = {
    "pods": ("core", "list_namespaced_pod", _pod_state),
    "deployments": (
        "apps",
        "list_namespaced_deployment",
        functools.partial(_workload_state, resource="deployment"),
    ),
    "statefulsets": (
        "apps",
        "list_namespaced_stateful_set",
        functools.partial(_workload_state, resource="statefulset"),
    ),
    "nodes": ("core", "list_node", _node_state),
    "services": ("core", "list_namespaced_service", _service_state),
    "endpointslices": ("discovery", "list_namespaced_endpoint_slice", _endpointslice_state),
    "resourcequotas": ("core", "list_namespaced_resource_quota", _quota_state),
    "limitranges": (
        "core",
        "list_namespaced_limit_range",
        functools.partial(_named_state, resource="limitrange"),
    ),
    "persistentvolumeclaims": ("core", "list_namespaced_persistent_volume_claim", _claim_state),
    "persistentvolumes": ("core", "list_persistent_volume", _volume_state),
    "serviceaccounts": (
        "core",
        "list_namespaced_service_account",
        functools.partial(_named_state, resource="serviceaccount"),
    ),
    "networkpolicies": ("networking", "list_namespaced_network_policy", _policy_state),
}
"""Each state kind: which API group's client, its list method, and the translation."""
