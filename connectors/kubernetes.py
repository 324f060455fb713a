"""Kubernetes: the only module that imports ``kubernetes`` (and the ``urllib3`` it runs on).

:class:`KubernetesConnector` implements :class:`diagnose.domain.ports.ClusterSource`, read-only:
it lists Deployments, ReplicaSets, ConfigMaps and Secrets' metadata, Pods and Events of one
namespace and translates them into the payloads of ``diagnose.domain.ports``. The API saying no
(401/403, refused, timed out) is evidence with a status, never an exception.

One choke point, :meth:`KubernetesConnector._list`, owns timeouts, retries, paging and error
translation. It asks the client for the raw JSON (``_preload_content=False``) instead of its
models: the models deserialise every field of every object into Python objects (slow on big
namespaces, and lists served without ``kind``/``apiVersion`` by test servers do not map), and we
read a dozen fields. It also lets Secrets be listed as ``PartialObjectMetadataList``, so their
data never leaves the API server.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError, MaxRetryError, NewConnectionError, ReadTimeoutError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from connectors import _http, delivery
from diagnose.domain import cluster, errors
from diagnose.domain.models import Evidence, Status, Window, format_time, parse_time
from diagnose.domain.ports import (
    ActionSpec,
    ConfigPayload,
    ContainerStatusPayload,
    DeploymentPayload,
    EventPayload,
    PatchPayload,
    PodPayload,
    ReplicaSetPayload,
)

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


class KubernetesConnector:
    """A read-only :class:`~diagnose.domain.ports.ClusterSource` over the Kubernetes API.

    ``host`` is an API server URL used without credentials (the lab); otherwise pass a client
    ``configuration`` or use :meth:`from_environment`. ``timeout_s`` bounds each request.
    """

    def __init__(
        self,
        host: str | None = None,
        *,
        timeout_s: float = 10.0,
        configuration: client.Configuration | None = None,
    ) -> None:
        if (host is None) == (configuration is None):
            raise ValueError("pass exactly one of host and configuration")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if configuration is None:
            configuration = client.Configuration(host=host.rstrip("/") if host else host)
        # Our own retries (see connectors/_http.py): the pool's default retries read timeouts.
        configuration.retries = urllib3.Retry(total=0, read=False, redirect=0)
        self.host = str(configuration.host)
        self._timeout_s = timeout_s
        self._retry = _http.RetryPolicy(budget_s=timeout_s)
        self._api_client = client.ApiClient(configuration)
        self._core = client.CoreV1Api(self._api_client)
        self._apps = client.AppsV1Api(self._api_client)

    def close(self) -> None:
        """Release the HTTP connection pool (no thread pool exists: we never use async_req)."""
        self._api_client.rest_client.pool_manager.clear()

    def __enter__(self) -> KubernetesConnector:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @classmethod
    def from_environment(
        cls,
        *,
        context: str | None = None,
        config_file: str | None = None,
        timeout_s: float = 10.0,
    ) -> KubernetesConnector:
        """Credentials from kubeconfig (``config_file``, else ``$KUBECONFIG`` as it was when
        the SDK was imported, else ``~/.kube/config``; the named or current context), else from
        the in-cluster service account when no context is named.

        Raises :class:`~diagnose.domain.errors.ConfigurationError` when neither is usable.
        """
        configuration = client.Configuration()
        try:
            config.load_kube_config(  # type: ignore[no-untyped-call]  # untyped in the SDK
                config_file=config_file, context=context, client_configuration=configuration
            )
        except (ConfigException, OSError) as kube_exc:
            if context is not None or config_file is not None:
                raise errors.ConfigurationError(
                    f"cannot use kubeconfig {config_file or ''} context {context or '(current)'}: "
                    f"{kube_exc}; check DIAGNOSE_KUBERNETES_CONTEXT against "
                    "`kubectl config get-contexts`"
                ) from kube_exc
            try:
                config.load_incluster_config(  # type: ignore[no-untyped-call]  # untyped SDK
                    client_configuration=configuration
                )
            except ConfigException as exc:
                raise errors.ConfigurationError(
                    f"no Kubernetes credentials: no usable kubeconfig ({kube_exc}) and not "
                    "running in a cluster; set KUBECONFIG, DIAGNOSE_KUBERNETES_CONTEXT or "
                    "DIAGNOSE_KUBERNETES_URL, or set DIAGNOSE_KUBERNETES_ENABLED=false"
                ) from exc
        return cls(configuration=configuration, timeout_s=timeout_s)

    # --- ClusterSource --------------------------------------------------------------------

    def list_deployments(self, *, namespace: str) -> Evidence:
        """raw: ``list[DeploymentPayload]``."""
        return self._evidence_for(
            "deployments",
            namespace=namespace,
            call=self._apps.list_namespaced_deployment,
            translate=_deployment,
        )

    def list_replicasets(self, *, namespace: str) -> Evidence:
        """raw: ``list[ReplicaSetPayload]``, oldest revision first."""
        return self._evidence_for(
            "replicasets",
            namespace=namespace,
            call=self._apps.list_namespaced_replica_set,
            translate=_replicaset,
        )

    def list_pods(self, *, namespace: str) -> Evidence:
        """raw: ``list[PodPayload]``."""
        return self._evidence_for(
            "pods", namespace=namespace, call=self._core.list_namespaced_pod, translate=_pod
        )

    def list_configs(self, *, namespace: str) -> Evidence:
        """ConfigMaps, and Secrets' metadata only. raw: ``list[ConfigPayload]``.

        Secrets are optional: when they cannot be listed the ConfigMaps still come back, with a
        note in the summary. Secret data is never requested (metadata-only listing) and, if a
        server sends it anyway, never read: a Secret's ``digest`` is "" and its ``keys`` come
        from ``managedFields``.
        """
        query = (
            f"kubectl get configmaps -n {namespace} --show-managed-fields -o yaml; "
            f"kubectl get secrets -n {namespace} --show-managed-fields "
            "-o jsonpath='{.items[*].metadata}'"
        )
        try:
            maps = self._list(
                self._core.list_namespaced_config_map, plural="configmaps", namespace=namespace
            )
        except _CallError as failure:
            return _evidence(query, failure.status, failure.summary, [])
        configs = [_configmap(item) for item in maps]
        note = ""
        try:
            secrets = self._list(
                self._core.list_namespaced_secret,
                plural="secrets",
                namespace=namespace,
                accept=_METADATA_ONLY,
            )
            configs += [_secret(item) for item in secrets]
        except _CallError as failure:
            note = f"; secrets skipped ({failure.status.value}): {failure.summary}"
        configs.sort(key=lambda c: (c["kind"], c["name"]))
        summary = _count(configs, "kind") + note
        status = Status.OK if configs else Status.EMPTY
        return _evidence(query, status, summary or "no configmaps or secrets", configs)

    def list_events(self, *, namespace: str, window: Window) -> Evidence:
        """Core v1 Events whose [first, last] time overlaps the window. raw:
        ``list[EventPayload]``, oldest first."""
        query = f"kubectl get events -n {namespace} --sort-by=.lastTimestamp -o yaml"
        try:
            items = self._list(
                self._core.list_namespaced_event, plural="events", namespace=namespace
            )
        except _CallError as failure:
            return _evidence(query, failure.status, failure.summary, [], window=window)
        events = [_event(item) for item in items]
        kept = [e for e in events if _overlaps(e, window)]
        kept.sort(key=lambda e: (e["last"] or e["first"] or "", e["object"]))
        summary = f"{_http.plural(len(kept), 'event')} ({_count(kept, 'type')})" if kept else ""
        summary = summary or "no events in the window"
        if len(kept) < len(events):
            summary += f" ({len(events) - len(kept)} outside the window left out)"
        status = Status.OK if kept else Status.EMPTY
        return _evidence(query, status, summary, kept, window=window)

    # --- pod logs (docs/logs.md) ----------------------------------------------------------

    def read_pod_log(
        self,
        *,
        namespace: str,
        pod: str,
        container: str | None = None,
        since: str | None = None,
        tail_lines: int | None = None,
        limit_bytes: int | None = None,
        previous: bool = False,
    ) -> Evidence:
        """One container's log through ``pods/log``, each line with its RFC 3339 timestamp
        first (``timestamps=true``), from ``since`` (``sinceTime``), at most ``tail_lines``
        last lines and ``limit_bytes`` bytes; ``previous``: the container's last terminated
        instance. raw: the lines as sent, not yet redacted (``connectors.logs`` redacts them
        before anything is kept). A pod with no such container, or no previous instance, is
        ``empty``."""
        params: list[tuple[str, Any]] = [("timestamps", "true")]
        params += [("container", container)] if container else []
        params += [("sinceTime", since)] if since else []
        params += [("tailLines", tail_lines)] if tail_lines is not None else []
        params += [("limitBytes", limit_bytes)] if limit_bytes is not None else []
        params += [("previous", "true")] if previous else []
        query = _logs_command(namespace=namespace, pod=pod, params=params)

        def fetch() -> bytes:
            request = self._api_client.param_serialize(
                method="GET",
                resource_path="/api/v1/namespaces/{namespace}/pods/{name}/log",
                path_params={"namespace": namespace, "name": pod},
                query_params=params,
                header_params={"Accept": "text/plain"},
                auth_settings=["BearerToken"],
            )
            response = self._api_client.call_api(*request, _request_timeout=self._timeout_s)
            response.read()  # type: ignore[no-untyped-call]  # untyped in the SDK
            answer: Any = self._api_client.response_deserialize(response, {"200": "bytearray"})
            return bytes(answer.data)

        try:
            body = _http.call_with_retries(fetch, policy=self._retry, retryable=_is_retryable)
        except ApiException as exc:
            if exc.status in (400, 404) and _is_kubernetes_status(exc):
                return _evidence(query, Status.EMPTY, _status_message(exc), [])
            failure = self._api_failure(exc, plural="pods/log", namespace=namespace)
            return _evidence(query, failure.status, failure.summary, [])
        except HTTPError as exc:
            failure = self._transport_failure(exc)
            return _evidence(query, failure.status, failure.summary, [])
        lines = body.decode("utf-8", errors="replace").splitlines()
        status = Status.OK if lines else Status.EMPTY
        return _evidence(query, status, _http.plural(len(lines), "log line"), lines)

    def read_state(self, *, kind: str, namespace: str) -> Evidence:
        """The current state of one kind of object (``diagnose.domain.cluster.STATE_KINDS``;
        nodes cluster-wide, the rest in ``namespace``). raw: that kind's state payloads."""
        if kind not in _STATE_READERS:
            raise ValueError(f"not a state kind: {kind!r}; one of {', '.join(_STATE_READERS)}")
        api, method, translate = _STATE_READERS[kind]
        call = getattr(self._state_api(api), method)
        # Cited as `-o wide` (the state a person checks), which also keeps these records apart
        # from the change timeline's `-o yaml` reads of the same kinds: evidence ids come from
        # the query, and a state read must not replace the timeline's pods or deployments.
        if kind == "nodes":
            query = "kubectl get nodes -o wide"
            listing = functools.partial(_cluster_wide, call)
        else:
            query = f"kubectl get {kind} -n {namespace} -o wide"
            listing = call
        try:
            items = self._list(listing, plural=kind, namespace=namespace)
        except _CallError as failure:
            return _evidence(query, failure.status, failure.summary, [])
        payloads = sorted((translate(item) for item in items), key=lambda p: str(p["name"]))
        if not payloads:
            return _evidence(query, Status.EMPTY, f"no {kind}", [])
        return _evidence(query, Status.OK, _http.plural(len(payloads), kind[:-1]), payloads)

    def list_deliveries(self, *, namespace: str) -> Evidence:
        """Argo CD Applications, Flux Kustomizations and HelmReleases that target
        ``namespace`` (listed cluster-wide: they live in their tools' namespaces) and the Helm
        releases in it (Secrets labelled ``owner=helm``), translated by ``connectors.delivery``
        (docs/changes.md). A tool that is not installed has nothing to list; one the role may
        not read is said in the summary. raw: ``list[delivery.DeliveryPayload]``."""
        query = (
            "kubectl get applications.argoproj.io,kustomizations.kustomize.toolkit.fluxcd.io,"
            f"helmreleases.helm.toolkit.fluxcd.io -A; kubectl get secrets -n {namespace} "
            "-l owner=helm"
        )
        read, failures = self._delivery_objects(namespace=namespace)
        repositories = delivery.git_repositories(read["gitrepositories"])
        payloads = [
            *(delivery.argocd_application(o) for o in read["applications"]),
            *(
                delivery.flux_kustomization(o, repositories=repositories)
                for o in read["kustomizations"]
            ),
            *(delivery.flux_helmrelease(o) for o in read["helmreleases"]),
            *delivery.helm_releases(read["secrets"]),
        ]
        mine = [p for p in payloads if namespace in (p["target_namespace"], p["namespace"])]
        notes = "; ".join(f.summary for f in failures)
        if not mine:
            status = failures[0].status if failures else Status.EMPTY
            return _evidence(query, status, notes or f"no deliveries target {namespace}", [])
        summary = _http.plural(len(mine), "delivery") + (f" ({notes})" if notes else "")
        return _evidence(query, Status.OK, summary, mine)

    def _delivery_objects(self, *, namespace: str) -> tuple[dict[str, list[Obj]], list[_CallError]]:
        custom = client.CustomObjectsApi(self._api_client)
        calls: dict[str, Callable[..., Any]] = {
            plural: functools.partial(
                _cluster_wide,
                functools.partial(custom.list_cluster_custom_object, group, version, plural),
            )
            for plural, (group, version) in _DELIVERY_KINDS.items()
        }
        calls["secrets"] = functools.partial(
            self._core.list_namespaced_secret, label_selector="owner=helm"
        )
        read: dict[str, list[Obj]] = {}
        failures: list[_CallError] = []
        for plural, call in calls.items():
            try:
                read[plural] = self._list(call, plural=plural, namespace=namespace)
            except _CallError as failure:
                read[plural] = []
                failures.append(failure)
        return read, failures

    def _state_api(self, api: str) -> Any:
        if api == "core":
            return self._core
        if api == "apps":
            return self._apps
        if api == "discovery":
            return client.DiscoveryV1Api(self._api_client)
        return client.NetworkingV1Api(self._api_client)

    # --- the choke point ------------------------------------------------------------------

    def _evidence_for(
        self,
        plural: str,
        *,
        namespace: str,
        call: Callable[..., Any],
        translate: Callable[[Obj], Any],
    ) -> Evidence:
        query = f"kubectl get {plural} -n {namespace} -o yaml"
        try:
            items = self._list(call, plural=plural, namespace=namespace)
        except _CallError as failure:
            return _evidence(query, failure.status, failure.summary, [])
        payloads = sorted((translate(item) for item in items), key=_payload_order)
        if not payloads:
            return _evidence(query, Status.EMPTY, f"no {plural} in namespace {namespace}", [])
        return _evidence(query, Status.OK, _http.plural(len(payloads), plural[:-1]), payloads)

    def _list(
        self,
        call: Callable[..., Any],
        *,
        plural: str,
        namespace: str,
        accept: str | None = None,
    ) -> list[Obj]:
        """Every object of one list call, page by page, with retries and error translation.
        A namespace (or resource type) the server does not know has nothing to list."""
        items: list[Obj] = []
        token: str | None = None
        for _ in range(_MAX_PAGES):
            try:
                page = self._page(call, namespace=namespace, token=token, accept=accept)
            except ApiException as exc:
                if exc.status == 404 and _is_kubernetes_status(exc):
                    return items
                raise self._api_failure(exc, plural=plural, namespace=namespace) from exc
            items += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue") or None
            if token is None:
                break
        return items

    def _page(
        self, call: Callable[..., Any], *, namespace: str, token: str | None, accept: str | None
    ) -> Obj:
        def fetch() -> Obj:
            response = call(
                namespace,
                limit=_PAGE_SIZE,
                _continue=token,
                _preload_content=False,
                _request_timeout=self._timeout_s,
                _headers={"Accept": accept} if accept else None,
            )
            body: Obj = json.loads(response.data)
            return body

        try:
            return _http.call_with_retries(fetch, policy=self._retry, retryable=_is_retryable)
        except HTTPError as exc:
            raise self._transport_failure(exc) from exc
        except ValueError as exc:
            raise _CallError(
                Status.ERROR,
                f"{self.host} did not answer with Kubernetes API JSON ({exc}): check the URL",
            ) from exc

    # --- error translation ----------------------------------------------------------------

    def _api_failure(self, exc: ApiException, *, plural: str, namespace: str) -> _CallError:
        what = plural
        message = _status_message(exc)
        if exc.status in (401, 403):
            return _CallError(
                Status.DENIED,
                f"Kubernetes API at {self.host} denied listing {what} in namespace {namespace} "
                f"(HTTP {exc.status}: {message}): grant get/list/watch on {what} "
                "(see docs/connectors.md) or check the kubeconfig credentials",
            )
        if exc.status == 0:
            return _CallError(
                Status.ERROR,
                f"Kubernetes API at {self.host} failed before answering ({message}): check the "
                "kubeconfig's server address and certificate authority",
            )
        return _CallError(
            Status.ERROR,
            f"Kubernetes API at {self.host} failed listing {what} (HTTP {exc.status}: "
            f"{message}); try again",
        )

    def _transport_failure(self, exc: HTTPError) -> _CallError:
        reason = exc.reason if isinstance(exc, MaxRetryError) and exc.reason else exc
        advice = (
            "check the kubeconfig and its context (DIAGNOSE_KUBERNETES_CONTEXT), "
            "DIAGNOSE_KUBERNETES_URL, or start the lab with `diagnose lab up`"
        )
        if isinstance(reason, NewConnectionError):
            what = "could not be reached (refused or not resolvable)"
        elif isinstance(reason, ReadTimeoutError):
            what = f"did not answer within {self._timeout_s:g}s"
            advice = "the API server may be overloaded; raise DIAGNOSE_KUBERNETES_TIMEOUT_S"
        elif isinstance(reason, Urllib3Timeout):
            what = f"did not accept a connection within {self._timeout_s:g}s"
        else:
            what = f"failed ({type(reason).__name__}: {reason})"
        return _CallError(Status.ERROR, f"Kubernetes API at {self.host} {what}: {advice}")


