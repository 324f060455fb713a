"""Kubernetes state sorted for reading: the cluster evidence's items by what each is (pods,
workloads, nodes, Services, EndpointSlices, quotas, policies, PVCs and PVs, Events) with the
id of the record each came from, and the small readers the fault finders of
``diagnose.analysis.cluster`` share. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from diagnose.domain import models

Item = Mapping[str, Any]


@dataclass
class State:
    """The cluster evidence sorted by what each item is, with the id it was read from."""

    namespace: str
    pods: list[tuple[Item, str]] = field(default_factory=list)
    workloads: list[tuple[Item, str]] = field(default_factory=list)
    nodes: list[tuple[Item, str]] = field(default_factory=list)
    services: list[tuple[Item, str]] = field(default_factory=list)
    slices: list[tuple[Item, str]] = field(default_factory=list)
    quotas: list[tuple[Item, str]] = field(default_factory=list)
    policies: list[tuple[Item, str]] = field(default_factory=list)
    pvcs: list[tuple[Item, str]] = field(default_factory=list)
    volumes: list[tuple[Item, str]] = field(default_factory=list)
    events: list[tuple[Item, str]] = field(default_factory=list)
    owners: dict[str, str] = field(default_factory=dict)  # replicaset name → workload
    envs: dict[str, tuple[Mapping[str, str], str]] = field(default_factory=dict)
    """Deployment → its containers' endpoint environment (``ports.DeploymentPayload``'s
    ``env``) and the id of the record it was read from."""

    def workload_of(self, pod: Item) -> str:
        owner = str(pod.get("owner") or "")
        kind, _, name = owner.partition("/")
        if kind == "replicaset":
            return self.owners.get(name) or name.rsplit("-", 1)[0]
        return name or str(pod["name"])


_BUCKETS = {
    "pod": "pods",
    "deployment": "workloads",
    "statefulset": "workloads",
    "node": "nodes",
    "service": "services",
    "endpointslice": "slices",
    "resourcequota": "quotas",
    "networkpolicy": "policies",
    "persistentvolumeclaim": "pvcs",
    "persistentvolume": "volumes",
}


def read_state(records: Sequence[models.Evidence], *, namespace: str) -> State:
    """Sort the usable items of the cluster evidence (state payloads, Events, ReplicaSets)."""
    state = State(namespace=namespace)
    for record in records:
        if record.status is not models.Status.OK or not isinstance(record.raw, list):
            continue
        for item in record.raw:
            if not isinstance(item, Mapping):
                continue
            bucket = _BUCKETS.get(str(item.get("resource")))
            if bucket:
                getattr(state, bucket).append((item, record.id))
            elif {"reason", "object", "message"} <= set(item):
                state.events.append((item, record.id))
            elif {"owner", "resources"} <= set(item) and item.get("owner"):
                state.owners[str(item["name"])] = str(item["owner"]).partition("/")[2]
            elif {"selector", "available"} <= set(item) and isinstance(item.get("env"), Mapping):
                state.envs[str(item["name"])] = (item["env"], record.id)
    return state


def pods_by_workload(state: State) -> dict[str, list[tuple[Item, str]]]:
    grouped: dict[str, list[tuple[Item, str]]] = {}
    for pod, rid in state.pods:
        grouped.setdefault(state.workload_of(pod), []).append((pod, rid))
    return grouped


def healthy(pod: Item) -> bool:
    statuses = [c for c in pod.get("statuses") or [] if not c.get("init")]
    return pod.get("phase") in ("Running", "Succeeded") and all(c.get("ready") for c in statuses)


def selects(selector: Mapping[str, str] | None, labels: Mapping[str, str]) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in (selector or {}).items())


def events_of(state: State, *, reason: str, pods: set[str]) -> list[tuple[Item, str]]:
    return [
        (e, rid)
        for e, rid in state.events
        if e.get("reason") == reason and str(e.get("object")).partition("/")[2] in pods
    ]


def event_ids(state: State, *, pods: set[str]) -> list[str]:
    return [
        rid
        for e, rid in state.events
        if e.get("type") == "Warning" and str(e.get("object")).partition("/")[2] in pods
    ]


def slice_ids(state: State, service: str) -> list[str]:
    return [rid for s, rid in state.slices if s.get("service") == service]


def ids(ids: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in ids if i))


def time_of(value: object) -> datetime | None:
    return models.parse_time(str(value)) if value else None
