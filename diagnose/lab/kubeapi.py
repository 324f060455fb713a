"""A Kubernetes API over recorded objects, for the real ``kubernetes`` client.

The server is kopf's ``kmock`` Kubernetes emulator in a child process
(``python -m diagnose.lab.kubeapi OBJECTS.json``), with what the client needs on top: typed
lists (``kind: PodList``, ``metadata.resourceVersion``), label selectors, field selectors
(equality on any dotted path, e.g. ``involvedObject.name=checkout``), and each core ``Event``
also served as an ``events.k8s.io/v1`` Event. It serves discovery, list (namespaced and
across namespaces), get by name, and watch (the current objects, then nothing).

``PATCH`` is answered as the real API server does, which kmock's emulator alone does not: the
three patch types by ``Content-Type`` (JSON patch, JSON merge patch, and strategic merge patch,
which merges lists such as ``containers`` by their merge key and is refused for kinds the
server does not know), validation of the result (containers need a name and an image, the
selector must match the template's labels and cannot change, replicas cannot be negative), a
``Status`` body with the reason on refusal, and ``dryRun=All``: the patched object comes back
and nothing is stored. Real patches bump ``resourceVersion`` and ``generation`` and change
only the in-memory copy. Every write request is appended to a JSON-lines log (``--requests``),
so tests can assert exactly what a client sent. ``Namespace`` objects are not served: kmock 0.8
reads ``/api/v1/namespaces`` as a namespace prefix and fails on it.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import re
import signal
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TypedDict

from diagnose.domain import errors
from diagnose.lab import podlogs, processes

READY_TIMEOUT_S = 30.0
RESOURCE_VERSION = "1"


class Kind(NamedTuple):
    """Where a kind is served."""

    group_version: str  # "apps/v1", "v1"
    plural: str
    namespaced: bool


KNOWN_KINDS: dict[str, Kind] = {
    "Pod": Kind("v1", "pods", True),
    "Service": Kind("v1", "services", True),
    "Endpoints": Kind("v1", "endpoints", True),
    "Event": Kind("v1", "events", True),
    "ConfigMap": Kind("v1", "configmaps", True),
    "Secret": Kind("v1", "secrets", True),
    "Node": Kind("v1", "nodes", False),
    "PersistentVolumeClaim": Kind("v1", "persistentvolumeclaims", True),
    "PersistentVolume": Kind("v1", "persistentvolumes", False),
    "ServiceAccount": Kind("v1", "serviceaccounts", True),
    "ResourceQuota": Kind("v1", "resourcequotas", True),
    "LimitRange": Kind("v1", "limitranges", True),
    "EndpointSlice": Kind("discovery.k8s.io/v1", "endpointslices", True),
    "NetworkPolicy": Kind("networking.k8s.io/v1", "networkpolicies", True),
    "Deployment": Kind("apps/v1", "deployments", True),
    "ReplicaSet": Kind("apps/v1", "replicasets", True),
    "StatefulSet": Kind("apps/v1", "statefulsets", True),
    "DaemonSet": Kind("apps/v1", "daemonsets", True),
    "ControllerRevision": Kind("apps/v1", "controllerrevisions", True),
    "HorizontalPodAutoscaler": Kind("autoscaling/v2", "horizontalpodautoscalers", True),
    "Job": Kind("batch/v1", "jobs", True),
    "CronJob": Kind("batch/v1", "cronjobs", True),
    "Ingress": Kind("networking.k8s.io/v1", "ingresses", True),
    "EventsV1": Kind("events.k8s.io/v1", "events", True),
}
_SERVED_AS = {("events.k8s.io/v1", "Event"): "EventsV1"}


# --- objects ----------------------------------------------------------------------------------


def flatten(documents: Iterable[Any]) -> Iterator[dict[str, Any]]:
    """Objects from YAML documents, with ``List``/``XList`` documents expanded."""
    for document in documents:
        if not isinstance(document, dict):
            continue
        kind = str(document.get("kind", ""))
        if kind.endswith("List") and isinstance(document.get("items"), list):
            item_kind = kind[: -len("List")]
            for item in document["items"]:
                defaults = {"apiVersion": document.get("apiVersion", "v1"), "kind": item_kind}
                yield defaults | item if item_kind else item
        else:
            yield document


def kind_of(obj: Mapping[str, Any]) -> tuple[str, Kind]:
    """The kind name under which an object is served, and where."""
    api_version, kind = str(obj.get("apiVersion", "v1")), str(obj.get("kind", ""))
    name = _SERVED_AS.get((api_version, kind), kind)
    if name in KNOWN_KINDS:
        return name, KNOWN_KINDS[name]
    namespaced = bool(obj.get("metadata", {}).get("namespace"))
    return name, Kind(api_version, _plural(kind), namespaced)


def _plural(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    return lower + ("es" if lower.endswith(("s", "x", "ch")) else "s")


def as_events_v1(event: Mapping[str, Any]) -> dict[str, Any]:
    """A core/v1 Event as ``events.k8s.io/v1`` shows it."""
    source = event.get("source") or {}
    return {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": event.get("metadata", {}),
        "eventTime": event.get("eventTime") or event.get("firstTimestamp"),
        "reason": event.get("reason"),
        "note": event.get("message"),
        "type": event.get("type"),
        "action": event.get("action") or event.get("reason"),
        "regarding": event.get("involvedObject"),
        "related": event.get("related"),
        "reportingController": event.get("reportingComponent") or source.get("component"),
        "reportingInstance": event.get("reportingInstance") or source.get("host"),
        "deprecatedSource": source or None,
        "deprecatedFirstTimestamp": event.get("firstTimestamp"),
        "deprecatedLastTimestamp": event.get("lastTimestamp"),
        "deprecatedCount": event.get("count"),
    }


def served_objects(objects: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Every object to serve: the given ones, plus each core Event in its events.k8s.io form."""
    served = [dict(obj) for obj in flatten(objects) if obj.get("kind") != "Namespace"]
    core_events = [obj for obj in served if kind_of(obj)[0] == "Event"]
    return served + [as_events_v1(event) for event in core_events]