# --- translation into payloads ------------------------------------------------------------


def _deployment(obj: Obj) -> DeploymentPayload:
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
        "annotations": _annotations(meta),
        "configs": _config_refs(spec),
        "env": _endpoint_env(spec),
    }


_ENDPOINT_NAME = re.compile(
    r"(URL|URI|DSN|HOST|ADDR|ADDRESS|SERVER|DATABASE|DB|DB_NAME|DBNAME|CONNECTION)$"
)
_SECRET_NAME = re.compile(r"PASS|SECRET|TOKEN|KEY|CREDENTIAL|AUTH")
_USERINFO = re.compile(r"(?<=://)[^/@?#]*@")
_PASSWORD_PARAM = re.compile(r"(?i)\b(password|passwd|pwd|sslpassword)\s*=\s*[^\s&;]*[&;]?")


def _endpoint_env(spec: Obj) -> dict[str, str]:
    """The containers' plain environment values that name an endpoint (``DATABASE_URL``,
    ``*_HOST``, JDBC URLs): where the workload connects. Values from Secrets or ConfigMaps are
    not resolved, variables whose name suggests a secret are never kept, and credentials are
    cut out of URLs and connection strings (``user:pass@`` keeps nothing, ``password=`` goes)."""
    kept: dict[str, str] = {}
    for container in _containers(spec):
        for variable in container.get("env") or []:
            name, value = str(variable.get("name") or ""), variable.get("value")
            upper = name.upper()
            if not isinstance(value, str) or _SECRET_NAME.search(upper):
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


