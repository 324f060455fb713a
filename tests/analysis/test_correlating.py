"""Root-cause ranking on synthetic incidents: roots over symptoms, changes over decoys."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import hypothesis
import numpy as np
from hypothesis import strategies as st

from diagnose.analysis import changes, correlating, ranking
from diagnose.analysis import components as components_
from diagnose.domain import models
from tests.support import synthetic as syn


def _run(
    incident: syn.Incident, cluster: list[models.Evidence] | None = None
) -> correlating.Correlation:
    return correlating.correlate(
        trigger=incident.trigger,
        window=incident.window,
        metrics=incident.metrics,
        cluster=cluster if cluster is not None else incident.cluster,
        now=incident.now,
    )


def _cites_only_existing(result: correlating.Correlation, *sources: list[models.Evidence]) -> bool:
    known = {e.id for group in sources for e in group} | {e.id for e in result.derived}
    return models.cited_ids(result.hypotheses) <= known


def test_a_deploy_right_before_the_onset_ranks_first_and_the_decoy_does_not() -> None:
    """payment@2 rolls out 50 s before payment's errors; catalog@2 at the same time is quiet."""
    incident = syn.incident(syn.Fault("payment", "errors", 3000))
    cluster = syn.cluster(
        replicasets=syn.rollout("payment", at=syn.at(2950))
        + syn.rollout("catalog", at=syn.at(2955)),
        window=incident.window,
    )
    result = _run(incident, cluster)
    best = result.hypotheses[0]
    assert (best.kind, best.component, best.change) == (
        models.CauseKind.DEPLOY,
        "payment",
        "deployment/payment@2",
    )
    assert not result.abstained
    decoy = next(h for h in result.hypotheses if h.component == "catalog")
    assert decoy.confidence < 0.1 and decoy.counter_evidence
    assert _cites_only_existing(result, incident.metrics, cluster)


def test_a_change_after_the_onset_is_counter_evidence() -> None:
    """A rollout ten minutes after the errors began explains nothing and is cited against."""
    incident = syn.incident(syn.Fault("payment", "errors", 3000))
    cluster = syn.cluster(
        replicasets=syn.rollout("payment", at=syn.at(3600)), window=incident.window
    )
    result = _run(incident, cluster)
    best = result.hypotheses[0]
    assert best.component == "payment" and best.change is None
    late = next(e for e in result.derived if "--revision=2" in e.query)
    assert late.id in best.counter_evidence


def test_a_config_edit_before_the_onset_is_a_config_hypothesis() -> None:
    """A ConfigMap named after the workload, edited a minute before the onset."""
    incident = syn.incident(syn.Fault("checkout", "errors", 3000))
    cluster = syn.cluster(
        configs=[syn.configmap("checkout-config", updated=syn.at(2940))], window=incident.window
    )
    best = _run(incident, cluster).hypotheses[0]
    assert (best.kind, best.component, best.change) == (
        models.CauseKind.CONFIG,
        "checkout",
        "configmap/checkout-config",
    )


def test_a_limits_only_revision_is_a_resource_hypothesis() -> None:
    """A revision that only lowered the CPU limit, before catalog's CPU-bound slowdown."""
    incident = syn.incident(syn.Fault("catalog", "cpu", 3000))
    cluster = syn.cluster(
        replicasets=syn.rollout("catalog", at=syn.at(2980), limits_only=True),
        window=incident.window,
    )
    best = _run(incident, cluster).hypotheses[0]
    assert (best.kind, best.component) == (models.CauseKind.RESOURCE, "catalog")
    assert best.change == "deployment/catalog@2"
    assert "limits.cpu" in best.summary


def test_the_root_outranks_its_callers() -> None:
    """payment's errors reach checkout and frontend; payment, with its own CPU, comes first."""
    result = _run(syn.incident(syn.Fault("payment", "cpu", 3000)))
    assert result.hypotheses[0].component == "payment"
    assert result.hypotheses[0].kind is models.CauseKind.RESOURCE


def test_the_alerting_service_is_not_blamed_for_being_the_alerting_service() -> None:
    """frontend alerts, catalog's memory is what moved."""
    result = _run(syn.incident(syn.Fault("catalog", "memory", 3000)))
    assert result.hypotheses[0].component == "catalog"


