"""A lab diagnosis exports its spans over OTLP/HTTP to a collector on loopback."""

from __future__ import annotations

from pathlib import Path

import pytest

from diagnose import telemetry, wiring
from diagnose.settings import Settings
from tests.conftest import LabRunFactory
from tests.telemetry.conftest import Receiver

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "bad-deploy-5xx"
CLIENT = 3  # SpanKind.SPAN_KIND_CLIENT in OTLP


@pytest.mark.lab
@pytest.mark.slow
def test_a_lab_run_sends_one_span_per_node_and_one_per_port_call_with_the_run_id(
    lab_run: LabRunFactory, otlp_receiver: Receiver, tmp_path: Path
) -> None:
    up = lab_run(SCENARIO)
    base = Settings.model_validate({"state_dir": tmp_path, "otlp_endpoint": otlp_receiver.url})
    settings = wiring.with_endpoints(base, up.endpoints)
    with wiring.open_agent(settings, progress=lambda _m: None) as agent:
        paused = agent.start(up.trigger)
    assert telemetry.flush()
    received = otlp_receiver.spans
    assert set(otlp_receiver.content_types) == {"application/x-protobuf"}

    nodes = [s for s in received if s.name.startswith("node ")]
    assert sorted(s.attributes["diagnose.node"] for s in nodes) == sorted(paused.state["timings_s"])
    assert all(s.attributes[telemetry.RUN_ID] == paused.run_id for s in received)
    assert {s.trace_id for s in received} == {telemetry.trace_id_of(paused.run_id).to_bytes(16)}
    assert {s.resource["service.name"] for s in received} == {"diagnose"}

    calls = [s for s in received if not s.name.startswith("node ")]
    node_ids = {s.span_id: s.attributes["diagnose.node"] for s in nodes}
    ports = {s.name.split()[0] for s in calls}
    assert {"metrics", "cluster"} <= ports
    for call in calls:
        assert call.kind == CLIENT
        assert call.parent_span_id in node_ids, f"{call.name} hangs under no node"
        assert call.attributes["diagnose.evidence.query"]
    gathered = {node_ids[c.parent_span_id] for c in calls if c.name.startswith("metrics ")}
    assert "gather_metrics" in gathered
    sources = {c.attributes["diagnose.evidence.source"] for c in calls}
    assert {"prometheus", "kubernetes"} <= sources
