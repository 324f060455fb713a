"""A worker's job is a span in the run's trace: the nodes and the PagerDuty calls below it."""

from __future__ import annotations

from pathlib import Path

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from diagnose import telemetry, wiring
from diagnose.server import intake
from tests.server import payloads
from tests.server.conftest import drain, make_settings, make_worker, open_service, serving
from tests.server.test_pagerduty import TOKEN, FakePagerDuty


def test_a_diagnosis_job_holds_its_nodes_and_its_pagerduty_calls(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    fake = FakePagerDuty()
    with serving(fake.app) as url:
        settings = make_settings(
            tmp_path / "state",
            pagerduty_api_token=TOKEN,
            pagerduty_api_url=url,
            pagerduty_from_email="bot@acme.test",
        )
        with open_service(settings) as service:
            found = intake.pagerduty_event(
                payloads.event("incident.triggered", payloads.incident("PJOB1")),
                naming=service.naming,
            )
            service.queue.enqueue(found.jobs)
            worker = make_worker(service)
            client = wiring.open_pagerduty(settings)
            assert client is not None
            worker.tools.pagerduty = client
            try:
                assert drain(worker) == 2  # the diagnosis, then its note
            finally:
                client.close()
            (run_id,) = {j.run_id or j.payload.get("run_id") for j in service.queue.list_jobs()}
    finished = spans.get_finished_spans()
    jobs = {s.name: s for s in finished if s.name.startswith("job ")}
    assert set(jobs) == {"job diagnose", f"job {intake.NOTE}"}
    diagnose = jobs["job diagnose"]
    assert diagnose.attributes is not None and diagnose.attributes["diagnose.job.attempt"] == 1
    assert {s.context.trace_id for s in finished} == {telemetry.trace_id_of(str(run_id))}
    assert {(s.attributes or {}).get(telemetry.RUN_ID) for s in finished} == {run_id}
    nodes = [s for s in finished if s.name.startswith("node ")]
    assert nodes and all(s.parent is not None for s in nodes)
    assert {s.parent.span_id for s in nodes if s.parent} == {diagnose.context.span_id}
    calls = {s.name: s for s in finished if s.name.startswith("pagerduty ")}
    assert set(calls) == {"pagerduty list_alerts", "pagerduty create_note"}
    assert calls["pagerduty list_alerts"].parent.span_id == diagnose.context.span_id  # type: ignore[union-attr]
    note_job = jobs[f"job {intake.NOTE}"].context.span_id
    assert calls["pagerduty create_note"].parent.span_id == note_job  # type: ignore[union-attr]
