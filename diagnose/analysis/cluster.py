"""Kubernetes state → findings: what an SRE reads with ``kubectl get`` and ``describe``.

Pure: it takes the cluster evidence as the connector returns it (the state payloads of
``diagnose.domain.cluster`` and the Events of ``ports.EventPayload``) and the changes already
read from it, and returns :class:`Finding` records, each a scored, checkable claim:

- **start-up**: containers waiting in ``ImagePullBackOff``/``ErrImagePull`` (image),
  ``CreateContainerConfigError``/``CreateContainerError``/``RunContainerError`` (a missing
  Secret, ConfigMap or key), ``CrashLoopBackOff`` with the last termination's reason, exit code
  and message, init containers that fail;
- **scheduling**: pods ``Pending`` because the scheduler cannot place them (insufficient
  resources, selectors or affinity, taints, volumes), read from the pod and ``FailedScheduling``;
  a claim bound to a PersistentVolume whose node affinity no schedulable node meets is the
  claim's (``persistentvolumeclaim/<name>``), read from the PV and the nodes' labels;
- **admission**: ``FailedCreate`` on a ReplicaSet or StatefulSet (a ResourceQuota or LimitRange:
  the namespace; a missing ServiceAccount or a Pod Security refusal: the workload);
- **runtime**: probes failing (and a probe's port that no container port matches), a workload
  scaled to zero that a Service still routes to;
- **routing**: a Service whose selector matches no pod and no workload, a ``targetPort`` no
  selected container exposes, a NetworkPolicy that admits nothing from the alerting service;
- **nodes**: a node not Ready or under pressure with failing pods on it: the node is the cause
  and its workloads' findings are folded into it.

A freshly created workload is never a finding by itself; a rollout of the broken workload is
named (``change``) only when it touches what broke (a new image for an image that cannot be
pulled, any template change for a crash or a failing probe). Components are workloads,
``namespace/<name>`` and ``node/<name>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TypedDict

from diagnose.analysis import clusterstate
from diagnose.domain import models

Item = clusterstate.Item

DEFINITE = 1.0
"""Severity of a finding that leaves its workload with nothing ready (or refused outright)."""
PARTIAL = 0.6
"""Severity of one that leaves some replicas serving."""

_IMAGE = frozenset({"ImagePullBackOff", "ErrImagePull", "InvalidImageName", "ErrImageNeverPull"})
_CONFIG = frozenset({"CreateContainerConfigError", "CreateContainerError", "RunContainerError"})
_CRASH = "CrashLoopBackOff"
_QUOTA = re.compile(r"exceeded quota|must specify limits|must specify requests", re.IGNORECASE)
_LIMIT_RANGE = re.compile(r"LimitRange|per Container is|per Pod is", re.IGNORECASE)
_ACCOUNT = re.compile(r"serviceaccount \"?([\w.-]+)\"? not found", re.IGNORECASE)
_POD_SECURITY = re.compile(r"violates PodSecurity", re.IGNORECASE)
_PROBE = re.compile(r"(Liveness|Readiness|Startup) probe failed", re.IGNORECASE)
_VOLUME = re.compile(r"volume|persistentvolumeclaim", re.IGNORECASE)
_SCALED_FROM = re.compile(r"to 0 from (\d+)")
"""A ScalingReplicaSet message's count before a scale to zero ("… to 0 from 3")."""
_SLOW = re.compile(r"deadline exceeded|timeout|timed out", re.IGNORECASE)
"""A probe that times out says the workload is slow (a symptom), not that the probe is wrong."""
_RECENT = timedelta(hours=2)
"""A rollout older than this before a fault is not named as its cause."""
_NOT_ANY_NODE = (
    (re.compile(r"Insufficient (cpu|memory|[\w./-]+)", re.IGNORECASE), "resource"),
    (re.compile(r"node affinity|node selector|didn't match", re.IGNORECASE), "config"),
    (re.compile(r"untolerated taint|had taint", re.IGNORECASE), "config"),
    (re.compile(r"persistentvolumeclaim|unbound|volume node affinity", re.IGNORECASE), "config"),
)


@dataclass(frozen=True)
class Finding:
    """One fault the cluster's state shows, as a hypothesis before ranking."""

    fault: str  # image-pull | config-error | crash-loop | init-failure | unschedulable |
    # quota | limit-range | service-account | pod-security | probe | scaled-to-zero |
    # selector | target-port | network-policy | node | volume-affinity
    kind: models.CauseKind
    component: str  # a workload, "namespace/<name>", "node/<name>" or
    # "persistentvolumeclaim/<name>"
    summary: str
    check: str  # the kubectl command that shows it again
    wrong_if: str  # what would prove it wrong
    severity: float  # DEFINITE or PARTIAL
    evidence: tuple[str, ...]  # ids of the records it was read from
    victims: tuple[str, ...] = ()  # workloads whose trouble it explains
    at: datetime | None = None  # when it began, as far as the state says
    change: str | None = None  # the rollout that touched what broke
    restore: Mapping[str, models.JSON] = field(default_factory=dict)
    """What the state says the object should hold again, for the fix: ``replicas`` (the count
    before a scale to zero), a Service's ``selector`` or ``port`` and ``target_port``."""

    def to_dict(self) -> dict[str, models.JSON]:
        return {
            "fault": self.fault,
            "kind": self.kind.value,
            "component": self.component,
            "summary": self.summary,
            "check": self.check,
            "wrong_if": self.wrong_if,
            "severity": self.severity,
            "evidence": list(self.evidence),
            "victims": list(self.victims),
            "at": models.format_time(self.at) if self.at else None,
            "change": self.change,
            "restore": dict(self.restore),
        }