# --- selectors --------------------------------------------------------------------------------

_SET_TERM = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\((.*)\)\s*$")
_EQ_TERM = re.compile(r"^\s*([^\s!=]+)\s*(==|=|!=)\s*(\S*)\s*$")


def matches_labels(labels: Mapping[str, str], selector: str) -> bool:
    """Whether labels satisfy a Kubernetes label selector (equality and set terms)."""
    return all(_label_term(labels, term) for term in _terms(selector))


def _label_term(labels: Mapping[str, str], term: str) -> bool:
    if found := _SET_TERM.match(term):
        key, op, values = found.groups()
        inside = labels.get(key) in {v.strip() for v in values.split(",")}
        return inside if op == "in" else not inside
    if found := _EQ_TERM.match(term):
        key, op, value = found.groups()
        return (labels.get(key) == value) is (op != "!=")
    term = term.strip()
    return term[1:] not in labels if term.startswith("!") else term in labels


def matches_fields(obj: Mapping[str, Any], selector: str) -> bool:
    """Whether an object satisfies a field selector (``path=value``, ``path!=value``)."""
    for term in _terms(selector):
        found = _EQ_TERM.match(term)
        if found is None:
            return False
        path, op, value = found.groups()
        if (_dig(obj, path) == value) is (op == "!="):
            return False
    return True


def _dig(obj: Mapping[str, Any], path: str) -> str:
    node: Any = obj
    for part in path.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return "" if node is None else str(node)


def _terms(selector: str) -> list[str]:
    """Split on commas outside parentheses."""
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    return [t for t in [*terms, current] if t.strip()]


# --- patches ----------------------------------------------------------------------------------

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"

MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "ports": "containerPort",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "conditions": "type",
}
"""List fields that a strategic merge patch merges item by item, by this key (the
``patchMergeKey`` of the Kubernetes API types); every other list is replaced whole."""


