"""What the reader and the writer share: the constants, the call error, the small readers of
objects and the evidence they return."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import MaxRetryError, NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from connectors import _http
from diagnose.domain.models import Evidence, Status, Window, format_time, parse_time
from diagnose.domain.ports import EventPayload

SOURCE = "kubernetes"
REVISION = "deployment.kubernetes.io/revision"
DROPPED_ANNOTATIONS = frozenset({"kubectl.kubernetes.io/last-applied-configuration"})
"""Never copied: bulky, and on a Secret it holds the secret's data in clear."""

_PAGE_SIZE = 500
_MAX_PAGES = 40
_METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"

Obj = Mapping[str, Any]


class _CallError(Exception):
    """A list call that ended without data: the status and the one-line summary to report."""

    def __init__(self, status: Status, summary: str) -> None:
        super().__init__(summary)
        self.status = status
        self.summary = summary


# --- small readers ------------------------------------------------------------------------


def _parts(obj: Obj) -> tuple[Obj, Obj, Obj]:
    return obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}


def _time(value: Any) -> str | None:
    """Kubernetes times (RFC 3339, MicroTime included) as our ISO 8601 UTC strings."""
    return format_time(parse_time(str(value))) if value else None


def _revision(meta: Obj) -> int | None:
    value = (meta.get("annotations") or {}).get(REVISION)
    return int(value) if value is not None and str(value).isdigit() else None


def _owner(meta: Obj) -> str | None:
    """The controlling owner as "kind/name" (e.g. "deployment/checkout")."""
    refs = meta.get("ownerReferences") or []
    controller = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
    return f"{str(controller['kind']).lower()}/{controller['name']}" if controller else None


def _annotations(meta: Obj) -> dict[str, str]:
    annotations = meta.get("annotations") or {}
    return {str(k): str(v) for k, v in annotations.items() if k not in DROPPED_ANNOTATIONS}


def _containers(spec: Obj) -> list[Obj]:
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    containers: list[Obj] = pod_spec.get("containers") or []
    return containers


def _images(spec: Obj) -> list[str]:
    return [str(c.get("image") or "") for c in _containers(spec)]


def _resources(spec: Obj) -> dict[str, dict[str, dict[str, str]]]:
    """container → {"limits": {...}, "requests": {...}}, quantities as written."""
    result: dict[str, dict[str, dict[str, str]]] = {}
    for container in _containers(spec):
        resources = container.get("resources") or {}
        result[str(container["name"])] = {
            part: {str(k): str(v) for k, v in (resources.get(part) or {}).items()}
            for part in ("limits", "requests")
        }
    return result


def _updated(meta: Obj) -> str | None:
    """The latest ``managedFields`` time: when any field manager last wrote the object."""
    times = [parse_time(e["time"]) for e in meta.get("managedFields") or [] if e.get("time")]
    return format_time(max(times)) if times else None


def _managed_keys(meta: Obj) -> list[str]:
    """Data keys as recorded by field managers (``f:data`` → ``f:KEY``): names, never values."""
    keys: set[str] = set()
    for entry in meta.get("managedFields") or []:
        fields = entry.get("fieldsV1") or {}
        for section in ("f:data", "f:stringData", "f:binaryData"):
            keys.update(k[2:] for k in fields.get(section) or {} if k.startswith("f:"))
    return sorted(keys)


def _overlaps(event: EventPayload, window: Window) -> bool:
    first, last = event["first"], event["last"]
    if first is None or last is None:
        return False
    return parse_time(first) <= window.end and parse_time(last) >= window.start


def _payload_order(payload: Mapping[str, Any]) -> tuple[int, str, str]:
    revision = payload.get("revision")
    return (revision if isinstance(revision, int) else -1, payload["created"], payload["name"])


def _count(payloads: Iterable[Mapping[str, Any]], field: str) -> str:
    counts: dict[str, int] = {}
    for payload in payloads:
        counts[payload[field]] = counts.get(payload[field], 0) + 1
    return ", ".join(_http.plural(n, name) for name, n in sorted(counts.items()))


def _is_retryable(exc: Exception) -> bool:
    """Refused or reset connections and 429/5xx; never a timeout (the server may be busy) and
    never another 4xx (the request needs fixing)."""
    if isinstance(exc, ApiException):
        return bool(exc.status == 429 or exc.status >= 500)
    if isinstance(exc, MaxRetryError):
        refused = isinstance(exc.reason, NewConnectionError)  # a subclass of the timeout below
        return refused or not isinstance(exc.reason, Urllib3Timeout)
    return False


def _status_message(exc: ApiException) -> str:
    """The ``message`` of the Kubernetes ``Status`` body, else the HTTP reason."""
    try:
        body = json.loads(exc.body) if exc.body else {}
    except ValueError:
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return str(message or exc.reason or "no message").splitlines()[0][:300]


def _is_kubernetes_status(exc: ApiException) -> bool:
    """Whether an error body is a Kubernetes ``Status`` (a real "not found", not a wrong URL)."""
    try:
        body = json.loads(exc.body) if exc.body else None
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("kind") == "Status"


def _evidence(
    query: str, status: Status, summary: str, raw: Any, *, window: Window | None = None
) -> Evidence:
    return Evidence.make(
        source=SOURCE, query=query, window=window, status=status, summary=summary, raw=raw
    )
