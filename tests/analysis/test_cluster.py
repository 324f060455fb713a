"""Kubernetes state → findings (diagnose.analysis.cluster), one fault class per test, on
payloads shaped as the connector's ``read_state`` and ``list_events`` return them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from diagnose.analysis import cluster
from diagnose.domain import models

NS = "shop"
AT = models.parse_time("2026-01-10T10:00:00Z")


def _record(query: str, items: list[dict[str, Any]]) -> models.Evidence:
    return models.Evidence.make(
        source="kubernetes",
        query=query,
        window=None,
        status=models.Status.OK,
        summary="",
        raw=items,
    )


def _container(name: str = "server", **state: Any) -> dict[str, Any]:
    base = {
        "name": name,
        "init": False,
        "image": "shop/cart:3.1",
        "ready": True,
        "restarts": 0,
        "waiting_reason": None,
        "waiting_message": None,
        "terminated_reason": None,
        "terminated_message": None,
        "exit_code": None,
        "terminated_at": None,
        "ports": [{"name": "http", "port": 8080}],
        "probes": {},
    }
    return base | state


def _pod(name: str, app: str, *containers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    ready = all(c["ready"] for c in containers)
    return {
        "resource": "pod",
        "name": name,
        "namespace": NS,
        "owner": f"replicaset/{app}-6c9d",
        "node": "worker-a",
        "phase": "Running" if ready else "Pending",
        "created": "2026-01-10T09:50:00Z",
        "labels": {"app": app},
        "unschedulable": None,
        "statuses": list(containers) or [_container()],
    } | extra


def _workload(name: str, *, replicas: int = 2, labels: dict[str, str] | None = None) -> dict:
    return {
        "resource": "deployment",
        "name": name,
        "namespace": NS,
        "created": "2026-01-01T00:00:00Z",
        "replicas": replicas,
        "ready_replicas": replicas,
        "available_replicas": replicas,
        "template_labels": labels or {"app": name},
        "service_account": "default",
        "specs": [_container()],
    }


def _service(name: str, selector: dict[str, str], target: str = "8080") -> dict[str, Any]:
    return {
        "resource": "service",
        "name": name,
        "namespace": NS,
        "created": "2026-01-01T00:00:00Z",
        "selector": selector,
        "ports": [{"name": "http", "port": "80", "target_port": target}],
    }


def _event(reason: str, obj: str, message: str) -> dict[str, Any]:
    return {
        "type": "Warning",
        "reason": reason,
        "object": obj,
        "namespace": NS,
        "message": message,
        "first": "2026-01-10T09:55:00Z",
        "last": "2026-01-10T10:00:00Z",
        "count": 12,
    }


def _healthy(app: str) -> list[dict[str, Any]]:
    return [_pod(f"{app}-6c9d-a1b2c", app), _pod(f"{app}-6c9d-d3f4g", app)]


def _find(*items: dict[str, Any], changes: tuple[models.Change, ...] = ()) -> list[Any]:
    records = [
        _record(f"kubectl get things -n {NS} -o yaml #{i}", [it]) for i, it in enumerate(items)
    ]
    return cluster.find_faults(records, namespace=NS, trigger_service="frontend", changes=changes)


def _rollout(component: str, detail: str) -> models.Change:
    return models.Change(
        kind=models.ChangeKind.ROLLOUT,
        ref=f"deployment/{component}@7",
        component=component,
        namespace=NS,
        at=AT - timedelta(minutes=20),
        detail=detail,
        evidence="ev-rs",
    )


def test_a_healthy_namespace_has_no_findings() -> None:
    """Running, Ready pods behind matching Services are no finding, however new they are."""
    found = _find(*_healthy("cart"), _workload("cart"), _service("cart", {"app": "cart"}))
    assert found == []


def test_image_pull_backoff_blames_the_workload_and_the_rollout_that_changed_the_image() -> None:
    """ImagePullBackOff in every pod: the workload, definite, the image rollout named."""
    waiting = _container(
        ready=False, waiting_reason="ImagePullBackOff", waiting_message="not found"
    )
    (finding,) = _find(
        _pod("cart-6c9d-a1b2c", "cart", waiting),
        changes=(_rollout("cart", "image shop/cart:3.0 → shop/cart:3.1x"),),
    )
    assert (finding.fault, finding.component, finding.kind) == ("image-pull", "cart", "deploy")
    assert finding.change == "deployment/cart@7" and finding.severity == cluster.DEFINITE
    assert "shop/cart:3.1" in finding.summary and finding.check.startswith("kubectl describe pod")


def test_a_missing_secret_is_a_config_fault() -> None:
    """CreateContainerConfigError names the missing object, kind config."""
    waiting = _container(
        ready=False,
        waiting_reason="CreateContainerConfigError",
        waiting_message='secret "cart-db" not found',
    )
    (finding,) = _find(_pod("cart-6c9d-a1b2c", "cart", waiting))
    assert (finding.fault, finding.kind) == ("config-error", "config")
    assert 'secret "cart-db" not found' in finding.summary


def test_crash_loop_carries_the_last_termination() -> None:
    """CrashLoopBackOff keeps the last exit's reason, code and message."""
    crashing = _container(
        ready=False,
        waiting_reason="CrashLoopBackOff",
        terminated_reason="Error",
        exit_code=1,
        terminated_message="FATAL: password authentication failed",
    )
    (finding,) = _find(_pod("cart-6c9d-a1b2c", "cart", crashing))
    assert finding.fault == "crash-loop"
    assert "Error code 1: FATAL: password authentication failed" in finding.summary


