"""Both trace back ends end to end, through the lab's Tempo- and Jaeger-compatible server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from connectors import traces
from diagnose.domain.models import Evidence, Status
from diagnose.lab import traceapi
from tests.traces import otlp_gen

BACKENDS = ("tempo", "jaeger")
Connector = traces.TempoConnector | traces.JaegerConnector


def connect(server: traceapi.TraceApiServer, backend: str, **options: Any) -> Connector:
    if backend == "tempo":
        return traces.TempoConnector(server.tempo_url, **options)
    return traces.JaegerConnector(server.jaeger_url, **options)


def sample(connector: Connector, *, limit: int = 30, service: str = "checkout") -> Evidence:
    return connector.sample_spans(
        service=service, namespace="shop", window=otlp_gen.INCIDENT, limit_traces=limit
    )


@pytest.mark.parametrize("backend", BACKENDS)
def test_sample_translates_spans_into_the_internal_shape(lab, backend) -> None:
    """Service, operation, kind, status, parent links and notable attributes all arrive."""
    with connect(lab, backend) as connector:
        evidence = sample(connector)
    assert evidence.status is Status.OK, evidence.summary
    assert evidence.source == "traces"
    raw = evidence.raw
    assert raw["traces"] == 30 and len(raw["spans"]) == 30 * 6
    by_op = {(s["service"], s["operation"], s["kind"]): s for s in raw["spans"]}
    db = by_op[("checkout", "SELECT orders", "client")]
    assert db["attrs"]["db.statement"] == otlp_gen.SQL
    assert db["attrs"]["k8s.deployment.name"] == "checkout"
    server = by_op[("checkout", "POST /pay", "server")]
    assert server["attrs"]["http.route"] == "/pay"
    assert server["attrs"]["service.version"] in ("2.13", "2.14")
    assert len(server["trace_id"]) == 32 and len(server["span_id"]) == 16
    ids = {(s["trace_id"], s["span_id"]) for s in raw["spans"]}
    assert all(
        s["parent_id"] is None or (s["trace_id"], s["parent_id"]) in ids for s in raw["spans"]
    )
    assert {s["status"] for s in raw["spans"]} >= {"error", "unset"}


def test_both_backends_agree(lab) -> None:
    """Tempo and Jaeger hand back the same spans for the same window and service."""
    with connect(lab, "tempo") as tempo, connect(lab, "jaeger") as jaeger:
        a, b = sample(tempo, limit=200).raw, sample(jaeger, limit=200).raw
    key = lambda s: (s["trace_id"], s["span_id"])  # noqa: E731
    left = {key(s): s for s in a["spans"]}
    right = {key(s): s for s in b["spans"]}
    assert left.keys() == right.keys() and len(left) == 60 * 6
    for k, span in left.items():
        other = right[k]
        for field in (
            "parent_id",
            "service",
            "operation",
            "kind",
            "status",
            "start_us",
            "duration_us",
        ):
            assert span[field] == other[field], field
        assert span["attrs"] == other["attrs"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_query_is_the_exact_request_and_can_be_rerun(lab, backend) -> None:
    with connect(lab, backend) as connector:
        evidence = sample(connector, limit=8)
    answer = httpx.get(evidence.query, timeout=5)
    assert answer.status_code == 200
    body = answer.json()
    assert len(body["traces" if backend == "tempo" else "data"]) == 8
    if backend == "tempo":
        assert "q=%7B+resource.service.name+%3D+%22checkout%22+%7D" in evidence.query


@pytest.mark.parametrize("backend", BACKENDS)
def test_sample_is_bounded_by_trace_and_span_caps(lab, backend) -> None:
    limits = traces.Limits(max_traces=10, max_spans=25)
    with connect(lab, backend, limits=limits) as connector:
        evidence = sample(connector, limit=1000)
    assert evidence.status is Status.OK
    assert evidence.raw["traces"] == 4 and len(evidence.raw["spans"]) == 24
    assert evidence.raw["truncated"] is True
    assert "25-span cap" in evidence.summary


@pytest.mark.parametrize("backend", BACKENDS)
def test_sample_spreads_over_the_window(lab, backend) -> None:
    """The window is searched in slices, so both halves of it are represented."""
    with connect(lab, backend) as connector:
        spans = sample(connector, limit=8).raw["spans"]
    middle = (otlp_gen.INCIDENT.start.timestamp() + otlp_gen.INCIDENT.seconds / 2) * 1e6
    starts = [s["start_us"] for s in spans if s["parent_id"] is None]
    assert min(starts) < middle < max(starts)


@pytest.mark.parametrize("backend", BACKENDS)
def test_get_trace_and_unknown_trace(lab, backend) -> None:
    with connect(lab, backend) as connector:
        some = sample(connector, limit=1).raw["spans"][0]["trace_id"]
        found = connector.get_trace(some)
        missing = connector.get_trace("0123456789abcdef0123456789abcdef")
    assert found.status is Status.OK and len(found.raw["spans"]) == 6
    assert {s["trace_id"] for s in found.raw["spans"]} == {some}
    assert missing.status is Status.EMPTY
    assert "0123456789abcdef0123456789abcdef" in missing.summary


@pytest.mark.parametrize("backend", BACKENDS)
def test_services_and_operations(lab, backend) -> None:
    with connect(lab, backend) as connector:
        services = connector.list_services(window=otlp_gen.INCIDENT)
        operations = connector.list_operations("checkout", window=otlp_gen.INCIDENT)
    assert services.raw == ["checkout", "frontend", "payments"]
    assert operations.raw == ["POST /charge", "POST /pay", "SELECT orders"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_requests_of_an_operation_are_counted_from_one_search(lab, backend) -> None:
    """Every trace of the window holds one ``POST /pay`` server span of checkout: sixty of
    them; a limit below that says "at least"; an operation the service does not serve, none.
    The query is the one search, re-runnable as it stands."""
    with connect(lab, backend) as connector:

        def count(operation: str, limit: int = 1000) -> Evidence:
            return connector.count_requests(
                service="checkout", operation=operation, window=otlp_gen.INCIDENT, limit=limit
            )

        every, capped, none = count("POST /pay"), count("POST /pay", limit=10), count("GET /x")
    assert every.status is Status.OK, every.summary
    assert every.raw == {
        "service": "checkout",
        "operation": "POST /pay",
        "count": 60,
        "capped": False,
    }
    assert "60 requests of checkout 'POST /pay'" in every.summary
    assert capped.raw["count"] == 10 and capped.raw["capped"] is True
    assert "at least 10 requests" in capped.summary
    assert none.status is Status.OK and none.raw["count"] == 0
    answer = httpx.get(every.query, timeout=5).json()
    assert len(answer["traces" if backend == "tempo" else "data"]) == 60


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_window_without_traces_is_empty(lab, backend) -> None:
    later = otlp_gen.Window(
        start=otlp_gen.INCIDENT.end + otlp_gen.timedelta(hours=5),
        end=otlp_gen.INCIDENT.end + otlp_gen.timedelta(hours=6),
    )
    with connect(lab, backend) as connector:
        evidence = connector.sample_spans(
            service="checkout", namespace=None, window=later, limit_traces=10
        )
    assert evidence.status is Status.EMPTY and evidence.raw["spans"] == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_another_namespace_filters_traces_out(lab, backend) -> None:
    with connect(lab, backend) as connector:
        evidence = connector.sample_spans(
            service="checkout", namespace="elsewhere", window=otlp_gen.INCIDENT, limit_traces=10
        )
    assert evidence.status is Status.EMPTY


@pytest.fixture(scope="module")
def guarded(otlp_files: dict[str, Path], tmp_path_factory: pytest.TempPathFactory):
    workdir = tmp_path_factory.mktemp("guarded")
    with traceapi.TraceApiServer.serve(
        [otlp_files["quiet"]], workdir=workdir, tenant="team-a", token="s3cret"
    ) as server:
        yield server


@pytest.mark.parametrize("backend", BACKENDS)
def test_missing_credentials_are_denied(guarded, backend) -> None:
    with connect(guarded, backend) as connector:
        evidence = sample(connector)
    assert evidence.status is Status.DENIED
    assert "401" in evidence.summary and "credentials" in evidence.summary


def test_tempo_needs_the_tenant_header(guarded) -> None:
    auth = {"Authorization": "Bearer s3cret"}
    with (
        connect(guarded, "tempo", headers=auth) as without,
        connect(guarded, "tempo", headers=auth, tenant="team-a") as with_tenant,
    ):
        denied, allowed = sample(without), sample(with_tenant)
    assert denied.status is Status.DENIED and "X-Scope-OrgID" in denied.summary
    assert allowed.status is Status.OK


def test_jaeger_with_the_token_is_allowed(guarded) -> None:
    with connect(guarded, "jaeger", headers={"Authorization": "Bearer s3cret"}) as connector:
        assert sample(connector).status is Status.OK


def test_jaeger_needs_a_service(lab) -> None:
    with connect(lab, "jaeger") as connector:
        evidence = sample(connector, service="")
    assert evidence.status is Status.ERROR and "one service" in evidence.summary
