"""Kubernetes objects (as the API returns them) → the payloads of ``diagnose.domain.ports``.

A tiny mirror of what the Kubernetes connector produces, so analysis tests can read a scenario's
``kubernetes/*.yaml`` without a server. The TypedDicts in ``ports.py`` are the contract.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from diagnose.domain import models

Obj = Mapping[str, Any]
REVISION = "deployment.kubernetes.io/revision"


def read_objects(files: Iterable[Path]) -> list[Obj]:
    """Every object of the files, ``List`` objects unpacked."""
    out: list[Obj] = []
    for file in files:
        for doc in yaml.safe_load_all(file.read_text()):
            if not isinstance(doc, Mapping):
                continue
            out.extend(
                doc.get("items") or [] if str(doc.get("kind", "")).endswith("List") else [doc]
            )
    return out


def cluster_evidence(
    files: Sequence[Path], *, namespace: str, window: models.Window
) -> list[models.Evidence]:
    """The five records the graph's gather_changes step would produce (none without files)."""
    if not files:
        return []
    objects = read_objects(files)
    kinds = {
        "deployments": ("Deployment", deployment),
        "replicasets": ("ReplicaSet", replicaset),
        "pods": ("Pod", pod),
        "events": ("Event", event),
    }
    records = []
    for plural, (kind, convert) in kinds.items():
        payloads = [convert(o) for o in objects if o.get("kind") == kind]
        query = f"kubectl get {plural} -n {namespace} -o yaml"
        at = window if plural == "events" else None
        records.append(_evidence(query, payloads, window=at, kind=models.EvidenceKind(plural)))
    configs = [config(o) for o in objects if o.get("kind") in ("ConfigMap", "Secret")]
    query = (
        f"kubectl get configmaps -n {namespace} --show-managed-fields -o yaml; "
        f"kubectl get secrets -n {namespace} --show-managed-fields -o yaml"
    )
    records.append(_evidence(query, configs, window=None, kind=models.EvidenceKind.CONFIGS))
    return records


def _evidence(
    query: str, payloads: list[Any], *, window: models.Window | None, kind: models.EvidenceKind
) -> models.Evidence:
    status = models.Status.OK if payloads else models.Status.EMPTY
    return models.Evidence.make(
        source="kubernetes",
        query=query,
        window=window,
        status=status,
        summary=f"{len(payloads)} objects",
        raw=payloads,
        kind=kind,
    )


def deployment(obj: Obj) -> dict[str, Any]:
    meta, spec, status = _parts(obj)
    return {
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "created": _time(meta.get("creationTimestamp")) or "",
        "labels": dict(meta.get("labels") or {}),
        "selector": dict((spec.get("selector") or {}).get("matchLabels") or {}),
        "replicas": int(spec.get("replicas", 1)),
        "available": int(status.get("availableReplicas") or 0),
        "revision": _revision(meta),
        "images": _images(spec),
        "annotations": dict(meta.get("annotations") or {}),
    }


def replicaset(obj: Obj) -> dict[str, Any]:
    meta, spec, _ = _parts(obj)
    return {
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "owner": _owner(meta),
        "revision": _revision(meta),
        "created": _time(meta.get("creationTimestamp")) or "",
        "images": _images(spec),
        "replicas": int(spec.get("replicas", 1)),
        "resources": {
            str(c["name"]): {
                part: {
                    str(k): str(v) for k, v in ((c.get("resources") or {}).get(part) or {}).items()
                }
                for part in ("limits", "requests")
            }
            for c in _containers(spec)
        },
        "annotations": dict(meta.get("annotations") or {}),
    }


def pod(obj: Obj) -> dict[str, Any]:
    meta, spec, status = _parts(obj)
    return {
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "owner": _owner(meta),
        "node": spec.get("nodeName"),
        "phase": str(status.get("phase") or "Unknown"),
        "created": _time(meta.get("creationTimestamp")) or "",
        "labels": dict(meta.get("labels") or {}),
        "containers": [_container(c) for c in status.get("containerStatuses") or []],
    }


def _container(status: Obj) -> dict[str, Any]:
    last = (status.get("lastState") or {}).get("terminated")
    last = last or (status.get("state") or {}).get("terminated") or {}
    code = last.get("exitCode")
    return {
        "name": status["name"],
        "restarts": int(status.get("restartCount") or 0),
        "ready": bool(status.get("ready")),
        "last_terminated_reason": last.get("reason"),
        "last_terminated_at": _time(last.get("finishedAt")),
        "last_exit_code": int(code) if code is not None else None,
    }


def config(obj: Obj) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    secret = obj.get("kind") == "Secret"
    data = {} if secret else {str(k): str(v) for k, v in (obj.get("data") or {}).items()}
    digest = (
        ""
        if secret
        else "sha256:"
        + hashlib.sha256(
            json.dumps(sorted(data.items()), separators=(",", ":")).encode()
        ).hexdigest()
    )
    times = [models.parse_time(e["time"]) for e in meta.get("managedFields") or [] if e.get("time")]
    created = _time(meta.get("creationTimestamp")) or ""
    return {
        "kind": "secret" if secret else "configmap",
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "created": created,
        "updated": models.format_time(max(times)) if times else created,
        "labels": dict(meta.get("labels") or {}),
        "annotations": dict(meta.get("annotations") or {}),
        "keys": sorted(data),
        "digest": digest,
        "drifted": [] if secret else _drifted(obj),
    }


def _drifted(obj: Obj) -> list[str]:
    meta = obj.get("metadata") or {}
    text = (meta.get("annotations") or {}).get("kubectl.kubernetes.io/last-applied-configuration")
    if not text:
        return []
    applied, live = json.loads(text).get("data") or {}, obj.get("data") or {}
    return sorted(k for k in {*applied, *live} if str(applied.get(k)) != str(live.get(k)))


def event(obj: Obj) -> dict[str, Any]:
    involved = obj.get("involvedObject") or {}
    first = _time(obj.get("firstTimestamp")) or _time(obj.get("eventTime"))
    last = _time(obj.get("lastTimestamp")) or first
    return {
        "type": str(obj.get("type") or "Normal"),
        "reason": str(obj.get("reason") or ""),
        "object": f"{str(involved.get('kind') or '').lower()}/{involved.get('name') or ''}",
        "namespace": involved.get("namespace")
        or (obj.get("metadata") or {}).get("namespace")
        or "",
        "message": str(obj.get("message") or ""),
        "first": first or last,
        "last": last or first,
        "count": int(obj.get("count") or 1),
    }


def _parts(obj: Obj) -> tuple[Obj, Obj, Obj]:
    return obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}


def _time(value: Any) -> str | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return models.format_time(models.parse_time(value))
    return models.format_time(models.parse_time(str(value)))


def _revision(meta: Obj) -> int | None:
    value = (meta.get("annotations") or {}).get(REVISION)
    return int(value) if value is not None and str(value).isdigit() else None


def _owner(meta: Obj) -> str | None:
    refs = meta.get("ownerReferences") or []
    ref = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
    return f"{str(ref['kind']).lower()}/{ref['name']}" if ref else None


def _containers(spec: Obj) -> list[Obj]:
    return list(((spec.get("template") or {}).get("spec") or {}).get("containers") or [])


def _images(spec: Obj) -> list[str]:
    return [str(c.get("image") or "") for c in _containers(spec)]