class StatusBody(TypedDict):
    """The API server's ``Status`` object (``meta/v1``), as a refusal's body."""

    apiVersion: str
    kind: str  # "Status"
    metadata: dict[str, str]
    status: str  # "Failure"
    code: int
    reason: str
    message: str


class ObjectList(TypedDict):
    """A list answer: ``<Kind>List`` with its items."""

    apiVersion: str
    kind: str
    metadata: dict[str, str]  # resourceVersion
    items: Sequence[Mapping[str, object]]  # the objects as stored (any kind)


class WriteRequest(TypedDict):
    """One write request as the lab's API logs it (:func:`read_requests`)."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    body: object  # parsed JSON, else the text; None when empty


class Refused(Exception):
    """The API server refuses a request: the HTTP status, ``reason`` and ``message`` of its
    ``Status`` body."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self) -> StatusBody:
        return {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "code": self.code,
            "reason": self.reason,
            "message": self.message,
        }


def apply_patch(
    obj: Mapping[str, Any], patch: Any, *, content_type: str, built_in: bool
) -> dict[str, Any]:
    """The object after the patch, as the API server computes it (before validation)."""
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    if kind == JSON_PATCH:
        return _json_patch(obj, patch)
    if not isinstance(patch, Mapping):
        raise Refused(400, "BadRequest", f"a {kind} body must be a JSON object")
    if kind == MERGE_PATCH:
        return dict(merge_patch(obj, patch))
    if kind == STRATEGIC_PATCH:
        if not built_in:
            raise Refused(
                415,
                "UnsupportedMediaType",
                "strategic merge patch is not supported for custom resources; use "
                f"{MERGE_PATCH} or {JSON_PATCH}",
            )
        return dict(strategic_merge(obj, patch))
    raise Refused(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{JSON_PATCH}, {MERGE_PATCH}, {STRATEGIC_PATCH}",
    )


def _json_patch(obj: Mapping[str, Any], patch: Any) -> dict[str, Any]:
    import jsonpatch  # noqa: PLC0415  # a kmock dependency: present wherever the server runs

    if not isinstance(patch, list):
        raise Refused(400, "BadRequest", "a JSON patch must be a list of operations")
    try:
        patched: dict[str, Any] = jsonpatch.apply_patch(dict(obj), patch, in_place=False)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise Refused(422, "Invalid", f"the JSON patch could not be applied: {exc}") from exc
    return patched


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, ``null`` deletes, everything else replaces."""
    if not isinstance(patch, Mapping):
        return patch
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge(target: Any, patch: Any, *, field: str = "") -> Any:
    """A strategic merge patch: a merge patch whose lists with a merge key (``MERGE_KEYS``)
    merge item by item, with the ``$patch: replace`` and ``$patch: delete`` directives."""
    if isinstance(patch, list) and isinstance(target, list) and field in MERGE_KEYS:
        return _merge_list(target, patch, key=MERGE_KEYS[field])
    if not isinstance(patch, Mapping):
        return patch
    directive = patch.get("$patch")
    if directive == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    if directive == "delete":
        return None
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
            continue
        merged = strategic_merge(result.get(key), value, field=key)
        if merged is None:
            result.pop(key, None)
        else:
            result[key] = merged
    return result


def _merge_list(target: list[Any], patch: list[Any], *, key: str) -> list[Any]:
    merged = [dict(item) if isinstance(item, Mapping) else item for item in target]
    for item in patch:
        if not isinstance(item, Mapping) or key not in item:
            raise Refused(422, "Invalid", f"a list item without its merge key {key!r}: {item!r}")
        at = next(
            (
                i
                for i, old in enumerate(merged)
                if isinstance(old, Mapping) and old.get(key) == item[key]
            ),
            None,
        )
        if item.get("$patch") == "delete":
            if at is not None:
                del merged[at]
        elif at is None:
            merged.append(strategic_merge({}, item))
        else:
            merged[at] = strategic_merge(merged[at], item)
    return merged


def validate_patched(before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
    """Refuse what the API server's validation refuses for workloads (and identity changes)."""
    for part in ("name", "namespace"):
        if (before.get("metadata") or {}).get(part) != (after.get("metadata") or {}).get(part):
            raise Refused(422, "Invalid", f"metadata.{part}: Invalid value: field is immutable")
    spec = after.get("spec")
    if not isinstance(spec, Mapping) or "template" not in spec:
        return
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        raise Refused(422, "Invalid", f"spec.replicas: Invalid value: {replicas!r}: must be >= 0")
    old_selector = (before.get("spec") or {}).get("selector")
    if spec.get("selector") != old_selector:
        raise Refused(422, "Invalid", "spec.selector: Invalid value: field is immutable")
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    wanted = (spec.get("selector") or {}).get("matchLabels") or {}
    if any(labels.get(k) != v for k, v in wanted.items()):
        raise Refused(
            422,
            "Invalid",
            "spec.template.metadata.labels: Invalid value: `selector` does not match template "
            "`labels`",
        )
    containers = (template.get("spec") or {}).get("containers") or []
    if not containers:
        raise Refused(422, "Invalid", "spec.template.spec.containers: Required value")
    for index, container in enumerate(containers):
        for required in ("name", "image"):
            if not (isinstance(container, Mapping) and container.get(required)):
                raise Refused(
                    422,
                    "Invalid",
                    f"spec.template.spec.containers[{index}].{required}: Required value",
                )