def find_faults(
    records: Sequence[models.Evidence],
    *,
    namespace: str,
    trigger_service: str,
    changes: Sequence[models.Change] = (),
    logs: Sequence[models.Evidence] = (),
) -> list[Finding]:
    """Every fault the state shows, the explaining object's first: a node's findings absorb
    those of the workloads whose failing pods all run on it. ``logs``: the log analysis's
    derived findings (``diagnose.analysis.logs``), the only proof that a Service name a
    workload's configuration names fails to resolve."""
    state = clusterstate.read_state(records, namespace=namespace)
    found = [
        *_start_up(state),
        *_scheduling(state),
        *_volume_affinity(state),
        *_admission(state),
        *_missing_pods(state),
        *_probes(state),
        *_scaled_to_zero(state),
        *_routing(state),
        *_not_ready_endpoints(state),
        *_network_policies(state, caller=trigger_service),
        *_unresolved_services(state, logs=logs),
    ]
    found = [_with_rollout(f, changes=changes) for f in found]
    found = _fold_into_dependencies(found, state=state)
    found = _fold_into_volumes(found)
    found = _fold_into_nodes(_nodes(state), found, state=state)
    return _one_per_component(found)


# --- start-up --------------------------------------------------------------------------------


def _start_up(state: clusterstate.State) -> list[Finding]:
    out = []
    for workload, pods in clusterstate.pods_by_workload(state).items():
        broken = [
            (pod, c, rid)
            for pod, rid in pods
            for c in pod.get("statuses") or []
            if _fault_of(c) is not None
        ]
        if not broken:
            continue
        pod, container, rid = broken[0]
        fault, kind, what = _fault_of(container) or ("", models.CauseKind.DEPLOY, "")
        failing = {p["name"] for p, _, _ in broken}
        severity = DEFINITE if len(failing) >= len(pods) or _none_ready(pods) else PARTIAL
        out.append(
            Finding(
                fault=fault,
                kind=kind,
                component=workload,
                summary=f"{workload}: {what} in {len(failing)} of {len(pods)} pod(s) "
                f"(e.g. {pod['name']})",
                check=f"kubectl describe pod {pod['name']} -n {state.namespace}",
                wrong_if=f"the pods of {workload} are Running and Ready",
                severity=severity,
                evidence=clusterstate.ids([rid, *clusterstate.event_ids(state, pods=failing)]),
                at=clusterstate.time_of(container.get("terminated_at"))
                or clusterstate.time_of(pod.get("created")),
            )
        )
    return out


def _fault_of(container: Item) -> tuple[str, models.CauseKind, str] | None:
    """(fault, kind, words) of a container that cannot start or keeps crashing."""
    waiting = str(container.get("waiting_reason") or "")
    message = container.get("waiting_message") or ""
    name = f"{'init container' if container.get('init') else 'container'} {container['name']}"
    if waiting in _IMAGE:
        image = container.get("image") or "its image"
        detail = f": {message}" if message else ""
        return (
            "image-pull",
            models.CauseKind.DEPLOY,
            f"{name} cannot pull {image} ({waiting}{detail})",
        )
    if waiting in _CONFIG:
        detail = message or "no message"
        return "config-error", models.CauseKind.CONFIG, f"{name} cannot start ({waiting}: {detail})"
    ended = container.get("terminated_reason")
    code = container.get("exit_code")
    if waiting == _CRASH or (container.get("init") and code not in (None, 0)):
        last = f"last exit {ended or 'unknown'} code {code}"
        if container.get("terminated_message"):
            last += f": {container['terminated_message']}"
        fault = "init-failure" if container.get("init") else "crash-loop"
        spent = ended == "OOMKilled" or _EXHAUSTED.search(str(container.get("terminated_message")))
        kind = models.CauseKind.RESOURCE if spent else models.CauseKind.DEPLOY
        return fault, kind, f"{name} in {waiting or 'failure'} ({last})"
    return None


_EXHAUSTED = re.compile(
    r"No space left on device|disk full|out of memory|cannot allocate memory", re.IGNORECASE
)
"""A termination message that says the container's own resource ran out (its disk, its
memory); a dependency's limit (``too many clients``) is the dependency's, not this one's."""

_REFUSED = re.compile(
    r"connection refused|could not connect|ECONNREFUSED|connection reset|"
    r"the database system is (starting up|shutting down|in recovery mode)",
    re.IGNORECASE,
)
"""A termination message that says a dependency refused the connection."""


def _fold_into_dependencies(
    found: Sequence[Finding], *, state: clusterstate.State
) -> list[Finding]:
    """A start-up finding whose message says a dependency refused it, and names the Service
    of another workload that is itself failing as badly, becomes that workload's victim: the
    dependency's state explains the caller's (a database that crash-loops refuses
    connections)."""
    by_component = {f.component: f for f in found}
    hosts = _service_hosts(state)
    victims: dict[str, list[Finding]] = {}
    for finding in found:
        if finding.fault not in ("crash-loop", "init-failure") or not _REFUSED.search(
            finding.summary
        ):
            continue
        named = [
            workload
            for host, workload in hosts.items()
            if workload != finding.component
            and (culprit := by_component.get(workload)) is not None
            and culprit.severity >= finding.severity
            and re.search(rf"(?<![\w.-]){re.escape(host)}(?![\w-])", finding.summary)
        ]
        if len(set(named)) == 1:
            victims.setdefault(named[0], []).append(finding)
    folded = {v.component for vs in victims.values() for v in vs} - set(victims)
    return [
        _absorb(f, [v for v in victims.get(f.component, []) if v.component in folded])
        for f in found
        if f.component not in folded
    ]


def _absorb(culprit: Finding, victims: Sequence[Finding]) -> Finding:
    for victim in victims:
        culprit = replace(
            culprit,
            summary=f"{culprit.summary}; {victim.component} fails because it refuses its "
            f"connections: {victim.summary}",
            evidence=clusterstate.ids([*culprit.evidence, *victim.evidence]),
            victims=tuple(sorted({*culprit.victims, victim.component})),
        )
    return culprit


def _service_hosts(state: clusterstate.State) -> dict[str, str]:
    """Service name → the one workload whose pods it selects."""
    out = {}
    for service, _ in state.services:
        picked = {
            state.workload_of(p)
            for p, _ in state.pods
            if clusterstate.selects(service.get("selector") or {}, p.get("labels") or {})
        }
        if len(picked) == 1:
            out[str(service["name"])] = picked.pop()
    return out


def _none_ready(pods: Sequence[tuple[Item, str]]) -> bool:
    return not any(
        all(c.get("ready") for c in p.get("statuses") or [] if not c.get("init"))
        and p.get("statuses")
        for p, _ in pods
    )


# --- scheduling and admission -------------------------------------------------------------------


