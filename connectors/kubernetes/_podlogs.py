"""Pod logs through ``pods/log`` (docs/logs.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from connectors import _http
from connectors.kubernetes import _common

if TYPE_CHECKING:
    from connectors.kubernetes import _reading
from diagnose.domain.models import Evidence, Status


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


def read_pod_log(
    connector: _reading.KubernetesConnector,
    *,
    namespace: str,
    pod: str,
    container: str | None = None,
    since: str | None = None,
    tail_lines: int | None = None,
    limit_bytes: int | None = None,
    previous: bool = False,
) -> Evidence:
    """:meth:`KubernetesConnector.read_pod_log`, through the connector's API client, retry
    policy and error translation."""
    params: list[tuple[str, Any]] = [("timestamps", "true")]
    params += [("container", container)] if container else []
    params += [("sinceTime", since)] if since else []
    params += [("tailLines", tail_lines)] if tail_lines is not None else []
    params += [("limitBytes", limit_bytes)] if limit_bytes is not None else []
    params += [("previous", "true")] if previous else []
    query = _logs_command(namespace=namespace, pod=pod, params=params)

    def fetch() -> bytes:
        request = connector._api_client.param_serialize(
            method="GET",
            resource_path="/api/v1/namespaces/{namespace}/pods/{name}/log",
            path_params={"namespace": namespace, "name": pod},
            query_params=params,
            header_params={"Accept": "text/plain"},
            auth_settings=["BearerToken"],
        )
        response = connector._api_client.call_api(*request, _request_timeout=connector._timeout_s)
        response.read()  # type: ignore[no-untyped-call]  # untyped in the SDK
        answer: Any = connector._api_client.response_deserialize(response, {"200": "bytearray"})
        return bytes(answer.data)

    try:
        body = _http.call_with_retries(
            fetch, policy=connector._retry, retryable=_common._is_retryable
        )
    except ApiException as exc:
        if exc.status in (400, 404) and _common._is_kubernetes_status(exc):
            return _common._evidence(query, Status.EMPTY, _common._status_message(exc), [])
        failure = connector._api_failure(exc, plural="pods/log", namespace=namespace)
        return _common._evidence(query, failure.status, failure.summary, [])
    except HTTPError as exc:
        failure = connector._transport_failure(exc)
        return _common._evidence(query, failure.status, failure.summary, [])
    lines = body.decode("utf-8", errors="replace").splitlines()
    status = Status.OK if lines else Status.EMPTY
    return _common._evidence(query, status, _http.plural(len(lines), "log line"), lines)
