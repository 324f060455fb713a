"""Cluster evidence → the changes that could have caused an incident.

Each item of a ``kubernetes`` evidence record is recognised by its keys, not by the query text
(the payload shapes in ``diagnose.domain.ports`` have disjoint keys): ``selector`` and
``available`` make a Deployment, ``owner`` and ``resources`` a ReplicaSet, ``digest`` and
``keys`` a ConfigMap or Secret, ``containers`` and ``phase`` a Pod, ``reason`` and ``object``
an Event.

A ReplicaSet revision is a rollout; when only the containers' resources differ from the previous
revision it is a limits change. A ConfigMap/Secret edit is a change to every workload whose
pod template reads it (a volume, ``envFrom``, an env ``valueFrom``); one that no workload reads
belongs to the workload named by its labels (``app.kubernetes.io/name``, ``app``,
``app.kubernetes.io/instance``) or an annotation naming a deployment, else to the longest
deployment name it starts with (``checkout-config`` → ``checkout``). Containers' last
terminations (OOMKilled, errors) are restarts; Warning events
about nodes are node changes, except a kernel's report of one container hitting its own memory
limit (a restart of that container); Warning events that a pod's node is in trouble (the node
controller's ``NodeNotReady``, a node-pressure eviction, a node shutdown) become one node change
per node, on the node the pod runs on. ScalingReplicaSet events on a ReplicaSet older than the
event are scale changes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from diagnose.analysis import discovery
from diagnose.domain import models

Item = Mapping[str, Any]

_SCALED = re.compile(
    r"Scaled (?P<way>up|down) replica set (?P<rs>\S+) (?:from \d+ )?to (?P<to>\d+)"
)
_OWNER_LABELS = ("app.kubernetes.io/name", "app", "app.kubernetes.io/instance", "component")
_OWNER_ANNOTATIONS = ("diagnose.io/workload", "app.kubernetes.io/part-of")
_ROLLOUT_GRACE = timedelta(minutes=2)
_NODE_TROUBLE = frozenset({"NodeNotReady", "NodeShutdown", "NodeUnreachable"})
"""Reasons of pod events that report the pod's node in trouble, not the pod."""
_NODE_PRESSURE = re.compile(r"\bnode (?:was|is) low on resource", re.IGNORECASE)
_CGROUP_OOM = re.compile(r"Memory cgroup out of memory: Killed process \d+ \((?P<proc>[^)]+)\)")


@dataclass
class ClusterView:
    """The cluster evidence sorted by payload kind, each item with the id it was read from."""

    deployments: list[tuple[Item, str]] = field(default_factory=list)
    replicasets: list[tuple[Item, str]] = field(default_factory=list)
    configs: list[tuple[Item, str]] = field(default_factory=list)
    pods: list[tuple[Item, str]] = field(default_factory=list)
    events: list[tuple[Item, str]] = field(default_factory=list)


def kind_of(item: Item) -> str | None:
    """deployment | replicaset | config | pod | event, from the item's keys."""
    keys = set(item)
    if {"selector", "available"} <= keys:
        return "deployment"
    if {"owner", "resources"} <= keys:
        return "replicaset"
    if {"digest", "keys"} <= keys:
        return "config"
    if {"containers", "phase"} <= keys:
        return "pod"
    if {"reason", "object"} <= keys:
        return "event"
    return None


_TIMELINE_KINDS = frozenset(
    {
        models.EvidenceKind.UNKNOWN,
        models.EvidenceKind.DEPLOYMENTS,
        models.EvidenceKind.REPLICASETS,
        models.EvidenceKind.CONFIGS,
        models.EvidenceKind.PODS,
        models.EvidenceKind.EVENTS,
    }
)