def test_a_failing_init_container_blocks_the_pod() -> None:
    """An init container exiting non-zero is an init failure of its workload."""
    init = _container("migrate", init=True, ready=False, terminated_reason="Error", exit_code=2)
    waiting = _container(ready=False, waiting_reason="PodInitializing")
    (finding,) = _find(_pod("cart-6c9d-a1b2c", "cart", init, waiting))
    assert (finding.fault, finding.component) == ("init-failure", "cart")
    assert "init container migrate" in finding.summary


def test_unschedulable_pods_say_why() -> None:
    """Pending pods the scheduler cannot place: insufficient memory is a resource fault."""
    pending = _pod(
        "search-6c9d-a1b2c",
        "search",
        _container(ready=False),
        unschedulable="0/3 nodes are available: 3 Insufficient memory.",
    )
    (finding,) = _find(pending)
    assert (finding.fault, finding.kind, finding.component) == (
        "unschedulable",
        "resource",
        "search",
    )
    assert "Insufficient memory" in finding.summary


def test_a_quota_refusal_names_the_namespace() -> None:
    """FailedCreate for an exceeded ResourceQuota: namespace/<ns>, the workload its victim."""
    quota = {
        "resource": "resourcequota",
        "name": "compute",
        "namespace": NS,
        "hard": {"pods": "10"},
        "used": {"pods": "10"},
    }
    event = _event(
        "FailedCreate",
        "replicaset/cart-6c9d",
        'pods "cart-6c9d-x" is forbidden: exceeded quota: compute, requested: pods=1',
    )
    (finding,) = _find(quota, event, _workload("cart"))
    assert (finding.component, finding.kind, finding.victims) == (
        f"namespace/{NS}",
        "resource",
        ("cart",),
    )
    assert "compute pods 10/10" in finding.summary


def test_a_missing_service_account_is_the_workloads() -> None:
    """FailedCreate for a missing ServiceAccount is the workload's own config."""
    event = _event(
        "FailedCreate",
        "replicaset/cart-6c9d",
        'Error creating: pods "cart-6c9d-" is forbidden: error looking up service account '
        'shop/cart-sa: serviceaccount "cart-sa" not found',
    )
    (finding,) = _find(event)
    assert (finding.fault, finding.component, finding.kind) == ("service-account", "cart", "config")


def test_a_probe_on_a_port_the_container_does_not_expose() -> None:
    """A readiness probe on 8081 while the container exposes 8080 is named as such."""
    probed = _container(
        ready=False, probes={"readiness": {"port": "8081", "path": "/ready", "kind": "http"}}
    )
    event = _event("Unhealthy", "pod/cart-6c9d-a1b2c", "Readiness probe failed: connection refused")
    (finding,) = _find(_pod("cart-6c9d-a1b2c", "cart", probed, phase="Running"), event)
    assert (finding.fault, finding.component) == ("probe", "cart")
    assert "checks port 8081, which it does not expose" in finding.summary