def _config_refs(spec: Obj) -> list[str]:
    """ConfigMaps and Secrets the pod template uses (volumes, projected volumes, ``envFrom``,
    ``env[].valueFrom``), as "configmap/NAME" and "secret/NAME"."""
    pod_spec = (spec.get("template") or {}).get("spec") or {}
    sources: list[Obj] = []
    for volume in pod_spec.get("volumes") or []:
        sources += [volume, *((volume.get("projected") or {}).get("sources") or [])]
    for container in [*(pod_spec.get("initContainers") or []), *_containers(spec)]:
        sources += container.get("envFrom") or []
        sources += [v.get("valueFrom") or {} for v in container.get("env") or []]
    refs = {
        f"{kind}/{name}"
        for source in sources
        for field, key, kind in _CONFIG_REFS
        if isinstance(source.get(field), Mapping) and (name := source[field].get(key))
    }
    return sorted(refs)


def _replicaset(obj: Obj) -> ReplicaSetPayload:
    meta, spec, _ = _parts(obj)
    return {
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "owner": _owner(meta),
        "revision": _revision(meta),
        "created": _time(meta.get("creationTimestamp")) or "",
        "images": _images(spec),
        "replicas": int(spec.get("replicas", 1)),
        "resources": _resources(spec),
        "annotations": _annotations(meta),
        "template_annotations": _template_annotations(spec),
    }


