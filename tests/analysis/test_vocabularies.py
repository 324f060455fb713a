"""Series named and shaped the way other stacks export them: OpenTelemetry's OTLP ``job``
paths, timers with only ``_sum`` and ``_count`` (Micrometer), and a latency that drifts up for
an hour before a change lands."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import numpy as np

from diagnose.analysis import correlating, discovery, signals
from diagnose.domain import models
from tests.support import synthetic as syn

TRIGGER = models.Trigger("alertmanager", "t", "web-bff", "bookings", syn.at(3000))


def test_an_otlp_job_path_names_its_workload() -> None:
    """OTLP's ``job`` is ``<service.namespace>/<service.name>``; a PodMonitor's is
    ``<namespace>/<name>``: the workload is the last part."""
    assert discovery.component_of({"job": "bookings/rates", "instance": "f3a1"}) == "rates"
    assert discovery.component_of({"job": "rates"}) == "rates"
    assert discovery.component_of({"service_name": "rates", "job": "bookings/x"}) == "rates"


def test_series_with_only_a_job_path_are_found_and_planned() -> None:
    """No namespace and no service label on the series: the job path carries both."""
    selectors = discovery.scope_selectors(TRIGGER, label_names=["__name__", "job", "instance"])
    assert '{job=~"bookings/.+"}' in selectors
    assert '{job=~"(?:.+/)?web\\\\-bff"}' in selectors
    series = [
        {"__name__": "http_server_request_duration_seconds_bucket", "job": f"bookings/{name}"}
        for name in ("web-bff", "rates")
    ]
    found = discovery.components_in_scope(series, trigger=TRIGGER)
    assert found == ["rates", "web-bff"]
    assert discovery.neighbour_selectors(found, label_names=["job"]) == [
        '{job=~"(?:.+/)?(?:rates|web\\\\-bff)"}'
    ]
    (planned,) = discovery.plan_queries(series, trigger=TRIGGER, components=found)
    assert 'job=~"(?:.+/)?(?:rates|web\\\\-bff)"' in planned.query


def _counter(name: str, labels: dict[str, str], per_second: np.ndarray) -> models.Evidence:
    t = syn.times()
    values = np.cumsum(per_second * syn.STEP)
    window = models.Window(syn.START, syn.START + timedelta(seconds=syn.STEP * (t.size - 1)))
    raw: list[Any] = [
        {"labels": {"__name__": name, **labels}, "t": [float(x) for x in t], "v": list(values)}
    ]
    return models.Evidence.make(
        source="prometheus",
        query=f'{{__name__="{name}",namespace="claims"}}',
        window=window,
        status=models.Status.OK,
        summary="1 series",
        raw=raw,
    )


def test_a_timer_without_quantiles_gives_its_mean_latency() -> None:
    """Micrometer's ``http_server_requests_seconds`` has ``_count`` and ``_sum`` only: their
    rates' ratio is the mean latency, 50 ms and then 250 ms."""
    t = syn.times() - syn.START.timestamp()
    labels = {"namespace": "claims", "service": "policy", "uri": "/p/{id}", "status": "200"}
    rate = np.full(t.size, 10.0)
    seconds = np.where(t < 2400, 0.05, 0.25) * rate
    window = models.Window(syn.START, syn.START + timedelta(seconds=float(t[-1])))
    found = signals.build_signals(
        [
            _counter("http_server_requests_seconds_count", labels, rate),
            _counter("http_server_requests_seconds_sum", labels, seconds),
        ],
        window=window,
    )
    (row,) = [i for i, info in enumerate(found.info) if info.detail == "mean"]
    info = found.info[row]
    assert (info.component, info.kind, info.direction) == ("policy", "latency", 1)
    assert "_sum" in info.query and "_count" in info.query
    mean = found.values[row]
    assert abs(np.nanmedian(mean[t < 2000]) - 0.05) < 1e-6
    assert abs(np.nanmedian(mean[t > 2800]) - 0.25) < 1e-6


def _latency_incident(shapes: dict[str, np.ndarray]) -> syn.Incident:
    """report's latency series (recording rules: a p95 and a mean) with ``shapes`` on top, and
    a quiet neighbour's."""
    rng = np.random.default_rng(7)
    t = syn.times()
    window = models.Window(syn.START, syn.START + timedelta(seconds=syn.STEP * (t.size - 1)))
    metrics = []
    for name, shape in shapes.items():
        raw = [
            {
                "labels": {"__name__": name, "namespace": "shop", "app": app},
                "t": [float(x) for x in t],
                "v": [float(x) for x in 0.2 * (1 + s) * np.exp(rng.normal(0, 0.03, t.size))],
            }
            for app, s in (("report", shape), ("quiet", np.zeros(t.size)))
        ]
        metrics.append(
            models.Evidence.make(
                source="prometheus",
                query=f'{{__name__="{name}",namespace="shop"}}',
                window=window,
                status=models.Status.OK,
                summary="2 series",
                raw=raw,
            )
        )
    trigger = models.Trigger("alertmanager", "report latency", "report", "shop", syn.at(3400))
    return syn.Incident(trigger, window, window.end, metrics)