def test_traffic_rising_at_the_entry_with_no_change_is_traffic() -> None:
    """Request rate triples at frontend and everywhere; CPU follows; nothing was deployed."""
    result = _run(syn.incident(syn.Fault("frontend", "traffic", 3000)))
    best = result.hypotheses[0]
    assert (best.kind, best.component) == (models.CauseKind.TRAFFIC, "frontend")


def test_nothing_anomalous_abstains_and_still_ranks() -> None:
    """A quiet hour: abstain, say so, and still return a ranked list."""
    result = _run(syn.incident(None), [])
    assert result.abstained
    assert all(h.confidence < 0.35 for h in result.hypotheses)
    assert any("Kubernetes" in n for n in result.notes)


def test_a_decoy_deploy_alone_abstains() -> None:
    """A rollout on a healthy service with no anomaly anywhere is not a root cause."""
    incident = syn.incident(None)
    cluster = syn.cluster(
        replicasets=syn.rollout("catalog", at=syn.at(2800)), window=incident.window
    )
    result = _run(incident, cluster)
    assert result.abstained


def test_failed_sources_are_skipped_and_mentioned() -> None:
    """Error evidence is not scored, and the notes say what was missing."""
    incident = syn.incident(syn.Fault("payment", "cpu", 3000))
    broken = models.Evidence.make(
        source="prometheus",
        query='{__name__="x"}',
        window=incident.window,
        status=models.Status.ERROR,
        summary="Prometheus timed out",
        raw=[],
    )
    labels = models.Evidence.make(
        source="prometheus",
        query="/api/v1/labels",
        window=incident.window,
        status=models.Status.OK,
        summary="3 labels",
        raw=["a", "b", "c"],
    )
    result = _run(incident, [])
    again = correlating.correlate(
        trigger=incident.trigger,
        window=incident.window,
        metrics=[*incident.metrics, broken, labels],
        cluster=[],
        now=incident.now,
    )
    assert again.hypotheses[0].component == result.hypotheses[0].component == "payment"
    assert any("timed out" in n for n in again.notes)


def test_derived_evidence_reruns_as_promql_and_serialises() -> None:
    """Component findings carry a PromQL query and small raw data; to_dict is plain data."""
    result = _run(syn.incident(syn.Fault("payment", "cpu", 3000)))
    finding = next(e for e in result.derived if e.raw and e.raw.get("component") == "payment")
    assert finding.source == "analysis"
    assert "rate(" in finding.query and '"payment"' in finding.query
    assert len(finding.raw["series"]["t"]) <= 60
    data = result.to_dict()
    assert data["hypotheses"][0]["component"] == "payment"
    assert isinstance(data["components"][0]["signals"], list)


def _scaled(service: str, *, at: float, to: int, way: str = "up") -> list[models.Evidence]:
    """A ScalingReplicaSet event on ``service``'s long-standing ReplicaSet (no rollout)."""
    event = {
        "object": f"deployment/{service}",
        "namespace": syn.NAMESPACE,
        "reason": "ScalingReplicaSet",
        "type": "Normal",
        "message": f"Scaled {way} replica set {service}-00000001a to {to} from 2",
        "first": models.format_time(syn.at(at)),
        "last": models.format_time(syn.at(at)),
        "count": 1,
    }
    return [
        models.Evidence.make(
            source="kubernetes",
            query=f"kubectl get events -n {syn.NAMESPACE} -o yaml",
            window=None,
            status=models.Status.OK,
            summary="1 event",
            raw=[event],
        )
    ]


def test_a_scale_up_after_a_surge_began_is_its_response_not_its_cause() -> None:
    """Traffic triples at 3000 s; an autoscaler scales frontend out a minute later: still
    traffic, and the scale-up is not the change that explains anything."""
    incident = syn.incident(syn.Fault("frontend", "traffic", 3000))
    old = syn.replicaset(
        "frontend", revision=1, created=syn.START - timedelta(days=3), image="frontend:1.0"
    )
    cluster = syn.cluster(replicasets=[old], window=incident.window) + _scaled(
        "frontend", at=3060, to=5
    )
    result = _run(incident, cluster)
    best = result.hypotheses[0]
    assert (best.kind, best.component, best.change) == (
        models.CauseKind.TRAFFIC,
        "frontend",
        None,
    )
    assert all(h.change is None for h in result.hypotheses if h.component == "frontend")