def _template_annotations(spec: Obj) -> dict[str, str]:
    """The pod template's annotations (where CI copies the image's
    ``org.opencontainers.image.revision`` and ``.source``: docs/changes.md)."""
    return _annotations((spec.get("template") or {}).get("metadata") or {})


def _pod(obj: Obj) -> PodPayload:
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


def _container(status: Obj) -> ContainerStatusPayload:
    """The most recent termination: ``lastState`` (a restarted container), else ``state``."""
    last = (status.get("lastState") or {}).get("terminated")
    last = last or (status.get("state") or {}).get("terminated") or {}
    exit_code = last.get("exitCode")
    return {
        "name": status["name"],
        "restarts": int(status.get("restartCount") or 0),
        "ready": bool(status.get("ready")),
        "last_terminated_reason": last.get("reason"),
        "last_terminated_at": _time(last.get("finishedAt")),
        "last_exit_code": int(exit_code) if exit_code is not None else None,
    }


def _configmap(obj: Obj) -> ConfigPayload:
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


def drifted_keys(obj: Obj) -> list[str]:
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


def _secret(obj: Obj) -> ConfigPayload:
    """Metadata only: whatever else the server sent is not looked at."""
    meta = obj.get("metadata") or {}
    return _config("secret", {"metadata": meta}, keys=_managed_keys(meta), digest="", drifted=[])


