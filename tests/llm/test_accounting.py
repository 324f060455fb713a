"""What the model cost a run is counted in the report, the terminal view and ``/metrics``."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import httpx
from rich.console import Console

from diagnose import rendering
from diagnose.domain import models
from diagnose.server import app
from graphs import reporting
from tests.llm import scripted
from tests.server import payloads
from tests.server.conftest import SECRET, drain, make_settings, make_worker, open_service, serving

TRIGGER = models.Trigger(
    source="manual",
    title="checkout 5xx",
    service="checkout",
    namespace="shop",
    at=datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
)


def test_the_models_tokens_calls_and_latency_reach_the_metrics(
    server: scripted.ScriptedServer, tmp_path: Path
) -> None:
    server.script(
        scripted.completion(content="no idea", prompt_tokens=700, completion_tokens=30),
        scripted.completion(content="still no idea", prompt_tokens=800, completion_tokens=40),
    )
    settings = make_settings(tmp_path / "state", llm_base_url=server.url, llm_retries=0)
    with open_service(settings) as service, serving(app.create_app(service)) as base_url:
        body = payloads.event("incident.triggered", payloads.incident("PLLM001"))
        raw, headers = payloads.signed(body, SECRET, webhook_id="wh-llm")
        assert httpx.post(f"{base_url}/webhooks/pagerduty", content=raw, headers=headers).is_success
        assert drain(make_worker(service)) >= 1
        (job,) = [j for j in service.queue.list_jobs() if j.kind == "diagnose"]
        metrics = httpx.get(f"{base_url}/metrics").text
        state = service.agent.status(str(job.run_id)).state

    result = reporting.result(state)
    assert result["llm"]["calls"] == 2 and result["llm"]["status"] == "rejected"
    assert (result["llm"]["prompt_tokens"], result["llm"]["completion_tokens"]) == (1500, 70)
    assert 'diagnose_llm_tokens_total{side="prompt"} 1500.0' in metrics
    assert 'diagnose_llm_tokens_total{side="completion"} 70.0' in metrics
    assert 'diagnose_llm_calls_total{result="answered"} 2.0' in metrics
    assert 'diagnose_llm_sessions_total{status="rejected"} 1.0' in metrics
    assert "diagnose_llm_duration_seconds_count 1.0" in metrics
    assert any(n.startswith("llm: rejected") for n in result["notes"])


def test_an_unreachable_model_is_counted_as_failed_calls_and_said_in_the_report(
    tmp_path: Path,
) -> None:
    settings = make_settings(
        tmp_path / "state", llm_base_url="http://127.0.0.1:9/v1", llm_retries=0
    )
    with open_service(settings) as service:
        paused = service.agent.start(TRIGGER)
    result = reporting.result(paused.state)
    assert paused.waiting and result["llm"]["failed_calls"] == 1 and not result["llm"]["used"]
    note = next(n for n in result["notes"] if n.startswith("llm: unavailable"))
    assert "deterministic analysis alone" in note


def test_the_terminal_view_shows_the_models_cost() -> None:
    block = {
        "status": "rejected",
        "model": "m",
        "reasons": ["the answer is empty"],
        "calls": 2,
        "prompt_tokens": 1500,
        "completion_tokens": 70,
        "seconds": 1.25,
        "used": True,
    }
    out = io.StringIO()
    rendering._reasoning(Console(file=out, width=200, no_color=True), block)
    assert "2 call(s), 1500 prompt + 70 completion tokens, 1.25 s" in out.getvalue()
