"""The gather_code step against the lab's Kubernetes API (the real client) and real clones:
ranges read, and every way the repository is unavailable is a note, never an error."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors import bundle, kubernetes, repository
from diagnose import scenario as scenario_format
from diagnose.domain import models
from diagnose.lab import kubeapi, repositories, staging
from graphs import coding
from graphs.state import Context, Run

pytestmark = pytest.mark.lab

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "code-migration-dropped-index"
URL = "https://git.shop.example/shop/orders-api"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[kubernetes.KubernetesConnector]:
    """The scenario's ReplicaSets (revision 8 names its commit) served by the lab's API."""
    objects = staging.load_kubernetes_objects(scenario_format.Scenario.load(SCENARIO))
    server = kubeapi.KubeApiServer.serve(objects, workdir=tmp_path_factory.mktemp("kubeapi"))
    try:
        yield kubernetes.KubernetesConnector(server.url)
    finally:
        server.stop()


def _run() -> Run:
    loaded = scenario_format.Scenario.load(SCENARIO)
    at = loaded.trigger.at
    return Run(
        run_id="run-code",
        trigger=loaded.trigger_record(),
        window=models.Window(start=at - timedelta(hours=1), end=at + timedelta(minutes=3)),
        now=datetime.now(UTC),
        step_s=15.0,
    )


def _context(
    tmp_path: Path, cluster: kubernetes.KubernetesConnector, clone: Path | None = None
) -> Context:
    return Context(
        store=bundle.FileEvidenceStore(tmp_path / "bundles"),
        cluster=cluster,
        repositories=repository.LocalRepositories.of({URL: clone} if clone else {}),
    )


def test_a_rollouts_range_is_read_and_kept_with_its_rollout(
    tmp_path: Path, cluster: kubernetes.KubernetesConnector
) -> None:
    """Revision 8's commits come back as one commits record naming the rollout."""
    clone = repositories.unpack(
        SCENARIO / "repositories" / "orders-api.bundle", target=tmp_path / "clone"
    )
    found = coding.gather_code(_run(), context=_context(tmp_path, cluster, clone))
    [record] = found.evidence
    assert record.kind is models.EvidenceKind.COMMITS and record.status is models.Status.OK
    assert record.raw["change"] == "deployment/orders-api@8"
    assert len(record.raw["range"]["commits"]) == 3
    assert found.notes == ()


def test_an_unreachable_clone_is_a_note(
    tmp_path: Path, cluster: kubernetes.KubernetesConnector
) -> None:
    """A clone path holding nothing gives an error record and a note naming the rollout."""
    found = coding.gather_code(_run(), context=_context(tmp_path, cluster, tmp_path / "nowhere"))
    [record] = found.evidence
    assert record.status is models.Status.ERROR and record.raw["range"] is None
    assert found.notes and found.notes[0].startswith("code: deployment/orders-api@8: ")


def test_an_unmapped_repository_is_a_note_and_the_ranking_is_unchanged(
    tmp_path: Path, cluster: kubernetes.KubernetesConnector
) -> None:
    """With no clone for the rollout's repository the note names the setting, and attaching
    code to a ranking changes nothing."""
    found = coding.gather_code(_run(), context=_context(tmp_path, cluster))
    assert "DIAGNOSE_REPOSITORIES" in found.notes[0]
    ranking = {
        "hypotheses": [
            {
                "kind": "deploy",
                "component": "orders-api",
                "confidence": 0.5,
                "summary": "s",
                "evidence": [],
                "change": "deployment/orders-api@8",
            }
        ],
        "abstained": False,
        "notes": [],
    }
    attached = coding.attach_code(ranking, evidence=found.evidence, abstain_below=0.2)
    assert attached == ranking


def test_flux_events_in_flux_system_are_gathered_with_the_syncs(tmp_path: Path) -> None:
    """code-flux-kustomization's Kustomization lives in flux-system: its controller's event
    there is gathered as events evidence beside the syncs, without a repository."""
    flux = SCENARIO.parent / "code-flux-kustomization"
    loaded = scenario_format.Scenario.load(flux)
    objects = staging.load_kubernetes_objects(loaded)
    server = kubeapi.KubeApiServer.serve(objects, workdir=tmp_path / "kubeapi")
    try:
        with kubernetes.KubernetesConnector(server.url) as connector:
            context = Context(store=bundle.FileEvidenceStore(tmp_path / "b"), cluster=connector)
            found = coding.gather_code(_run(), context=context)
    finally:
        server.stop()
    kinds = {e.kind: e for e in found.evidence}
    assert set(kinds) == {models.EvidenceKind.DELIVERIES, models.EvidenceKind.EVENTS}
    events = kinds[models.EvidenceKind.EVENTS].raw
    assert [(e["object"], e["reason"], e["namespace"]) for e in events] == [
        ("kustomization/shop-orders", "ReconciliationSucceeded", "flux-system")
    ]
    assert found.notes == ()