def _scheduling(state: clusterstate.State) -> list[Finding]:
    out = []
    for workload, pods in clusterstate.pods_by_workload(state).items():
        pending = [(p, rid) for p, rid in pods if p.get("unschedulable") is not None]
        if not pending:
            continue
        pod, rid = pending[0]
        names = {p["name"] for p, _ in pending}
        events = [
            e for e, _ in clusterstate.events_of(state, reason="FailedScheduling", pods=names)
        ]
        message = str(pod.get("unschedulable") or (events[0]["message"] if events else ""))
        kind = models.CauseKind.CONFIG
        for pattern, named in _NOT_ANY_NODE:
            if pattern.search(message):
                kind = models.CauseKind(named)
                break
        also = _unbound_claims(state) if _VOLUME.search(message) else ""
        out.append(
            Finding(
                fault="unschedulable",
                kind=kind,
                component=workload,
                summary=f"{workload}: {len(pending)} of {len(pods)} pod(s) Pending, the "
                f"scheduler cannot place them: {message}{also}",
                check=f"kubectl describe pod {pod['name']} -n {state.namespace}",
                wrong_if=f"the pods of {workload} are scheduled (spec.nodeName set)",
                severity=DEFINITE if len(pending) >= len(pods) else PARTIAL,
                evidence=clusterstate.ids([rid, *clusterstate.event_ids(state, pods=names)]),
                at=clusterstate.time_of(pod.get("created")),
            )
        )
    return out


def _unbound_claims(state: clusterstate.State) -> str:
    """The PVCs not bound and what their own events say (a StorageClass that does not exist,
    a provisioner that failed): the scheduler's message names neither."""
    pending = [p["name"] for p, _ in state.pvcs if p.get("phase") != "Bound"]
    if not pending:
        return ""
    said = [
        f"{e['object']}: {e.get('reason')}: {e.get('message')}"
        for e, _ in state.events
        if e.get("type") == "Warning"
        and str(e.get("object")).partition("/")[::2]
        in {("persistentvolumeclaim", n) for n in pending}
    ]
    return f"; PVC(s) not bound: {', '.join(pending)}" + (
        f" ({'; '.join(said[:3])})" if said else ""
    )


def _volume_affinity(state: clusterstate.State) -> list[Finding]:
    """Pending pods whose claim is bound to a PersistentVolume whose required node affinity no
    schedulable node meets (a zone or a node that is gone): the volume pins them nowhere."""
    out = []
    volumes = {str(v["name"]): (v, rid) for v, rid in state.volumes}
    schedulable = [
        n for n, _ in state.nodes if n.get("ready") == "True" and not n.get("unschedulable")
    ]
    for claim, claim_id in state.pvcs:
        if claim.get("phase") != "Bound" or str(claim.get("volume")) not in volumes:
            continue
        volume, volume_id = volumes[str(claim["volume"])]
        terms = volume.get("node_affinity") or []
        if not terms or any(_meets(n.get("labels") or {}, terms) for n in schedulable):
            continue
        waiting = [
            (p, rid)
            for p, rid in state.pods
            if claim["name"] in (p.get("claims") or []) and not p.get("node")
        ]
        if not waiting:
            continue
        out.append(
            _volume_finding(
                claim,
                volume,
                waiting=waiting,
                ids=[volume_id, claim_id],
                nodes=schedulable,
                state=state,
            )
        )
    return out


def _volume_finding(
    claim: Item,
    volume: Item,
    *,
    waiting: Sequence[tuple[Item, str]],
    ids: Sequence[str],
    nodes: Sequence[Item],
    state: clusterstate.State,
) -> Finding:
    name, pv = str(claim["name"]), str(volume["name"])
    wants = " or ".join(
        " and ".join(f"{r['key']} {r['operator']} ({', '.join(r['values'])})" for r in term)
        for term in volume["node_affinity"]
    )
    keys = sorted({str(r["key"]) for term in volume["node_affinity"] for r in term})
    have = "; ".join(
        f"{n['name']}: " + ", ".join(f"{k}={(n.get('labels') or {}).get(k, '-')}" for k in keys)
        for n in nodes
    )
    names = {str(p["name"]) for p, _ in waiting}
    victims = tuple(sorted({state.workload_of(p) for p, _ in waiting}))
    return Finding(
        fault="volume-affinity",
        kind=models.CauseKind.CONFIG,
        component=f"persistentvolumeclaim/{name}",
        summary=f"claim {name} is bound to PersistentVolume {pv}, whose node affinity "
        f"requires {wants}; no schedulable node meets it ({have or 'none schedulable'}), so "
        f"{len(waiting)} pod(s) of {', '.join(victims)} stay Pending: the volume, not the "
        "workload, is what cannot be placed",
        check=f"kubectl get pv {pv} -o jsonpath='{{.spec.nodeAffinity}}' && kubectl get nodes "
        + " ".join(f"-L {k}" for k in keys),
        wrong_if=f"a Ready, schedulable node carries the labels PersistentVolume {pv} requires",
        severity=DEFINITE,
        evidence=clusterstate.ids(
            [*ids, *(r for _, r in waiting), *clusterstate.event_ids(state, pods=names)]
        ),
        victims=victims,
        at=clusterstate.time_of(waiting[0][0].get("created")),
    )


def _meets(labels: Mapping[str, str], terms: Sequence[Sequence[Item]]) -> bool:
    """Whether node labels meet a required node affinity: any term, every rule of it."""
    return any(all(_rule(labels, r) for r in term) for term in terms)


def _rule(labels: Mapping[str, str], rule: Item) -> bool:
    key, operator, values = str(rule["key"]), str(rule["operator"]), list(rule["values"])
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    number = labels.get(key, "")
    if operator in ("Gt", "Lt") and number.lstrip("-").isdigit() and values:
        return int(number) > int(values[0]) if operator == "Gt" else int(number) < int(values[0])
    return False


