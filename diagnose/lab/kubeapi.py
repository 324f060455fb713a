"""A Kubernetes API over recorded objects, for the real ``kubernetes`` client.

The server is kopf's ``kmock`` Kubernetes emulator in a child process
(``python -m diagnose.lab.kubeapi OBJECTS.json``), with what the client needs on top: typed
lists (``kind: PodList``, ``metadata.resourceVersion``), label selectors, field selectors
(equality on any dotted path, e.g. ``involvedObject.name=checkout``), and each core ``Event``
also served as an ``events.k8s.io/v1`` Event. It serves discovery, list (namespaced and
across namespaces), get by name, and watch (the current objects, then nothing). Writes are
accepted and change only the in-memory copy (kmock's emulator behaviour); nothing persists.
``Namespace`` objects are not served: kmock 0.8 reads ``/api/v1/namespaces`` as a namespace
prefix and fails on it.
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
from typing import Any, NamedTuple

from diagnose.domain import errors
from diagnose.lab import processes

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
    "ServiceAccount": Kind("v1", "serviceaccounts", True),
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


# --- the parent's handle ----------------------------------------------------------------------


class KubeApiServer(processes.Server):
    """The Kubernetes API child process. Use as a context manager, or call ``stop``."""

    def __init__(self, child: processes.Child, *, url: str) -> None:
        self.child = child
        self.url = url

    @classmethod
    def serve(cls, objects: list[dict[str, Any]], *, workdir: Path) -> KubeApiServer:
        """Serve ``objects`` on a free port of 127.0.0.1; returns once it answers."""
        _require_kmock()
        workdir.mkdir(parents=True, exist_ok=True)
        dump = workdir / "kubernetes-objects.json"
        dump.write_text(json.dumps(objects), encoding="utf-8")
        argv = [sys.executable, "-m", "diagnose.lab.kubeapi", str(dump)]
        log = workdir / "kubeapi.log"
        child, process = processes.spawn(argv, log=log, stdout_pipe=True)
        assert process.stdout is not None
        line = processes.read_line(process.stdout, timeout=READY_TIMEOUT_S)
        process.stdout.close()
        if not line.startswith("listening "):
            child.stop()
            raise errors.LabError("the Kubernetes API did not start:\n" + processes.tail(log))
        return cls(child, url=f"http://127.0.0.1:{int(line.split()[1])}")

    def stop(self) -> None:
        self.child.stop()


def _require_kmock() -> None:
    if importlib.util.find_spec("kmock") is None:
        raise errors.MissingTool(
            "the lab serves Kubernetes objects with kmock, which is not installed; "
            "install it into this environment: pip install 'kmock==0.8'"
        )


# --- the child process ------------------------------------------------------------------------


def _emulator(objects: Sequence[Mapping[str, Any]]) -> Any:
    """A kmock emulator loaded with the objects and every known resource declared."""
    import kmock  # noqa: PLC0415  # only the child process needs it; see _require_kmock

    class LabEmulator(kmock.KubernetesEmulator):
        async def _serve_list(self, request: Any) -> dict[str, Any]:
            payload: Any = await super()._serve_list(request)
            return _typed_list(request, payload["items"])

    emulator = LabEmulator()
    for name, kind in KNOWN_KINDS.items():
        info = kmock.ResourceInfo(
            kind="Event" if name == "EventsV1" else name,
            namespaced=kind.namespaced,
            verbs={"get", "list", "watch"},
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


def _typed_list(request: Any, items: list[dict[str, Any]]) -> dict[str, Any]:
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


async def _serve(objects: Sequence[Mapping[str, Any]]) -> None:
    import kmock  # noqa: PLC0415  # only the child process needs it; see _require_kmock

    emulator = _emulator(objects)
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
    args = parser.parse_args(argv)
    objects = json.loads(args.objects.read_text(encoding="utf-8"))
    asyncio.run(_serve(objects))
    return 0


if __name__ == "__main__":
    sys.exit(main())