def test_a_workload_scaled_to_zero_behind_a_service() -> None:
    """Replicas 0 while a Service routes to it: nothing serves."""
    (finding,) = _find(_workload("cart", replicas=0), _service("cart", {"app": "cart"}))
    assert (finding.fault, finding.component, finding.kind) == (
        "scaled-to-zero",
        "cart",
        "resource",
    )


def test_a_selector_matching_nothing() -> None:
    """A Service whose selector matches no pod and no workload has no endpoints."""
    (finding,) = _find(*_healthy("cart"), _workload("cart"), _service("cart", {"app": "cart-v2"}))
    assert (finding.fault, finding.component, finding.kind) == ("selector", "cart", "config")


def test_a_target_port_no_container_exposes() -> None:
    """targetPort 9090 while the selected containers expose 8080 only."""
    (finding,) = _find(
        *_healthy("cart"), _workload("cart"), _service("cart", {"app": "cart"}, "9090")
    )
    assert (finding.fault, finding.component) == ("target-port", "cart")


def test_a_network_policy_that_shuts_out_the_alerting_caller() -> None:
    """An ingress policy on cart that admits only checkout, while frontend alerts."""
    policy = {
        "resource": "networkpolicy",
        "name": "cart-ingress",
        "namespace": NS,
        "created": "2026-01-10T09:50:00Z",
        "pod_selector": {"app": "cart"},
        "ingress_isolated": True,
        "ingress_from": [{"app": "checkout"}],
    }
    (finding,) = _find(*_healthy("cart"), *_healthy("frontend"), policy)
    assert (finding.fault, finding.component) == ("network-policy", "cart")


def test_a_not_ready_node_explains_the_failing_pods_on_it() -> None:
    """Pods failing only on a NotReady node: the node, with the workloads as its victims."""
    node = {
        "resource": "node",
        "name": "worker-b",
        "ready": "Unknown",
        "ready_reason": "NodeStatusUnknown",
        "ready_since": "2026-01-10T09:58:00Z",
        "pressure": [],
        "unschedulable": False,
        "taints": [],
    }
    crashing = _container(ready=False, waiting_reason="CrashLoopBackOff", exit_code=137)
    cart = _pod("cart-6c9d-a1b2c", "cart", crashing, node="worker-b")
    search = _pod(
        "search-6c9d-a1b2c", "search", _container(ready=False), node="worker-b", phase="Running"
    )
    (finding,) = _find(node, cart, search, *_healthy("frontend"))
    assert (finding.component, finding.victims) == ("node/worker-b", ("cart", "search"))


def test_a_deployment_short_of_replicas_with_no_pod_and_no_event() -> None:
    """Wants 2, none available, no pod of it and no FailedCreate left: the workload, config."""
    short = _workload("cart") | {"ready_replicas": 0, "available_replicas": 0}
    (finding,) = _find(*_healthy("catalog"), _workload("catalog"), short)
    assert (finding.fault, finding.component, finding.kind) == ("no-pods", "cart", "config")
    assert finding.severity == cluster.DEFINITE and "no pod of it exists" in finding.summary


def test_a_refusal_on_record_is_the_finding_not_the_missing_pods() -> None:
    """With a FailedCreate on its ReplicaSet, the quota is named and no no-pods finding."""
    short = _workload("cart") | {"ready_replicas": 0, "available_replicas": 0}
    refused = _event("FailedCreate", "replicaset/cart-6c9d", "exceeded quota: compute")
    found = _find(*_healthy("catalog"), short, refused)
    assert [f.fault for f in found] == ["quota"]


def test_an_unbound_claim_says_what_its_own_events_say() -> None:
    """Beyond the scheduler's message: the PVC's ProvisioningFailed names the StorageClass."""
    pending = _pod(
        "db-0",
        "db",
        _container(ready=False),
        owner="statefulset/db",
        unschedulable="0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims.",
    )
    claim = {
        "resource": "persistentvolumeclaim",
        "name": "data-db-0",
        "namespace": NS,
        "created": "2026-01-10T09:50:00Z",
        "phase": "Pending",
    }
    said = _event(
        "ProvisioningFailed",
        "persistentvolumeclaim/data-db-0",
        'storageclass.storage.k8s.io "fast-ssd" not found',
    )
    (finding,) = _find(pending, claim, said)
    assert finding.fault == "unschedulable" and finding.component == "db"
    assert "data-db-0" in finding.summary and '"fast-ssd" not found' in finding.summary