def _fold_into_volumes(found: Sequence[Finding]) -> list[Finding]:
    """A workload's unschedulable finding whose pods a volume pins nowhere joins the volume's
    finding (its evidence kept): the scheduler's message names the symptom, the volume the
    cause."""
    volumes = [f for f in found if f.fault == "volume-affinity"]
    folded = {
        id(f): f
        for f in found
        if f.fault == "unschedulable" and any(f.component in v.victims for v in volumes)
    }
    out = []
    for finding in found:
        if id(finding) in folded:
            continue
        extra = [
            e
            for f in folded.values()
            if finding.fault == "volume-affinity" and f.component in finding.victims
            for e in f.evidence
        ]
        out.append(replace(finding, evidence=clusterstate.ids([*finding.evidence, *extra])))
    return out


def _missing_pods(state: clusterstate.State) -> list[Finding]:
    """A Deployment or StatefulSet short of replicas with no pod at all and no refusal left to
    say why (Events expire after an hour): its controller's conditions say it."""
    if not state.pods:
        return []  # pods were not read (or none exist anywhere): nothing to compare
    refused = {
        str(e["object"]).partition("/")[2]
        for e, _ in state.events
        if e.get("reason") == "FailedCreate"
    }
    out = []
    for workload, rid in state.workloads:
        name, wanted = str(workload["name"]), int(workload.get("replicas", 1))
        labels = workload.get("template_labels") or {}
        if wanted <= 0 or int(workload.get("available_replicas", 0)) >= wanted:
            continue
        if any(
            clusterstate.selects(labels, p.get("labels") or {}) or state.workload_of(p) == name
            for p, _ in state.pods
        ):
            continue
        if any(r == name or r.rsplit("-", 1)[0] == name for r in refused):
            continue  # the refusal is the finding (_admission)
        kind = str(workload["resource"])
        out.append(
            Finding(
                fault="no-pods",
                kind=models.CauseKind.CONFIG,
                component=name,
                summary=f"{kind} {name} wants {wanted} replica(s), "
                f"{workload.get('available_replicas', 0)} available, and no pod of it exists; "
                "no event is left to say why (an admission webhook, a policy or a quota "
                "refusal whose events expired, or a stalled controller)",
                check=f"kubectl describe {kind} {name} -n {state.namespace} && kubectl get "
                f"replicasets -n {state.namespace} -o wide",
                wrong_if=f"pods of {name} exist",
                severity=DEFINITE,
                evidence=(rid,),
            )
        )
    return out


def _admission(state: clusterstate.State) -> list[Finding]:
    """``FailedCreate`` on a workload's ReplicaSet or StatefulSet: the namespace's policy, or
    the workload's own spec."""
    out = []
    for event, rid in state.events:
        kind, _, name = str(event["object"]).partition("/")
        if event.get("reason") != "FailedCreate" or kind not in ("replicaset", "statefulset"):
            continue
        workload = state.owners.get(name) or (
            name if kind == "statefulset" else name.rsplit("-", 1)[0]
        )
        out.append(_refusal(event, rid=rid, workload=workload, state=state))
    return out


def _refusal(event: Item, *, rid: str, workload: str, state: clusterstate.State) -> Finding:
    message = str(event.get("message") or "")
    ns = state.namespace
    at = clusterstate.time_of(event.get("first"))
    if _QUOTA.search(message) or _LIMIT_RANGE.search(message):
        quota = _QUOTA.search(message) is not None
        ids = [rid, *(q for _, q in state.quotas)]
        return Finding(
            fault="quota" if quota else "limit-range",
            kind=models.CauseKind.RESOURCE,
            component=f"namespace/{ns}",
            summary=f"namespace {ns}'s {'ResourceQuota' if quota else 'LimitRange'} refuses "
            f"{workload}'s pods ({event.get('count', 1)}× FailedCreate): {message}"
            + _quota_use(state),
            check=f"kubectl describe {'resourcequota' if quota else 'limitrange'} -n {ns}",
            wrong_if=f"{workload}'s ReplicaSet creates its pods (no FailedCreate since)",
            severity=DEFINITE,
            evidence=clusterstate.ids(ids),
            victims=(workload,),
            at=at,
        )
    account = _ACCOUNT.search(message)
    fault, what = ("pod-security", "Pod Security admission refuses its pods")
    if account:
        fault, what = "service-account", f"its ServiceAccount {account[1]} does not exist"
    elif not _POD_SECURITY.search(message):
        fault, what = "admission", "the API server refuses its pods"
    return Finding(
        fault=fault,
        kind=models.CauseKind.CONFIG,
        component=workload,
        summary=f"{workload}: {what} ({event.get('count', 1)}× FailedCreate): {message}",
        check=f"kubectl get events -n {ns} --field-selector reason=FailedCreate",
        wrong_if=f"{workload}'s ReplicaSet creates its pods (no FailedCreate since)",
        severity=DEFINITE,
        evidence=(rid,),
        at=at,
    )


def _quota_use(state: clusterstate.State) -> str:
    full = [
        f"{q['name']} {k} {q['used'].get(k)}/{v}"
        for q, _ in state.quotas
        for k, v in (q.get("hard") or {}).items()
        if str((q.get("used") or {}).get(k)) == str(v)
    ]
    return f" (at its limit: {', '.join(full)})" if full else ""


# --- runtime --------------------------------------------------------------------------------------


def _probes(state: clusterstate.State) -> list[Finding]:
    out = []
    for workload, pods in clusterstate.pods_by_workload(state).items():
        names = {p["name"] for p, _ in pods}
        failing = [
            (e, rid) for e, rid in clusterstate.events_of(state, reason="Unhealthy", pods=names)
        ]
        failing = [
            (e, rid)
            for e, rid in failing
            if _PROBE.search(str(e.get("message"))) and not _SLOW.search(str(e.get("message")))
        ]
        mismatch = _probe_port_mismatch(pods)
        if not failing and not mismatch:
            continue
        event = failing[0][0] if failing else None
        what = mismatch or f"{_PROBE.search(str(event['message']))[0]}"  # type: ignore[index]
        if event is not None:
            what += f" ({event.get('count', 1)}×: {event['message']})"
        severity = DEFINITE if _none_ready(pods) else PARTIAL
        out.append(
            Finding(
                fault="probe",
                kind=models.CauseKind.CONFIG,
                component=workload,
                summary=f"{workload}: {what}",
                check=f"kubectl describe pod {pods[0][0]['name']} -n {state.namespace}",
                wrong_if=f"the probes of {workload} succeed (no Unhealthy events, pods Ready)",
                severity=severity if mismatch or failing else PARTIAL,
                evidence=clusterstate.ids([pods[0][1], *(rid for _, rid in failing)]),
                at=clusterstate.time_of(event.get("first")) if event else None,
            )
        )
    return out