def test_a_scale_down_right_after_the_onset_still_counts_within_the_onset_slack() -> None:
    """Removing replicas can cause trouble: a scale-down within the onset's uncertainty still
    explains its component (only scale-ups are held to landing before the onset)."""
    incident = syn.incident(syn.Fault("catalog", "cpu", 3000))
    old = syn.replicaset(
        "catalog", revision=1, created=syn.START - timedelta(days=3), image="catalog:1.0"
    )
    cluster = syn.cluster(replicasets=[old], window=incident.window) + _scaled(
        "catalog", at=3030, to=1, way="down"
    )
    best = _run(incident, cluster).hypotheses[0]
    assert (best.component, best.change) == ("catalog", "deployment/catalog")


def _draft(component: str, score: float) -> ranking.Draft:
    return ranking.Draft(
        kind=models.CauseKind.DEPLOY,
        component=component,
        score=score,
        strength=60.0,
        fit=1.0,
        summary=f"rollout of {component} right before its onset",
        evidence=(),
        counter=(),
        change=f"deployment/{component}@2",
        onset=syn.at(3000),
    )


def test_two_equally_good_explanations_abstain_and_both_stay_on_top() -> None:
    """Two rollouts, each right before its own component's equally strong onset: naming one
    would be a coin flip, so the analysis abstains with both leading the list alike."""
    policy = ranking.ConfidencePolicy()
    hypotheses, abstained = ranking.finish(
        [_draft("ranker", 10.0), _draft("profile", 9.9)], policy=policy
    )
    assert abstained
    assert [h.component for h in hypotheses] == ["ranker", "profile"]
    assert abs(hypotheses[0].confidence - hypotheses[1].confidence) < 0.02
    clear, abstained = ranking.finish(
        [_draft("ranker", 10.0), _draft("profile", 6.0)], policy=policy
    )
    assert not abstained and clear[0].confidence > 0.5


_DRAFTS = st.lists(
    st.tuples(
        st.floats(min_value=0.01, max_value=100.0),  # ordering score
        st.floats(min_value=0.0, max_value=200.0),  # strength
        st.floats(min_value=0.05, max_value=1.0),  # fit
    ),
    min_size=1,
    max_size=8,
)


@hypothesis.given(_DRAFTS)
def test_hypotheses_are_ranked_by_the_confidence_they_show(specs: list[Any]) -> None:
    """Whatever the drafts' scores, strengths and fits (near ties included), the hypotheses come
    out in non-increasing confidence, and abstention follows the first one's."""
    drafts = [
        replace(_draft(f"c{i}", score), strength=strength, fit=fit)
        for i, (score, strength, fit) in enumerate(sorted(specs, key=lambda s: -s[0]))
    ]
    policy = ranking.ConfidencePolicy()
    hypotheses, abstained = ranking.finish(drafts, policy=policy)
    confidences = [h.confidence for h in hypotheses]
    assert confidences == sorted(confidences, reverse=True)
    assert abstained == (confidences[0] < policy.abstain_below)


def test_a_third_hypothesis_never_outranks_a_near_tie_through_the_fade() -> None:
    """Scores 10, 9.9 and 9.4: the near tie of the first two fades all three alike, so the
    third (not part of the tie) does not come out with more confidence than the leader."""
    hypotheses, _ = ranking.finish(
        [_draft("a", 10.0), _draft("b", 9.9), _draft("c", 9.4)], policy=ranking.ConfidencePolicy()
    )
    assert [h.component for h in hypotheses] == ["a", "b", "c"]


def test_a_change_within_one_sampling_interval_after_the_onset_can_cause_it() -> None:
    """With five-minute samples an onset is placed to within five minutes: a change four
    minutes after the estimate still precedes the real onset; with one-second data it does not."""
    policy = ranking.ConfidencePolicy()
    onset = syn.at(3000)
    change_at = syn.at(3240)
    assert ranking.precedence(change_at, onset, policy=policy, resolution_s=300.0) == 1.0
    assert ranking.precedence(change_at, onset, policy=policy, resolution_s=1.0) == 0.0