def _config(
    kind: str, obj: Obj, *, keys: list[str], digest: str, drifted: list[str]
) -> ConfigPayload:
    meta = obj.get("metadata") or {}
    created = _time(meta.get("creationTimestamp")) or ""
    return {
        "kind": kind,
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "created": created,
        "updated": _updated(meta) or created,
        "labels": dict(meta.get("labels") or {}),
        "annotations": _annotations(meta),
        "keys": keys,
        "digest": digest,
        "drifted": drifted,
    }


def _event(obj: Obj) -> EventPayload:
    meta = obj.get("metadata") or {}
    involved = obj.get("involvedObject") or {}
    series = obj.get("series") or {}
    event_time = _time(obj.get("eventTime"))
    first = _time(obj.get("firstTimestamp")) or event_time
    last = _time(obj.get("lastTimestamp")) or _time(series.get("lastObservedTime")) or event_time
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


# --- state: what a workload, node or route looks like now ---------------------------------


_DELIVERY_KINDS = {
    "applications": ("argoproj.io", "v1alpha1"),
    "kustomizations": ("kustomize.toolkit.fluxcd.io", "v1"),
    "helmreleases": ("helm.toolkit.fluxcd.io", "v2"),
    "gitrepositories": ("source.toolkit.fluxcd.io", "v1"),
}
"""The delivery tools' custom resources read (plural → group, version)."""


def _cluster_wide(call: Callable[..., Any], _namespace: str, **kwargs: Any) -> Any:
    """A cluster-scoped list call in the shape of a namespaced one."""
    return call(**kwargs)


def _pod_state(obj: Obj) -> cluster.PodStatePayload:
    meta, spec, status = _parts(obj)
    specs = {
        str(c.get("name")): c
        for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
    }
    statuses = [(s, True) for s in status.get("initContainerStatuses") or []]
    statuses += [(s, False) for s in status.get("containerStatuses") or []]
    scheduled: Obj = next(
        (c for c in status.get("conditions") or [] if c.get("type") == "PodScheduled"), {}
    )
    unschedulable = None
    if scheduled.get("status") == "False":
        unschedulable = str(scheduled.get("message") or scheduled.get("reason") or "")
    return {
        "resource": "pod",
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "owner": _owner(meta),
        "node": spec.get("nodeName"),
        "phase": str(status.get("phase") or "Unknown"),
        "created": _time(meta.get("creationTimestamp")) or "",
        "labels": dict(meta.get("labels") or {}),
        "unschedulable": unschedulable,
        "statuses": [
            _container_state(s, spec=specs.get(str(s.get("name")), {}), init=init)
            for s, init in statuses
        ],
    }


def _container_state(status: Obj, *, spec: Obj, init: bool) -> cluster.ContainerStatePayload:
    waiting = (status.get("state") or {}).get("waiting") or {}
    last = (status.get("lastState") or {}).get("terminated")
    last = last or (status.get("state") or {}).get("terminated") or {}
    code = last.get("exitCode")
    payload = _container_spec(spec, init=init)
    payload["name"] = str(status.get("name") or payload["name"])
    payload["ready"] = bool(status.get("ready"))
    payload["restarts"] = int(status.get("restartCount") or 0)
    payload["waiting_reason"] = waiting.get("reason")
    payload["waiting_message"] = _line(waiting.get("message"))
    payload["terminated_reason"] = last.get("reason")
    payload["terminated_message"] = _line(last.get("message"))
    payload["exit_code"] = int(code) if code is not None else None
    payload["terminated_at"] = _time(last.get("finishedAt"))
    return payload


