"""Every read the connector makes of the Kubernetes API, as RBAC sees it: one table.

The Helm chart's read role (deploy/helm/diagnose/templates/rbac-read.yaml) grants these and
nothing else; tests/deploy/test_read_role.py checks the rendered role against this table, and
records the paths a whole diagnosis requests from the lab's API to check this table against the
readers. A new list call is one entry here and one rule in the chart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Scope = Literal["namespace", "all-namespaces", "cluster"]
"""``namespace``: listed in the namespace in scope (a RoleBinding there suffices);
``all-namespaces``: a namespaced resource listed across the cluster (needs a cluster-wide
grant); ``cluster``: a cluster-scoped resource (only a ClusterRoleBinding grants it)."""


@dataclass(frozen=True)
class Read:
    """One resource the reader asks for: its API group ("" is core), its plural (a
    subresource as ``pods/log``), where it is listed, the verbs it uses and which reader."""

    group: str
    resource: str
    scope: Scope
    verbs: frozenset[str]
    reader: str


_LIST = frozenset({"list"})

READS: tuple[Read, ...] = (
    Read("apps", "deployments", "namespace", _LIST, "list_deployments, read_state"),
    Read("apps", "replicasets", "namespace", _LIST, "list_replicasets"),
    Read("apps", "statefulsets", "namespace", _LIST, "read_state"),
    Read("", "pods", "namespace", _LIST, "list_pods, read_state"),
    Read("", "pods/log", "namespace", frozenset({"get"}), "read_pod_log"),
    Read("", "configmaps", "namespace", _LIST, "list_configs"),
    Read("", "secrets", "namespace", _LIST, "list_configs (metadata), list_deliveries (Helm)"),
    Read("", "events", "namespace", _LIST, "list_events, list_delivery_events"),
    Read("", "services", "namespace", _LIST, "read_state"),
    Read("discovery.k8s.io", "endpointslices", "namespace", _LIST, "read_state"),
    Read("", "resourcequotas", "namespace", _LIST, "read_state"),
    Read("", "limitranges", "namespace", _LIST, "read_state"),
    Read("", "persistentvolumeclaims", "namespace", _LIST, "read_state"),
    Read("", "serviceaccounts", "namespace", _LIST, "read_state"),
    Read("networking.k8s.io", "networkpolicies", "namespace", _LIST, "read_state"),
    Read("", "nodes", "cluster", _LIST, "read_state"),
    Read("", "persistentvolumes", "cluster", _LIST, "read_state"),
    Read("argoproj.io", "applications", "all-namespaces", _LIST, "list_deliveries"),
    Read(
        "kustomize.toolkit.fluxcd.io", "kustomizations", "all-namespaces", _LIST, "list_deliveries"
    ),
    Read("helm.toolkit.fluxcd.io", "helmreleases", "all-namespaces", _LIST, "list_deliveries"),
    Read("source.toolkit.fluxcd.io", "gitrepositories", "all-namespaces", _LIST, "list_deliveries"),
)
"""What :class:`~connectors.kubernetes.KubernetesConnector` reads, one entry per resource."""
