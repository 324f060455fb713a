"""PrometheusConnector against a real Prometheus backfilled from OpenMetrics, and against tiny
local servers for the ways Prometheus (or the network) says no."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from connectors import prometheus
from diagnose.domain.models import Status, Window

STEP = 60
POINTS = 31
T0 = (int(time.time()) // 3600 - 4) * 3600
"""Recent data (four hours back, hour-aligned), well inside any retention."""
WINDOW = Window(
    start=datetime.fromtimestamp(T0, UTC),
    end=datetime.fromtimestamp(T0 + STEP * (POINTS - 1), UTC),
)
BULK = 25


def _latency(i: int) -> float:
    """The value of the checkout latency series at step i: NaN at 5, +Inf at 6, -Inf at 7."""
    return {5: math.nan, 6: math.inf, 7: -math.inf}.get(i, 100 + 1.5 * i)


def _openmetrics() -> str:
    lines = ["# TYPE shop_checkout_latency_ms gauge"]
    for i in range(POINTS):
        value = _latency(i)
        text = "NaN" if math.isnan(value) else {math.inf: "+Inf", -math.inf: "-Inf"}.get(value)
        sample = text or repr(value)
        lines.append(
            f'shop_checkout_latency_ms{{service="checkout",route="/pay"}} {sample} {T0 + STEP * i}'
        )
    lines.append("# TYPE vendor_queue_depth gauge")
    lines += [f'vendor_queue_depth{{app="checkout"}} {i} {T0 + STEP * i}' for i in range(POINTS)]
    lines.append("# TYPE unrelated_total counter")
    lines += [f'unrelated_total{{service="cart"}} {i} {T0 + STEP * i}' for i in range(POINTS)]
    lines.append("# TYPE bulk_metric gauge")
    lines += [f'bulk_metric{{service="bulk",idx="{n:02d}"}} {n} {T0}' for n in range(BULK)]
    return "\n".join([*lines, "# EOF", ""])


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from diagnose.lab import prometheus as lab_prometheus  # the lab lands separately

    workdir = tmp_path_factory.mktemp("prometheus")
    om_file = workdir / "metrics.om"
    om_file.write_text(_openmetrics())
    server = lab_prometheus.PrometheusServer.from_openmetrics(om_file, workdir=workdir / "lab")
    try:
        yield str(server.url)
    finally:
        server.stop()


@pytest.fixture
def connect() -> Iterator[Callable[..., prometheus.PrometheusConnector]]:
    """Make connectors that are closed after the test."""
    made: list[prometheus.PrometheusConnector] = []

    def make(url: str, **kwargs: object) -> prometheus.PrometheusConnector:
        made.append(prometheus.PrometheusConnector(url, **kwargs))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for connector in made:
        connector.close()


# --- a real Prometheus ----------------------------------------------------------------------


@pytest.mark.lab
def test_query_range_returns_exact_timestamps_and_values(prometheus_url: str, connect) -> None:
    query = 'shop_checkout_latency_ms{route="/pay"}'
    evidence = connect(prometheus_url).query_range(query, window=WINDOW, step_s=STEP)
    assert evidence.status is Status.OK
    assert evidence.source == "prometheus" and evidence.query == query
    [series] = evidence.raw
    assert series["labels"] == {
        "__name__": "shop_checkout_latency_ms",
        "route": "/pay",
        "service": "checkout",
    }
    assert series["t"] == [float(T0 + STEP * i) for i in range(POINTS)]
    assert series["v"][:5] == [100.0, 101.5, 103.0, 104.5, 106.0]
    assert series["v"][8:] == [100 + 1.5 * i for i in range(8, POINTS)]
    assert evidence.summary.startswith("1 series, 31 points each")


@pytest.mark.lab
def test_nan_and_infinities_become_none(prometheus_url: str, connect) -> None:
    evidence = connect(prometheus_url).query_range(
        "shop_checkout_latency_ms", window=WINDOW, step_s=STEP
    )
    assert evidence.raw[0]["v"][5:8] == [None, None, None]


@pytest.mark.lab
def test_label_names_cover_the_window(prometheus_url: str, connect) -> None:
    evidence = connect(prometheus_url).label_names(window=WINDOW)
    assert evidence.status is Status.OK
    assert {"__name__", "app", "service", "route", "idx"} <= set(evidence.raw)


@pytest.mark.lab
def test_find_series_discovers_non_standard_names_by_label(prometheus_url: str, connect) -> None:
    selectors = ['{service="checkout"}', '{app="checkout"}']
    evidence = connect(prometheus_url).find_series(selectors, window=WINDOW)
    assert evidence.status is Status.OK
    assert evidence.raw == [
        {"__name__": "shop_checkout_latency_ms", "route": "/pay", "service": "checkout"},
        {"__name__": "vendor_queue_depth", "app": "checkout"},
    ]
    assert evidence.query == '/api/v1/series?match[]={service="checkout"}&match[]={app="checkout"}'


@pytest.mark.lab
def test_a_query_matching_nothing_is_empty(prometheus_url: str, connect) -> None:
    evidence = connect(prometheus_url).query_range(
        'shop_checkout_latency_ms{service="nope"}', window=WINDOW, step_s=STEP
    )
    assert (evidence.status, evidence.raw) == (Status.EMPTY, [])


@pytest.mark.lab
def test_series_selectors_matching_nothing_are_empty(prometheus_url: str, connect) -> None:
    evidence = connect(prometheus_url).find_series(['{service="nope"}'], window=WINDOW)
    assert (evidence.status, evidence.raw) == (Status.EMPTY, [])


@pytest.mark.lab
def test_bad_promql_is_an_error_with_prometheus_message(prometheus_url: str, connect) -> None:
    evidence = connect(prometheus_url).query_range("sum(rate(x[5m]", window=WINDOW, step_s=STEP)
    assert evidence.status is Status.ERROR
    assert "rejected the query (bad_data)" in evidence.summary
    assert "parse error" in evidence.summary


@pytest.mark.lab
def test_step_is_raised_to_respect_max_points(prometheus_url: str, connect) -> None:
    evidence = connect(prometheus_url, max_points=10).query_range(
        "vendor_queue_depth", window=WINDOW, step_s=STEP
    )
    assert evidence.status is Status.OK
    assert "step raised from 60s to 200s" in evidence.summary
    assert evidence.raw[0]["t"] == [float(T0 + 200 * i) for i in range(10)]


@pytest.mark.lab
def test_a_tiny_step_is_clamped_below_prometheus_limit(prometheus_url: str, connect) -> None:
    """Without clamping Prometheus refuses: "exceeded maximum resolution of 11,000 points"."""
    evidence = connect(prometheus_url).query_range("vendor_queue_depth", window=WINDOW, step_s=0.01)
    assert evidence.status is Status.OK, evidence.summary
    assert len(evidence.raw[0]["t"]) <= 11_000
    assert "step raised from 0.01s" in evidence.summary


@pytest.mark.lab
def test_series_beyond_the_cap_are_dropped_with_a_note(prometheus_url: str, connect) -> None:
    evidence = connect(prometheus_url, max_series=5).query_range(
        "bulk_metric", window=WINDOW, step_s=STEP
    )
    assert [s["labels"]["idx"] for s in evidence.raw] == ["00", "01", "02", "03", "04"]
    assert f"truncated to the first 5 of {BULK} series" in evidence.summary


@pytest.mark.lab
def test_found_series_beyond_the_cap_are_dropped_with_a_note(prometheus_url: str, connect) -> None:
    evidence = connect(prometheus_url, max_series=5).find_series(
        ['{service="bulk"}'], window=WINDOW
    )
    assert len(evidence.raw) == 5
    assert f"truncated to the first 5 of {BULK} series" in evidence.summary


# --- when the world says no -----------------------------------------------------------------


def test_a_refused_connection_is_an_error_that_says_what_to_do(
    closed_port_url: str, connect
) -> None:
    started = time.monotonic()
    evidence = connect(closed_port_url).query_range("up", window=WINDOW, step_s=STEP)
    assert time.monotonic() - started < 2
    assert evidence.status is Status.ERROR
    assert "refused the connection" in evidence.summary
    assert "DIAGNOSE_PROMETHEUS_URL" in evidence.summary and "diagnose lab up" in evidence.summary


def test_a_hanging_server_is_an_error_within_the_timeout(hanging_url: str, connect) -> None:
    started = time.monotonic()
    evidence = connect(hanging_url, timeout_s=1).query_range("up", window=WINDOW, step_s=STEP)
    assert time.monotonic() - started < 2
    assert evidence.status is Status.ERROR
    assert "did not answer within 1s" in evidence.summary


def _always(answer: tuple[int, object]) -> Callable[[str], tuple[int, object]]:
    return lambda path: answer


def test_403_is_denied(answering_server, connect) -> None:
    server = answering_server(_always((403, "Forbidden")))
    evidence = connect(server.url).label_names(window=WINDOW)
    assert evidence.status is Status.DENIED
    assert "HTTP 403" in evidence.summary


def test_401_is_denied(answering_server, connect) -> None:
    server = answering_server(_always((401, "Unauthorized")))
    evidence = connect(server.url).find_series(["up"], window=WINDOW)
    assert evidence.status is Status.DENIED


def test_auth_headers_go_on_every_request(answering_server, connect) -> None:
    server = answering_server(_always((403, "Forbidden")))
    connect(server.url, headers={"Authorization": "Bearer t0k3n"}).label_names(window=WINDOW)
    assert [headers["authorization"] for _, headers in server.requests] == ["Bearer t0k3n"]


def test_5xx_is_retried_then_reported(answering_server, connect) -> None:
    body = {"status": "error", "errorType": "internal", "error": "boom"}
    server = answering_server(_always((500, body)))
    evidence = connect(server.url).query_range("up", window=WINDOW, step_s=STEP)
    assert len(server.requests) == 3
    assert evidence.status is Status.ERROR
    assert "HTTP 500 (internal: boom)" in evidence.summary


def test_4xx_is_not_retried(answering_server, connect) -> None:
    body = {"status": "error", "errorType": "bad_data", "error": "nope"}
    server = answering_server(_always((400, body)))
    connect(server.url).query_range("up", window=WINDOW, step_s=STEP)
    assert len(server.requests) == 1


def test_prometheus_own_timeout_is_not_retried(answering_server, connect) -> None:
    body = {"status": "error", "errorType": "timeout", "error": "query timed out"}
    server = answering_server(_always((503, body)))
    evidence = connect(server.url).query_range("up", window=WINDOW, step_s=STEP)
    assert len(server.requests) == 1
    assert "gave up on the query (timeout: query timed out)" in evidence.summary


def test_a_server_that_is_not_prometheus_is_an_error(answering_server, connect) -> None:
    server = answering_server(_always((200, "<html>Grafana</html>")))
    evidence = connect(server.url).label_names(window=WINDOW)
    assert evidence.status is Status.ERROR
    assert "did not answer like the Prometheus HTTP API" in evidence.summary


def test_query_range_sends_the_exact_window_and_step(answering_server, connect) -> None:
    empty = {"status": "success", "data": {"resultType": "matrix", "result": []}}
    server = answering_server(_always((200, empty)))
    window = Window(start=datetime.fromtimestamp(T0 + 0.5, UTC), end=WINDOW.end)
    connect(server.url, timeout_s=4).query_range("up", window=window, step_s=15)
    [(path, _)] = server.requests
    assert f"start={T0 + 0.5}" in path and "step=15&" in path and "timeout=3600ms" in path


def test_the_same_question_has_the_same_evidence_id(answering_server, connect) -> None:
    empty = {"status": "success", "data": {"resultType": "matrix", "result": []}}
    server = answering_server(_always((200, empty)))
    first = connect(server.url).query_range("up", window=WINDOW, step_s=STEP)
    second = connect(server.url).query_range("up", window=WINDOW, step_s=STEP)
    assert first.id == second.id


def test_a_non_positive_step_is_our_bug(closed_port_url: str, connect) -> None:
    with pytest.raises(ValueError, match="step_s"):
        connect(closed_port_url).query_range("up", window=WINDOW, step_s=0)