def read_cluster(records: Sequence[models.Evidence]) -> ClusterView:
    """Sort every usable item of the cluster evidence by kind. Only the change-timeline reads
    (and records made before evidence had kinds) are read here: the current-state payloads
    (``EvidenceKind.STATE``) look like pods too but are :mod:`diagnose.analysis.cluster`'s."""
    view = ClusterView()
    for record in records:
        if record.kind not in _TIMELINE_KINDS:
            continue
        if record.status is not models.Status.OK or not isinstance(record.raw, list):
            continue
        for item in record.raw:
            kind = kind_of(item) if isinstance(item, Mapping) else None
            if kind is not None:
                getattr(view, kind + "s").append((item, record.id))
    return view


def list_changes(view: ClusterView, *, known: Sequence[str] = ()) -> list[models.Change]:
    """Every change the cluster evidence shows, oldest first. ``known`` adds workload names
    seen elsewhere (the metrics' components) for attributing ConfigMaps."""
    workloads = sorted({*_workload_names(view), *known})
    found = [
        *_rollouts(view),
        *_config_edits(view, workloads=workloads),
        *_restarts(view),
        *_event_changes(view),
        *_node_trouble(view),
    ]
    return sorted(found, key=lambda c: (c.at, c.ref))


# --- rollouts ---------------------------------------------------------------------------------


def _rollouts(view: ClusterView) -> list[models.Change]:
    by_owner: dict[str, list[tuple[Item, str]]] = {}
    for item, source in view.replicasets:
        owner = item.get("owner") or ""
        if owner.startswith("deployment/") and item.get("revision") is not None:
            by_owner.setdefault(owner, []).append((item, source))
    changes: list[models.Change] = []
    for owner, items in by_owner.items():
        items.sort(key=lambda pair: int(pair[0]["revision"]))
        previous: Item | None = None
        for item, source in items:
            change = _rollout(owner, item, previous=previous, source=source)
            if change is not None:
                changes.append(change)
            previous = item
    return changes


def _rollout(owner: str, item: Item, *, previous: Item | None, source: str) -> models.Change | None:
    name = owner.split("/", 1)[1]
    at = _time(item.get("created"))
    if at is None:
        return None
    revision = int(item["revision"])
    if previous is None:
        detail = f"revision {revision} ({', '.join(item.get('images') or [])})"
        kind = models.ChangeKind.ROLLOUT
    else:
        kind, detail = _difference(previous, item)
    return models.Change(
        kind=kind,
        ref=f"deployment/{name}@{revision}",
        component=name,
        namespace=str(item.get("namespace") or ""),
        at=at,
        detail=detail,
        evidence=source,
    )


def _difference(old: Item, new: Item) -> tuple[models.ChangeKind, str]:
    """What a revision changed: images (a rollout) or only resources (a limits change)."""
    old_images, new_images = list(old.get("images") or []), list(new.get("images") or [])
    old_res, new_res = old.get("resources") or {}, new.get("resources") or {}
    parts = []
    if old_images != new_images:
        pairs = [f"{a} → {b}" for a, b in zip(old_images, new_images, strict=False) if a != b]
        parts.append("image " + (", ".join(pairs) or f"{old_images} → {new_images}"))
    resource_parts = _resource_diff(old_res, new_res)
    parts += resource_parts
    revision = f"revision {old.get('revision')} → {new.get('revision')}"
    if old_images == new_images and resource_parts:
        return models.ChangeKind.LIMITS, f"{revision}: " + "; ".join(parts)
    what = "; ".join(parts) if parts else "pod template (env, args or annotations)"
    return models.ChangeKind.ROLLOUT, f"{revision}: {what}"


def _resource_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[str]:
    out = []
    for container in sorted(set(old) | set(new)):
        for part in ("limits", "requests"):
            before = (old.get(container) or {}).get(part) or {}
            after = (new.get(container) or {}).get(part) or {}
            for resource in sorted(set(before) | set(after)):
                if before.get(resource) != after.get(resource):
                    was, now = before.get(resource, "unset"), after.get(resource, "unset")
                    out.append(f"{container} {part}.{resource} {was} → {now}")
    return out


# --- config edits -------------------------------------------------------------------------------


