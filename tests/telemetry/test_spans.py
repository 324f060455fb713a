"""Spans for graph nodes and model calls, and JSON log lines carrying their ids (in memory)."""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from connectors import _http, llm
from diagnose import telemetry, wiring
from diagnose.domain import errors, models
from diagnose.settings import Settings
from graphs import runner
from tests.llm import scripted

TRIGGER = models.Trigger(
    source="pagerduty",
    title="checkout 5xx",
    service="checkout",
    namespace="shop",
    at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
    incident_id="PTEL1",
)


def _settings(tmp_path: Path) -> Settings:
    """No sources at all: the run still goes through every node to the approval step."""
    return Settings.model_validate({"state_dir": tmp_path, "kubernetes_enabled": False})


def _start(settings: Settings, *, run_id: str) -> runner.Paused:
    with wiring.open_agent(settings, progress=lambda _m: None) as agent:
        return agent.start(TRIGGER, run_id=run_id)


@pytest.fixture
def server() -> Iterator[scripted.ScriptedServer]:
    yield from scripted.serve()


def _client(server: scripted.ScriptedServer) -> llm.ChatClient:
    retry = _http.RetryPolicy(attempts=1, budget_s=5.0)
    return llm.ChatClient(server.url, model=scripted.MODEL, timeout_s=5.0, retry=retry)


def test_each_node_that_ran_has_exactly_one_span_carrying_the_run_id(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    paused = _start(_settings(tmp_path), run_id="run-telemetry01")
    finished = spans.get_finished_spans()
    nodes = Counter(s.attributes["diagnose.node"] for s in finished if s.name.startswith("node "))
    assert nodes == Counter(list(paused.state["timings_s"]))  # the nodes that ran, once each
    assert {"intake", "scope", "gather_metrics", "correlate", "propose"} <= set(nodes)
    assert {s.attributes[telemetry.RUN_ID] for s in finished} == {"run-telemetry01"}
    assert {s.context.trace_id for s in finished} == {telemetry.trace_id_of("run-telemetry01")}
    assert all(s.resource.attributes["service.name"] == "diagnose" for s in finished)


def test_a_run_resumed_by_another_agent_continues_the_same_trace(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    settings = _settings(tmp_path)
    _start(settings, run_id="run-telemetry02")
    spans.clear()
    answer = {"verdict": "reject", "approver": "alice", "reason": "no", "checked_evidence": []}
    with wiring.open_agent(settings, progress=lambda _m: None) as agent:
        agent.resume("run-telemetry02", answer | {"fix": None})
    finished = spans.get_finished_spans()
    assert "node report" in {s.name for s in finished}
    assert {s.context.trace_id for s in finished} == {telemetry.trace_id_of("run-telemetry02")}


def test_a_chat_request_is_a_client_span_with_genai_attributes(
    spans: InMemorySpanExporter, server: scripted.ScriptedServer
) -> None:
    server.script(scripted.completion(content="ok", prompt_tokens=321, completion_tokens=45))
    with _client(server) as client:
        client.complete([{"role": "user", "content": "hi"}], max_tokens=64)
    (span,) = spans.get_finished_spans()
    assert span.name == f"chat {scripted.MODEL}" and span.kind is SpanKind.CLIENT
    attributes = dict(span.attributes or {})
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == scripted.MODEL
    assert attributes["gen_ai.request.max_tokens"] == 64
    assert (attributes["gen_ai.usage.input_tokens"], attributes["gen_ai.usage.output_tokens"]) == (
        321,
        45,
    )
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == server.port


def test_a_refused_chat_request_is_an_error_span_with_its_error_type(
    spans: InMemorySpanExporter, server: scripted.ScriptedServer
) -> None:
    server.script(scripted.Answer({"error": {"message": "bad request"}}, status=400))
    with _client(server) as client, pytest.raises(errors.SourceRejected):
        client.complete([{"role": "user", "content": "hi"}])
    (span,) = spans.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "SourceRejected"


def test_log_lines_are_json_with_the_trace_span_and_run_ids(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    stream = io.StringIO()
    handler = telemetry.log_json_lines(stream)
    try:
        _start(_settings(tmp_path), run_id="run-telemetry03")
    finally:
        handler.close()
        telemetry.logging.getLogger("diagnose").removeHandler(handler)
    lines: list[dict[str, Any]] = [json.loads(line) for line in stream.getvalue().splitlines()]
    node_spans = {
        format(s.context.span_id, "016x"): s.name
        for s in spans.get_finished_spans()
        if s.name.startswith("node ")
    }
    done = [line for line in lines if line["message"].startswith("node ")]
    assert len(done) == len(node_spans)
    for line in done:
        assert line["trace_id"] == format(telemetry.trace_id_of("run-telemetry03"), "032x")
        assert node_spans[line["span_id"]] == line["message"].removesuffix(" done")
        assert line["run_id"] == "run-telemetry03" and line["level"] == "info"


def test_with_telemetry_off_nothing_is_wrapped_or_recorded(tmp_path: Path) -> None:
    telemetry.shutdown()
    assert not telemetry.enabled()
    assert telemetry.configure(otlp_endpoint=None) is False
    settings = _settings(tmp_path)
    with wiring.open_agent(settings, progress=lambda _m: None) as agent:
        assert telemetry.with_traced_ports(agent.context, ("metrics",)) is agent.context
        paused = agent.start(TRIGGER, run_id="run-telemetry04")
    assert paused.waiting
