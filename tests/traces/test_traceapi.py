"""The lab's trace server: its TraceQL subset and its answers, as Tempo and Jaeger document."""

from __future__ import annotations

import httpx
import pytest

from diagnose.lab import traceapi
from tests.traces import otlp_gen


@pytest.fixture(scope="module")
def api(otlp_files) -> traceapi.TraceApi:  # type: ignore[no-untyped-def]
    return traceapi.TraceApi(traceapi.load_traces([otlp_files["canary"]]))


def matching(api: traceapi.TraceApi, query: str) -> set[tuple[str, str]]:
    predicate = traceapi.parse_traceql(query)
    return {(s.service, s.name) for t in api.traces.values() for s in t.spans if predicate(s)}


def test_traceql_resource_equality(api) -> None:
    assert matching(api, '{ resource.service.name = "payments" }') == {("payments", "POST /charge")}


def test_traceql_numeric_comparison_and_conjunction(api) -> None:
    found = matching(
        api, '{ span.http.response.status_code >= 500 && resource.service.name = "checkout" }'
    )
    assert found == {("checkout", "POST /pay")}


def test_traceql_disjunction_parentheses_and_intrinsics(api) -> None:
    found = matching(api, '{ (name = "SELECT orders" || kind = server) && status != error }')
    assert ("checkout", "SELECT orders") in found and ("payments", "POST /charge") in found
    assert matching(api, "{ status = error && kind = client }") == {("frontend", "POST /pay")}


def test_traceql_durations(api) -> None:
    assert matching(api, "{ duration > 1h }") == set()
    assert len(matching(api, "{ duration >= 1us }")) == 6
    assert traceapi.parse_duration_ns("1.5s") == 1_500_000_000


def test_traceql_regex_and_unscoped_attributes(api) -> None:
    assert matching(api, '{ .db.statement =~ "SELECT .*orders.*" }') == {
        ("checkout", "SELECT orders")
    }


@pytest.mark.parametrize(
    "query",
    ["{ resource.service.name = }", "service.name = 1", "{ a = 1 } && { b = 2 }", "{ foo = 1 }"],
)
def test_traceql_outside_the_subset_is_refused(query: str) -> None:
    with pytest.raises(traceapi.TraceQLError):
        traceapi.parse_traceql(query)


def test_tempo_search_answers_in_tempos_shape(lab) -> None:
    params = {"q": "{ status = error }", "limit": 3, "spss": 2}
    params.update(
        start=int(otlp_gen.INCIDENT.start.timestamp()), end=int(otlp_gen.INCIDENT.end.timestamp())
    )
    body = httpx.get(lab.tempo_url + "/api/search", params=params).json()
    assert len(body["traces"]) == 3
    hit = body["traces"][0]
    assert {
        "traceID",
        "rootServiceName",
        "rootTraceName",
        "startTimeUnixNano",
        "durationMs",
        "spanSets",
    } <= set(hit)
    assert hit["rootServiceName"] == "frontend"
    assert len(hit["spanSets"][0]["spans"]) == 2 and hit["spanSets"][0]["matched"] == 3


def test_tempo_refuses_a_bad_query_with_400(lab) -> None:
    answer = httpx.get(lab.tempo_url + "/api/search", params={"q": "{ nope"})
    assert answer.status_code == 400 and "invalid TraceQL" in answer.text


def test_tempo_trace_by_id_is_otlp_with_base64_ids(lab) -> None:
    search = httpx.get(lab.tempo_url + "/api/search", params={"q": "{ }", "limit": 1}).json()
    trace_id = search["traces"][0]["traceID"]
    v1 = httpx.get(f"{lab.tempo_url}/api/traces/{trace_id}").json()
    v2 = httpx.get(f"{lab.tempo_url}/api/v2/traces/{trace_id}").json()
    assert v1["batches"] == v2["trace"]["resourceSpans"]
    span = v1["batches"][0]["scopeSpans"][0]["spans"][0]
    assert span["kind"].startswith("SPAN_KIND_") and span["traceId"].endswith("==")
    assert httpx.get(f"{lab.tempo_url}/api/traces/{'f' * 32}").status_code == 404


def test_tempo_tag_values(lab) -> None:
    v1 = httpx.get(lab.tempo_url + "/api/search/tag/service.name/values").json()
    assert v1["tagValues"] == ["checkout", "frontend", "payments"]
    v2 = httpx.get(
        lab.tempo_url + "/api/v2/search/tag/name/values",
        params={"q": '{ resource.service.name = "payments" }'},
    ).json()
    assert v2["tagValues"] == [{"type": "keyword", "value": "POST /charge"}]


WINDOW_US = {
    "start": int(otlp_gen.BASELINE.start.timestamp() * 1e6),
    "end": int(otlp_gen.INCIDENT.end.timestamp() * 1e6),
}


def test_jaeger_answers_in_the_ui_envelope(lab) -> None:
    params = {"service": "payments", "limit": 2, **WINDOW_US}
    body = httpx.get(lab.jaeger_url + "/api/traces", params=params).json()
    assert set(body) == {"data", "total", "limit", "offset", "errors"}
    trace = body["data"][0]
    assert set(trace["processes"]["p1"]) == {"serviceName", "tags"}
    child = next(s for s in trace["spans"] if s["references"])
    assert child["references"][0]["refType"] == "CHILD_OF"
    assert isinstance(child["startTime"], int) and isinstance(child["duration"], int)
    missing = httpx.get(lab.jaeger_url + "/api/traces", params={"limit": 2})
    assert missing.status_code == 400 and "service" in missing.json()["errors"][0]["msg"]


def test_jaeger_filters_by_operation_tags_and_duration(lab) -> None:
    params = {
        "service": "checkout",
        "operation": "POST /pay",
        "tags": '{"http.response.status_code": "500"}',
        "limit": 100,
        **WINDOW_US,
    }
    failing = httpx.get(lab.jaeger_url + "/api/traces", params=params).json()["data"]
    everything = httpx.get(lab.jaeger_url + "/api/traces", params={**params, "tags": "{}"}).json()[
        "data"
    ]
    assert 0 < len(failing) < len(everything)
    slow = httpx.get(
        lab.jaeger_url + "/api/traces",
        params={"service": "checkout", "minDuration": "1h", **WINDOW_US},
    ).json()
    assert slow["data"] == []


def test_the_server_refuses_to_start_on_bad_files(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(traceapi.errors.LabError, match="exited"):
        traceapi.TraceApiServer.serve([bad], workdir=tmp_path / "work")