def _container_spec(spec: Obj, *, init: bool) -> cluster.ContainerStatePayload:
    probes: dict[str, cluster.ProbePayload] = {}
    for part in ("liveness", "readiness", "startup"):
        probe = spec.get(f"{part}Probe")
        if isinstance(probe, Mapping):
            probes[part] = _probe(probe)
    return {
        "name": str(spec.get("name") or ""),
        "init": init,
        "image": str(spec.get("image") or ""),
        "ready": False,
        "restarts": 0,
        "waiting_reason": None,
        "waiting_message": None,
        "terminated_reason": None,
        "terminated_message": None,
        "exit_code": None,
        "terminated_at": None,
        "ports": [
            {"name": str(p.get("name") or ""), "port": int(p.get("containerPort") or 0)}
            for p in spec.get("ports") or []
        ],
        "probes": probes,
    }


def _probe(probe: Obj) -> cluster.ProbePayload:
    for key, kind in (("httpGet", "http"), ("tcpSocket", "tcp"), ("grpc", "grpc")):
        action = probe.get(key)
        if isinstance(action, Mapping):
            path = str(action.get("path") or "")
            return {"port": str(action.get("port", "")), "path": path, "kind": kind}
    return {"port": "", "path": "", "kind": "exec"}


def _workload_state(obj: Obj, *, resource: str) -> cluster.WorkloadStatePayload:
    meta, spec, status = _parts(obj)
    template = spec.get("template") or {}
    pod_spec = template.get("spec") or {}
    return {
        "resource": resource,
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "created": _time(meta.get("creationTimestamp")) or "",
        "replicas": int(spec.get("replicas", 1)),
        "ready_replicas": int(status.get("readyReplicas") or 0),
        "available_replicas": int(status.get("availableReplicas") or 0),
        "template_labels": dict((template.get("metadata") or {}).get("labels") or {}),
        "service_account": str(pod_spec.get("serviceAccountName") or "default"),
        "specs": [_container_spec(c, init=False) for c in pod_spec.get("containers") or []],
    }


def _node_state(obj: Obj) -> cluster.NodeStatePayload:
    meta, spec, status = _parts(obj)
    conditions = {str(c.get("type")): c for c in status.get("conditions") or []}
    ready = conditions.get("Ready") or {}
    taints = [
        f"{t.get('key')}{'=' + str(t['value']) if t.get('value') else ''}:{t.get('effect')}"
        for t in spec.get("taints") or []
    ]
    return {
        "resource": "node",
        "name": meta["name"],
        "ready": str(ready.get("status") or "Unknown"),
        "ready_reason": str(ready.get("reason") or ""),
        "ready_since": _time(ready.get("lastTransitionTime")),
        "pressure": sorted(
            t for t, c in conditions.items() if t != "Ready" and c.get("status") == "True"
        ),
        "unschedulable": bool(spec.get("unschedulable")),
        "taints": taints,
    }


def _service_state(obj: Obj) -> cluster.ServiceStatePayload:
    meta, spec, _ = _parts(obj)
    ports = [
        {
            "name": str(p.get("name") or ""),
            "port": str(p.get("port") or ""),
            "target_port": str(p.get("targetPort", p.get("port")) or ""),
        }
        for p in spec.get("ports") or []
    ]
    return {
        "resource": "service",
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "created": _time(meta.get("creationTimestamp")) or "",
        "selector": {str(k): str(v) for k, v in (spec.get("selector") or {}).items()},
        "ports": ports,
    }


def _endpointslice_state(obj: Obj) -> cluster.EndpointSliceStatePayload:
    meta = obj.get("metadata") or {}
    endpoints = obj.get("endpoints") or []
    ready = sum(1 for e in endpoints if (e.get("conditions") or {}).get("ready", True) is not False)
    return {
        "resource": "endpointslice",
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "service": str((meta.get("labels") or {}).get("kubernetes.io/service-name") or ""),
        "ready": ready,
        "not_ready": len(endpoints) - ready,
    }


def _quota_state(obj: Obj) -> cluster.QuotaStatePayload:
    meta, spec, status = _parts(obj)
    hard = status.get("hard") or spec.get("hard") or {}
    return {
        "resource": "resourcequota",
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "hard": {str(k): str(v) for k, v in hard.items()},
        "used": {str(k): str(v) for k, v in (status.get("used") or {}).items()},
    }


def _named_state(obj: Obj, *, resource: str) -> cluster.NamedStatePayload:
    meta, _, status = _parts(obj)
    return {
        "resource": resource,
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "created": _time(meta.get("creationTimestamp")) or "",
        "phase": str(status.get("phase") or ""),
    }


def _policy_state(obj: Obj) -> cluster.NetworkPolicyStatePayload:
    meta, spec, _ = _parts(obj)
    rules = spec.get("ingress")
    types = spec.get("policyTypes") or ["Ingress"]
    peers: list[dict[str, str]] = []
    for rule in rules or []:
        sources = rule.get("from")
        if not sources:
            peers.append({"*": "*"})  # a rule without "from" admits every peer
        for peer in sources or []:
            if "podSelector" in peer and "namespaceSelector" not in peer:
                labels = (peer.get("podSelector") or {}).get("matchLabels") or {}
                peers.append({str(k): str(v) for k, v in labels.items()} or {"*": "*"})
            else:
                peers.append({"*": "*"})  # other namespaces or address blocks: not judged here
    return {
        "resource": "networkpolicy",
        "name": meta["name"],
        "namespace": meta.get("namespace") or "",
        "created": _time(meta.get("creationTimestamp")) or "",
        "pod_selector": dict((spec.get("podSelector") or {}).get("matchLabels") or {}),
        "ingress_isolated": "Ingress" in types,
        "ingress_from": peers,
    }


