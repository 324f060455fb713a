"""How changes reach the cluster: Argo CD, Flux and Helm, as read through the Kubernetes API.

A connector hands back one :class:`DeliveryPayload` per delivery that targets the namespace
(an Argo CD Application, a Flux Kustomization or HelmRelease, a Helm release): where it takes
its manifests from, the workloads it manages, and its syncs, oldest first, each with the
revision it applied. A Helm release's values are never returned (they hold secrets): only the
names of the keys its latest revision changed. Standard library only (docs/changes.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypedDict, runtime_checkable

from diagnose.domain.models import Evidence, Window

ARGOCD = "argocd"
FLUX_KUSTOMIZATION = "flux-kustomization"
FLUX_HELMRELEASE = "flux-helmrelease"
HELM = "helm"
TOOLS = (ARGOCD, FLUX_KUSTOMIZATION, FLUX_HELMRELEASE, HELM)
"""Every delivery tool read, in the order a workload's version is looked up."""


class SyncPayload(TypedDict):
    """One sync: what was applied, when."""

    revision: str  # a commit (Argo CD, Flux GitRepository), a chart version, a Helm revision
    commit: str | None  # the commit SHA when the revision names one
    at: str  # RFC 3339
    id: str  # Argo CD's history id, Flux's "main@sha1:…", Helm's release revision


class DeliveryPayload(TypedDict):
    tool: str  # one of TOOLS
    name: str
    namespace: str  # where the object lives (argocd, flux-system, the release's namespace)
    target_namespace: str  # where it deploys
    repository: str | None  # the Git repository URL it applies from, when one
    path: str | None  # the path in the repository, or the chart
    status: str  # "Synced/Healthy", "Ready: True", "deployed", …
    workloads: list[str]  # "deployment/orders-api": what it manages, when it says
    configs: list[str]  # "configmap/payments-config": the ConfigMaps and Secrets it manages
    syncs: list[SyncPayload]  # oldest first
    changed_keys: list[str]  # Helm: value keys the latest revision changed (names only)
    auto_sync: bool  # it re-applies its source by itself (Argo CD's automated sync, Flux)


@runtime_checkable
class DeliverySource(Protocol):
    """A cluster source that can also read delivery tools (``connectors.kubernetes``)."""

    def list_deliveries(self, *, namespace: str) -> Evidence:
        """The deliveries that target ``namespace`` (raw ``list[DeliveryPayload]``); a tool
        that is not installed has nothing to list, one the role may not read is ``denied``."""
        ...

    def list_delivery_events(
        self, *, namespace: str, deliveries: Sequence[DeliveryPayload], window: Window
    ) -> Evidence:
        """Flux's events on the Flux objects of ``deliveries`` that live outside
        ``namespace`` (their controllers record them there), in the window (raw
        ``list[EventPayload]``); a namespace the role may not read is ``denied``."""
        ...