def _config_edits(view: ClusterView, *, workloads: Sequence[str]) -> list[models.Change]:
    changes = []
    for item, source in view.configs:
        at = _time(item.get("updated")) or _time(item.get("created"))
        if at is None:
            continue
        kind = str(item.get("kind") or "configmap")
        name = str(item["name"])
        edited = item.get("updated") and item.get("updated") != item.get("created")
        detail = f"{kind} {name} {'edited' if edited else 'created'}"
        if item.get("keys"):
            detail += f" (keys: {', '.join(item['keys'][:8])})"
        ref = f"{kind}/{name}"
        owners = consumers_of(ref, view=view) or [owner_of_config(item, workloads=workloads)]
        changes += [
            models.Change(
                kind=models.ChangeKind.CONFIG,
                ref=ref,
                component=owner,
                namespace=str(item.get("namespace") or ""),
                at=at,
                detail=detail,
                evidence=source,
            )
            for owner in owners
        ]
    return changes


def consumers_of(ref: str, *, view: ClusterView) -> list[str]:
    """The workloads whose pod template reads ``ref`` ("configmap/NAME", "secret/NAME") as a
    volume, through ``envFrom`` or an env ``valueFrom``: an edit of it is a change to each."""
    return sorted({str(d["name"]) for d, _ in view.deployments if ref in (d.get("configs") or [])})


def owner_of_config(item: Item, *, workloads: Sequence[str]) -> str:
    """The workload a ConfigMap/Secret belongs to (rule in the module docstring)."""
    labels, annotations = item.get("labels") or {}, item.get("annotations") or {}
    for key in _OWNER_ANNOTATIONS:
        if annotations.get(key) in workloads:
            return str(annotations[key])
    for key in _OWNER_LABELS:
        if labels.get(key):
            return str(labels[key])
    name = str(item["name"])
    prefixes = [w for w in workloads if name == w or name.startswith(w + "-")]
    return max(prefixes, key=len) if prefixes else name


# --- restarts and events -----------------------------------------------------------------------


def _restarts(view: ClusterView) -> list[models.Change]:
    changes = []
    for pod, source in view.pods:
        for container in pod.get("containers") or []:
            at = _time(container.get("last_terminated_at"))
            reason = container.get("last_terminated_reason")
            if at is None or not reason or reason == "Completed":
                continue
            detail = (
                f"{container['name']} in {pod['name']} terminated: {reason} "
                f"(exit {container.get('last_exit_code')}, restarts {container.get('restarts', 0)})"
            )
            changes.append(
                models.Change(
                    kind=models.ChangeKind.RESTART,
                    ref=f"pod/{pod['name']}",
                    component=_pod_workload(pod),
                    namespace=str(pod.get("namespace") or ""),
                    at=at,
                    detail=detail,
                    evidence=source,
                )
            )
    return changes


def _event_changes(view: ClusterView) -> list[models.Change]:
    created = {str(rs["name"]): _time(rs.get("created")) for rs, _ in view.replicasets}
    changes = []
    for event, source in view.events:
        change = _event_change(event, source=source, created=created)
        if change is not None:
            changes.append(change)
    return changes


def _event_change(
    event: Item, *, source: str, created: Mapping[str, datetime | None]
) -> models.Change | None:
    at = _time(event.get("first")) or _time(event.get("last"))
    kind_name = str(event.get("object") or "/").split("/", 1)
    if at is None or len(kind_name) != 2:
        return None
    kind, name = kind_name
    reason, message = str(event.get("reason") or ""), str(event.get("message") or "")
    namespace = str(event.get("namespace") or "")
    if reason == "ScalingReplicaSet":
        return _scale_event(event, at=at, source=source, created=created)
    if event.get("type") != "Warning":
        return None
    oom = _CGROUP_OOM.search(message) if kind == "node" else None
    if oom is not None:  # one container over its own limit, reported by the node's kernel
        change_kind, component = models.ChangeKind.RESTART, oom["proc"]
    elif kind == "node":
        change_kind, component = models.ChangeKind.NODE, f"node/{name}"
    elif reason in ("OOMKilling", "OOMKilled", "BackOff", "Evicted", "Killing"):
        change_kind = models.ChangeKind.RESTART
        component = discovery.workload_of_pod(name) if kind == "pod" else name
    else:
        return None
    return models.Change(
        change_kind,
        f"{kind}/{name}",
        component,
        namespace,
        at,
        f"{reason}: {message}"[:240],
        source,
    )