def _probe_port_mismatch(pods: Sequence[tuple[Item, str]]) -> str:
    """A probe whose port no container port matches (by number or name)."""
    for pod, _ in pods[:1]:
        for container in pod.get("statuses") or []:
            ports = container.get("ports") or []
            if not ports:
                continue
            numbers = {str(p["port"]) for p in ports}
            names = {str(p["name"]) for p in ports if p.get("name")}
            for part, probe in sorted((container.get("probes") or {}).items()):
                port = str(probe.get("port") or "")
                if port and port not in numbers and port not in names:
                    return (
                        f"{part} probe of container {container['name']} checks port {port}, "
                        f"which it does not expose (ports {', '.join(sorted(numbers))})"
                    )
    return ""


def _scaled_to_zero(state: clusterstate.State) -> list[Finding]:
    out = []
    for workload, rid in state.workloads:
        if int(workload.get("replicas", 1)) != 0:
            continue
        labels = workload.get("template_labels") or {}
        routed = [s for s, _ in state.services if clusterstate.selects(s.get("selector"), labels)]
        if not routed:
            continue
        name = str(workload["name"])
        scaled = [
            (e, r)
            for e, r in state.events
            if e.get("reason") == "ScalingReplicaSet" and name in str(e.get("object"))
        ]
        out.append(
            Finding(
                fault="scaled-to-zero",
                kind=models.CauseKind.RESOURCE,
                component=name,
                summary=f"{workload['resource']} {name} is scaled to 0 replicas while service "
                f"{routed[0]['name']} routes to it: nothing serves it",
                check=f"kubectl get {workload['resource']} {name} -n {state.namespace}",
                wrong_if=f"{name} has ready replicas",
                severity=DEFINITE,
                evidence=clusterstate.ids([rid, *(r for _, r in scaled)]),
                at=clusterstate.time_of(scaled[-1][0].get("last")) if scaled else None,
                restore=_replicas_before(scaled),
            )
        )
    return out


def _replicas_before(scaled: Sequence[tuple[Item, str]]) -> dict[str, models.JSON]:
    """The replica count before the latest scale to zero, when its event says (else one)."""
    for event, _ in reversed(scaled):
        found = _SCALED_FROM.search(str(event.get("message") or ""))
        if found and int(found[1]) > 0:
            return {"replicas": int(found[1])}
    return {"replicas": 1}


# --- routing --------------------------------------------------------------------------------------


def _routing(state: clusterstate.State) -> list[Finding]:
    out = []
    for service, rid in state.services:
        selector = service.get("selector") or {}
        if not selector:
            continue
        pods = [
            (p, r) for p, r in state.pods if clusterstate.selects(selector, p.get("labels") or {})
        ]
        targets = [
            w for w, _ in state.workloads if clusterstate.selects(selector, w["template_labels"])
        ]
        name = str(service["name"])
        owner = _owner_of_service(service, state=state)
        if not pods and not targets:
            shown = ",".join(f"{k}={v}" for k, v in sorted(selector.items()))
            restore = _selector_of(owner, service=service, state=state)
            out.append(
                Finding(
                    fault="selector",
                    kind=models.CauseKind.CONFIG,
                    component=owner,
                    summary=f"service {name}'s selector {shown} matches no pod and no "
                    f"workload: it has no endpoints{_applied_words(restore)}",
                    check=f"kubectl get endpointslices -n {state.namespace} "
                    f"-l kubernetes.io/service-name={name}",
                    wrong_if=f"service {name}'s EndpointSlices list ready endpoints",
                    severity=DEFINITE,
                    evidence=clusterstate.ids([rid, *clusterstate.slice_ids(state, name)]),
                    restore=_for_service(name, restore),
                )
            )
            continue
        wrong, restore = _unexposed_target(service, pods=pods)
        if wrong:
            out.append(
                Finding(
                    fault="target-port",
                    kind=models.CauseKind.CONFIG,
                    component=owner,
                    summary=f"service {name}: {wrong}{_applied_words(restore)}",
                    check=f"kubectl get service {name} -n {state.namespace} -o yaml",
                    wrong_if=f"a container selected by service {name} listens on its targetPort",
                    severity=DEFINITE,
                    evidence=clusterstate.ids([rid, pods[0][1]]),
                    restore=_for_service(name, restore),
                )
            )
    return out


class Restore(TypedDict, total=False):
    """What a fix would set a Service back to: its selector, or one port's targetPort."""

    service: str
    selector: dict[str, str]
    port: int
    target_port: int
    source: str  # where the value comes from: LAST_APPLIED or TEMPLATE


LAST_APPLIED = "the Service's last-applied configuration"
TEMPLATE = "the workload's pod template (nothing earlier is known: no last-applied configuration)"


def _for_service(name: str, restore: Restore) -> Restore:
    if not restore:
        return {}
    named: Restore = {"service": name}
    named.update(restore)
    return named


def _selector_of(owner: str, *, service: Item, state: clusterstate.State) -> Restore:
    """The selector to set back: the one ``kubectl apply`` last wrote when it differs and
    picks pods or a workload; else the same keys with the values ``owner``'s pod template
    carries; nothing when the template lacks a key (a human chooses)."""
    selector: Mapping[str, str] = service.get("selector") or {}
    applied = (service.get("applied") or {}).get("selector") or {}
    if applied and applied != selector and _picks(applied, state=state):
        return {"selector": dict(sorted(applied.items())), "source": LAST_APPLIED}
    labels = next(
        (w.get("template_labels") or {} for w, _ in state.workloads if w["name"] == owner), {}
    )
    if not labels or not all(k in labels for k in selector):
        return {}
    return {"selector": {k: str(labels[k]) for k in sorted(selector)}, "source": TEMPLATE}


def _picks(selector: Mapping[str, str], *, state: clusterstate.State) -> bool:
    return any(clusterstate.selects(selector, p.get("labels") or {}) for p, _ in state.pods) or any(
        clusterstate.selects(selector, w.get("template_labels") or {}) for w, _ in state.workloads
    )


