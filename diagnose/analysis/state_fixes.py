"""Fixes for what the cluster's state shows (``diagnose.analysis.cluster`` findings).

A workload scaled to zero is scaled back to the count it had; a Service whose selector or
targetPort picks nothing gets back the value ``kubectl apply`` last wrote (its last-applied
configuration) or, when nothing earlier is known, the values its workload's pods carry, and
says which. A quota, a
LimitRange, RBAC, a policy or a missing Secret stay with a human: the proposal points at the
object and says so. A node's cordon and drain is proposed with its blast radius and never
carried out. Rollouts that touched what broke are rolled back by ``fixing`` as any other.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from diagnose.domain import fixes, models

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_TEMPLATE = "the workload's pod template"

HUMAN_ONLY = {
    "quota": "a human raises the ResourceQuota or frees room in it; the agent never changes quotas",
    "limit-range": "a human changes the LimitRange or the workload's requests; the agent never "
    "changes LimitRanges",
    "service-account": "a human creates the ServiceAccount (and its RBAC) or points the "
    "workload at an existing one; the agent never changes RBAC",
    "pod-security": "a human changes the workload's securityContext or the namespace's Pod "
    "Security level; the agent never changes policies",
    "admission": "a human reads the API server's refusal and fixes the workload or the policy",
    "network-policy": "a human admits the caller in the NetworkPolicy; the agent never changes "
    "policies",
    "config-error": "a human creates the missing Secret, ConfigMap or key (or fixes the "
    "reference); the agent never writes Secrets or ConfigMaps",
    "unschedulable": "a human frees capacity, fixes the selector, taints or volumes, or lowers "
    "the requests",
    "no-pods": "a human reads the workload's and its ReplicaSet's conditions (an admission "
    "webhook, a policy or a quota refused its pods) and fixes what refused them",
    "unresolved-service": "a human points the caller's configuration at the Service's right "
    "name (or restores the Service it names); the agent never writes configuration",
    "volume-affinity": "a human brings back a schedulable node that meets the volume's node "
    "affinity (its zone or node), or restores the data into a volume where nodes are; the agent "
    "never changes volumes or nodes",
    "selector": "a human restores the Service's selector from version control",
    "target-port": "a human restores the Service's targetPort from version control",
}
"""Per finding with no exact fix: what a human does, and that the agent does not."""

SPENT = (
    "a human gives the workload what ran out (a higher memory limit, a larger volume, more "
    "connections) or stops what consumes it; no change of the workload's own explains it, so "
    "the agent changes no limit, volume or setting"
)
"""A crash loop on a resource that ran out (OOMKilled, a full disk) with no rollout behind it."""


def fix_for_finding(
    hypothesis: models.Hypothesis,
    finding: Mapping[str, Any],
    *,
    index: int,
    namespace: str,
    verify: str,
) -> models.Fix | None:
    """The fix for a finding's own hypothesis, or None to let the rollout's fix (a rollback)
    or none at all stand."""
    fault = str(finding.get("fault"))
    restore = finding.get("restore") or {}
    if fault == "scaled-to-zero":
        return _scale_back(hypothesis, restore=restore, index=index, namespace=namespace)
    if fault in ("selector", "target-port") and restore.get("service"):
        return _restore_service(
            hypothesis, restore=restore, index=index, namespace=namespace, verify=verify
        )
    if fault == "node":
        return _cordon(hypothesis, finding=finding, index=index)
    if fault in HUMAN_ONLY and not hypothesis.change:
        return _hand_over(hypothesis, finding=finding, index=index)
    if (
        fault in ("crash-loop", "init-failure")
        and hypothesis.kind is models.CauseKind.RESOURCE
        and not hypothesis.change
    ):
        return _hand_over(hypothesis, finding=finding, index=index, why=SPENT)
    return None


def _ns(namespace: str) -> str:
    return f" -n {namespace}" if namespace else ""


def _scale_back(
    hypothesis: models.Hypothesis, *, restore: Mapping[str, Any], index: int, namespace: str
) -> models.Fix | None:
    name = hypothesis.component
    if not _NAME.match(name):
        return None
    replicas = int(restore.get("replicas") or 1)
    target = f"deployment/{name}"
    command = f"kubectl scale {target}{_ns(namespace)} --replicas={replicas}"
    action: dict[str, Any] | None = None
    if namespace:
        action = {
            "op": fixes.CATALOGUE.kind("scale").resolver,
            "kind": "deployment",
            "namespace": namespace,
            "name": name,
            "replicas": replicas,
        }
    return models.Fix(
        id=f"fix-{index + 1}",
        kind="scale",
        target=target,
        command=command,
        dry_run=f"{command} --dry-run=server",
        rollback=f"kubectl scale {target}{_ns(namespace)} --replicas=0",
        verify=f"kubectl get {target}{_ns(namespace)} (READY {replicas}/{replicas})",
        risk=fixes.CATALOGUE.kind("scale").risk,
        blast_radius=f"starts {replicas} pod(s) of {target} (the count before it was scaled "
        "to zero); no running pod is touched",
        hypothesis=index,
        action=action,
    )


def _restore_service(
    hypothesis: models.Hypothesis,
    *,
    restore: Mapping[str, Any],
    index: int,
    namespace: str,
    verify: str,
) -> models.Fix | None:
    service = str(restore["service"])
    if not _NAME.match(service) or not namespace:
        return None
    target = f"service/{service}"
    details: dict[str, Any] = {}
    if restore.get("selector"):
        details["selector"] = dict(restore["selector"])
        what = f"selector {_labels(details['selector'])}"
    elif restore.get("target_port"):
        details["port"] = int(restore["port"])
        details["target_port"] = int(restore["target_port"])
        what = f"targetPort {details['target_port']} on port {details['port']}"
    else:
        return None
    patch = json.dumps({"spec": _spec(details)}, separators=(",", ":"), sort_keys=True)
    how = "merge" if "selector" in details else "strategic"  # ports merge by port number
    command = f"kubectl patch {target}{_ns(namespace)} --type={how} -p '{patch}'"
    save = f"kubectl get {target}{_ns(namespace)} -o yaml > {service}.now.yaml"
    return models.Fix(
        id=f"fix-{index + 1}",
        kind="restore_service",
        target=target,
        command=f"{save} && {command}",
        dry_run=f"{command} --dry-run=server",
        rollback=f"kubectl replace -f {service}.now.yaml",
        verify=verify
        or f"kubectl get endpointslices{_ns(namespace)} -l kubernetes.io/service-name={service}",
        risk=fixes.CATALOGUE.kind("restore_service").risk,
        blast_radius=f"every caller of {target}: it routes to {hypothesis.component}'s pods "
        f"again ({what}, read from {restore.get('source') or _TEMPLATE})",
        hypothesis=index,
        action={
            "op": fixes.CATALOGUE.kind("restore_service").resolver,
            "kind": "service",
            "namespace": namespace,
            "name": service,
            **details,
        },
    )


def _spec(details: Mapping[str, Any]) -> dict[str, Any]:
    if "selector" in details:
        return {"selector": details["selector"]}
    return {"ports": [{"port": details["port"], "targetPort": details["target_port"]}]}


def _labels(selector: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def _cordon(hypothesis: models.Hypothesis, *, finding: Mapping[str, Any], index: int) -> models.Fix:
    node = hypothesis.component.removeprefix("node/")
    drain = f"kubectl drain {node} --ignore-daemonsets --delete-emptydir-data"
    victims = ", ".join(finding.get("victims") or []) or "none in this namespace"
    return models.Fix(
        id=f"fix-{index + 1}",
        kind="cordon",
        target=f"node/{node}",
        command=f"kubectl cordon {node} && {drain}",
        dry_run=f"{drain} --dry-run=server",
        rollback=f"kubectl uncordon {node}",
        verify=f"kubectl get pods -A --field-selector spec.nodeName={node}",
        risk=fixes.CATALOGUE.kind("cordon").risk,
        blast_radius=f"every pod on node {node}, in every namespace, is evicted and scheduled "
        f"elsewhere (here: {victims}); the other nodes must have room for them; a human runs "
        "it after checking the node (kubectl describe node), the agent never does",
        hypothesis=index,
        action=None,
    )


def _hand_over(
    hypothesis: models.Hypothesis, *, finding: Mapping[str, Any], index: int, why: str = ""
) -> models.Fix:
    fault = str(finding.get("fault"))
    return models.Fix(
        id=f"fix-{index + 1}",
        kind="hand_over",
        target=hypothesis.component,
        command=str(finding.get("check") or ""),
        dry_run=None,
        rollback="nothing to undo: the agent changes nothing",
        verify=str(finding.get("wrong_if") or ""),
        risk=fixes.CATALOGUE.kind("hand_over").risk,
        blast_radius=f"none from the agent: {why or HUMAN_ONLY[fault]}",
        hypothesis=index,
        action=None,
    )
