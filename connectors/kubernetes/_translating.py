"""The history kinds (Deployments, ReplicaSets, Pods, ConfigMaps and Secrets' metadata, Events)
translated into the payloads of ``diagnose.domain.ports``."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping

from connectors.kubernetes import _common
from diagnose.domain import redaction
from diagnose.domain.ports import (
    ConfigPayload,
    ContainerStatusPayload,
    DeploymentPayload,
    EventPayload,
    PodPayload,
    ReplicaSetPayload,
)

# --- translation into payloads ------------------------------------------------------------


def _deployment(obj: _common.Obj) -> DeploymentPayload:
    meta, spec, status = _common._parts(obj)
    return {
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "created": _common._time(meta.get("creationTimestamp")) or "",
        "labels": dict(meta.get("labels") or {}),
        "selector": dict((spec.get("selector") or {}).get("matchLabels") or {}),
        "replicas": int(spec.get("replicas", 1)),
        "available": int(status.get("availableReplicas") or 0),
        "revision": _common._revision(meta),
        "images": _common._images(spec),
        "annotations": _common._annotations(meta),
        "configs": _config_refs(spec),
        "env": _endpoint_env(spec),
    }


_ENDPOINT_NAME = re.compile(
    r"(URL|URI|DSN|HOST|ADDR|ADDRESS|SERVER|DATABASE|DB|DB_NAME|DBNAME|CONNECTION)$"
)
_USERINFO = re.compile(r"(?<=://)[^/@?#]*@")
_PASSWORD_PARAM = re.compile(r"(?i)\b(password|passwd|pwd|sslpassword)\s*=\s*[^\s&;]*[&;]?")


def _endpoint_env(spec: _common.Obj) -> dict[str, str]:
    """The containers' plain environment values that name an endpoint (``DATABASE_URL``,
    ``*_HOST``, JDBC URLs): where the workload connects. Values from Secrets or ConfigMaps are
    not resolved, variables whose name suggests a secret are never kept, and credentials are
    cut out of URLs and connection strings (``user:pass@`` keeps nothing, ``password=`` goes)."""
    kept: dict[str, str] = {}
    for container in _common._containers(spec):
        for variable in container.get("env") or []:
            name, value = str(variable.get("name") or ""), variable.get("value")
            upper = name.upper()
            if not isinstance(value, str) or redaction.is_secret_name(name):
                continue
            if _ENDPOINT_NAME.search(upper) or "jdbc:" in value:
                kept[name] = _PASSWORD_PARAM.sub("", _USERINFO.sub("", value)).strip()
    return kept


_CONFIG_REFS = (
    ("configMap", "name", "configmap"),
    ("secret", "secretName", "secret"),
    ("secret", "name", "secret"),  # in projected volumes
    ("configMapRef", "name", "configmap"),
    ("secretRef", "name", "secret"),
    ("configMapKeyRef", "name", "configmap"),
    ("secretKeyRef", "name", "secret"),
)


def _config_refs(spec: _common.Obj) -> list[str]:
    """ConfigMaps and Secrets the pod template uses (volumes, projected volumes, ``envFrom``,
    ``env[].valueFrom``), as "configmap/NAME" and "secret/NAME"."""
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    sources: list[_common.Obj] = []
    for volume in pod_spec.get("volumes") or []:
        sources += [volume, *((volume.get("projected") or {}).get("sources") or [])]
    for container in [*(pod_spec.get("initContainers") or []), *_common._containers(spec)]:
        sources += container.get("envFrom") or []
        sources += [v.get("valueFrom") or {} for v in container.get("env") or []]
    refs = {
        f"{kind}/{name}"
        for source in sources
        for field, key, kind in _CONFIG_REFS
        if isinstance(source.get(field), Mapping) and (name := source[field].get(key))
    }
    return sorted(refs)


def _replicaset(obj: _common.Obj) -> ReplicaSetPayload:
    meta, spec, _ = _common._parts(obj)
    return {
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "owner": _common._owner(meta),
        "revision": _common._revision(meta),
        "created": _common._time(meta.get("creationTimestamp")) or "",
        "images": _common._images(spec),
        "replicas": int(spec.get("replicas", 1)),
        "resources": _common._resources(spec),
        "annotations": _common._annotations(meta),
        "template_annotations": _template_annotations(spec),
    }


def _template_annotations(spec: _common.Obj) -> dict[str, str]:
    """The pod template's annotations (where CI copies the image's
    ``org.opencontainers.image.revision`` and ``.source``: docs/changes.md)."""
    return _common._annotations((spec.get("template") or {}).get("metadata") or {})


def _pod(obj: _common.Obj) -> PodPayload:
    meta, spec, status = _common._parts(obj)
    return {
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "owner": _common._owner(meta),
        "node": spec.get("nodeName"),
        "phase": str(status.get("phase") or "Unknown"),
        "created": _common._time(meta.get("creationTimestamp")) or "",
        "labels": dict(meta.get("labels") or {}),
        "containers": [_container(c) for c in status.get("containerStatuses") or []],
    }


def _container(status: _common.Obj) -> ContainerStatusPayload:
    """The most recent termination: ``lastState`` (a restarted container), else ``state``."""
    last = (status.get("lastState") or {}).get("terminated")
    last = last or (status.get("state") or {}).get("terminated") or {}
    exit_code = last.get("exitCode")
    return {
        "name": status["name"],
        "restarts": int(status.get("restartCount") or 0),
        "ready": bool(status.get("ready")),
        "last_terminated_reason": last.get("reason"),
        "last_terminated_at": _common._time(last.get("finishedAt")),
        "last_exit_code": int(exit_code) if exit_code is not None else None,
    }


def _configmap(obj: _common.Obj) -> ConfigPayload:
    data = {str(k): str(v) for k, v in (obj.get("data") or {}).items()}
    binary = {str(k): str(v) for k, v in (obj.get("binaryData") or {}).items()}
    items = sorted(data.items()) + sorted(("binary:" + k, v) for k, v in binary.items())
    digest = hashlib.sha256(json.dumps(items, separators=(",", ":")).encode()).hexdigest()
    return _config(
        "configmap",
        obj,
        keys=sorted([*data, *binary]),
        digest=f"sha256:{digest}",
        drifted=drifted_keys(obj),
    )


def drifted_keys(obj: _common.Obj) -> list[str]:
    """Keys of a ConfigMap's ``data`` that differ from its last ``kubectl apply`` (edited
    since, or added), read from the last-applied annotation, which is never kept. Empty when
    there is no annotation or it cannot be read."""
    meta = obj.get("metadata") or {}
    text = (meta.get("annotations") or {}).get("kubectl.kubernetes.io/last-applied-configuration")
    if not text:
        return []
    try:
        applied = json.loads(text).get("data") or {}
    except (ValueError, AttributeError):
        return []
    live = obj.get("data") or {}
    return sorted(k for k in {*applied, *live} if str(applied.get(k)) != str(live.get(k)))


def _secret(obj: _common.Obj) -> ConfigPayload:
    """Metadata only: whatever else the server sent is not looked at."""
    meta = obj.get("metadata") or {}
    return _config(
        "secret", {"metadata": meta}, keys=_common._managed_keys(meta), digest="", drifted=[]
    )


def _config(
    kind: str, obj: _common.Obj, *, keys: list[str], digest: str, drifted: list[str]
) -> ConfigPayload:
    meta = obj.get("metadata") or {}
    created = _common._time(meta.get("creationTimestamp")) or ""
    return {
        "kind": kind,
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "created": created,
        "updated": _common._updated(meta) or created,
        "labels": dict(meta.get("labels") or {}),
        "annotations": _common._annotations(meta),
        "keys": keys,
        "digest": digest,
        "drifted": drifted,
    }


def _event(obj: _common.Obj) -> EventPayload:
    meta = obj.get("metadata") or {}
    involved = obj.get("involvedObject") or {}
    series = obj.get("series") or {}
    event_time = _common._time(obj.get("eventTime"))
    first = _common._time(obj.get("firstTimestamp")) or event_time
    last = (
        _common._time(obj.get("lastTimestamp"))
        or _common._time(series.get("lastObservedTime"))
        or event_time
    )
    return {
        "type": str(obj.get("type") or "Normal"),
        "reason": str(obj.get("reason") or ""),
        "object": f"{str(involved.get('kind') or '').lower()}/{involved.get('name') or ''}",
        "namespace": involved.get("namespace") or meta.get("namespace") or "",
        "message": str(obj.get("message") or ""),
        "first": first or last,
        "last": last or first,
        "count": int(obj.get("count") or series.get("count") or 1),
    }