def _applied_words(restore: Restore) -> str:
    if restore.get("source") != LAST_APPLIED:
        return ""
    if "selector" in restore:
        shown = ",".join(f"{k}={v}" for k, v in sorted(restore["selector"].items()))
        return f"; its last-applied configuration selects {shown}"
    return (
        f"; its last-applied configuration targets port {restore.get('target_port')} "
        f"on port {restore.get('port')}"
    )


def _not_ready_endpoints(state: clusterstate.State) -> list[Finding]:
    """A Service whose EndpointSlices list endpoints but none ready: its pods exist and fail
    readiness. Definite when its workload's pods read not ready too (nothing of it serves);
    partial on the slices' word alone. The reason is the pods', which other findings may
    name."""
    out = []
    pods = clusterstate.pods_by_workload(state)
    for service, rid in state.services:
        name = str(service["name"])
        slices = [(s, r) for s, r in state.slices if s.get("service") == name]
        ready = sum(int(s.get("ready") or 0) for s, _ in slices)
        waiting = sum(int(s.get("not_ready") or 0) for s, _ in slices)
        if not slices or ready or not waiting:
            continue
        owner = _owner_of_service(service, state=state)
        confirmed = bool(pods.get(owner)) and _none_ready(pods[owner])
        out.append(
            Finding(
                fault="not-ready",
                kind=models.CauseKind.CONFIG,
                component=owner,
                summary=f"service {name} has {waiting} endpoint(s), none ready: its pods "
                "fail readiness, so it routes nowhere",
                check=f"kubectl get endpointslices -n {state.namespace} "
                f"-l kubernetes.io/service-name={name} -o wide",
                wrong_if=f"service {name}'s EndpointSlices list ready endpoints",
                severity=DEFINITE if confirmed else PARTIAL,
                evidence=clusterstate.ids(
                    [rid, *(r for _, r in slices), *(r for _, r in pods.get(owner, []))]
                ),
            )
        )
    return out


def _unexposed_target(service: Item, *, pods: Sequence[tuple[Item, str]]) -> tuple[str, Restore]:
    """What is wrong with a targetPort, and what to restore it to: the targetPort ``kubectl
    apply`` last wrote when the containers expose it (or declare nothing), else the one port
    the containers expose (none when they expose several: a human chooses)."""
    ports = [p for pod, _ in pods[:1] for c in pod.get("statuses") or [] for p in c["ports"]]
    if not ports:
        wrong = _unresolved_name(service)  # a number may be served undeclared; a name not
        return wrong, _applied_target(service, exposed=None) if wrong else {}
    numbers = {str(p["port"]) for p in ports}
    names = {str(p["name"]) for p in ports if p.get("name")}
    for port in service.get("ports") or []:
        target = str(port.get("target_port") or "")
        if target and target not in numbers and target not in names:
            wrong = (
                f"targetPort {target} (port {port.get('port')}) is exposed by no selected "
                f"container (they expose {', '.join(sorted(numbers | names))})"
            )
            applied = _applied_target(service, exposed=numbers)
            if applied:
                return wrong, applied
            only: Restore = {
                "port": int(port["port"]),
                "target_port": int(next(iter(numbers))),
                "source": TEMPLATE,
            }
            return wrong, only if len(numbers) == 1 and str(port.get("port")).isdigit() else {}
    return "", {}


def _applied_target(service: Item, *, exposed: set[str] | None) -> Restore:
    """The numeric targetPort ``kubectl apply`` last wrote for a port whose targetPort has
    changed since, when a selected container exposes it (``exposed``; None: they declare no
    ports, so a number may be served undeclared)."""
    now = {str(p.get("port")): str(p.get("target_port")) for p in service.get("ports") or []}
    for port in (service.get("applied") or {}).get("ports") or []:
        number, target = str(port.get("port")), str(port.get("target_port"))
        if not (number.isdigit() and target.isdigit()) or now.get(number) in (None, target):
            continue
        if exposed is None or target in exposed:
            return {"port": int(number), "target_port": int(target), "source": LAST_APPLIED}
    return {}


def _unresolved_name(service: Item) -> str:
    """A targetPort given by name resolves only to a container port declared with that name."""
    for port in service.get("ports") or []:
        target = str(port.get("target_port") or "")
        if target and not target.isdigit():
            return (
                f"targetPort {target} (port {port.get('port')}) names no container port: the "
                "selected containers declare none, so the name resolves to nothing"
            )
    return ""


def _owner_of_service(service: Item, *, state: clusterstate.State) -> str:
    """The workload a Service fronts: the one of its name, else the one its selector names."""
    name = str(service["name"])
    known = {str(w["name"]) for w, _ in state.workloads} | set(clusterstate.pods_by_workload(state))
    if name in known:
        return name
    for value in (service.get("selector") or {}).values():
        if value in known:
            return str(value)
    return name


def _network_policies(state: clusterstate.State, *, caller: str) -> list[Finding]:
    """A policy isolating a workload's pods that admits no pod of the alerting service."""
    callers = [p for p, _ in state.pods if state.workload_of(p) == caller]
    if not callers:
        return []
    labels = callers[0].get("labels") or {}
    out = []
    for policy, rid in state.policies:
        if not policy.get("ingress_isolated"):
            continue
        peers = policy.get("ingress_from") or []
        if any(p == {"*": "*"} or clusterstate.selects(p, labels) for p in peers):
            continue
        isolated = sorted(
            {
                state.workload_of(p)
                for p, _ in state.pods
                if clusterstate.selects(policy.get("pod_selector") or {}, p.get("labels") or {})
            }
            - {caller}
        )
        for workload in isolated:
            calls = _calls(state, caller=caller, callee=workload)
            out.append(
                Finding(
                    fault="network-policy",
                    kind=models.CauseKind.CONFIG,
                    component=workload,
                    summary=f"NetworkPolicy {policy['name']} isolates {workload}'s pods and "
                    f"admits no pod of {caller}"
                    + (f", whose {calls[0]} calls {workload}" if calls else ""),
                    check=f"kubectl describe networkpolicy {policy['name']} -n {state.namespace}",
                    wrong_if=f"a pod of {caller} reaches {workload} (the policy admits it)",
                    severity=DEFINITE if calls else PARTIAL,
                    evidence=clusterstate.ids([rid, *([calls[1]] if calls else [])]),
                    at=clusterstate.time_of(policy.get("created")),
                )
            )
    return out


