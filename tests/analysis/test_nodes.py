"""Node trouble: pods' events about their node, node-level series, and the node hypothesis."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from diagnose.analysis import changes, components, discovery, ranking
from diagnose.domain import models
from tests.support import synthetic

NODE = "worker-b"
POLICY = ranking.ConfidencePolicy()
ONSET = synthetic.at(2400)


def _pod(name: str, *, node: str, workload: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": "shop",
        "owner": f"replicaset/{workload}-7d9f8c6b5d",
        "node": node,
        "phase": "Running",
        "created": models.format_time(synthetic.START),
        "labels": {"app": workload},
        "containers": [],
    }


def _event(
    pod: str, *, reason: str, at: datetime, message: str = "", kind: str = "Warning"
) -> dict[str, Any]:
    return {
        "type": kind,
        "reason": reason,
        "object": f"pod/{pod}",
        "namespace": "shop",
        "message": message,
        "first": models.format_time(at),
        "last": models.format_time(at),
        "count": 1,
    }


PODS = [
    _pod("catalog-7d9f8c6b5d-aaaaa", node=NODE, workload="catalog"),
    _pod("payment-7d9f8c6b5d-bbbbb", node=NODE, workload="payment"),
    _pod("catalog-7d9f8c6b5d-ccccc", node="worker-a", workload="catalog"),
    _pod("frontend-7d9f8c6b5d-ddddd", node="worker-a", workload="frontend"),
]


def _view(events: Sequence[dict[str, Any]]) -> changes.ClusterView:
    records = [
        models.Evidence.make(
            source="kubernetes",
            query=query,
            window=None,
            status=models.Status.OK,
            summary="",
            raw=list(items),
        )
        for query, items in (("kubectl get pods", PODS), ("kubectl get events", events))
    ]
    return changes.read_cluster(records)


def _not_ready(at: datetime) -> list[dict[str, Any]]:
    return [
        _event(
            "catalog-7d9f8c6b5d-aaaaa", reason="NodeNotReady", at=at, message="Node is not ready"
        ),
        _event(
            "payment-7d9f8c6b5d-bbbbb",
            reason="NodeNotReady",
            at=at + timedelta(seconds=2),
            message="Node is not ready",
        ),
    ]


def test_pods_reporting_their_node_not_ready_make_one_node_change_at_the_first_report() -> None:
    found = changes.list_changes(_view(_not_ready(ONSET + timedelta(seconds=150))))
    nodes = [c for c in found if c.kind is models.ChangeKind.NODE]
    assert [(c.ref, c.component, c.at) for c in nodes] == [
        (f"node/{NODE}", f"node/{NODE}", ONSET + timedelta(seconds=150))
    ]
    assert "2 pod(s)" in nodes[0].detail


def test_probe_failures_and_events_of_unknown_pods_are_not_node_changes() -> None:
    events = [
        _event("catalog-7d9f8c6b5d-aaaaa", reason="Unhealthy", at=ONSET, message="probe failed"),
        _event("gone-7d9f8c6b5d-zzzzz", reason="NodeNotReady", at=ONSET),
        _event("payment-7d9f8c6b5d-bbbbb", reason="NodeNotReady", at=ONSET, kind="Normal"),
    ]
    assert not [c for c in changes.list_changes(_view(events)) if c.kind is models.ChangeKind.NODE]


def test_a_node_pressure_eviction_is_node_trouble_and_an_app_eviction_is_not() -> None:
    pressure = _event(
        "catalog-7d9f8c6b5d-aaaaa",
        reason="Evicted",
        at=ONSET,
        message="The node was low on resource: memory. Threshold quantity: 100Mi",
    )
    assert changes.node_trouble(pressure)
    assert not changes.node_trouble({**pressure, "message": "Pod ephemeral local storage usage"})


def test_a_kernel_report_of_one_container_over_its_limit_is_that_containers_restart() -> None:
    oom = {
        "type": "Warning",
        "reason": "OOMKilling",
        "object": f"node/{NODE}",
        "namespace": "default",
        "message": "Memory cgroup out of memory: Killed process 4242 (catalog) total-vm:1kB",
        "first": models.format_time(ONSET),
        "last": models.format_time(ONSET),
        "count": 1,
    }
    (change,) = changes.list_changes(_view([oom]))
    assert (change.kind, change.component) == (models.ChangeKind.RESTART, "catalog")


def test_placement_maps_each_node_to_the_workloads_it_runs() -> None:
    assert changes.placement(_view([])) == {
        NODE: frozenset({"catalog", "payment"}),
        "worker-a": frozenset({"catalog", "frontend"}),
    }


def test_node_exporter_series_belong_to_their_node() -> None:
    labels = {"__name__": "node_cpu_seconds_total", "instance": "10.0.1.7:9100", "job": "node"}
    assert discovery.component_of(labels) == "node/10.0.1.7"
    assert discovery.component_of({**labels, "node": NODE}) == f"node/{NODE}"


# --- the node hypothesis ---------------------------------------------------------------------


def _component(
    name: str, *, rank: float, onset: datetime | None = ONSET
) -> components.ComponentScore:
    return components.ComponentScore(
        component=name,
        score=rank,
        rank=rank,
        onset=onset,
        anomalous=onset is not None,
        own=False,
        signals=(),
        rows=(0,),
        evidence=f"ev-{name}",
    )


def _rank(
    ranked: Sequence[components.ComponentScore], found: Sequence[models.Change]
) -> list[ranking.Draft]:
    return ranking.draft_hypotheses(
        ranked,
        changes=found,
        change_evidence={c.ref + c.at.isoformat(): f"ev-{c.ref}" for c in found},
        traffic=None,
        since=synthetic.START,
        policy=POLICY,
        placement={NODE: frozenset({"catalog", "payment"}), "worker-a": frozenset({"frontend"})},
    )


def test_a_node_hosting_the_anomalous_workloads_outranks_them_with_the_node_as_change() -> None:
    found = changes.list_changes(_view(_not_ready(ONSET + timedelta(seconds=150))))
    ranked = [_component("payment", rank=12.0), _component("catalog", rank=8.0)]
    drafts = _rank(ranked, found)
    assert [(d.kind, d.component, d.change) for d in drafts[:1]] == [
        (models.CauseKind.RESOURCE, f"node/{NODE}", f"node/{NODE}")
    ]
    assert {d.component for d in drafts[1:3]} == {"payment", "catalog"}
    assert all("node" in d.summary for d in drafts[1:3])


def test_one_anomalous_workload_on_the_node_is_not_blamed_on_the_node() -> None:
    found = changes.list_changes(_view(_not_ready(ONSET + timedelta(seconds=150))))
    drafts = _rank(
        [_component("payment", rank=12.0), _component("catalog", rank=8.0, onset=None)], found
    )
    assert drafts[0].component == "payment"
    assert not any(d.component.startswith("node/") for d in drafts)


def test_a_workload_its_own_rollout_explains_does_not_count_for_the_node() -> None:
    rollout = models.Change(
        models.ChangeKind.ROLLOUT,
        "deployment/catalog@2",
        "catalog",
        "shop",
        ONSET - timedelta(seconds=30),
        "revision 1 → 2: image catalog:1.0 → catalog:1.1",
        "ev-rs",
    )
    found = [*changes.list_changes(_view(_not_ready(ONSET + timedelta(seconds=150)))), rollout]
    drafts = _rank([_component("payment", rank=12.0), _component("catalog", rank=8.0)], found)
    assert not any(d.component.startswith("node/") for d in drafts)


def test_node_trouble_long_after_the_onset_does_not_explain_it() -> None:
    found = changes.list_changes(_view(_not_ready(ONSET + timedelta(minutes=25))))
    drafts = _rank([_component("payment", rank=12.0), _component("catalog", rank=8.0)], found)
    assert not any(d.component.startswith("node/") for d in drafts)