def patched(
    obj: Mapping[str, Any], *, body: bytes, content_type: str, built_in: bool
) -> dict[str, Any]:
    """Parse, apply and validate one PATCH body against the stored object."""
    try:
        patch = json.loads(body or b"null")
    except ValueError as exc:
        raise Refused(400, "BadRequest", f"the patch is not valid JSON: {exc}") from exc
    after = apply_patch(obj, patch, content_type=content_type, built_in=built_in)
    validate_patched(obj, after)
    return after


# --- the parent's handle ----------------------------------------------------------------------


class KubeApiServer(processes.Server):
    """The Kubernetes API child process. Use as a context manager, or call ``stop``."""

    def __init__(self, child: processes.Child, *, url: str, requests_log: Path) -> None:
        self.child = child
        self.url = url
        self.requests_log = requests_log

    @classmethod
    def serve(
        cls,
        objects: Sequence[Mapping[str, object]],
        *,
        workdir: Path,
        hold_writes_s: float = 0.0,
        logs: Path | None = None,
    ) -> KubeApiServer:
        """Serve ``objects`` on a free port of 127.0.0.1; returns once it answers.

        ``hold_writes_s`` delays the answer to every write that changed something, after the
        change: a client can be stopped while its request has landed but not returned.
        """
        _require_kmock()
        workdir.mkdir(parents=True, exist_ok=True)
        dump = workdir / "kubernetes-objects.json"
        dump.write_text(json.dumps(objects), encoding="utf-8")
        requests_log = workdir / "kubeapi-requests.jsonl"
        argv = [sys.executable, "-m", "diagnose.lab.kubeapi", str(dump)]
        argv += ["--requests", str(requests_log), "--hold-writes-s", str(hold_writes_s)]
        argv += ["--logs", str(logs)] if logs is not None else []  # pods/log: docs/logs.md
        log = workdir / "kubeapi.log"
        child, process = processes.spawn(argv, log=log, stdout_pipe=True)
        assert process.stdout is not None
        line = processes.read_line(process.stdout, timeout=READY_TIMEOUT_S)
        process.stdout.close()
        if not line.startswith("listening "):
            child.stop()
            raise errors.LabError("the Kubernetes API did not start:\n" + processes.tail(log))
        return cls(child, url=f"http://127.0.0.1:{int(line.split()[1])}", requests_log=requests_log)

    def stop(self) -> None:
        self.child.stop()

    def write_requests(self) -> list[WriteRequest]:
        """Every write request received so far, oldest first (see :func:`read_requests`)."""
        return read_requests(self.requests_log)