def test_a_change_after_the_alert_explains_nothing() -> None:
    """A rollout landing after the alert fired cannot have caused what the alert saw, whatever
    the onset estimate says."""
    change = models.Change(
        kind=models.ChangeKind.ROLLOUT,
        ref="deployment/cart@4",
        component="cart",
        namespace="shop",
        at=syn.at(3100),
        detail="image cart:2",
        evidence="ev-1",
    )
    policy = ranking.ConfidencePolicy()
    late = ranking.explains(change, syn.at(3000), policy=policy, resolution_s=300.0)
    assert late == 1.0
    assert (
        ranking.explains(
            change, syn.at(3000), policy=policy, resolution_s=300.0, alert_at=syn.at(3050)
        )
        == 0.0
    )


def _deployment(name: str, *, configs: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": syn.NAMESPACE,
        "created": models.format_time(syn.START - timedelta(days=30)),
        "labels": {"app": name},
        "selector": {"app": name},
        "replicas": 2,
        "available": 2,
        "revision": 3,
        "images": [f"{name}:1.0"],
        "annotations": {},
        "configs": configs,
    }


def test_a_config_edit_belongs_to_every_workload_that_reads_it() -> None:
    """A ConfigMap named after no workload (``shared-flags``), read through envFrom by two
    deployments: its edit is a change to each of them, not to a workload called shared-flags."""
    deployments = [
        _deployment("cart", configs=["configmap/shared-flags"]),
        _deployment("search", configs=["configmap/shared-flags", "secret/search-db"]),
        _deployment("ads", configs=[]),
    ]
    records = [
        models.Evidence.make(
            source="kubernetes",
            query=query,
            window=None,
            status=models.Status.OK,
            summary="",
            raw=items,
        )
        for query, items in (
            ("kubectl get deployments", deployments),
            ("kubectl get configmaps", [syn.configmap("shared-flags", updated=syn.at(2900))]),
        )
    ]
    view = changes.read_cluster(records)
    found = changes.list_changes(view, known=["cart", "search", "ads"])
    edits = [c for c in found if c.kind is models.ChangeKind.CONFIG]
    assert sorted(c.component for c in edits) == ["cart", "search"]
    assert {c.ref for c in edits} == {"configmap/shared-flags"}


def test_a_workload_whose_latency_alone_moved_is_worded_as_waiting() -> None:
    """A service slower with no resource, restart or error signal of its own is named with
    what that shape usually means: a slow dependency it waits on."""
    slow = components_.ComponentScore(
        component="checkout",
        score=30.0,
        rank=10.0,
        onset=syn.at(3000),
        anomalous=True,
        own=False,
        signals=(
            components_.SignalScore(
                "http_server_request_duration_seconds",
                "latency",
                "p95",
                "q",
                "ev-1",
                40.0,
                0.05,
                0.4,
                syn.at(3000),
            ),
        ),
        rows=(0,),
    )
    (draft,) = ranking.draft_hypotheses(
        [slow],
        changes=[],
        change_evidence={},
        traffic=None,
        since=syn.at(0),
        policy=ranking.ConfidencePolicy(),
    )
    assert draft.kind is models.CauseKind.RESOURCE
    assert "slow dependency" in draft.summary
    assert draft.fit < 0.8


def test_an_onset_inside_the_baseline_makes_no_later_onset_late() -> None:
    """catalog's CPU steps up by 0.1 core 19 minutes before the alert, inside the baseline
    (which ends 15 minutes before it), and nothing follows from it; payment's CPU fault 4
    minutes before the alert slows its callers. The later-onset penalty is counted from the
    first onset after the baseline's end, so catalog's early step does not make payment's
    onset late: payment leads (measured from catalog's, it fell behind it)."""
    incident = syn.incident(syn.Fault("payment", "cpu", 3000, size=0.15))

    def stepped(series: dict[str, Any]) -> dict[str, Any]:
        if series["labels"].get("container") != "catalog":
            return series
        t = np.asarray(series["t"])
        step_up = np.cumsum((t - t[0] >= 2100).astype(float) * 0.1 * syn.STEP)
        return {**series, "v": list(np.asarray(series["v"]) + step_up)}

    metrics = [
        replace(record, raw=[stepped(s) for s in record.raw])
        if "container_cpu_usage_seconds_total" in record.query
        else record
        for record in incident.metrics
    ]
    result = _run(replace(incident, metrics=metrics))
    scored = {c.component: c for c in result.components}
    assert scored["catalog"].anomalous and scored["catalog"].onset == syn.at(2100)
    assert result.hypotheses[0].component == "payment"
    assert scored["payment"].rank > scored["catalog"].rank
