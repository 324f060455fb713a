"""Argo CD, Flux and Helm objects → delivery payloads (``diagnose.domain.delivery``).

Pure translation of what the Kubernetes API returns; :meth:`connectors.kubernetes.
KubernetesConnector.list_deliveries` reads the objects and hands them here.

- An Argo CD ``Application`` (``argoproj.io/v1alpha1``): its source (``spec.source`` or the
  first of ``spec.sources``), destination namespace, ``status.history`` (revision,
  ``deployedAt``, id), sync and health status, and the workloads of ``status.resources``.
- A Flux ``Kustomization``: ``status.history`` (or ``lastAppliedRevision`` alone), the
  ``GitRepository`` its ``sourceRef`` names for the URL, the workloads of
  ``status.inventory``. ``main@sha1:3f9c…`` names commit ``3f9c…``.
- A Flux ``HelmRelease``: ``status.history`` (chart version, release revision, times).
- A Helm release stored as Secrets (``owner=helm``, ``sh.helm.release.v1.NAME.vN``): each
  revision's chart, status and time (the Secret's creation, else the record's
  ``last_deployed``), the workloads of its manifest, and the names of the value
  keys the latest revision changed. The values themselves never leave this module.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from diagnose.domain import delivery

Obj = Mapping[str, Any]

MAX_RELEASE_BYTES = 32_000_000
"""A Helm release larger than this once decompressed is not read (its syncs still are)."""

_COMMIT = re.compile(r"(?:^|[@:/])(?:sha1:|sha256:)?(?P<sha>[0-9a-f]{40}|[0-9a-f]{64})$")
_WORKLOAD_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}
_CONFIG_KINDS = {"ConfigMap", "Secret"}


def commit_of(revision: str) -> str | None:
    """The commit a revision names: ``3f9c…``, ``main@sha1:3f9c…``, ``main/3f9c…``."""
    text = revision.strip().lower()
    if re.fullmatch(r"[0-9a-f]{7,40}", text):
        return text
    found = _COMMIT.search(text)
    return found["sha"] if found else None


# --- Argo CD ----------------------------------------------------------------------------------


def argocd_application(obj: Obj) -> delivery.DeliveryPayload:
    meta, spec, status = _parts(obj)
    source: Obj = spec.get("source") or next(iter(spec.get("sources") or []), {}) or {}
    history = sorted(status.get("history") or [], key=lambda h: str(h.get("deployedAt") or ""))
    sync, health = status.get("sync") or {}, status.get("health") or {}
    resources = [
        (str(r.get("kind") or ""), str(r.get("name") or "")) for r in status.get("resources") or []
    ]
    return {
        "tool": delivery.ARGOCD,
        "name": str(meta.get("name") or ""),
        "namespace": str(meta.get("namespace") or ""),
        "target_namespace": str((spec.get("destination") or {}).get("namespace") or ""),
        "repository": source.get("repoURL"),
        "path": source.get("path") or source.get("chart"),
        "status": f"{sync.get('status') or 'Unknown'}/{health.get('status') or 'Unknown'}",
        "workloads": _workloads(resources),
        "configs": _configs(resources),
        "syncs": [
            {
                "revision": str(h.get("revision") or ""),
                "commit": commit_of(str(h.get("revision") or "")),
                "at": str(h.get("deployedAt") or ""),
                "id": str(h.get("id") if h.get("id") is not None else ""),
            }
            for h in history
        ],
        "changed_keys": [],
        "auto_sync": _automated((spec.get("syncPolicy") or {}).get("automated")),
    }


def _automated(policy: object) -> bool:
    """Argo CD's ``syncPolicy.automated``: present (``{}`` included) unless ``enabled: false``."""
    return isinstance(policy, Mapping) and policy.get("enabled") is not False


# --- Flux -------------------------------------------------------------------------------------


def flux_kustomization(
    obj: Obj, *, repositories: Mapping[tuple[str, str], str]
) -> delivery.DeliveryPayload:
    """A Kustomization; ``repositories`` maps (namespace, name) of GitRepositories to URLs."""
    meta, spec, status = _parts(obj)
    namespace = str(meta.get("namespace") or "")
    ref = spec.get("sourceRef") or {}
    url = repositories.get((str(ref.get("namespace") or namespace), str(ref.get("name") or "")))
    syncs = [_flux_sync(h) for h in status.get("history") or []]
    applied = str(status.get("lastAppliedRevision") or "")
    if not syncs and applied:
        syncs = [_sync(applied, at=_ready_time(status), id_=applied)]
    return {
        "tool": delivery.FLUX_KUSTOMIZATION,
        "name": str(meta.get("name") or ""),
        "namespace": namespace,
        "target_namespace": str(spec.get("targetNamespace") or namespace),
        "repository": url,
        "path": spec.get("path"),
        "status": _ready(status),
        "workloads": _workloads(_inventory(status)),
        "configs": _configs(_inventory(status)),
        "syncs": sorted(syncs, key=lambda s: s["at"]),
        "changed_keys": [],
        "auto_sync": not spec.get("suspend"),
    }


