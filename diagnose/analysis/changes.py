"""Cluster evidence → the changes that could have caused an incident.

Each item of a ``kubernetes`` evidence record is recognised by its keys, not by the query text
(the payload shapes in ``diagnose.domain.ports`` have disjoint keys): ``selector`` and
``available`` make a Deployment, ``owner`` and ``resources`` a ReplicaSet, ``digest`` and
``keys`` a ConfigMap or Secret, ``containers`` and ``phase`` a Pod, ``reason`` and ``object``
an Event, ``tool`` and ``syncs`` a delivery (an Argo CD Application, a Flux Kustomization or
HelmRelease, a Helm release: ``diagnose.domain.delivery``).

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

A delivery's sync (every one but its first, and not one that re-applied the commit before it)
is a change of its own (``application/NAME@ID``, ``kustomization/NAME@COMMIT``,
``helmrelease/NAME@N``, ``helm/RELEASE@N``) unless it applied a rollout, which names it
instead (``diagnose.analysis.commits.delivered_by``): a ConfigMap/Secret edited within
:data:`SYNC_APPLIES` of it is that sync's (the edit's change names the sync in its detail and
keeps its ``configmap/NAME`` ref, which the revert fix reads), and a sync that changed neither
a pod template nor a config (only values, a Service, …) is a deploy change of each workload it
manages. Flux's own events
(the kustomize-controller's and helm-controller's ``ReconciliationSucceeded``, ``Progressing``,
``ReconciliationFailed``, ``UpgradeFailed``, …) on a Kustomization or HelmRelease are read as
what became of its sync (a failure named first in the sync's detail); a failure with no sync
of that delivery before it is a deploy change of its own (``kustomization/NAME``), in the
namespace the delivery deploys to (its events are read where it lives, ``flux-system``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
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
    deliveries: list[tuple[Item, str]] = field(default_factory=list)


_SHAPES = (
    ("deployment", frozenset({"selector", "available"})),
    ("replicaset", frozenset({"owner", "resources"})),
    ("config", frozenset({"digest", "keys"})),
    ("pod", frozenset({"containers", "phase"})),
    ("event", frozenset({"reason", "object"})),
    ("delivery", frozenset({"tool", "syncs"})),
)
"""Each payload kind and the keys that make it (disjoint across kinds)."""


def kind_of(item: Item) -> str | None:
    """deployment | replicaset | config | pod | event | delivery, from the item's keys."""
    keys = set(item)
    return next((kind for kind, needed in _SHAPES if needed <= keys), None)


_TIMELINE_KINDS = frozenset(
    {
        models.EvidenceKind.UNKNOWN,
        models.EvidenceKind.DEPLOYMENTS,
        models.EvidenceKind.REPLICASETS,
        models.EvidenceKind.CONFIGS,
        models.EvidenceKind.PODS,
        models.EvidenceKind.EVENTS,
        models.EvidenceKind.DELIVERIES,
    }
)


_PLURAL = {"delivery": "deliveries"}


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
                getattr(view, _PLURAL.get(kind, kind + "s")).append((item, record.id))
    return view


