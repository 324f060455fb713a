"""A stopped log statement checked against the trace back end, through the graph's gather step
and both back ends of the lab's trace server: the traces of its lines name its operation, one
search per window counts that operation's requests, and the log analysis reads the counts."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from connectors import traces
from connectors.bundle import FileEvidenceStore
from diagnose.analysis import logs
from diagnose.domain import models
from diagnose.lab import traceapi
from graphs import gathering
from graphs.state import Context, GatherPolicy, Run
from tests.traces import otlp_gen
from tests.traces.test_connectors import BACKENDS, connect

Kind = models.EvidenceKind


def _pay_requests(server: traceapi.TraceApiServer) -> list[tuple[float, str]]:
    """(start in epoch seconds, trace id) of every checkout ``POST /pay`` in the incident."""
    with connect(server, "jaeger") as connector:
        sample = connector.sample_spans(
            service="checkout", namespace=None, window=otlp_gen.INCIDENT, limit_traces=1000
        )
    return sorted(
        (s["start_us"] / 1e6, s["trace_id"])
        for s in sample.raw["spans"]
        if s["service"] == "checkout" and s["operation"] == "POST /pay" and s["kind"] == "server"
    )


def _log_read(requests: list[tuple[float, str]], *, logged: int) -> models.Evidence:
    """Checkout's log: every request logs "handled"; the first ``logged`` log "paid" too."""

    def template(text: str, lines: list[tuple[float, str]]) -> dict[str, Any]:
        return {
            "template": text,
            "error": False,
            "warning": False,
            "exception": False,
            "times": [at + 0.001 for at, _ in lines],
            "traces": [trace for _, trace in lines],
            "examples": [text],
        }

    templates = [
        template("INFO handled <*>", requests),
        template("INFO paid <*>", requests[:logged]),
    ]
    payload = {
        "service": "checkout",
        "pod": "checkout-7d9f8-abcde",
        "container": "",
        "previous": False,
        "incident_from": models.format_time(otlp_gen.INCIDENT.start),
        "lines": len(requests) + logged,
        "bytes": 0,
        "dropped": 0,
        "first": requests[0][0] + 0.001,
        "last": requests[-1][0] + 0.001,
        "templates": templates,
    }
    return models.Evidence.make(
        source="logs",
        query="kubectl logs checkout-7d9f8-abcde -n shop --timestamps",
        window=otlp_gen.INCIDENT,
        status=models.Status.OK,
        summary="checkout: its log",
        raw=payload,
        kind=Kind.LOGS,
    )


def _run() -> Run:
    trigger = models.Trigger(
        source="test",
        title="checkout errors",
        service="frontend",
        namespace="shop",
        at=otlp_gen.INCIDENT.end,
    )
    return Run(run_id="r1", trigger=trigger, window=otlp_gen.INCIDENT, now=otlp_gen.INCIDENT.end)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_stopped_statement_is_counted_against_its_operations_requests(
    lab: traceapi.TraceApiServer, backend: str, tmp_path: Path
) -> None:
    """ "paid" stops after two thirds of checkout's requests while ``POST /pay`` goes on being
    asked: the step reads its latest lines' traces, counts ``POST /pay`` while it logged and
    since, and the analysis takes the requests since as the ones that should have logged it."""
    requests = _pay_requests(lab)
    assert len(requests) == 60
    read = _log_read(requests, logged=40)
    with connect(lab, backend) as connector:
        context = Context(store=FileEvidenceStore(tmp_path), traces=connector)
        found = gathering.check_stops(_run(), context=context, evidence=[read])
    assert found.notes == ()
    assert {e.kind for e in found.evidence} == {Kind.REQUESTS}
    (check,) = logs.stop_checks([read])
    before = next(e for e in found.evidence if e.window == check.before and "count" in e.raw)
    after = next(e for e in found.evidence if e.window == check.after and "count" in e.raw)
    assert before.raw["operation"] == after.raw["operation"] == "POST /pay"
    # The windows run from line to line: the first request's span starts a moment before its
    # line, and Tempo searches whole seconds, by trace: a request at an edge may fall either way
    assert 39 <= before.raw["count"] <= 41 and 19 <= after.raw["count"] <= 21
    findings = logs.read_logs([read], requests=found.evidence)
    assert [h.component for h in findings.hints] == ["checkout"]
    stopped = next(e for e in findings.derived if e.raw and e.raw["change"] == "stopped")
    assert 18 <= stopped.raw["expected"] <= 22
    assert "'POST /pay' was asked" in stopped.summary


def test_nothing_is_asked_without_a_stop_or_a_trace_back_end(
    lab: traceapi.TraceApiServer, tmp_path: Path
) -> None:
    """Every request logs "paid": no statement stopped, no question. No trace back end, or the
    check turned off (``DIAGNOSE_TRACES_STOP_CHECKS=0``): none either."""
    requests = _pay_requests(lab)
    with connect(lab, "tempo") as connector:
        context = Context(store=FileEvidenceStore(tmp_path), traces=connector)
        steady = gathering.check_stops(
            _run(), context=context, evidence=[_log_read(requests, logged=60)]
        )
    assert steady.evidence == () and steady.notes == ()
    alone = Context(store=FileEvidenceStore(tmp_path))
    stopped = _log_read(requests, logged=40)
    assert gathering.check_stops(_run(), context=alone, evidence=[stopped]).evidence == ()
    with connect(lab, "tempo") as connector:
        off = Context(
            store=FileEvidenceStore(tmp_path), traces=connector, policy=GatherPolicy(stop_checks=0)
        )
        assert gathering.check_stops(_run(), context=off, evidence=[stopped]).evidence == ()


def test_a_line_whose_trace_is_unknown_says_its_requests_were_not_counted(
    lab: traceapi.TraceApiServer, tmp_path: Path
) -> None:
    """The log names traces the back end never saw: the operation is unknown, nothing is
    counted, and a note says so."""
    requests = [(at, f"e{i:031x}") for i, (at, _) in enumerate(_pay_requests(lab))]
    with connect(lab, "jaeger") as connector:
        context = Context(store=FileEvidenceStore(tmp_path), traces=connector)
        found = gathering.check_stops(
            _run(), context=context, evidence=[_log_read(requests, logged=40)]
        )
    assert not any(e.raw and "count" in e.raw for e in found.evidence)
    (note,) = found.notes
    assert "operation of 1 stopped log statement(s) (checkout) is unknown" in note


def test_a_trace_back_end_that_does_not_answer_counts_nothing_and_says_so(tmp_path: Path) -> None:
    """Nothing listens where the back end should be: every read is an error in the evidence,
    no count is made, and a note says the statements' requests were not counted."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    requests = [(otlp_gen.INCIDENT.start.timestamp() + 10 * i, f"{i:032x}") for i in range(60)]
    with traces.TempoConnector(url, timeout_s=2) as connector:
        context = Context(store=FileEvidenceStore(tmp_path), traces=connector)
        found = gathering.check_stops(
            _run(), context=context, evidence=[_log_read(requests, logged=40)]
        )
    assert found.evidence and all(e.status is models.Status.ERROR for e in found.evidence)
    assert not any(e.raw and "count" in e.raw for e in found.evidence)
    (note,) = found.notes
    assert "read none of the stopped log statements' traces" in note