def _top(incident: syn.Incident, change_at: float) -> models.Hypothesis:
    result = correlating.correlate(
        trigger=incident.trigger,
        window=incident.window,
        metrics=incident.metrics,
        cluster=syn.cluster(
            replicasets=syn.rollout("report", at=syn.at(change_at)), window=incident.window
        ),
        now=incident.now,
    )
    return result.hypotheses[0]


def test_a_change_landing_on_a_drift_already_under_way_does_not_explain_it() -> None:
    """The mean latency climbs steadily all hour; the p95, read from coarse buckets, jumps to
    the next bucket late, as if it were a step. A rollout a minute before that jump is not the
    cause: the climb was under way long before it. The same rollout before a real step (the
    mean jumps with the p95) is."""
    t = syn.times() - syn.START.timestamp()
    jump = np.where(t >= 2960, 1.0, 0.0)
    drift = _top(
        _latency_incident(
            {"report_latency_p95_seconds": jump, "report_latency_mean_seconds": 1.2 * t / t[-1]}
        ),
        change_at=2900,
    )
    assert drift.component == "report" and drift.change is None
    assert "already rising when the data begins" in drift.summary
    step = _top(
        _latency_incident(
            {"report_latency_p95_seconds": jump, "report_latency_mean_seconds": 0.8 * jump}
        ),
        change_at=2900,
    )
    assert step.change == "deployment/report@2"


def _histogram(
    routes: dict[str, tuple[float, np.ndarray]], *, bounds: tuple[float, ...]
) -> models.Evidence:
    """One service's latency histogram per route: (requests/s, share of requests per bucket
    over time, one column per bound and +Inf last)."""
    t = syn.times()
    window = models.Window(syn.START, syn.START + timedelta(seconds=syn.STEP * (t.size - 1)))
    raw: list[Any] = []
    for route, (rate, shares) in routes.items():
        counts = np.cumsum(rate * syn.STEP * np.cumsum(shares, axis=1), axis=0)
        for k, le in enumerate([*(f"{b:g}" for b in bounds), "+Inf"]):
            labels = {
                "__name__": "http_request_duration_seconds_bucket",
                "namespace": "media",
                "service": "web",
                "handler": route,
                "le": le,
            }
            raw.append({"labels": labels, "t": [float(x) for x in t], "v": list(counts[:, k])})
    return models.Evidence.make(
        source="prometheus",
        query='{__name__="http_request_duration_seconds_bucket",namespace="media"}',
        window=window,
        status=models.Status.OK,
        summary=f"{len(raw)} series",
        raw=raw,
    )


def test_a_slow_route_is_scored_on_its_own() -> None:
    """/search (6 % of web's requests) goes from under 100 ms to over 1 s; the route's own
    p95, which names the route, rises far more than the service-wide one."""
    t = syn.times() - syn.START.timestamp()
    fast = np.tile([0.8, 0.18, 0.02, 0.0], (t.size, 1))  # ≤ 0.05, ≤ 0.1, ≤ 1, > 1 s
    slow = np.where((t >= 2400)[:, None], [0.0, 0.0, 0.5, 0.5], fast)
    metrics = [_histogram({"/watch": (94.0, fast), "/search": (6.0, slow)}, bounds=(0.05, 0.1, 1))]
    window = models.Window(syn.START, syn.START + timedelta(seconds=float(t[-1])))
    found = signals.build_signals(metrics, window=window)
    rows = {found.info[i].detail: found.values[i] for i in range(len(found.info))}
    whole, search = rows["p95"], rows["p95 handler=/search"]
    assert found.info[list(rows).index("p95 handler=/search")].part_of == "p95"
    before, after = t < 2000, t > 2800
    rise = np.nanmedian(search[after]) / np.nanmedian(search[before])
    assert rise > 10
    assert np.nanmedian(whole[after]) / np.nanmedian(whole[before]) < rise / 1.5


