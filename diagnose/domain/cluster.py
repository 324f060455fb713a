"""Kubernetes state: the objects whose state (not their history) can be a cause.

:class:`ClusterStateSource` reads one kind of object at a time, read-only, as evidence whose
``raw`` is a list of the payloads below. Each payload names its ``resource`` (one of
:data:`STATE_KINDS`' singulars), so the analysis tells them apart without reading a query; the
keys are chosen so that no payload is mistaken for one of ``ports``' (a pod state has no
``containers`` key, a workload state no ``available`` key).
"""

from __future__ import annotations

from typing import Protocol, TypedDict, runtime_checkable

from diagnose.domain.models import Evidence

STATE_KINDS: tuple[str, ...] = (
    "pods",
    "deployments",
    "statefulsets",
    "nodes",
    "services",
    "endpointslices",
    "resourcequotas",
    "limitranges",
    "persistentvolumeclaims",
    "persistentvolumes",
    "serviceaccounts",
    "networkpolicies",
)
"""What the state reader reads, one list call each; ``nodes`` and ``persistentvolumes`` are
cluster-wide, the rest are read in the namespace in scope."""


class PortPayload(TypedDict):
    name: str  # "" when unnamed
    port: int


class ProbePayload(TypedDict):
    port: str  # a number or a port name, as written; "" for exec probes
    path: str  # HTTP path; "" for TCP, gRPC and exec probes
    kind: str  # http | tcp | grpc | exec


class ContainerStatePayload(TypedDict):
    name: str
    init: bool
    image: str
    ready: bool
    restarts: int
    waiting_reason: str | None  # ImagePullBackOff, CrashLoopBackOff, CreateContainerConfigError…
    waiting_message: str | None
    terminated_reason: str | None  # the last termination: OOMKilled, Error, Completed…
    terminated_message: str | None
    exit_code: int | None
    terminated_at: str | None
    ports: list[PortPayload]
    probes: dict[str, ProbePayload]  # liveness | readiness | startup → the probe


class PodStatePayload(TypedDict):
    resource: str  # "pod"
    name: str
    namespace: str
    owner: str | None  # "replicaset/checkout-7d9f8"
    node: str | None
    phase: str
    created: str
    labels: dict[str, str]
    deleting: bool  # metadata.deletionTimestamp set: Terminating
    claims: list[str]  # the PersistentVolumeClaims its volumes mount
    unschedulable: str | None  # the PodScheduled condition's message when it is False
    statuses: list[ContainerStatePayload]  # init containers first


class WorkloadStatePayload(TypedDict):
    resource: str  # "deployment" | "statefulset"
    name: str
    namespace: str
    created: str
    replicas: int
    ready_replicas: int
    available_replicas: int
    template_labels: dict[str, str]
    service_account: str
    specs: list[ContainerStatePayload]  # from the pod template: ports, probes, images


class NodeStatePayload(TypedDict):
    resource: str  # "node"
    name: str
    ready: str  # "True" | "False" | "Unknown"
    ready_reason: str
    ready_message: str  # the Ready condition's message: "Kubelet stopped posting node status."
    ready_since: str | None
    labels: dict[str, str]  # topology.kubernetes.io/zone, kubernetes.io/hostname, …
    pressure: list[str]  # MemoryPressure, DiskPressure, PIDPressure, NetworkUnavailable: True
    unschedulable: bool
    taints: list[str]  # "key=value:Effect"


class AppliedServicePayload(TypedDict):
    """What ``kubectl apply`` last wrote for a Service (its last-applied annotation)."""

    selector: dict[str, str]
    ports: list[dict[str, str]]  # {"name", "port", "target_port"} as written


class ServiceStatePayload(TypedDict):
    resource: str  # "service"
    name: str
    namespace: str
    created: str
    selector: dict[str, str]
    ports: list[dict[str, str]]  # {"name", "port", "target_port"} as written
    applied: AppliedServicePayload | None  # None: no last-applied configuration


class EndpointSliceStatePayload(TypedDict):
    resource: str  # "endpointslice"
    name: str
    namespace: str
    service: str  # the kubernetes.io/service-name label
    ready: int
    not_ready: int


class QuotaStatePayload(TypedDict):
    resource: str  # "resourcequota"
    name: str
    namespace: str
    hard: dict[str, str]
    used: dict[str, str]


class NamedStatePayload(TypedDict):
    """LimitRanges and ServiceAccounts: what exists."""

    resource: str  # "limitrange" | "serviceaccount"
    name: str
    namespace: str
    created: str
    phase: str  # ""


class ClaimStatePayload(TypedDict):
    resource: str  # "persistentvolumeclaim"
    name: str
    namespace: str
    created: str
    phase: str  # Bound | Pending | Lost
    volume: str  # the PersistentVolume it is bound to (spec.volumeName); "" when none
    storage_class: str


class NodeRequirementPayload(TypedDict):
    key: str  # topology.kubernetes.io/zone, kubernetes.io/hostname, …
    operator: str  # In | NotIn | Exists | DoesNotExist | Gt | Lt
    values: list[str]


class VolumeStatePayload(TypedDict):
    resource: str  # "persistentvolume"
    name: str
    claim: str  # "namespace/name" of the claim bound to it; "" when none
    phase: str  # Available | Bound | Released | Failed
    node_affinity: list[list[NodeRequirementPayload]]  # required terms (ORed) of ANDed rules


class NetworkPolicyStatePayload(TypedDict):
    resource: str  # "networkpolicy"
    name: str
    namespace: str
    created: str
    pod_selector: dict[str, str]
    ingress_isolated: bool  # "Ingress" in policyTypes (or ingress rules given)
    ingress_from: list[dict[str, str]]  # each peer's podSelector; {"*": "*"} admits any peer


@runtime_checkable
class ClusterStateSource(Protocol):
    """A Kubernetes API, read-only: the current state of one kind of object."""

    def read_state(self, *, kind: str, namespace: str) -> Evidence:
        """``kind``: one of :data:`STATE_KINDS`. raw: a list of that kind's payload."""
        ...