def list_changes(view: ClusterView, *, known: Sequence[str] = ()) -> list[models.Change]:
    """Every change the cluster evidence shows, oldest first. ``known`` adds workload names
    seen elsewhere (the metrics' components) for attributing ConfigMaps."""
    workloads = sorted({*_workload_names(view), *known})
    rollouts = _rollouts(view)
    synced = _syncs(view, rollouts=rollouts, edits=_config_edits(view, workloads=workloads))
    found = [
        *rollouts,
        *synced,
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
        if at is None or helm_record(item):
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


def helm_record(item: Item) -> bool:
    """Whether a Secret is one of Helm's release records (``owner=helm``,
    ``sh.helm.release.v1.NAME.vN``): its revision is the release's sync, a change of its own,
    not a config edit of a workload."""
    labels = item.get("labels") or {}
    return (
        item.get("kind") == "secret"
        and labels.get("owner") == "helm"
        and str(item.get("name") or "").startswith("sh.helm.release.v1.")
    )


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


# --- GitOps and Helm syncs -----------------------------------------------------------------------

SYNC_LEAD = timedelta(minutes=15)
"""A sync applies a rollout it precedes by at most this much (the controller's reconcile)."""
SYNC_APPLIES = timedelta(minutes=2)
"""A ConfigMap/Secret edited this close to a sync was written by it."""
_REF_KIND = {
    "argocd": "application",
    "flux-kustomization": "kustomization",
    "flux-helmrelease": "helmrelease",
    "helm": "helm",
}


def _syncs(
    view: ClusterView, *, rollouts: Sequence[models.Change], edits: Sequence[models.Change]
) -> list[models.Change]:
    """The config edits, those a sync made carrying its ref, and the syncs that changed
    neither a pod template nor a config (rule in the module docstring)."""
    tied: dict[int, models.Change] = {}
    own: list[models.Change] = []
    for item, source in view.deliveries:
        manages = _manages(item)
        timed = [(s, _time(s.get("at"))) for s in item.get("syncs") or []]
        syncs = [(s, at) for s, at in timed if at is not None]
        for (previous, _), (sync, at) in itertools.pairwise(syncs):
            if sync.get("commit") and sync.get("commit") == previous.get("commit"):
                continue
            if any(_applied(r, item, at=at, manages=manages) for r in rollouts):
                continue
            made = [
                i
                for i, e in enumerate(edits)
                if i not in tied
                and abs(e.at - at) <= SYNC_APPLIES
                and _targets(item, component=e.component, namespace=e.namespace, manages=manages)
            ]
            ref, what = _sync_ref(item, sync), _sync_detail(item, previous=previous, sync=sync)
            what += _reconciled(view, item=item, at=at)
            tied |= {
                i: replace(edits[i], detail=f"{edits[i].detail}, applied by {ref} ({what})")
                for i in made
            }
            if not made:
                own += _sync_changes(item, at=at, ref=ref, detail=what, source=source)
    return [tied.get(i, e) for i, e in enumerate(edits)] + own + _failed_syncs(view)


def _manages(item: Item) -> list[str]:
    """The Deployments a delivery lists (none: it counts for its whole target namespace)."""
    return [
        str(w).split("/", 1)[1]
        for w in item.get("workloads") or []
        if str(w).startswith("deployment/")
    ]


def _targets(item: Item, *, component: str, namespace: str, manages: Sequence[str]) -> bool:
    if manages:
        return component in manages
    return not namespace or namespace == item.get("target_namespace")


def _applied(rollout: models.Change, item: Item, *, at: datetime, manages: Sequence[str]) -> bool:
    """Whether this sync applied ``rollout`` (came at most :data:`SYNC_LEAD` before it)."""
    if rollout.kind not in (models.ChangeKind.ROLLOUT, models.ChangeKind.LIMITS):
        return False
    if not rollout.ref.startswith("deployment/"):
        return False
    close = rollout.at - SYNC_LEAD <= at <= rollout.at + SYNC_APPLIES
    return close and _targets(
        item, component=rollout.component, namespace=rollout.namespace, manages=manages
    )


def _sync_ref(item: Item, sync: Item) -> str:
    """``application/shop-orders@12``, ``kustomization/shop-orders@60c4cec1a2b3``, …"""
    kind = _REF_KIND.get(str(item.get("tool")), str(item.get("tool")))
    commit = str(sync.get("commit") or "")
    mark = commit[:12] if kind == "kustomization" and commit else str(sync.get("id") or "")
    return f"{kind}/{item.get('name')}@{mark}"


def _sync_detail(item: Item, *, previous: Item, sync: Item) -> str:
    """What a sync applied: ``argocd shop-orders synced 2c0f447 → 60c4cec``."""
    before = str(previous.get("commit") or previous.get("revision") or "?")
    after = str(sync.get("commit") or sync.get("revision") or "?")
    short = (before[:7], after[:7]) if sync.get("commit") else (before, after)
    detail = f"{item.get('tool')} {item.get('name')} synced {short[0]} → {short[1]}"
    latest = (item.get("syncs") or [{}])[-1]
    if item.get("changed_keys") and latest.get("id") == sync.get("id"):
        keys = [str(k) for k in item["changed_keys"]]
        detail += f", changing values {', '.join(keys[:8])}" + (", …" if len(keys) > 8 else "")
    return detail


_FLUX_OBJECTS = {"kustomization": "flux-kustomization", "helmrelease": "flux-helmrelease"}
_FLUX_FAILED = frozenset(
    {
        "ReconciliationFailed",
        "HealthCheckFailed",
        "BuildFailed",
        "ArtifactFailed",
        "InstallFailed",
        "UpgradeFailed",
        "TestFailed",
        "RollbackFailed",
        "UninstallFailed",
        "RemediationFailed",
    }
)
_FLUX_DONE = frozenset(
    {
        "ReconciliationSucceeded",
        "Progressing",
        "InstallSucceeded",
        "UpgradeSucceeded",
        "TestSucceeded",
        "RollbackSucceeded",
    }
)
"""Reasons of the kustomize-controller's and helm-controller's own events."""


def flux_events(view: ClusterView) -> list[tuple[Item, str, datetime]]:
    """Flux's events about its Kustomizations and HelmReleases: (event, evidence id, time)."""
    found = []
    for event, source in view.events:
        kind = str(event.get("object") or "").split("/", 1)[0]
        at = _time(event.get("last")) or _time(event.get("first"))
        reason = str(event.get("reason") or "")
        if kind in _FLUX_OBJECTS and at is not None and reason in _FLUX_FAILED | _FLUX_DONE:
            found.append((event, source, at))
    return found


def _failed(event: Item) -> bool:
    return str(event.get("reason")) in _FLUX_FAILED


def _said(event: Item) -> str:
    return f"{event.get('reason')}: {event.get('message')}"[:200]


def _reconciled(view: ClusterView, *, item: Item, at: datetime) -> str:
    """What Flux's events say of this sync (a failure first), as a clause of its detail."""
    if item.get("tool") not in _FLUX_OBJECTS.values():
        return ""
    said = [
        event
        for event, _, when in flux_events(view)
        if _names(event, item) and at - SYNC_APPLIES <= when <= at + SYNC_LEAD
    ]
    said.sort(key=lambda e: not _failed(e))
    return f"; Flux: {_said(said[0])}" if said else ""


def _synced_near(item: Item, *, at: datetime) -> bool:
    """Whether one of the delivery's syncs came at most :data:`SYNC_LEAD` before ``at``."""
    times = [_time(s.get("at")) for s in item.get("syncs") or []]
    return any(t is not None and t - SYNC_APPLIES <= at <= t + SYNC_LEAD for t in times)


def _names(event: Item, item: Item) -> bool:
    kind, _, name = str(event.get("object") or "").partition("/")
    return _FLUX_OBJECTS.get(kind) == item.get("tool") and name == item.get("name")


def _failed_syncs(view: ClusterView) -> list[models.Change]:
    """A failed reconciliation of a Kustomization or HelmRelease (Flux's event) is a change of
    the workloads it manages: part of what it applied may be live."""
    changes = []
    for event, source, at in flux_events(view):
        if not _failed(event):
            continue
        kind, _, name = str(event.get("object") or "").partition("/")
        items = [d for d, _ in view.deliveries if _names(event, d)]
        if any(_synced_near(d, at=at) for d in items):
            continue  # the sync's change (or the rollout it applied) says it
        manages = _manages(items[0]) if items else []
        # where it deploys: its events live where it does (flux-system, as a rule)
        where = items[0].get("target_namespace") if items else None
        changes += [
            models.Change(
                kind=models.ChangeKind.ROLLOUT,
                ref=f"{kind}/{name}",
                component=component,
                namespace=str(where or event.get("namespace") or ""),
                at=at,
                detail=f"Flux could not apply {kind} {name}: {_said(event)}",
                evidence=source,
            )
            for component in manages or [name]
        ]
    return changes


def _sync_changes(
    item: Item, *, at: datetime, ref: str, detail: str, source: str
) -> list[models.Change]:
    """A sync that changed no pod template and no config: a deploy change of each workload
    it manages (or of the delivery's name, when it lists none)."""
    namespace = str(item.get("target_namespace") or item.get("namespace") or "")
    return [
        models.Change(
            kind=models.ChangeKind.ROLLOUT,
            ref=ref,
            component=component,
            namespace=namespace,
            at=at,
            detail=f"{detail} (no new ReplicaSet, no ConfigMap or Secret edited)",
            evidence=source,
        )
        for component in _manages(item) or [str(item.get("name"))]
    ]


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