def read_requests(path: Path) -> list[WriteRequest]:
    """The write requests a lab Kubernetes API logged: ``method``, ``path``, ``query``,
    ``content_type`` and ``body`` (parsed JSON, else the text), oldest first."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _require_kmock() -> None:
    if importlib.util.find_spec("kmock") is None:
        raise errors.MissingTool(
            "the lab serves Kubernetes objects with kmock, which is not installed; "
            "install it into this environment: pip install 'kmock==0.8'"
        )


# --- the child process ------------------------------------------------------------------------


class _Writes(NamedTuple):
    """How the child handles writes: where it logs them, how long it holds real ones."""

    log: Path | None = None
    hold_s: float = 0.0


def _emulator(
    objects: Sequence[Mapping[str, Any]],
    *,
    writes: _Writes | None = None,
    logs: Path | None = None,
) -> Any:
    """A kmock emulator loaded with the objects and every known resource declared."""
    policy = writes or _Writes()
    import aiohttp.web  # noqa: PLC0415  # kmock's server; only the child process needs it
    import kmock  # noqa: PLC0415  # only the child process needs it; see _require_kmock

    class LabEmulator(kmock.KubernetesEmulator):
        async def _serve_list(self, request: Any) -> ObjectList:
            payload: Any = await super()._serve_list(request)
            return _typed_list(request, payload["items"])

        async def _handle(self, request: Any) -> Any:
            if request.method.value != "GET":
                _log_write(policy.log, request)
            elif request.subresource == "log" and request.resource is not None:
                return self._serve_log(request)
            if request.method.value == "PATCH" and request.resource is not None and request.name:
                try:
                    answer, changed = await self._serve_patch(request)
                except Refused as refusal:
                    return aiohttp.web.json_response(refusal.status(), status=refusal.code)
                if changed and policy.hold_s > 0:
                    await asyncio.sleep(policy.hold_s)
                return aiohttp.web.json_response(answer)
            return await super()._handle(request)

        def _serve_log(self, request: Any) -> Any:
            """``pods/<name>/log`` from the scenario's ``logs/`` folder (diagnose.lab.podlogs)."""
            key = (request.resource, request.namespace, request.name)
            if _stored(self.objects, key) is None:
                refused = Refused(404, "NotFound", f'pods "{request.name}" not found')
                return aiohttp.web.json_response(refused.status(), status=404)
            code, text = podlogs.pod_log(logs, pod=request.name, params=request.params)
            if code != 200:
                refused = Refused(code, "BadRequest", text)
                return aiohttp.web.json_response(refused.status(), status=code)
            return aiohttp.web.Response(text=text, content_type="text/plain")

        async def _serve_patch(self, request: Any) -> tuple[dict[str, Any], bool]:
            """The patched object, stored unless ``dryRun=All``; (object, whether stored)."""
            dry_run = request.params.get("dryRun")
            if dry_run not in (None, "All"):
                raise Refused(400, "BadRequest", f"unsupported dry run value {dry_run!r}")
            key = (request.resource, request.namespace, request.name)
            async with self._lock:
                stored = _stored(self.objects, key)
                if stored is None or stored.deleted or request.subresource:
                    raise Refused(
                        404, "NotFound", f'{request.resource.plural} "{request.name}" not found'
                    )
                before = stored.raw
                after = patched(
                    before,
                    body=request.body,
                    content_type=request.headers.get("Content-Type", ""),
                    built_in=_is_built_in(request.resource),
                )
                after = _bumped(before, after)
                if dry_run == "All":
                    return after, False
                stored.history.append(after)
                return after, True

    emulator = LabEmulator()
    for name, kind in KNOWN_KINDS.items():
        info = kmock.ResourceInfo(
            kind="Event" if name == "EventsV1" else name,
            namespaced=kind.namespaced,
            verbs={"get", "list", "watch", "patch"},
        )
        emulator.resources[f"{kind.group_version}/{kind.plural}"] = info
    for obj in served_objects(objects):
        _, kind = kind_of(obj)
        metadata = obj.setdefault("metadata", {})
        metadata.setdefault("resourceVersion", RESOURCE_VERSION)
        namespace = metadata.get("namespace") if kind.namespaced else None
        key = (f"{kind.group_version}/{kind.plural}", namespace, metadata.get("name", ""))
        emulator.objects[key] = obj
    return emulator