def _calls(state: clusterstate.State, *, caller: str, callee: str) -> tuple[str, str] | None:
    """(variable, record id) of the caller's endpoint variable that names a Service of the
    callee's pods: then every call the caller makes to it is shut out, not some."""
    env, rid = state.envs.get(caller, ({}, ""))
    hosts = _service_hosts(state)
    for variable, value in sorted(env.items()):
        host = _service_named(str(value), namespace=state.namespace)
        if host and hosts.get(host) == callee:
            return variable, rid
    return None


_UNRESOLVED = re.compile(
    r"UnknownHostException|no such host|Name or service not known|getaddrinfo ENOTFOUND|"
    r"could not translate host name|Temporary failure in name resolution|NXDOMAIN",
    re.IGNORECASE,
)
"""A log line saying a host name did not resolve (Java, Go, glibc, Node.js, libpq, DNS)."""
_SERVICE_HOST = re.compile(
    r"^(?:[a-z][a-z0-9+.-]*://)?(?:[^@/]*@)?([a-z0-9](?:[a-z0-9-]*[a-z0-9])?)"
    r"(?:\.([a-z0-9-]+)(?:\.svc(?:\.cluster\.local)?)?)?(?::\d+)?(?:[/?#].*)?$"
)
"""An endpoint value that names a Service: ``cart``, ``http://cart:8080/x``,
``cart.shop.svc.cluster.local:80`` (the Service, and its namespace when given)."""


def _unresolved_services(
    state: clusterstate.State, *, logs: Sequence[models.Evidence]
) -> list[Finding]:
    """A workload whose endpoint variable names a Service the namespace lacks, and whose own
    logs fail to resolve that very name (new or risen error lines). Without such lines a
    missing name proves nothing: a search path or an external resolver may serve it."""
    services = {str(s["name"]) for s, _ in state.services}
    if not state.services:
        return []  # Services were not read: nothing says the name is missing
    out = []
    for workload, (env, rid) in sorted(state.envs.items()):
        for variable, value in sorted(env.items()):
            host = _service_named(str(value), namespace=state.namespace)
            if not host or host in services:
                continue
            failing = _failing_lookups(logs, service=workload, host=host)
            if not failing:
                continue
            out.append(
                _unresolved(
                    workload,
                    variable=variable,
                    value=str(value),
                    host=host,
                    rid=rid,
                    failing=failing,
                    state=state,
                )
            )
    return out


def _service_named(value: str, *, namespace: str) -> str:
    """The Service an endpoint value names in ``namespace``; "" for anything else (an
    external host, an IP, another namespace)."""
    found = _SERVICE_HOST.match(value.strip().lower())
    if not found or found[1].isdigit():
        return ""
    if found[2] and found[2] != namespace:
        return ""
    return found[1]


def _failing_lookups(logs: Sequence[models.Evidence], *, service: str, host: str) -> list[Item]:
    """The log findings of ``service`` (new or risen) whose lines fail to resolve ``host``."""
    named = re.compile(rf"(?<![\w.-]){re.escape(host)}(?![\w-])", re.IGNORECASE)
    out: list[Item] = []
    for record in logs:
        raw = record.raw
        if not isinstance(raw, Mapping) or raw.get("service") != service:
            continue
        if raw.get("change") not in ("new", "rose"):
            continue
        lines = [str(x) for x in raw.get("examples") or []] or [str(raw.get("template"))]
        if any(_UNRESOLVED.search(line) and named.search(line) for line in lines):
            out.append({**raw, "id": record.id})
    return out


def _unresolved(
    workload: str,
    *,
    variable: str,
    value: str,
    host: str,
    rid: str,
    failing: Sequence[Item],
    state: clusterstate.State,
) -> Finding:
    lines = sum(int(f.get("incident") or 0) for f in failing)
    example = str((failing[0].get("examples") or [failing[0].get("template")])[0])[:200]
    new = any(f.get("change") == "new" for f in failing)
    return Finding(
        fault="unresolved-service",
        kind=models.CauseKind.CONFIG,
        component=workload,
        summary=f"{workload}'s {variable}={value} names service {host}, which namespace "
        f"{state.namespace} does not have, and {workload}'s logs fail to resolve it "
        f"({lines} line(s) {'since the incident' if new else 'more than before'}, e.g. "
        f"«{example}»)",
        check=f"kubectl get service {host} -n {state.namespace}",
        wrong_if=f"service {host} exists in {state.namespace}, or {workload}'s calls to it "
        "resolve (no such log line since)",
        severity=DEFINITE if new else PARTIAL,
        evidence=clusterstate.ids(
            [rid, *(str(f["id"]) for f in failing), *(r for _, r in state.services[:1])]
        ),
        at=clusterstate.time_of(min(str(f.get("first")) for f in failing)),
    )


# --- nodes ---------------------------------------------------------------------------------------


def _nodes(state: clusterstate.State) -> list[Finding]:
    out = []
    for node, rid in state.nodes:
        ready = node.get("ready") == "True"
        trouble = [] if ready else [f"Ready={node.get('ready')}"]
        trouble += list(node.get("pressure") or [])
        if not trouble:
            continue
        name = str(node["name"])
        reported = _node_not_ready_events(state, node=name)
        hosted = [(p, r) for p, r in state.pods if p.get("node") == name]
        failing = [(p, r) for p, r in hosted if _stranded(p, reported={e["pod"] for e in reported})]
        if not failing:
            continue
        victims = tuple(sorted({state.workload_of(p) for p, _ in failing}))
        words = f"Ready but under {', '.join(trouble)}" if ready else ", ".join(trouble)
        out.append(
            Finding(
                fault="node",
                kind=models.CauseKind.RESOURCE,
                component=f"node/{name}",
                summary=f"node {name} is {words}{'' if ready else _said(node)}"
                f"{_stopped(node)}; {len(failing)} of its {len(hosted)} pod(s) in this "
                f"namespace fail ({', '.join(victims)}){_terminating(failing)}"
                + (f"; NodeNotReady reported on {len(reported)} pod(s)" if reported else ""),
                check=f"kubectl describe node {name} && kubectl get pods -A -o wide "
                f"--field-selector spec.nodeName={name}",
                wrong_if=f"node {name} is Ready without pressure and its pods run elsewhere "
                "fail alike",
                severity=DEFINITE
                if node.get("ready") != "True" or len(failing) == len(hosted)
                else PARTIAL,
                evidence=clusterstate.ids(
                    [rid, *(r for _, r in failing), *(e["id"] for e in reported)]
                ),
                victims=victims,
                at=clusterstate.time_of(node.get("ready_since")),
            )
        )
    return out


