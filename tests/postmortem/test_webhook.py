"""PagerDuty's incident.resolved drafts the postmortem of the run the incident started, with
the lab's real servers behind the diagnosis, and the error budget the SLO settings give."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from PIL import Image

from connectors import bundle
from diagnose import wiring
from diagnose.domain import models
from diagnose.server import app, intake
from tests.conftest import LabRunFactory
from tests.server import payloads
from tests.server.conftest import SECRET, drain, make_settings, make_worker, open_service, serving

pytestmark = [pytest.mark.lab, pytest.mark.slow]

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
BURNED = re.compile(
    r"^- Error budget burned: ≈ (?P<share>[\d.]+)% of the 30-day error budget of .+: "
    r"≈ (?P<failed>[\d,]+) failed requests against a budget of ≈ (?P<budget>[\d,]+), "
    r"assuming the pre-onset rate of (?P<rate>[\d.]+) req/s",
    re.M,
)
CITED = re.compile(r"^- (?P<at>\S+): .+ — \[(?P<ref>[^\]]+)\]\(#[a-z0-9-]+\)$")


def _post(base_url: str, body: dict[str, object], *, webhook_id: str) -> httpx.Response:
    raw, headers = payloads.signed(body, SECRET, webhook_id=webhook_id)
    return httpx.post(f"{base_url}/webhooks/pagerduty", content=raw, headers=headers)


# SQLite: the default objective; PostgreSQL: the alerting service's own, which wins.
OBJECTIVES = {
    "sqlite": ({"slo_target": "0.999"}, 0.999, "frontend's 99.9% objective (DIAGNOSE_SLO_TARGET)"),
    "postgres": (
        {"slo_target": "0.9", "slo_targets": "frontend=0.995,checkout=0.99"},
        0.995,
        "frontend's 99.5% objective (DIAGNOSE_SLO_TARGETS frontend)",
    ),
}


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_a_resolved_incident_drafts_the_postmortem_of_the_run_it_started(
    store: str, tmp_path: Path, lab_run: LabRunFactory, request: pytest.FixtureRequest
) -> None:
    running = lab_run(SCENARIOS / "bad-deploy-5xx")
    objectives, target, objective = OBJECTIVES[store]
    extra: dict[str, str] = dict(objectives)
    if store == "postgres":  # checkpoints, queue and audit log in PostgreSQL
        cluster = request.getfixturevalue("postgres_cluster")
        name = "pm_" + uuid.uuid4().hex[:10]
        cluster.create_database(name)
        extra["database_url"] = cluster.dsn(name)
    base = make_settings(tmp_path / "state", default_namespace="shop", **extra)
    settings = wiring.with_endpoints(base, running.endpoints)
    incident = payloads.incident("PLAB001", service="frontend") | {
        "created_at": models.format_time(running.trigger.at),
        "title": running.trigger.title,
    }
    resolved_at = running.trigger.at + timedelta(minutes=25)
    resolved = payloads.event("incident.resolved", incident, event_id="ev-resolved")
    resolved["event"]["occurred_at"] = models.format_time(resolved_at)
    triggered = payloads.event("incident.triggered", incident)

    with open_service(settings) as service, serving(app.create_app(service)) as url:
        assert _post(url, triggered, webhook_id="t-1").status_code == 202
        assert _post(url, resolved, webhook_id="r-1").status_code == 202
        assert drain(make_worker(service)) == 2
        (diagnosed,) = service.queue.list_jobs(kind="diagnose")
        (job,) = service.queue.list_jobs(kind=intake.POSTMORTEM)
        served = httpx.get(
            f"{url}/api/v1/incidents/PLAB001/postmortem",
            headers={"Authorization": "Bearer alice-token-123"},
        )
        audit = {f"audit:{e['key']}" for e in service.agent.context.audit.entries(diagnosed.run_id)}

    assert job.state == "done" and job.result is not None
    assert job.result["run_id"] == diagnosed.run_id
    text = job.result["markdown"]
    assert served.status_code == 200 and served.text == text
    folder = Path(job.result["folder"])
    assert (folder / "postmortem.md").read_text() == text

    run_bundle = settings.bundles_dir / str(diagnosed.run_id)
    evidence = {e.id for e in bundle.read_evidence(run_bundle)}
    timeline = text.split("## Timeline (UTC)\n", 1)[1].split("\n## ", 1)[0].strip().splitlines()
    refs = []
    for line in timeline:
        found = CITED.match(line)
        assert found, line
        refs.append(found["ref"])
    stored = evidence | audit | {"manifest.json#trigger", "manifest.json#now"}
    assert set(refs) - stored == {f"queue-job:{job.id}"}
    assert timeline[-1].startswith(f"- {models.format_time(resolved_at)}: incident resolved")
    assert job.payload["resolved_at"] == models.format_time(resolved_at)
    assert "- End: " + models.format_time(resolved_at) + " (resolved)" in text
    assert any("deployment/checkout@14" in line for line in timeline)
    burned = BURNED.search(text)
    assert burned and objective in burned[0], text
    failed, budget = (float(burned[k].replace(",", "")) for k in ("failed", "budget"))
    assert failed > 0
    assert budget == pytest.approx((1 - target) * float(burned["rate"]) * 30 * 86400, rel=0.01)
    assert float(burned["share"]) == pytest.approx(100 * failed / budget, abs=0.06)

    assert job.result["images"]
    for name in job.result["images"]:
        with Image.open(folder / name) as image:
            assert image.format == "PNG" and image.size == (900, 360)
        assert f"]({name})" in text
