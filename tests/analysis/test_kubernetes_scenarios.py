"""Each Kubernetes-state scenario (tests/kubernetes_scenarios) is localised first by the
analysis alone, with no metrics or with the ones it carries: its objects go through the
connector's own translations."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from connectors import kubernetes as kube
from diagnose.analysis import correlating
from diagnose.domain import cluster, models
from tests.support import kubeobjects, openmetrics

FOLDER = Path(__file__).resolve().parents[1] / "kubernetes_scenarios"
NAMES = sorted(p.parent.name for p in FOLDER.glob("*/scenario.yaml"))
PLURAL = {
    "Pod": "pods",
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "Node": "nodes",
    "Service": "services",
    "EndpointSlice": "endpointslices",
    "ResourceQuota": "resourcequotas",
    "LimitRange": "limitranges",
    "PersistentVolumeClaim": "persistentvolumeclaims",
    "PersistentVolume": "persistentvolumes",
    "ServiceAccount": "serviceaccounts",
    "NetworkPolicy": "networkpolicies",
}


def _state(objects: list[dict], namespace: str) -> list[models.Evidence]:
    """The records gather_state would read, translated as the connector translates them."""
    records = []
    for kind in cluster.STATE_KINDS:
        translate = kube._STATE_READERS[kind][2]
        items = [translate(o) for o in objects if PLURAL.get(o["kind"]) == kind]
        records.append(
            models.Evidence.make(
                source="kubernetes",
                query=f"kubectl get {kind} -n {namespace} -o yaml",
                window=None,
                status=models.Status.OK if items else models.Status.EMPTY,
                summary="",
                raw=items,
                kind=models.EvidenceKind.STATE,
            )
        )
    return records


@pytest.mark.parametrize("name", NAMES)
def test_the_faulty_object_comes_first_with_or_without_metrics(name: str) -> None:
    """The truth's component (and kind) leads, and the analysis does not abstain."""
    folder = FOLDER / name
    scenario = yaml.safe_load((folder / "scenario.yaml").read_text())
    trigger = models.Trigger.from_dict(scenario["trigger"])
    window = models.Window(
        start=models.parse_time(scenario["time"]["start"]),
        end=models.parse_time(scenario["time"]["end"]),
    )
    files = sorted((folder / "kubernetes").glob("*.yaml"))
    objects = kubeobjects.read_objects(files)
    records = kubeobjects.cluster_evidence(files, namespace=trigger.namespace, window=window)
    metrics: list[models.Evidence] = []
    if (folder / "metrics.om").exists():
        _, series = openmetrics.read(folder / "metrics.om")
        metrics = openmetrics.metric_evidence(series, window=window, step=15.0)
    result = correlating.correlate(
        trigger=trigger,
        window=window,
        metrics=metrics,
        cluster=[*records, *_state(objects, trigger.namespace)],
        now=window.end,
    )
    truth = scenario["truth"]["root_cause"]
    top = result.hypotheses[0]
    assert (top.component, top.kind.value) == (truth["component"], truth["kind"]), [
        (h.component, h.kind.value, round(h.confidence, 2)) for h in result.hypotheses[:3]
    ]
    assert not result.abstained
    assert top.change == truth.get("change")
    derived = {e.id: e for e in result.derived}
    assert derived[top.evidence[0]].query.startswith("kubectl ")