def test_endpoints_none_ready_route_nowhere() -> None:
    """A Service whose EndpointSlices list two endpoints, none ready: a partial finding."""
    slice_ = {
        "resource": "endpointslice",
        "name": "cart-x8k2p",
        "namespace": NS,
        "service": "cart",
        "ready": 0,
        "not_ready": 2,
    }
    (finding,) = _find(
        *_healthy("cart"), _workload("cart"), _service("cart", {"app": "cart"}), slice_
    )
    assert (finding.fault, finding.component) == ("not-ready", "cart")
    assert finding.severity == cluster.PARTIAL


def test_a_named_target_port_no_container_declares() -> None:
    """targetPort "web" while the containers declare no port: the name resolves to nothing."""
    bare = [_pod(f"cart-6c9d-{s}", "cart", _container(ports=[])) for s in ("a1b2c", "d3f4g")]
    (finding,) = _find(*bare, _workload("cart"), _service("cart", {"app": "cart"}, "web"))
    assert (finding.fault, finding.component) == ("target-port", "cart")
    assert "targetPort web" in finding.summary


def _node(name: str, ready: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "resource": "node",
        "name": name,
        "ready": ready,
        "ready_reason": reason,
        "ready_message": message,
        "ready_since": "2026-01-10T09:58:00Z",
        "labels": {"kubernetes.io/hostname": name},
        "pressure": [],
        "unschedulable": False,
        "taints": [],
    }