def _flux_sync(entry: Obj) -> delivery.SyncPayload:
    revision = str((entry.get("metadata") or {}).get("revision") or entry.get("revision") or "")
    at = str(entry.get("firstReconciled") or entry.get("lastReconciled") or "")
    return _sync(revision, at=at, id_=revision)


def _inventory(status: Obj) -> Iterable[tuple[str, str]]:
    """``shop_orders-api_apps_Deployment`` → (Deployment, orders-api)."""
    for entry in (status.get("inventory") or {}).get("entries") or []:
        parts = str(entry.get("id") or "").split("_")
        if len(parts) == 4:
            yield parts[3], parts[1]


def flux_helmrelease(obj: Obj) -> delivery.DeliveryPayload:
    meta, spec, status = _parts(obj)
    namespace = str(meta.get("namespace") or "")
    chart = ((spec.get("chart") or {}).get("spec") or {}).get("chart")
    history = status.get("history") or []
    syncs = [
        _sync(
            str(h.get("chartVersion") or ""),
            at=str(h.get("lastDeployed") or h.get("firstDeployed") or ""),
            id_=str(h.get("version") or ""),
        )
        for h in history
    ]
    return {
        "tool": delivery.FLUX_HELMRELEASE,
        "name": str(meta.get("name") or ""),
        "namespace": namespace,
        "target_namespace": str(spec.get("targetNamespace") or namespace),
        "repository": None,
        "path": str(chart) if chart else None,
        "status": _ready(status),
        "workloads": [],
        "configs": [],
        "syncs": sorted(syncs, key=lambda s: s["at"]),
        "changed_keys": [],
        "auto_sync": not spec.get("suspend"),
    }


def git_repositories(objects: Iterable[Obj]) -> dict[tuple[str, str], str]:
    """Flux GitRepositories by (namespace, name): their URL."""
    found: dict[tuple[str, str], str] = {}
    for obj in objects:
        meta, spec, _ = _parts(obj)
        if spec.get("url"):
            found[(str(meta.get("namespace") or ""), str(meta.get("name") or ""))] = str(
                spec["url"]
            )
    return found


MAX_FLUX_OBJECTS = 10
"""At most this many Flux objects have their events read outside the diagnosed namespace."""

_FLUX_KINDS = {
    delivery.FLUX_KUSTOMIZATION: "Kustomization",
    delivery.FLUX_HELMRELEASE: "HelmRelease",
}


@dataclass(frozen=True)
class FluxObject:
    """A Flux Kustomization or HelmRelease whose events live in its own namespace."""

    namespace: str
    kind: str  # "Kustomization" | "HelmRelease", as an event's involvedObject names it
    name: str

    @property
    def field_selector(self) -> str:
        return f"involvedObject.kind={self.kind},involvedObject.name={self.name}"


def flux_objects(
    deliveries: Iterable[delivery.DeliveryPayload], *, namespace: str
) -> list[FluxObject]:
    """The Flux objects among ``deliveries`` that live outside ``namespace`` (in
    ``flux-system``, say): their controllers record events there, not where they deploy.
    Sorted, without repeats; the caller keeps the first :data:`MAX_FLUX_OBJECTS`."""
    found = {
        FluxObject(d["namespace"], _FLUX_KINDS[d["tool"]], d["name"])
        for d in deliveries
        if d["tool"] in _FLUX_KINDS and d["namespace"] and d["namespace"] != namespace
    }
    return sorted(found, key=lambda o: (o.namespace, o.kind, o.name))


# --- Helm -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Revision:
    """One revision of a Helm release: its record, decoded from its Secret, and when it was
    recorded."""

    release: Obj
    recorded: str