def _line(value: Any) -> str | None:
    """A message's first line, cut at 300 characters (termination messages can be long)."""
    text = str(value or "").strip()
    return text.splitlines()[0][:300] if text else None


_STATE_READERS: dict[str, tuple[str, str, Callable[[Obj], Any]]] = {
    "pods": ("core", "list_namespaced_pod", _pod_state),
    "deployments": (
        "apps",
        "list_namespaced_deployment",
        functools.partial(_workload_state, resource="deployment"),
    ),
    "statefulsets": (
        "apps",
        "list_namespaced_stateful_set",
        functools.partial(_workload_state, resource="statefulset"),
    ),
    "nodes": ("core", "list_node", _node_state),
    "services": ("core", "list_namespaced_service", _service_state),
    "endpointslices": ("discovery", "list_namespaced_endpoint_slice", _endpointslice_state),
    "resourcequotas": ("core", "list_namespaced_resource_quota", _quota_state),
    "limitranges": (
        "core",
        "list_namespaced_limit_range",
        functools.partial(_named_state, resource="limitrange"),
    ),
    "persistentvolumeclaims": (
        "core",
        "list_namespaced_persistent_volume_claim",
        functools.partial(_named_state, resource="persistentvolumeclaim"),
    ),
    "serviceaccounts": (
        "core",
        "list_namespaced_service_account",
        functools.partial(_named_state, resource="serviceaccount"),
    ),
    "networkpolicies": ("networking", "list_namespaced_network_policy", _policy_state),
}
"""Each state kind: which API group's client, its list method, and the translation."""


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


def _logs_command(*, namespace: str, pod: str, params: list[tuple[str, Any]]) -> str:
    """The ``kubectl logs`` command that reads what :meth:`KubernetesConnector.read_pod_log`
    read."""
    flags = {
        "container": "-c {}",
        "sinceTime": "--since-time={}",
        "tailLines": "--tail={}",
        "limitBytes": "--limit-bytes={}",
        "previous": "--previous",
    }
    words = [f"kubectl logs {pod} -n {namespace} --timestamps"]
    words += [flags[k].format(v) for k, v in params if k in flags]
    return " ".join(words)


def _evidence(
    query: str, status: Status, summary: str, raw: Any, *, window: Window | None = None
) -> Evidence:
    return Evidence.make(
        source=SOURCE, query=query, window=window, status=status, summary=summary, raw=raw
    )


# --- writes: catalogue actions only -------------------------------------------------------

ACTION_MARKER = "diagnose.dev/action"
"""Annotation each applied action leaves on its object: the idempotency key of the action, so
an attempt repeated after a crash can see that the first one landed."""