def test_a_counter_without_its_suffix_is_read_as_a_rate() -> None:
    """ingress-nginx's ``nginx_ingress_controller_requests`` only ever goes up: its rate and its
    5xx ratio are signals, not its running total. A gauge of unknown type that goes up and down
    stays a gauge."""
    t = syn.times() - syn.START.timestamp()
    window = models.Window(syn.START, syn.START + timedelta(seconds=float(t[-1])))
    labels = {"namespace": "claims", "service": "web", "ingress": "web"}
    ok = _counter(
        "nginx_ingress_controller_requests", {**labels, "status": "200"}, np.full(t.size, 20.0)
    )
    failed = _counter(
        "nginx_ingress_controller_requests", {**labels, "status": "503"}, np.full(t.size, 0.2)
    )
    merged = models.Evidence.make(
        source="prometheus",
        query=ok.query,
        window=window,
        status=models.Status.OK,
        summary="2 series",
        raw=[*ok.raw, *failed.raw],
    )
    wobbling = np.sin(t / 300) + 5
    gauge = _counter("web_queue_size_now", labels, np.zeros(t.size))
    gauge = models.Evidence.make(
        source="prometheus",
        query=gauge.query,
        window=window,
        status=models.Status.OK,
        summary="1 series",
        raw=[{**gauge.raw[0], "v": list(wobbling)}],
    )
    found = signals.build_signals([merged, gauge], window=window)
    rows = {(i.metric, i.kind, i.detail): found.values[k] for k, i in enumerate(found.info)}
    (rate,) = [v for (m, k, _), v in rows.items() if m.startswith("nginx") and k == "traffic"]
    ratio = rows[("nginx_ingress_controller_requests", "errors", "error ratio")]
    assert abs(np.nanmedian(rate) - 20.2) < 0.01
    assert abs(np.nanmedian(ratio) - 0.2 / 20.2) < 1e-6
    (queue,) = [v for (m, _, _), v in rows.items() if m == "web_queue_size_now"]
    assert np.nanmax(queue) > 5.9 and np.nanmin(queue) < 4.1


def test_a_crash_loop_reads_as_restarts_over_the_last_minutes() -> None:
    """One restart every three minutes from minute 40: the per-second rate is 0 at almost every
    point (its median too), the count over the last ten minutes is 3 or more throughout."""
    t = syn.times() - syn.START.timestamp()
    per_second = np.zeros(t.size)
    per_second[(t >= 2400) & (t % 180 == 0)] = 1 / syn.STEP
    restarts = _counter(
        "kube_pod_container_status_restarts_total",
        {"namespace": "claims", "pod": "policy-7d9f8c6b5d-x2x9q", "container": "policy"},
        per_second,
    )
    window = models.Window(syn.START, syn.START + timedelta(seconds=float(t[-1])))
    found = signals.build_signals([restarts], window=window)
    (row,) = [i for i, info in enumerate(found.info) if info.kind == "restarts"]
    assert "increase(" in found.info[row].query
    values = found.values[row]
    assert np.nanmax(values[t < 2400]) == 0
    assert np.nanmin(values[t >= 3000]) >= 3


def test_a_linkerd_outbound_series_is_a_call_edge() -> None:
    """Linkerd's proxy on the caller's pod reports ``direction="outbound"`` with the callee in
    ``dst_deployment``: the caller calls the callee."""
    t = syn.times()
    labels = {
        "namespace": "claims",
        "deployment": "planner",
        "pod": "planner-7d9f8c6b5d-x2x9q",
        "direction": "outbound",
        "dst_deployment": "geo",
        "status_code": "200",
    }
    record = _counter("response_total", labels, np.full(t.size, 3.0))
    window = models.Window(syn.START, syn.START + timedelta(seconds=syn.STEP * (t.size - 1)))
    found = signals.build_signals([record], window=window)
    assert ("planner", "geo") in found.edges


def test_a_slice_of_failures_alone_is_not_a_request_rate() -> None:
    """Micrometer splits its counts by ``outcome``: the SERVER_ERROR slice holds only 503s and
    rises from nothing when a few errors appear; it is scored as errors, never as traffic,
    while the SUCCESS slice stays a request rate."""
    t = syn.times() - syn.START.timestamp()
    common = {"namespace": "claims", "service": "portal", "uri": "/claims", "exception": "None"}
    ok = {**common, "outcome": "SUCCESS", "status": "200"}
    failed = {**common, "outcome": "SERVER_ERROR", "status": "503"}
    window = models.Window(syn.START, syn.START + timedelta(seconds=float(t[-1])))
    records = [_counter("http_server_requests_seconds_count", ok, np.full(t.size, 20.0))]
    records.append(
        _counter("http_server_requests_seconds_count", failed, np.where(t < 2400, 0.0, 0.05))
    )
    records[1] = models.Evidence.make(
        source="prometheus",
        query=records[1].query,
        window=window,
        status=models.Status.OK,
        summary="1 series",
        raw=[*records[0].raw, *records[1].raw],
    )
    found = signals.build_signals(records[1:], window=window)
    traffic = [i.detail for i in found.info if i.kind == "traffic"]
    assert traffic and not any("SERVER_ERROR" in d for d in traffic)
    assert any("SUCCESS" in d for d in traffic)
    assert any(i.kind == "errors" and i.component == "portal" for i in found.info)