def test_a_node_whose_kubelet_stopped_reporting_cites_its_message_and_stuck_pods() -> None:
    """Ready=Unknown: the node, citing the controller's message, with its Terminating and
    Unknown pods counted and the NodeNotReady events cited."""
    node = _node("worker-c", "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    terminating = _pod("cart-6c9d-a1b2c", "cart", node="worker-c", deleting=True)
    unknown = _pod("cart-6c9d-d3f4g", "cart", node="worker-c", phase="Unknown")
    event = _event("NodeNotReady", "pod/cart-6c9d-a1b2c", "Node is not ready")
    records = [
        _record("kubectl get nodes -o wide", [node]),
        _record(f"kubectl get pods -n {NS} -o wide", [terminating, unknown]),
        _record(f"kubectl get events -n {NS}", [event]),
        _record(f"kubectl get pods -n {NS} -o wide #2", _healthy("frontend")),
    ]
    (finding,) = cluster.find_faults(records, namespace=NS, trigger_service="frontend")
    assert (finding.component, finding.severity, finding.victims) == (
        "node/worker-c",
        cluster.DEFINITE,
        ("cart",),
    )
    assert "Kubelet stopped posting node status." in finding.summary
    assert "kubelet stopped posting" in finding.summary and "2 stuck Terminating" in finding.summary
    assert records[2].id in finding.evidence
    assert finding.check.startswith("kubectl describe node worker-c")


def test_a_node_whose_container_runtime_is_down_says_so() -> None:
    """Ready=False with the kubelet's runtime message: the runtime is named, pods are victims."""
    message = "container runtime is down, PLEG is not healthy: pleg was last seen active 3m ago"
    node = _node("worker-b", "False", "KubeletNotReady", message)
    stuck = _pod("checkout-6c9d-a1b2c", "checkout", _container(ready=False), node="worker-b")
    (finding,) = _find(node, stuck, *_healthy("frontend"))
    assert (finding.component, finding.victims) == ("node/worker-b", ("checkout",))
    assert "container runtime is down" in finding.summary
    assert "PLEG is not healthy" in finding.summary


def test_a_pod_named_by_node_not_ready_counts_even_while_it_still_reads_ready() -> None:
    """A NodeNotReady event on a pod the state still shows Ready ties it to the node."""
    node = _node("worker-c", "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    pod = _pod("cart-6c9d-a1b2c", "cart", node="worker-c")
    event = _event("NodeNotReady", "pod/cart-6c9d-a1b2c", "Node is not ready")
    (finding,) = _find(node, pod, event)
    assert (finding.component, finding.victims) == ("node/worker-c", ("cart",))


def test_a_not_ready_node_with_nothing_of_this_namespace_on_it_is_no_finding() -> None:
    """A down node hosting none of the namespace's pods explains nothing here."""
    node = _node("worker-c", "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    assert _find(node, *_healthy("frontend")) == []


def _applied(service: dict[str, Any], selector: dict[str, str], target: str) -> dict[str, Any]:
    ports = [{"name": "http", "port": "80", "target_port": target}]
    return service | {"applied": {"selector": selector, "ports": ports}}


def test_a_selector_is_restored_to_its_last_applied_value_not_the_template() -> None:
    """The last-applied selector (tier=cart) picks cart's pods: it is restored, not the
    template's values for the edited keys, and the finding says where it came from."""
    pods = [p | {"labels": {"app": "cart", "tier": "cart"}} for p in _healthy("cart")]
    workload = _workload("cart", labels={"app": "cart", "tier": "cart"})
    service = _applied(_service("cart", {"app": "cart-svc"}), {"tier": "cart"}, "8080")
    (finding,) = _find(*pods, workload, service)
    assert finding.restore == {
        "service": "cart",
        "selector": {"tier": "cart"},
        "source": cluster.LAST_APPLIED,
    }
    assert "last-applied configuration selects tier=cart" in finding.summary


def test_without_anything_earlier_the_selector_comes_from_the_template_and_says_so() -> None:
    """No last-applied configuration: the edited keys get the pod template's values, and the
    restore names the template as its source."""
    (finding,) = _find(*_healthy("cart"), _workload("cart"), _service("cart", {"app": "cart-v2"}))
    assert finding.restore == {
        "service": "cart",
        "selector": {"app": "cart"},
        "source": cluster.TEMPLATE,
    }


def test_a_last_applied_selector_that_picks_nothing_either_is_not_restored() -> None:
    """A last-applied selector that matches no pod and no workload is no better: the
    template's values are used."""
    service = _applied(_service("cart", {"app": "cart-v2"}), {"app": "cart-v3"}, "8080")
    (finding,) = _find(*_healthy("cart"), _workload("cart"), service)
    assert finding.restore["selector"] == {"app": "cart"}
    assert finding.restore["source"] == cluster.TEMPLATE


def test_a_target_port_is_restored_to_its_last_applied_value() -> None:
    """targetPort 9090 now, 8443 last applied and exposed: 8443 is restored, although the
    containers expose two ports (the template alone could not choose)."""
    pod = _pod(
        "cart-6c9d-a1b2c",
        "cart",
        _container(ports=[{"name": "http", "port": 8080}, {"name": "https", "port": 8443}]),
    )
    service = _applied(_service("cart", {"app": "cart"}, "9090"), {"app": "cart"}, "8443")
    (finding,) = _find(pod, _workload("cart"), service)
    assert finding.fault == "target-port"
    assert finding.restore == {
        "service": "cart",
        "port": 80,
        "target_port": 8443,
        "source": cluster.LAST_APPLIED,
    }


def test_a_named_target_port_is_restored_to_the_number_last_applied() -> None:
    """targetPort web while the containers declare no port: the number last applied."""
    pod = _pod("cart-6c9d-a1b2c", "cart", _container(ports=[]))
    service = _applied(_service("cart", {"app": "cart"}, "web"), {"app": "cart"}, "8080")
    (finding,) = _find(pod, _workload("cart"), service)
    assert (finding.restore["target_port"], finding.restore["source"]) == (
        8080,
        cluster.LAST_APPLIED,
    )


def _claim(name: str, volume: str) -> dict[str, Any]:
    return {
        "resource": "persistentvolumeclaim",
        "name": name,
        "namespace": NS,
        "created": "2026-01-01T00:00:00Z",
        "phase": "Bound",
        "volume": volume,
        "storage_class": "zonal-ssd",
    }


def _volume(name: str, claim: str, zone: str) -> dict[str, Any]:
    rule = {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone]}
    return {
        "resource": "persistentvolume",
        "name": name,
        "claim": f"{NS}/{claim}",
        "phase": "Bound",
        "node_affinity": [[rule]],
    }


def _zoned(name: str, zone: str, ready: str = "True") -> dict[str, Any]:
    return _node(name, ready, "KubeletReady", "") | {
        "labels": {"topology.kubernetes.io/zone": zone}
    }


def _stuck(name: str, app: str, claim: str) -> dict[str, Any]:
    message = "0/2 nodes are available: 2 node(s) had volume node affinity conflict."
    return _pod(
        name, app, _container(ready=False), node=None, unschedulable=message, claims=[claim]
    )


def test_a_claim_bound_to_a_volume_no_schedulable_node_can_host_is_the_cause() -> None:
    """The PV requires zone eu-1c, the nodes are in eu-1a and eu-1b (the eu-1c one is
    NotReady): the claim is the culprit, naming its PV, the zones, and the workload as victim;
    the workload's own unschedulable finding is folded into it."""
    found = _find(
        _zoned("worker-a", "eu-1a"),
        _zoned("worker-b", "eu-1b"),
        _zoned("worker-c", "eu-1c", ready="False"),
        _claim("data-search-0", "pv-7f3a"),
        _volume("pv-7f3a", "data-search-0", "eu-1c"),
        _stuck("search-0", "search", "data-search-0"),
        *_healthy("frontend"),
    )
    (finding,) = [f for f in found if f.fault != "node"]
    assert (finding.fault, finding.component, finding.victims) == (
        "volume-affinity",
        "persistentvolumeclaim/data-search-0",
        ("search",),
    )
    assert "pv-7f3a" in finding.summary and "zone In (eu-1c)" in finding.summary
    assert "worker-a: topology.kubernetes.io/zone=eu-1a" in finding.summary
    assert finding.check.startswith("kubectl get pv pv-7f3a")


def test_a_volume_a_schedulable_node_can_host_is_no_volume_finding() -> None:
    """A node in the PV's zone is Ready and schedulable: the volume is not what blocks."""
    found = _find(
        _zoned("worker-a", "eu-1a"),
        _zoned("worker-c", "eu-1c"),
        _claim("data-search-0", "pv-7f3a"),
        _volume("pv-7f3a", "data-search-0", "eu-1c"),
        _stuck("search-0", "search", "data-search-0"),
    )
    assert [f.fault for f in found] == ["unschedulable"]


def _deployment_with_env(name: str, env: dict[str, str]) -> dict[str, Any]:
    """A Deployment as the change timeline reads it (``ports.DeploymentPayload``)."""
    return {
        "name": name,
        "namespace": NS,
        "created": "2026-01-01T00:00:00Z",
        "labels": {"app": name},
        "selector": {"app": name},
        "replicas": 2,
        "available": 2,
        "revision": 3,
        "images": [f"shop/{name}:1"],
        "annotations": {},
        "env": env,
    }


def _log_finding(service: str, line: str, change: str = "new") -> models.Evidence:
    """A log template the log analysis found new (or risen) in ``service``."""
    return models.Evidence.make(
        source="analysis",
        query=f"kubectl logs -n {NS} -l app={service} | grep -F 'x'",
        window=None,
        status=models.Status.OK,
        summary="",
        raw={
            "service": service,
            "template": line,
            "change": change,
            "error": True,
            "incident": 40,
            "first": "2026-01-10T09:58:00Z",
            "examples": [line],
        },
    )


def _unresolved(*logs: models.Evidence, env: str = "http://cart-svc:8080") -> list[Any]:
    records = [
        _record(
            f"kubectl get deployments -n {NS} -o yaml",
            [_deployment_with_env("checkout", {"CART_URL": env})],
        ),
        _record(f"kubectl get services -n {NS} -o wide", [_service("cart", {"app": "cart"})]),
        _record(f"kubectl get pods -n {NS} -o wide", [*_healthy("cart"), *_healthy("checkout")]),
    ]
    return cluster.find_faults(records, namespace=NS, trigger_service="frontend", logs=logs)


def test_a_service_name_the_callers_logs_fail_to_resolve_is_the_callers_config() -> None:
    """CART_URL names cart-svc, the namespace has only cart, and checkout's logs say
    UnknownHostException for cart-svc: checkout's configuration, citing the log finding."""
    line = "ERROR java.net.UnknownHostException: cart-svc: Name or service not known"
    log = _log_finding("checkout", line)
    (finding,) = _unresolved(log)
    assert (finding.fault, finding.component, finding.kind, finding.severity) == (
        "unresolved-service",
        "checkout",
        "config",
        cluster.DEFINITE,
    )
    assert log.id in finding.evidence and "CART_URL=http://cart-svc:8080" in finding.summary
    assert finding.check == f"kubectl get service cart-svc -n {NS}"


def test_go_and_node_resolver_errors_name_the_host_too() -> None:
    """``lookup cart-svc…: no such host`` and ``getaddrinfo ENOTFOUND cart-svc`` count alike,
    with the cluster-local form of the name in the variable."""
    for line in (
        'level=error msg="dial tcp: lookup cart-svc.shop.svc.cluster.local on 10.96.0.10:53: '
        'no such host"',
        "Error: getaddrinfo ENOTFOUND cart-svc",
    ):
        found = _unresolved(
            _log_finding("checkout", line), env="cart-svc.shop.svc.cluster.local:8080"
        )
        assert [f.fault for f in found] == ["unresolved-service"], line


def test_a_missing_service_name_with_clean_logs_is_no_finding() -> None:
    """The variable names a Service the namespace lacks, but no log line fails to resolve it
    (a search path or an outside resolver may serve it): nothing is claimed."""
    other = _log_finding("checkout", "ERROR payment declined for order <NUM>")
    assert _unresolved() == [] and _unresolved(other) == []


def test_a_resolver_error_naming_another_host_is_not_this_services() -> None:
    """A lookup failure for another name (or in another workload's logs) proves nothing of
    cart-svc."""
    elsewhere = _log_finding("checkout", "ERROR UnknownHostException: payments-gw")
    theirs = _log_finding("frontend", "ERROR UnknownHostException: cart-svc")
    assert _unresolved(elsewhere, theirs) == []


def test_a_variable_naming_an_existing_service_or_an_outside_host_is_no_finding() -> None:
    """cart exists; api.bank.example is not a Service of the namespace."""
    line = "ERROR UnknownHostException: cart"
    assert _unresolved(_log_finding("checkout", line), env="http://cart:80") == []
    outside = _log_finding("checkout", "ERROR UnknownHostException: api.bank.example")
    assert _unresolved(outside, env="https://api.bank.example/v1") == []


def _crashing(message: str) -> dict[str, Any]:
    return _container(
        ready=False,
        waiting_reason="CrashLoopBackOff",
        terminated_reason="Error",
        exit_code=1,
        terminated_message=message,
    )


def _database(message: str) -> list[dict[str, Any]]:
    """orders-db (a StatefulSet's pod, its Service) crash-looping with ``message``."""
    pod = _pod("orders-db-0", "orders-db", _crashing(message), owner="statefulset/orders-db")
    return [pod, _service("orders-db", {"app": "orders-db"})]


REFUSED = "FATAL: could not connect to orders-db:5432: connection refused"


def test_a_database_out_of_disk_explains_the_callers_refused_connections() -> None:
    """A database crash-looping on a full disk is a resource fault, and the caller whose pods
    crash because it refuses their connections is its victim, not a finding of its own."""
    full = 'PANIC: could not write to file "pg_wal/xlogtemp.29": No space left on device'
    checkout = [_pod(f"checkout-6c9d-{s}", "checkout", _crashing(REFUSED)) for s in "ab"]
    (finding,) = _find(*_database(full), *checkout)
    assert (finding.component, finding.kind, finding.victims) == (
        "orders-db",
        models.CauseKind.RESOURCE,
        ("checkout",),
    )
    assert "connection refused" in finding.summary


def test_a_refused_connection_to_a_dependency_that_runs_stays_the_callers() -> None:
    """When the named dependency is not failing, the caller's crash is its own finding."""
    checkout = [_pod(f"checkout-6c9d-{s}", "checkout", _crashing(REFUSED)) for s in "ab"]
    db = _pod("orders-db-0", "orders-db", owner="statefulset/orders-db")
    found = _find(db, _service("orders-db", {"app": "orders-db"}), *checkout)
    assert [(f.component, f.fault) for f in found] == [("checkout", "crash-loop")]


def _policy_on_cart() -> dict[str, Any]:
    return {
        "resource": "networkpolicy",
        "name": "cart-ingress",
        "namespace": NS,
        "created": "2026-01-10T09:50:00Z",
        "pod_selector": {"app": "cart"},
        "ingress_isolated": True,
        "ingress_from": [{"app": "catalog"}],
    }


def _policy_findings(env: dict[str, str]) -> list[Any]:
    records = [
        _record(
            f"kubectl get deployments -n {NS} -o yaml",
            [_deployment_with_env("frontend", env)],
        ),
        _record(f"kubectl get services -n {NS} -o wide", [_service("cart", {"app": "cart"})]),
        _record(f"kubectl get pods -n {NS} -o wide", [*_healthy("cart"), *_healthy("frontend")]),
        _record(f"kubectl get networkpolicies -n {NS} -o yaml", [_policy_on_cart()]),
    ]
    return cluster.find_faults(records, namespace=NS, trigger_service="frontend")


def test_a_policy_shutting_out_a_caller_whose_configuration_calls_the_callee_is_definite() -> None:
    """The alerting caller's CART_URL names cart's Service: every call it makes to cart is
    refused, so the policy's finding is definite; without that variable it stays partial."""
    (named,) = _policy_findings({"CART_URL": "http://cart:80"})
    (unnamed,) = _policy_findings({"LOG_LEVEL": "debug"})
    assert (named.component, named.severity) == ("cart", cluster.DEFINITE)
    assert "CART_URL" in named.summary
    assert (unnamed.component, unnamed.severity) == ("cart", cluster.PARTIAL)


def test_a_node_under_pressure_whose_pods_here_all_fail_is_definite() -> None:
    """DiskPressure while Ready, every pod of the namespace on it evicted: the node explains
    them (definite); with one of its pods still serving it stays partial."""
    node = _node("worker-a", "True", "KubeletReady", "kubelet is posting ready status")
    node["pressure"] = ["DiskPressure"]
    evicted = [
        _pod(f"cart-6c9d-{s}", "cart", _container(ready=False), node="worker-a", phase="Failed")
        for s in "ab"
    ]
    serving = _pod("search-6c9d-a1b2c", "search", node="worker-a")
    (alone,) = _find(node, *evicted)
    beside = _find(node, *evicted, serving)
    assert (alone.component, alone.severity, alone.victims) == (
        "node/worker-a",
        cluster.DEFINITE,
        ("cart",),
    )
    assert [(f.component, f.severity) for f in beside] == [("node/worker-a", cluster.PARTIAL)]
    assert alone.summary.startswith("node worker-a is Ready but under DiskPressure;")


def test_endpoints_none_ready_confirmed_by_the_pods_are_definite() -> None:
    """The slices list no ready endpoint and the workload's pods read not ready either:
    nothing of it serves, a definite finding."""
    slice_ = {
        "resource": "endpointslice",
        "name": "cart-x8k2p",
        "namespace": NS,
        "service": "cart",
        "ready": 0,
        "not_ready": 2,
    }
    pods = [_pod(f"cart-6c9d-{s}", "cart", _container(ready=False), phase="Running") for s in "ab"]
    (finding,) = _find(*pods, _workload("cart"), _service("cart", {"app": "cart"}), slice_)
    assert (finding.fault, finding.component, finding.severity) == (
        "not-ready",
        "cart",
        cluster.DEFINITE,
    )


def test_after_a_rollout_an_oom_kill_stays_a_resource_fault_and_a_full_disk_the_rollouts() -> None:
    """OOMKilled after a rollout: the limits (resource, the rollout named); a full disk after
    one: the rollout (deploy), since no limit of the rollout's explains a disk."""
    oom = _container(
        ready=False, waiting_reason="CrashLoopBackOff", terminated_reason="OOMKilled", exit_code=137
    )
    full = _crashing("PANIC: could not write to file: No space left on device")
    rollout = (_rollout("cart", "revision 6 → 7: image shop/cart:3.0 → shop/cart:3.1"),)
    (killed,) = _find(_pod("cart-6c9d-a1b2c", "cart", oom), changes=rollout)
    (spent,) = _find(_pod("cart-6c9d-a1b2c", "cart", full), changes=rollout)
    (alone,) = _find(_pod("cart-6c9d-a1b2c", "cart", full))
    assert (killed.kind, killed.change) == (models.CauseKind.RESOURCE, "deployment/cart@7")
    assert (spent.kind, spent.change) == (models.CauseKind.DEPLOY, "deployment/cart@7")
    assert (alone.kind, alone.change) == (models.CauseKind.RESOURCE, None)