ROLLBACK_KEPT_ANNOTATIONS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
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
        self._reader = KubernetesConnector(host, timeout_s=timeout_s, configuration=configuration)
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
        reader = KubernetesConnector.from_environment(
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
            return _evidence(query, Status.ERROR, f"not a catalogue action: {action}", None)
        try:
            live = self._get(action)
            body = _RESOLVERS[action["op"]](self, action, live)
        except _CallError as failure:
            return _evidence(query, failure.status, failure.summary, None)
        request: PatchPayload = {
            "path": _PATHS[kind].format(namespace=action["namespace"], name=action["name"]),
            "namespace": action["namespace"],
            "name": action["name"],
            "kind": kind,
            "patch_type": body[0],
            "body": body[1],
        }
        return _evidence(
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
            message = _status_message(exc)
            summary = f"{outcome} by the API server (HTTP {exc.status}): {message}"
            raw = {"outcome": outcome, "code": exc.status, "message": message, "result": None}
            return _evidence(query, status, summary, raw)
        except (HTTPError, ValueError) as exc:
            failure = (
                self._reader._transport_failure(exc)
                if isinstance(exc, HTTPError)
                else _CallError(Status.ERROR, f"{self.host} did not answer with JSON ({exc})")
            )
            raw = {
                "outcome": "unreachable",
                "code": None,
                "message": failure.summary,
                "result": None,
            }
            return _evidence(query, Status.ERROR, f"unreachable: {failure.summary}", raw)
        service = request["kind"] == "service"
        shown = _service_view(result) if service else _workload_view(result)
        what = "accepted (dry run, nothing stored)" if dry_run else "applied"
        raw = {"outcome": "accepted", "code": 200, "message": what, "result": shown}
        described = _describe_service(shown) if service else _describe(shown)
        return _evidence(query, Status.OK, f"{what}: {described}", raw)

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
        except _CallError as failure:
            raise errors.SourceUnavailable(failure.summary) from None
        value = ((found.get("metadata") or {}).get("annotations") or {}).get(ACTION_MARKER)
        return str(value) if value is not None else None

    # --- reading what a patch is built from ---------------------------------------------

    def _get(self, action: Mapping[str, Any]) -> Obj:
        if action["kind"] == "service":
            return self._get_service(action)
        return self._get_deployment(action)

    def _get_service(self, action: Mapping[str, Any]) -> Obj:
        try:
            response: Any = self._core.read_namespaced_service(
                action["name"],
                action["namespace"],
                _preload_content=False,
                _request_timeout=self._timeout_s,
            )
            body: Obj = json.loads(response.data)
        except ApiException as exc:
            raise self._reader._api_failure(
                exc, plural="services", namespace=action["namespace"]
            ) from exc
        except HTTPError as exc:
            raise self._reader._transport_failure(exc) from exc
        return body

    def _get_deployment(self, action: Mapping[str, Any]) -> Obj:
        def fetch() -> Obj:
            response: Any = self._apps.read_namespaced_deployment(
                action["name"],
                action["namespace"],
                _preload_content=False,
                _request_timeout=self._timeout_s,
            )
            body: Obj = json.loads(response.data)
            return body

        try:
            return fetch()
        except ApiException as exc:
            raise self._reader._api_failure(
                exc, plural="deployments", namespace=action["namespace"]
            ) from exc
        except HTTPError as exc:
            raise self._reader._transport_failure(exc) from exc

    def _rollback(self, action: ActionSpec, deployment: Obj) -> tuple[str, Any]:
        """``kubectl rollout undo``: the ReplicaSet's template (without its hash label) and the
        annotations it carried, as a JSON patch."""
        name = action["name"]
        items = self._reader._list(
            self._apps.list_namespaced_replica_set,
            plural="replicasets",
            namespace=action["namespace"],
        )
        owned = [rs for rs in items if _owner(rs.get("metadata") or {}) == f"deployment/{name}"]
        current = _revision(deployment.get("metadata") or {})
        wanted = action.get("revision")
        by_revision = {_revision(rs.get("metadata") or {}): rs for rs in owned}
        if wanted is None:
            older = [r for r in by_revision if r is not None and (current is None or r < current)]
            wanted = max(older) if older else None
        if wanted is None or wanted not in by_revision:
            raise _CallError(
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
            raise _CallError(
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

    def _scale(self, action: ActionSpec, deployment: Obj) -> tuple[str, Any]:
        current = int((deployment.get("spec") or {}).get("replicas", 1))
        replicas = action.get("replicas")
        if replicas is None:  # the catalogue's "half as many again, plus one"
            replicas = current * 3 // 2 + 1
        return "strategic", {"spec": {"replicas": int(replicas)}}

    def _set_limits(self, action: ActionSpec, deployment: Obj) -> tuple[str, Any]:
        names = {str(c.get("name")) for c in _containers(deployment.get("spec") or {})}
        limits = action.get("limits") or {}
        unknown = sorted(set(limits) - names)
        if unknown or not limits:
            raise _CallError(
                Status.EMPTY,
                f"deployment/{action['name']} has no container "
                + (", ".join(unknown) or "(none named)"),
            )
        containers = [
            {"name": name, "resources": {"limits": dict(value)}}
            for name, value in sorted(limits.items())
        ]
        return "strategic", {"spec": {"template": {"spec": {"containers": containers}}}}

    def _restore_service(self, action: ActionSpec, service: Obj) -> tuple[str, Any]:
        """A Service's selector, or one port's targetPort, set to the values given (read from
        the pods' template by the analysis) as a merge patch; nothing else of it changes."""
        spec = service.get("spec") or {}
        name = action["name"]
        if action.get("selector"):
            wanted = dict(action.get("selector") or {})
            live = dict(spec.get("selector") or {})
            if live == wanted:
                raise _CallError(Status.EMPTY, f"skipped: service/{name}'s selector is that")
            gone: dict[str, Any] = {k: None for k in live if k not in wanted}
            return "merge", {"spec": {"selector": wanted | gone}}
        ports = [dict(p) for p in spec.get("ports") or []]
        chosen = [p for p in ports if p.get("port") == action.get("port")]
        if not chosen or action.get("target_port") is None:
            raise _CallError(Status.EMPTY, f"service/{name} has no port {action.get('port')}")
        chosen[0]["targetPort"] = int(action.get("target_port") or 0)
        return "merge", {"spec": {"ports": ports}}  # a merge patch replaces the list whole


_RESOLVERS: dict[str, Callable[[KubernetesWriter, ActionSpec, Obj], tuple[str, Any]]] = {
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


def _workload_view(obj: Obj) -> dict[str, Any]:
    """What a reviewer checks in a patched workload: images, replicas, limits, marker."""
    meta, spec, _ = _parts(obj)
    return {
        "name": meta.get("name"),
        "replicas": spec.get("replicas"),
        "images": _images(spec),
        "limits": {c: r["limits"] for c, r in _resources(spec).items()},
        "generation": meta.get("generation"),
        "marker": (meta.get("annotations") or {}).get(ACTION_MARKER),
    }


_PATHS = {
    "deployment": "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
    "service": "/api/v1/namespaces/{namespace}/services/{name}",
}
"""The kinds a catalogue action may patch, and their API paths."""


def _service_view(obj: Obj) -> dict[str, Any]:
    """What a reviewer checks in a patched Service: its selector, ports and marker."""
    meta, spec, _ = _parts(obj)
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
