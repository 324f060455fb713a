"""The read-only connector: the list calls, their one choke point and error translation."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError, MaxRetryError, NewConnectionError, ReadTimeoutError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

from connectors import _http, delivery
from connectors.kubernetes import _common, _fluxevents, _podlogs, _state, _translating
from diagnose.domain import delivery as delivery_domain
from diagnose.domain import errors
from diagnose.domain.models import Evidence, Status, Window


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
            translate=_translating._deployment,
        )

    def list_replicasets(self, *, namespace: str) -> Evidence:
        """raw: ``list[ReplicaSetPayload]``, oldest revision first."""
        return self._evidence_for(
            "replicasets",
            namespace=namespace,
            call=self._apps.list_namespaced_replica_set,
            translate=_translating._replicaset,
        )

    def list_pods(self, *, namespace: str) -> Evidence:
        """raw: ``list[PodPayload]``."""
        return self._evidence_for(
            "pods",
            namespace=namespace,
            call=self._core.list_namespaced_pod,
            translate=_translating._pod,
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
        except _common._CallError as failure:
            return _common._evidence(query, failure.status, failure.summary, [])
        configs = [_translating._configmap(item) for item in maps]
        note = ""
        try:
            secrets = self._list(
                self._core.list_namespaced_secret,
                plural="secrets",
                namespace=namespace,
                accept=_common._METADATA_ONLY,
            )
            configs += [_translating._secret(item) for item in secrets]
        except _common._CallError as failure:
            note = f"; secrets skipped ({failure.status.value}): {failure.summary}"
        configs.sort(key=lambda c: (c["kind"], c["name"]))
        summary = _common._count(configs, "kind") + note
        status = Status.OK if configs else Status.EMPTY
        return _common._evidence(query, status, summary or "no configmaps or secrets", configs)

    def list_events(self, *, namespace: str, window: Window) -> Evidence:
        """Core v1 Events whose [first, last] time overlaps the window. raw:
        ``list[EventPayload]``, oldest first."""
        query = f"kubectl get events -n {namespace} --sort-by=.lastTimestamp -o yaml"
        try:
            items = self._list(
                self._core.list_namespaced_event, plural="events", namespace=namespace
            )
        except _common._CallError as failure:
            return _common._evidence(query, failure.status, failure.summary, [], window=window)
        events = [_translating._event(item) for item in items]
        kept = [e for e in events if _common._overlaps(e, window)]
        kept.sort(key=lambda e: (e["last"] or e["first"] or "", e["object"]))
        summary = (
            f"{_http.plural(len(kept), 'event')} ({_common._count(kept, 'type')})" if kept else ""
        )
        summary = summary or "no events in the window"
        if len(kept) < len(events):
            summary += f" ({len(events) - len(kept)} outside the window left out)"
        status = Status.OK if kept else Status.EMPTY
        return _common._evidence(query, status, summary, kept, window=window)

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
        return _podlogs.read_pod_log(
            self,
            namespace=namespace,
            pod=pod,
            container=container,
            since=since,
            tail_lines=tail_lines,
            limit_bytes=limit_bytes,
            previous=previous,
        )

    def read_state(self, *, kind: str, namespace: str) -> Evidence:
        """The current state of one kind of object (``diagnose.domain.cluster.STATE_KINDS``;
        nodes cluster-wide, the rest in ``namespace``). raw: that kind's state payloads."""
        if kind not in _state._STATE_READERS:
            raise ValueError(
                f"not a state kind: {kind!r}; one of {', '.join(_state._STATE_READERS)}"
            )
        api, method, translate = _state._STATE_READERS[kind]
        call = getattr(self._state_api(api), method)
        # Cited as `-o wide` (the state a person checks), which also keeps these records apart
        # from the change timeline's `-o yaml` reads of the same kinds: evidence ids come from
        # the query, and a state read must not replace the timeline's pods or deployments.
        if kind in _state._CLUSTER_WIDE:
            query = f"kubectl get {kind} -o wide"
            listing = functools.partial(_state._cluster_wide, call)
        else:
            query = f"kubectl get {kind} -n {namespace} -o wide"
            listing = call
        try:
            items = self._list(listing, plural=kind, namespace=namespace)
        except _common._CallError as failure:
            return _common._evidence(query, failure.status, failure.summary, [])
        payloads = sorted((translate(item) for item in items), key=lambda p: str(p["name"]))
        if not payloads:
            return _common._evidence(query, Status.EMPTY, f"no {kind}", [])
        return _common._evidence(query, Status.OK, _http.plural(len(payloads), kind[:-1]), payloads)

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
            return _common._evidence(
                query, status, notes or f"no deliveries target {namespace}", []
            )
        summary = _http.plural(len(mine), "delivery") + (f" ({notes})" if notes else "")
        return _common._evidence(query, Status.OK, summary, mine)

    def list_delivery_events(
        self,
        *,
        namespace: str,
        deliveries: Sequence[delivery_domain.DeliveryPayload],
        window: Window,
    ) -> Evidence:
        """Flux's events on the Kustomizations and HelmReleases of ``deliveries`` that live
        outside ``namespace`` (``flux-system``), in the window (``_fluxevents``). raw:
        ``list[EventPayload]``, oldest first."""
        return _fluxevents.list_delivery_events(
            self, namespace=namespace, deliveries=deliveries, window=window
        )

    def _delivery_objects(
        self, *, namespace: str
    ) -> tuple[dict[str, list[_common.Obj]], list[_common._CallError]]:
        custom = client.CustomObjectsApi(self._api_client)
        calls: dict[str, Callable[..., Any]] = {
            plural: functools.partial(
                _state._cluster_wide,
                functools.partial(custom.list_cluster_custom_object, group, version, plural),
            )
            for plural, (group, version) in _state._DELIVERY_KINDS.items()
        }
        calls["secrets"] = functools.partial(
            self._core.list_namespaced_secret, label_selector="owner=helm"
        )
        read: dict[str, list[_common.Obj]] = {}
        failures: list[_common._CallError] = []
        for plural, call in calls.items():
            try:
                read[plural] = self._list(call, plural=plural, namespace=namespace)
            except _common._CallError as failure:
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
        translate: Callable[[_common.Obj], Any],
    ) -> Evidence:
        query = f"kubectl get {plural} -n {namespace} -o yaml"
        try:
            items = self._list(call, plural=plural, namespace=namespace)
        except _common._CallError as failure:
            return _common._evidence(query, failure.status, failure.summary, [])
        payloads = sorted((translate(item) for item in items), key=_common._payload_order)
        if not payloads:
            return _common._evidence(
                query, Status.EMPTY, f"no {plural} in namespace {namespace}", []
            )
        return _common._evidence(
            query, Status.OK, _http.plural(len(payloads), plural[:-1]), payloads
        )

    def _list(
        self,
        call: Callable[..., Any],
        *,
        plural: str,
        namespace: str,
        accept: str | None = None,
    ) -> list[_common.Obj]:
        """Every object of one list call, page by page, with retries and error translation.
        A namespace (or resource type) the server does not know has nothing to list."""
        items: list[_common.Obj] = []
        token: str | None = None
        for _ in range(_common._MAX_PAGES):
            try:
                page = self._page(call, namespace=namespace, token=token, accept=accept)
            except ApiException as exc:
                if exc.status == 404 and _common._is_kubernetes_status(exc):
                    return items
                raise self._api_failure(exc, plural=plural, namespace=namespace) from exc
            items += page.get("items") or []
            token = (page.get("metadata") or {}).get("continue") or None
            if token is None:
                break
        return items

    def _page(
        self, call: Callable[..., Any], *, namespace: str, token: str | None, accept: str | None
    ) -> _common.Obj:
        def fetch() -> _common.Obj:
            response = call(
                namespace,
                limit=_common._PAGE_SIZE,
                _continue=token,
                _preload_content=False,
                _request_timeout=self._timeout_s,
                _headers={"Accept": accept} if accept else None,
            )
            body: _common.Obj = json.loads(response.data)
            return body

        try:
            return _http.call_with_retries(
                fetch, policy=self._retry, retryable=_common._is_retryable
            )
        except HTTPError as exc:
            raise self._transport_failure(exc) from exc
        except ValueError as exc:
            raise _common._CallError(
                Status.ERROR,
                f"{self.host} did not answer with Kubernetes API JSON ({exc}): check the URL",
            ) from exc

    # --- error translation ----------------------------------------------------------------

    def _api_failure(self, exc: ApiException, *, plural: str, namespace: str) -> _common._CallError:
        what = plural
        message = _common._status_message(exc)
        if exc.status in (401, 403):
            return _common._CallError(
                Status.DENIED,
                f"Kubernetes API at {self.host} denied listing {what} in namespace {namespace} "
                f"(HTTP {exc.status}: {message}): grant get/list/watch on {what} "
                "(see docs/connectors.md) or check the kubeconfig credentials",
            )
        if exc.status == 0:
            return _common._CallError(
                Status.ERROR,
                f"Kubernetes API at {self.host} failed before answering ({message}): check the "
                "kubeconfig's server address and certificate authority",
            )
        return _common._CallError(
            Status.ERROR,
            f"Kubernetes API at {self.host} failed listing {what} (HTTP {exc.status}: "
            f"{message}); try again",
        )

    def _transport_failure(self, exc: HTTPError) -> _common._CallError:
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
        return _common._CallError(Status.ERROR, f"Kubernetes API at {self.host} {what}: {advice}")