def _stored(objects: Any, key: tuple[Any, ...]) -> Any:
    """kmock's object of that key, or None (its store has no ``get``)."""
    try:
        return objects[key]
    except KeyError:
        return None


def _is_built_in(resource: Any) -> bool:
    group_version = f"{resource.group}/{resource.version}" if resource.group else resource.version
    return any(
        (k.group_version, k.plural) == (group_version, resource.plural)
        for k in KNOWN_KINDS.values()
    )


def _bumped(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """A new resourceVersion always; a new generation when the spec changed."""
    meta = dict(after.get("metadata") or {})
    old_meta = before.get("metadata") or {}
    meta["resourceVersion"] = str(int(str(old_meta.get("resourceVersion") or 0)) + 1)
    if after.get("spec") != before.get("spec"):
        meta["generation"] = int(old_meta.get("generation") or 1) + 1
    return {**after, "metadata": meta}


def _log_write(path: Path | None, request: Any) -> None:
    if path is None:
        return
    try:
        body: Any = json.loads(request.body) if request.body else None
    except ValueError:
        body = request.text
    record: WriteRequest = {
        "method": request.method.value,
        "path": request.url.path,
        "query": dict(request.params),
        "content_type": request.headers.get("Content-Type", ""),
        "body": body,
    }
    with path.open("a", encoding="utf-8") as log:
        log.write(json.dumps(record, sort_keys=True) + "\n")


def _typed_list(request: Any, items: Sequence[Mapping[str, Any]]) -> ObjectList:
    labels = request.params.get("labelSelector")
    fields = request.params.get("fieldSelector")
    kept = [
        item
        for item in items
        if (not labels or matches_labels(item.get("metadata", {}).get("labels") or {}, labels))
        and (not fields or matches_fields(item, fields))
    ]
    resource = request.resource
    group_version = f"{resource.group}/{resource.version}" if resource.group else resource.version
    kind = next((i["kind"] for i in kept), None) or _kind_for(resource.plural, group_version)
    return {
        "apiVersion": group_version,
        "kind": f"{kind}List",
        "metadata": {"resourceVersion": RESOURCE_VERSION},
        "items": kept,
    }


def _kind_for(plural: str, group_version: str) -> str:
    for name, kind in KNOWN_KINDS.items():
        if (kind.plural, kind.group_version) == (plural, group_version):
            return "Event" if name == "EventsV1" else name
    return plural.capitalize()


async def _serve(
    objects: Sequence[Mapping[str, Any]], *, writes: _Writes, logs: Path | None = None
) -> None:
    import kmock  # noqa: PLC0415  # only the child process needs it; see _require_kmock

    emulator = _emulator(objects, writes=writes, logs=logs)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with emulator, kmock.Server(emulator) as server:
        print(f"listening {server.port}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diagnose.lab.kubeapi")
    parser.add_argument("objects", type=Path, help="a JSON list of Kubernetes objects")
    parser.add_argument("--requests", type=Path, help="append every write request here")
    parser.add_argument(
        "--hold-writes-s", type=float, default=0.0, help="delay answers to stored writes"
    )
    parser.add_argument("--logs", type=Path, help="serve pods/log from this folder's <pod>.log")
    args = parser.parse_args(argv)
    objects = json.loads(args.objects.read_text(encoding="utf-8"))
    writes = _Writes(log=args.requests, hold_s=args.hold_writes_s)
    asyncio.run(_serve(objects, writes=writes, logs=args.logs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
