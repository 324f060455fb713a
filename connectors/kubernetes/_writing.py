"""Writes: catalogue actions only, resolved against the live object and sent as exact patches
with their own credentials."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from connectors.kubernetes import _common, _reading
from diagnose.domain import errors
from diagnose.domain.models import Evidence, Status
from diagnose.domain.ports import (
    ActionSpec,
    PatchPayload,
)

# --- writes: catalogue actions only -------------------------------------------------------

ACTION_MARKER = "diagnose.dev/action"
"""Annotation each applied action leaves on its object: the idempotency key of the action, so
an attempt repeated after a crash can see that the first one landed."""

ROLLBACK_KEPT_ANNOTATIONS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        _common.REVISION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
        ACTION_MARKER,
    }
)
"""Annotations a rollback keeps from the Deployment rather than copying from the ReplicaSet
(what ``kubectl rollout undo`` does, plus our marker)."""

_TEMPLATE_HASH = "pod-template-hash"
_CONTENT_TYPES = {
    "json": "application/json-patch+json",
    "merge": "application/merge-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}
_FIELD_MANAGER = "diagnose"


class KubernetesWriter:
    """A :class:`~diagnose.domain.ports.ClusterWriter`: resolves catalogue actions into exact
    patches and sends them, with its own credentials (never the read connector's).

    ``dry_run_only`` writers refuse to send anything but ``dryRun=All``: they dry-run
    proposals on the read credentials when no write credentials are configured (a
    least-privilege read role is then refused, and the dry run says so).
    """

    def __init__(
        self,
        host: str | None = None,
        *,
        timeout_s: float = 10.0,
        configuration: client.Configuration | None = None,
        dry_run_only: bool = False,
    ) -> None:
        self._reader = _reading.KubernetesConnector(
            host, timeout_s=timeout_s, configuration=configuration
        )
        self.host = self._reader.host
        self.dry_run_only = dry_run_only
        self._timeout_s = timeout_s
        self._apps = client.AppsV1Api(self._reader._api_client)
        self._core = client.CoreV1Api(self._reader._api_client)

    @classmethod
    def from_environment(
        cls,
        *,
        context: str | None = None,
        config_file: str | None = None,
        timeout_s: float = 10.0,
        dry_run_only: bool = False,
    ) -> KubernetesWriter:
        """Credentials from a kubeconfig (see :meth:`KubernetesConnector.from_environment`)."""
        reader = _reading.KubernetesConnector.from_environment(
            context=context, config_file=config_file, timeout_s=timeout_s
        )
        configuration = reader._api_client.configuration
        reader.close()
        return cls(configuration=configuration, timeout_s=timeout_s, dry_run_only=dry_run_only)

    def close(self) -> None:
        self._reader.close()

    # --- ClusterWriter --------------------------------------------------------------------

    def resolve(self, action: ActionSpec) -> Evidence:
        """raw: the ``PatchPayload``, or None when the action cannot be carried out."""
        kind = action["kind"]
        query = f"kubectl get {kind}/{action['name']} -n {action['namespace']} -o yaml"
        if kind not in _PATHS or action["op"] not in _RESOLVERS:
            return _common._evidence(query, Status.ERROR, f"not a catalogue action: {action}", None)
        try:
            live = self._get(action)
            body = _RESOLVERS[action["op"]](self, action, live)
        except _common._CallError as failure:
            return _common._evidence(query, failure.status, failure.summary, None)
        request: PatchPayload = {
            "path": _PATHS[kind].format(namespace=action["namespace"], name=action["name"]),
            "namespace": action["namespace"],
            "name": action["name"],
            "kind": kind,
            "patch_type": body[0],
            "body": body[1],
        }
        return _common._evidence(
            query, Status.OK, f"{action['op']} resolved against the live object", request
        )

    def patch(self, request: PatchPayload, *, dry_run: bool, marker: str) -> Evidence:
        """raw: ``{"outcome": accepted|refused|unreachable, "code", "message", "result"}``."""
        if not dry_run and self.dry_run_only:
            raise errors.ConfigurationError(
                "this Kubernetes client holds read credentials: it only dry-runs"
            )
        body = with_marker(request, marker)
        query = _kubectl_patch(request, body=body, dry_run=dry_run)
        try:
            send = (
                self._core.patch_namespaced_service
                if request["kind"] == "service"
                else self._apps.patch_namespaced_deployment
            )
            response: Any = send(
                request["name"],
                request["namespace"],
                body,
                dry_run="All" if dry_run else None,
                field_manager=_FIELD_MANAGER,
                _content_type=_CONTENT_TYPES[request["patch_type"]],
                _preload_content=False,
                _request_timeout=self._timeout_s,
            )
            result = json.loads(response.data)
        except ApiException as exc:
            status = Status.DENIED if exc.status in (401, 403) else Status.ERROR
            outcome = "refused" if exc.status else "unreachable"
            message = _common._status_message(exc)
            summary = f"{outcome} by the API server (HTTP {exc.status}): {message}"
            raw = {"outcome": outcome, "code": exc.status, "message": message, "result": None}
            return _common._evidence(query, status, summary, raw)
        except (HTTPError, ValueError) as exc:
            failure = (
                self._reader._transport_failure(exc)
                if isinstance(exc, HTTPError)
                else _common._CallError(
                    Status.ERROR, f"{self.host} did not answer with JSON ({exc})"
                )
            )
            raw = {
                "outcome": "unreachable",
                "code": None,
                "message": failure.summary,
                "result": None,
            }
            return _common._evidence(query, Status.ERROR, f"unreachable: {failure.summary}", raw)
        service = request["kind"] == "service"
        shown = _service_view(result) if service else _workload_view(result)
        what = "accepted (dry run, nothing stored)" if dry_run else "applied"
        raw = {"outcome": "accepted", "code": 200, "message": what, "result": shown}
        described = _describe_service(shown) if service else _describe(shown)
        return _common._evidence(query, Status.OK, f"{what}: {described}", raw)

    def marker(self, request: PatchPayload) -> str | None:
        try:
            found = self._get(
                {
                    "op": "",
                    "kind": request["kind"],
                    "namespace": request["namespace"],
                    "name": request["name"],
                }
            )
        except _common._CallError as failure:
            raise errors.SourceUnavailable(failure.summary) from None
        value = ((found.get("metadata") or {}).get("annotations") or {}).get(ACTION_MARKER)
        return str(value) if value is not None else None

    # --- reading what a patch is built from ---------------------------------------------

    def _get(self, action: Mapping[str, Any]) -> _common.Obj:
        if action["kind"] == "service":
            return self._get_service(action)
        return self._get_deployment(action)

    def _get_service(self, action: Mapping[str, Any]) -> _common.Obj:
        try:
            response: Any = self._core.read_namespaced_service(
                action["name"],
                action["namespace"],
                _preload_content=False,
                _request_timeout=self._timeout_s,
            )
            body: _common.Obj = json.loads(response.data)
        except ApiException as exc:
            raise self._reader._api_failure(
                exc, plural="services", namespace=action["namespace"]
            ) from exc
        except HTTPError as exc:
            raise self._reader._transport_failure(exc) from exc
        return body

    def _get_deployment(self, action: Mapping[str, Any]) -> _common.Obj:
        def fetch() -> _common.Obj:
            response: Any = self._apps.read_namespaced_deployment(
                action["name"],
                action["namespace"],
                _preload_content=False,
                _request_timeout=self._timeout_s,
            )
            body: _common.Obj = json.loads(response.data)
            return body

        try:
            return fetch()
        except ApiException as exc:
            raise self._reader._api_failure(
                exc, plural="deployments", namespace=action["namespace"]
            ) from exc
        except HTTPError as exc:
            raise self._reader._transport_failure(exc) from exc

    def _rollback(self, action: ActionSpec, deployment: _common.Obj) -> tuple[str, Any]:
        """``kubectl rollout undo``: the ReplicaSet's template (without its hash label) and the
        annotations it carried, as a JSON patch."""
        name = action["name"]
        items = self._reader._list(
            self._apps.list_namespaced_replica_set,
            plural="replicasets",
            namespace=action["namespace"],
        )
        owned = [
            rs for rs in items if _common._owner(rs.get("metadata") or {}) == f"deployment/{name}"
        ]
        current = _common._revision(deployment.get("metadata") or {})
        wanted = action.get("revision")
        by_revision = {_common._revision(rs.get("metadata") or {}): rs for rs in owned}
        if wanted is None:
            older = [r for r in by_revision if r is not None and (current is None or r < current)]
            wanted = max(older) if older else None
        if wanted is None or wanted not in by_revision:
            raise _common._CallError(
                Status.EMPTY, f"no ReplicaSet of deployment/{name} has revision {wanted}"
            )
        template = json.loads(
            json.dumps((by_revision[wanted].get("spec") or {}).get("template") or {})
        )
        labels = (template.get("metadata") or {}).get("labels") or {}
        labels.pop(_TEMPLATE_HASH, None)
        live = json.loads(json.dumps((deployment.get("spec") or {}).get("template") or {}))
        ((live.get("metadata") or {}).get("labels") or {}).pop(_TEMPLATE_HASH, None)
        if live == template:
            raise _common._CallError(
                Status.EMPTY,
                f"skipped: deployment/{name}'s template already matches revision {wanted}",
            )
        ours = (deployment.get("metadata") or {}).get("annotations") or {}
        theirs = (by_revision[wanted].get("metadata") or {}).get("annotations") or {}
        annotations = {k: v for k, v in ours.items() if k in ROLLBACK_KEPT_ANNOTATIONS}
        annotations |= {k: v for k, v in theirs.items() if k not in ROLLBACK_KEPT_ANNOTATIONS}
        annotations.pop(ACTION_MARKER, None)
        return "json", [
            {"op": "replace", "path": "/spec/template", "value": template},
            {"op": "replace", "path": "/metadata/annotations", "value": annotations},
        ]

    def _scale(self, action: ActionSpec, deployment: _common.Obj) -> tuple[str, Any]:
        current = int((deployment.get("spec") or {}).get("replicas", 1))
        replicas = action.get("replicas")
        if replicas is None:  # the catalogue's "half as many again, plus one"
            replicas = current * 3 // 2 + 1
        return "strategic", {"spec": {"replicas": int(replicas)}}

    def _set_limits(self, action: ActionSpec, deployment: _common.Obj) -> tuple[str, Any]:
        names = {str(c.get("name")) for c in _common._containers(deployment.get("spec") or {})}
        limits = action.get("limits") or {}
        unknown = sorted(set(limits) - names)
        if unknown or not limits:
            raise _common._CallError(
                Status.EMPTY,
                f"deployment/{action['name']} has no container "
                + (", ".join(unknown) or "(none named)"),
            )
        containers = [
            {"name": name, "resources": {"limits": dict(value)}}
            for name, value in sorted(limits.items())
        ]
        return "strategic", {"spec": {"template": {"spec": {"containers": containers}}}}

    def _restore_service(self, action: ActionSpec, service: _common.Obj) -> tuple[str, Any]:
        """A Service's selector, or one port's targetPort, set to the values given (read by
        the analysis from the Service's last-applied configuration, else the pods' template)
        as a merge patch; nothing else of it changes."""
        spec = service.get("spec") or {}
        name = action["name"]
        if action.get("selector"):
            wanted = dict(action.get("selector") or {})
            live = dict(spec.get("selector") or {})
            if live == wanted:
                raise _common._CallError(
                    Status.EMPTY, f"skipped: service/{name}'s selector is that"
                )
            gone: dict[str, Any] = {k: None for k in live if k not in wanted}
            return "merge", {"spec": {"selector": wanted | gone}}
        ports = [dict(p) for p in spec.get("ports") or []]
        chosen = [p for p in ports if p.get("port") == action.get("port")]
        if not chosen or action.get("target_port") is None:
            raise _common._CallError(
                Status.EMPTY, f"service/{name} has no port {action.get('port')}"
            )
        chosen[0]["targetPort"] = int(action.get("target_port") or 0)
        return "merge", {"spec": {"ports": ports}}  # a merge patch replaces the list whole


_RESOLVERS: dict[str, Callable[[KubernetesWriter, ActionSpec, _common.Obj], tuple[str, Any]]] = {
    "rollback": KubernetesWriter._rollback,
    "scale": KubernetesWriter._scale,
    "set_limits": KubernetesWriter._set_limits,
    "restore_service": KubernetesWriter._restore_service,
}
"""How each catalogue action is carried out, by its resolver name (``FixKind.resolver`` in
``diagnose.domain.fixes``; a test checks that every one the catalogue names is here)."""


def with_marker(request: PatchPayload, marker: str) -> Any:
    """The patch body with the action's marker annotation added."""
    body = json.loads(json.dumps(request["body"]))
    if request["patch_type"] == "json":
        for operation in body:
            if operation.get("path") == "/metadata/annotations":
                operation["value"] = dict(operation.get("value") or {}) | {ACTION_MARKER: marker}
                return body
        key = ACTION_MARKER.replace("~", "~0").replace("/", "~1")
        return [*body, {"op": "add", "path": f"/metadata/annotations/{key}", "value": marker}]
    metadata = body.setdefault("metadata", {})
    metadata.setdefault("annotations", {})[ACTION_MARKER] = marker
    return body


def _kubectl_patch(request: PatchPayload, *, body: Any, dry_run: bool) -> str:
    text = json.dumps(body, separators=(",", ":"), sort_keys=True).replace("'", "'\\''")
    return (
        f"kubectl patch {request['kind']}/{request['name']} -n {request['namespace']} "
        f"--type={request['patch_type']} -p '{text}'" + (" --dry-run=server" if dry_run else "")
    )


def _workload_view(obj: _common.Obj) -> dict[str, Any]:
    """What a reviewer checks in a patched workload: images, replicas, limits, marker."""
    meta, spec, _ = _common._parts(obj)
    return {
        "name": meta.get("name"),
        "replicas": spec.get("replicas"),
        "images": _common._images(spec),
        "limits": {c: r["limits"] for c, r in _common._resources(spec).items()},
        "generation": meta.get("generation"),
        "marker": (meta.get("annotations") or {}).get(ACTION_MARKER),
    }


_PATHS = {
    "deployment": "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
    "service": "/api/v1/namespaces/{namespace}/services/{name}",
}
"""The kinds a catalogue action may patch, and their API paths."""


def _service_view(obj: _common.Obj) -> dict[str, Any]:
    """What a reviewer checks in a patched Service: its selector, ports and marker."""
    meta, spec, _ = _common._parts(obj)
    return {
        "name": meta.get("name"),
        "selector": spec.get("selector") or {},
        "ports": [
            {"port": p.get("port"), "target_port": p.get("targetPort")}
            for p in spec.get("ports") or []
        ],
        "marker": (meta.get("annotations") or {}).get(ACTION_MARKER),
    }


def _describe_service(view: Mapping[str, Any]) -> str:
    ports = ", ".join(f"{p['port']}→{p['target_port']}" for p in view.get("ports") or [])
    return f"service {view.get('name')} would select {view.get('selector')} on ports {ports}"


def _describe(view: Mapping[str, Any]) -> str:
    return (
        f"{view.get('name')} would run {', '.join(view.get('images') or []) or 'no image'} "
        f"with {view.get('replicas')} replica(s), limits {view.get('limits') or {}}"
    )
