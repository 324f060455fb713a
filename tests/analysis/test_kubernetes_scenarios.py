"""Each Kubernetes-state scenario (tests/kubernetes_scenarios) is localised first by the
analysis alone, with no metrics or with the metrics and pod logs it carries, and those that
carry none once more with the services' HTTP metrics: its objects and logs go through the
connectors' own translations."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from connectors import kubernetes as kube
from connectors import logs as logs_
from diagnose.analysis import correlating
from diagnose.domain import cluster, models
from tests.kubernetes_scenarios import generate
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


def _timeline_deployments(objects: list[dict], namespace: str) -> models.Evidence:
    """The Deployments as the change timeline's reader translates them (their endpoint
    environment too)."""
    return models.Evidence.make(
        source="kubernetes",
        query=f"kubectl get deployments -n {namespace} -o yaml",
        window=None,
        status=models.Status.OK,
        summary="",
        raw=[kube._translating._deployment(o) for o in objects if o["kind"] == "Deployment"],
        kind=models.EvidenceKind.DEPLOYMENTS,
    )


def _logs(folder: Path, *, trigger: models.Trigger, window: models.Window) -> list[models.Evidence]:
    """The pod logs as the log connector templates them (one read per pod), with the incident
    window the graph uses (15 minutes before the trigger)."""
    reads = []
    for path in sorted((folder / "logs").glob("*.log")):
        lines = [logs_.parse_line(line) for line in path.read_text().splitlines()]
        reads.append(
            logs_.LogRead(
                service=path.stem.rsplit("-", 2)[0],
                pod=path.stem,
                container="",
                previous=False,
                query=f"kubectl logs {path.stem} -n {trigger.namespace} --timestamps",
                status=models.Status.OK,
                summary="",
                lines=[(at, text) for at, text in lines if at is not None],
            )
        )
    return logs_.template_reads(
        reads,
        incident_from=trigger.at - timedelta(minutes=15),
        window=window,
        bounds=logs_.LogBounds(),
    )


def _check(name: str, *, metrics_file: Path | None) -> None:
    """The truth's component (and kind, and change) leads, not abstaining, with the metrics
    of ``metrics_file`` (none when it is None)."""
    folder = FOLDER / name
    scenario = yaml.safe_load((folder / "scenario.yaml").read_text())
    trigger = models.Trigger.from_dict(scenario["trigger"])
    window = models.Window(
        start=models.parse_time(scenario["time"]["start"]),
        end=models.parse_time(scenario["time"]["end"]),
    )
    files = sorted((folder / "kubernetes").glob("*.yaml"))
    objects = kubeobjects.read_objects(files)
    records = [
        _timeline_deployments(objects, trigger.namespace)
        if r.kind is models.EvidenceKind.DEPLOYMENTS
        else r
        for r in kubeobjects.cluster_evidence(files, namespace=trigger.namespace, window=window)
    ]
    metrics: list[models.Evidence] = []
    if metrics_file is not None:
        _, series = openmetrics.read(metrics_file)
        metrics = openmetrics.metric_evidence(series, window=window, step=15.0)
    result = correlating.correlate(
        trigger=trigger,
        window=window,
        metrics=metrics,
        logs=_logs(folder, trigger=trigger, window=window) if (folder / "logs").exists() else [],
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


@pytest.mark.parametrize("name", NAMES)
def test_the_faulty_object_comes_first_with_or_without_metrics(name: str) -> None:
    """The truth's component (and kind) leads, and the analysis does not abstain, with the
    metrics the scenario carries or with none."""
    own = FOLDER / name / "metrics.om"
    _check(name, metrics_file=own if own.exists() else None)


WITHOUT = [n for n in NAMES if not (FOLDER / n / "metrics.om").exists()]


@pytest.mark.parametrize("name", WITHOUT)
def test_the_faulty_object_still_comes_first_once_the_services_metrics_are_read(
    name: str, tmp_path: Path
) -> None:
    """A scenario that carries no metrics, given the services' HTTP metrics in which the
    alerting service and the faulty workload fail from the fault on (the generator's own
    metrics, so the decoy rollouts' services look anomalous too): the same object leads."""
    scenario = yaml.safe_load((FOLDER / name / "scenario.yaml").read_text())
    failing = {scenario["trigger"]["service"], scenario["truth"]["root_cause"]["component"]}
    faults = {app: "errors" for app in failing & set(generate.RATES)}
    path = tmp_path / "metrics.om"
    path.write_text(generate._metrics(faults))
    _check(name, metrics_file=path)