def helm_releases(secrets: Iterable[Obj]) -> list[delivery.DeliveryPayload]:
    """Helm's release Secrets grouped by release, each revision a sync (oldest first)."""
    by_name: dict[tuple[str, str], list[_Revision]] = {}
    for secret in secrets:
        release = _release(secret)
        if release is not None:
            # When the revision was recorded: the Secret's creation (the lab shifts it; the
            # release's own last_deployed is inside the encoded record), else last_deployed.
            created = (secret.get("metadata") or {}).get("creationTimestamp")
            recorded = str(created or (release.get("info") or {}).get("last_deployed") or "")
            key = (str(release.get("namespace") or ""), str(release.get("name") or ""))
            by_name.setdefault(key, []).append(_Revision(release, recorded))
    return [_helm(namespace, name, revs) for (namespace, name), revs in sorted(by_name.items())]


def _helm(namespace: str, name: str, revisions: list[_Revision]) -> delivery.DeliveryPayload:
    revisions.sort(key=lambda r: int(r.release.get("version") or 0))
    releases = [r.release for r in revisions]
    latest = releases[-1]
    manifest = list(_manifest_workloads(str(latest.get("manifest") or "")))
    chart = (latest.get("chart") or {}).get("metadata") or {}
    changed = (
        _changed_keys(releases[-2].get("config"), latest.get("config")) if len(releases) > 1 else []
    )
    return {
        "tool": delivery.HELM,
        "name": name,
        "namespace": namespace,
        "target_namespace": namespace,
        "repository": None,
        "path": f"{chart.get('name') or '?'}-{chart.get('version') or '?'}",
        "status": str((latest.get("info") or {}).get("status") or "unknown"),
        "workloads": _workloads(manifest),
        "configs": _configs(manifest),
        "syncs": [
            _sync(
                str(((r.release.get("chart") or {}).get("metadata") or {}).get("version") or ""),
                at=r.recorded,
                id_=str(r.release.get("version") or ""),
            )
            for r in revisions
        ],
        "changed_keys": changed,
        "auto_sync": False,
    }


def _release(secret: Obj) -> Obj | None:
    """A release Secret's release record (Helm stores it base64, gzip, JSON inside the Secret's
    own base64), or None when it cannot be read or is too large."""
    encoded = (secret.get("data") or {}).get("release")
    if not isinstance(encoded, str):
        return None
    try:
        data = base64.b64decode(base64.b64decode(encoded))
        if data[:3] == b"\x1f\x8b\x08":
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            data = inflater.decompress(data, MAX_RELEASE_BYTES)
            if inflater.unconsumed_tail:
                return None
        release = json.loads(data)
    except (binascii.Error, zlib.error, ValueError):
        return None
    return release if isinstance(release, dict) else None


def _changed_keys(before: object, after: object) -> list[str]:
    """The dotted value keys whose value differs between two revisions (names only)."""
    old, new = _flatten(before), _flatten(after)
    return sorted(
        k for k in old.keys() | new.keys() if old.get(k, _MISSING) != new.get(k, _MISSING)
    )


_MISSING = object()


def _flatten(value: object, prefix: str = "") -> dict[str, str]:
    """Each leaf's dotted key and its value as canonical JSON."""
    if isinstance(value, Mapping) and value:
        flat: dict[str, str] = {}
        for key, inner in value.items():
            flat |= _flatten(inner, f"{prefix}.{key}" if prefix else str(key))
        return flat
    return {prefix: json.dumps(value, sort_keys=True)} if prefix else {}


def _manifest_workloads(manifest: str) -> Iterable[tuple[str, str]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        documents = list(yaml.load_all(manifest, Loader=loader))  # a safe loader
    except yaml.YAMLError:
        return []
    return [
        (str(d.get("kind")), str((d.get("metadata") or {}).get("name") or ""))
        for d in documents
        if isinstance(d, dict)
    ]


# --- shared -----------------------------------------------------------------------------------


def _sync(revision: str, *, at: str, id_: str) -> delivery.SyncPayload:
    return {"revision": revision, "commit": commit_of(revision), "at": at, "id": id_}


def _workloads(pairs: Iterable[tuple[str, str]]) -> list[str]:
    return sorted({f"{kind.lower()}/{name}" for kind, name in pairs if kind in _WORKLOAD_KINDS})


def _configs(pairs: Iterable[tuple[str, str]]) -> list[str]:
    """The ConfigMaps and Secrets among the objects a delivery manages (names only)."""
    return sorted({f"{kind.lower()}/{name}" for kind, name in pairs if kind in _CONFIG_KINDS})


def _ready(status: Obj) -> str:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            return f"Ready: {condition.get('status')} ({condition.get('reason') or ''})"
    return "Ready: Unknown"


def _ready_time(status: Obj) -> str:
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Ready":
            return str(condition.get("lastTransitionTime") or "")
    return ""


def _parts(obj: Obj) -> tuple[Obj, Obj, Obj]:
    return obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