def node_trouble(event: Item) -> bool:
    """Whether a pod's Warning event reports its node in trouble rather than the pod."""
    if event.get("type") != "Warning" or not str(event.get("object") or "").startswith("pod/"):
        return False
    reason, message = str(event.get("reason") or ""), str(event.get("message") or "")
    return reason in _NODE_TROUBLE or (reason == "Evicted" and bool(_NODE_PRESSURE.search(message)))


def placement(view: ClusterView) -> dict[str, frozenset[str]]:
    """Node → the workloads with a pod on it, from the pods' ``node``."""
    hosted: dict[str, set[str]] = {}
    for pod, _ in view.pods:
        if pod.get("node"):
            hosted.setdefault(str(pod["node"]), set()).add(_pod_workload(pod))
    return {node: frozenset(names) for node, names in hosted.items()}


def _node_trouble(view: ClusterView) -> list[models.Change]:
    """One node change per node whose pods' events report it in trouble, at the first one."""
    nodes = {str(pod["name"]): str(pod["node"]) for pod, _ in view.pods if pod.get("node")}
    by_node: dict[str, list[tuple[datetime, Item, str]]] = {}
    for event, source in view.events:
        at = _time(event.get("first")) or _time(event.get("last"))
        pod = str(event.get("object") or "").removeprefix("pod/")
        if at is not None and node_trouble(event) and pod in nodes:
            by_node.setdefault(nodes[pod], []).append((at, event, source))
    changes = []
    for node, found in sorted(by_node.items()):
        found.sort(key=lambda item: item[0])
        at, first, source = found[0]
        pods = sorted({str(e["object"]).removeprefix("pod/") for _, e, _ in found})
        reasons = sorted({str(e["reason"]) for _, e, _ in found})
        detail = (
            f"{'/'.join(reasons)} on {len(pods)} pod(s) on node {node} "
            f"({', '.join(pods[:6])}): {first.get('message')}"
        )
        changes.append(
            models.Change(
                models.ChangeKind.NODE,
                f"node/{node}",
                f"node/{node}",
                str(first.get("namespace") or ""),
                at,
                detail[:240],
                source,
            )
        )
    return changes


def _scale_event(
    event: Item, *, at: datetime, source: str, created: Mapping[str, datetime | None]
) -> models.Change | None:
    match = _SCALED.search(str(event.get("message") or ""))
    if match is None:
        return None
    born = created.get(match["rs"])
    if born is None or at - born < _ROLLOUT_GRACE or int(match["to"]) == 0:
        return None  # part of a rollout, not a scale change
    workload = discovery.workload_of_pod(match["rs"] + "-xxxxx")
    return models.Change(
        models.ChangeKind.SCALE,
        f"deployment/{workload}",
        workload,
        str(event.get("namespace") or ""),
        at,
        f"scaled {match['way']} to {match['to']} replicas",
        source,
    )


# --- helpers ------------------------------------------------------------------------------------


def _workload_names(view: ClusterView) -> list[str]:
    names = {str(d["name"]) for d, _ in view.deployments}
    names |= {str(rs["owner"]).split("/", 1)[1] for rs, _ in view.replicasets if rs.get("owner")}
    return sorted(names)


def _pod_workload(pod: Item) -> str:
    owner = str(pod.get("owner") or "")
    if owner.startswith("replicaset/"):
        return discovery.workload_of_pod(owner.split("/", 1)[1] + "-xxxxx")
    if owner.startswith(("statefulset/", "daemonset/", "deployment/")):
        return owner.split("/", 1)[1]
    return discovery.workload_of_pod(str(pod["name"]))


def _time(value: object) -> datetime | None:
    return models.parse_time(str(value)) if value else None