_RUNTIME = re.compile(
    r"container runtime (is down|not ready|status check)|PLEG is not healthy|"
    r"runtime network not ready|NetworkPluginNotReady|ContainerRuntimeNotReady",
    re.IGNORECASE,
)
"""A Ready=False message that names the container runtime (containerd, CRI-O) as down."""


def _said(node: Item) -> str:
    """The Ready condition's reason and message, as the node controller or kubelet wrote it."""
    said = [str(node[k]) for k in ("ready_reason", "ready_message") if node.get(k)]
    return f" ({': '.join(said)})" if said else ""


def _stopped(node: Item) -> str:
    """What stopped on the node, when its Ready condition says: the kubelet or the runtime."""
    if node.get("ready") == "Unknown" or node.get("ready_reason") == "NodeStatusUnknown":
        return ": its kubelet stopped posting node status (kubelet, or the node, down)"
    if node.get("ready") == "False" and _RUNTIME.search(
        f"{node.get('ready_reason')} {node.get('ready_message')}"
    ):
        return ": its container runtime is down (the kubelet reports it)"
    return ""


class _Report(TypedDict):
    pod: str
    id: str


def _node_not_ready_events(state: clusterstate.State, *, node: str) -> list[_Report]:
    """The pods on ``node`` that a ``NodeNotReady`` event names."""
    on = {str(p["name"]) for p, _ in state.pods if p.get("node") == node}
    return [
        {"pod": pod, "id": rid}
        for e, rid in state.events
        if e.get("reason") == "NodeNotReady"
        and (pod := str(e.get("object")).partition("/")[2]) in on
    ]


def _stranded(pod: Item, *, reported: set[str]) -> bool:
    """A pod the node's trouble reaches: not Ready, Terminating, phase Unknown, or named by a
    NodeNotReady event."""
    return (
        not clusterstate.healthy(pod)
        or bool(pod.get("deleting"))
        or pod.get("phase") == "Unknown"
        or pod["name"] in reported
    )


def _terminating(failing: Sequence[tuple[Item, str]]) -> str:
    stuck = [p for p, _ in failing if p.get("deleting") or p.get("phase") == "Unknown"]
    return f", {len(stuck)} stuck Terminating or Unknown" if stuck else ""


def _fold_into_nodes(
    nodes: Sequence[Finding], found: Sequence[Finding], *, state: clusterstate.State
) -> list[Finding]:
    """Workload findings whose failing pods all run on a troubled node become its victims."""
    if not nodes:
        return list(found)
    on_node: dict[str, set[str]] = {}
    for pod, _ in state.pods:
        if not clusterstate.healthy(pod) and pod.get("node"):
            on_node.setdefault(state.workload_of(pod), set()).add(f"node/{pod['node']}")
    troubled = {n.component for n in nodes}
    kept = [f for f in found if f.component not in on_node or not on_node[f.component] <= troubled]
    return [*nodes, *kept]


# --- shared readers ------------------------------------------------------------------------------


def _with_rollout(finding: Finding, *, changes: Sequence[models.Change]) -> Finding:
    """Name the latest rollout of the broken workload when it touches what broke: its images
    for an image that cannot be pulled, its template for a crash, a probe or a start-up error.
    Then the fault is the rollout's (``deploy``), unless it is a quota or a node's."""
    if finding.fault in ("quota", "limit-range", "node", "scaled-to-zero", "network-policy"):
        return finding
    rollouts = [
        c
        for c in changes
        if c.kind in (models.ChangeKind.ROLLOUT, models.ChangeKind.LIMITS)
        and c.component == finding.component
        and finding.at is not None
        and finding.at - _RECENT <= c.at <= finding.at
        and "→" in c.detail  # a difference from the revision before; the first is a creation
    ]
    if finding.fault == "image-pull":
        rollouts = [c for c in rollouts if "image" in c.detail]
    if not rollouts:
        return finding
    latest = max(rollouts, key=lambda c: c.at)
    kind = models.CauseKind.RESOURCE if latest.kind is models.ChangeKind.LIMITS else None
    if finding.kind is models.CauseKind.RESOURCE and "last exit OOMKilled" in finding.summary:
        kind = models.CauseKind.RESOURCE  # OOMKilled: the limits, whoever set them
    return replace(
        finding,
        kind=kind or models.CauseKind.DEPLOY,
        change=latest.ref,
        summary=f"{finding.summary}; rollout {latest.ref} ({latest.detail}) came before it",
        at=finding.at or latest.at,
    )


def _one_per_component(found: Sequence[Finding]) -> list[Finding]:
    """The most severe finding of each component, the others' words appended to it."""
    best: dict[str, Finding] = {}
    for finding in found:
        held = best.get(finding.component)
        if held is None:
            best[finding.component] = finding
            continue
        first, second = (held, finding) if held.severity >= finding.severity else (finding, held)
        best[finding.component] = replace(
            first,
            summary=f"{first.summary}; also: {second.summary}",
            evidence=clusterstate.ids([*first.evidence, *second.evidence]),
            victims=tuple(sorted({*first.victims, *second.victims})),
        )
    return sorted(best.values(), key=lambda f: (-f.severity, _order(f.fault), f.component))


_ORDER = (
    "node",
    "volume-affinity",
    "quota",
    "limit-range",
    "scaled-to-zero",
    "selector",
    "target-port",
)


def _order(fault: str) -> int:
    """Among equally severe findings, the object whose state explains others first."""
    return _ORDER.index(fault) if fault in _ORDER else len(_ORDER)
