"""Synthetic incidents for analysis tests: numpy-generated Prometheus series and cluster payloads.

A small shop (``frontend → checkout → payment``, and ``catalog`` beside them) exports
OpenTelemetry HTTP server histograms with status codes, cAdvisor CPU counters and memory gauges.
A fault is injected into one service at a known time and propagates to its callers, as real
faults do. Everything is seeded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from diagnose.domain import models

NAMESPACE = "shop"
START = datetime(2026, 1, 10, 8, 0, tzinfo=UTC)
STEP = 5.0
POINTS = 720  # one hour at 5 s
CALLS = {"frontend": ["checkout", "catalog"], "checkout": ["payment"]}
SERVICES = ("frontend", "checkout", "payment", "catalog")
BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, float("inf"))


@dataclass(frozen=True)
class Fault:
    """What goes wrong, where and when (seconds after START)."""

    service: str
    kind: str  # errors | latency | cpu | memory | traffic
    at_s: float
    size: float = 1.0


@dataclass
class Incident:
    """The generated evidence and when the pager fired."""

    trigger: models.Trigger
    window: models.Window
    now: datetime
    metrics: list[models.Evidence]
    cluster: list[models.Evidence] = field(default_factory=list)


def times(points: int = POINTS) -> np.ndarray:
    return START.timestamp() + STEP * np.arange(points)


def incident(
    fault: Fault | None,
    *,
    seed: int = 1,
    trigger_service: str = "frontend",
    trigger_after_s: float = 240.0,
    points: int = POINTS,
) -> Incident:
    """Metrics of the shop with ``fault`` injected (None: a quiet hour)."""
    rng = np.random.default_rng(seed)
    t = times(points)
    at = fault.at_s if fault else 0.8 * points * STEP
    trigger_at = START + timedelta(seconds=at + trigger_after_s)
    window = models.Window(START, START + timedelta(seconds=STEP * (points - 1)))
    effects = _effects(fault, t=t)
    metrics = [
        _histograms(rng, t=t, effects=effects),
        _cpu(rng, t=t, effects=effects),
        _memory(rng, t=t, effects=effects),
    ]
    trigger = models.Trigger(
        source="alertmanager",
        title=f"{trigger_service}: latency SLO burn",
        service=trigger_service,
        namespace=NAMESPACE,
        at=trigger_at,
    )
    return Incident(
        trigger, window, window.end, [_evidence(name, s, window) for name, s in metrics]
    )


def _effects(fault: Fault | None, *, t: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Per service and effect, a 0→1 step at the fault, inherited by callers."""
    zero = np.zeros_like(t)
    effects = {
        s: {k: zero for k in ("errors", "latency", "cpu", "memory", "traffic")} for s in SERVICES
    }
    if fault is None:
        return effects
    step = (t >= START.timestamp() + fault.at_s).astype(float) * fault.size
    effects[fault.service] = {**effects[fault.service], fault.kind: step}
    if fault.kind == "traffic":
        for service in SERVICES:
            effects[service] = {**effects[service], "traffic": step, "cpu": 0.5 * step}
        return effects
    inherited = "errors" if fault.kind == "errors" else "latency"
    for caller in _callers_of(fault.service):
        effects[caller] = {**effects[caller], inherited: 0.8 * step}
    return effects


def _callers_of(service: str) -> list[str]:
    direct = [c for c, callees in CALLS.items() if service in callees]
    return direct + [up for c in direct for up in _callers_of(c)]


def _histograms(rng: np.random.Generator, *, t: np.ndarray, effects: Any) -> tuple[str, list[Any]]:
    series = []
    for service in SERVICES:
        effect = effects[service]
        rate = 40.0 * (1 + 2.0 * effect["traffic"])
        counts = rng.poisson(rate * STEP)
        error_p = 0.002 + 0.3 * effect["errors"]
        errors = rng.binomial(counts, np.clip(error_p, 0, 1))
        median = 0.03 * (
            1 + 8.0 * effect["latency"] + 3.0 * effect["cpu"] * (effect["traffic"] == 0)
        )
        for code, n in (("200", counts - errors), ("500", errors)):
            fractions = _bucket_fractions(rng, median=median, n=n)
            cumulative = np.cumsum(np.cumsum(fractions, axis=1), axis=0)
            for j, bound in enumerate(BOUNDS):
                labels = {
                    "__name__": "http_server_request_duration_seconds_bucket",
                    "service_name": service,
                    "k8s_namespace_name": NAMESPACE,
                    "http_response_status_code": code,
                    "http_route": "/api",
                    "le": "+Inf" if np.isinf(bound) else str(bound),
                }
                series.append(_payload(labels, t, cumulative[:, j]))
    return "http_server_request_duration_seconds_bucket", series


def _bucket_fractions(rng: np.random.Generator, *, median: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Observation counts per bucket and step (log-normal latencies, sigma 0.4)."""
    out = np.zeros((len(n), len(BOUNDS)))
    edges = np.log(np.array(BOUNDS[:-1]))
    for i, (m, k) in enumerate(zip(median, n, strict=True)):
        if k == 0:
            continue
        samples = rng.normal(np.log(m), 0.4, size=int(k))
        out[i] = np.bincount(np.searchsorted(edges, samples), minlength=len(BOUNDS))
    return out


def _cpu(rng: np.random.Generator, *, t: np.ndarray, effects: Any) -> tuple[str, list[Any]]:
    series = []
    for service in SERVICES:
        usage = 0.2 * (1 + 3.0 * effects[service]["cpu"]) + rng.normal(0, 0.01, size=t.size)
        counter = np.cumsum(np.clip(usage, 0, None) * STEP)
        labels = {
            "__name__": "container_cpu_usage_seconds_total",
            "namespace": NAMESPACE,
            "pod": f"{service}-7d9f8c6b5d-x2x9q",
            "container": service,
        }
        series.append(_payload(labels, t, counter))
    return "container_cpu_usage_seconds_total", series


def _memory(rng: np.random.Generator, *, t: np.ndarray, effects: Any) -> tuple[str, list[Any]]:
    series = []
    for service in SERVICES:
        level = 2e8 * (1 + 1.5 * effects[service]["memory"]) + rng.normal(0, 2e6, size=t.size)
        labels = {
            "__name__": "container_memory_working_set_bytes",
            "namespace": NAMESPACE,
            "pod": f"{service}-7d9f8c6b5d-x2x9q",
            "container": service,
        }
        series.append(_payload(labels, t, level))
    return "container_memory_working_set_bytes", series


def _payload(labels: dict[str, str], t: np.ndarray, v: np.ndarray) -> dict[str, Any]:
    return {"labels": labels, "t": [float(x) for x in t], "v": [float(x) for x in v]}


def _evidence(name: str, series: Sequence[Any], window: models.Window | None) -> models.Evidence:
    return models.Evidence.make(
        source="prometheus",
        query=f'{{__name__="{name}",{_namespace_label(series)}="{NAMESPACE}"}}',
        window=window,
        status=models.Status.OK,
        summary=f"{len(series)} series",
        raw=list(series),
    )


def p99_summary(
    levels: Mapping[str, Sequence[float]], *, start: float, period: float
) -> models.Evidence:
    """A summary's p99 per service (``http_server_request_duration_seconds{quantile="0.99"}``),
    one sample every ``period`` seconds from ``start``: the shape of recorded statistics."""
    series = [
        {
            "labels": {
                "__name__": "http_server_request_duration_seconds",
                "namespace": NAMESPACE,
                "service_name": service,
                "quantile": "0.99",
            },
            "t": [start + period * k for k in range(len(values))],
            "v": [float(v) for v in values],
        }
        for service, values in levels.items()
    ]
    return _evidence("http_server_request_duration_seconds", series, None)


def _namespace_label(series: Sequence[Any]) -> str:
    return next(k for k in series[0]["labels"] if "namespace" in k)


# --- cluster payloads -----------------------------------------------------------------------------


def replicaset(
    service: str, *, revision: int, created: datetime, image: str, cpu_limit: str = "500m"
) -> dict[str, Any]:
    return {
        "name": f"{service}-{revision:08d}a",
        "namespace": NAMESPACE,
        "owner": f"deployment/{service}",
        "revision": revision,
        "created": models.format_time(created),
        "images": [image],
        "replicas": 2,
        "resources": {service: {"limits": {"cpu": cpu_limit}, "requests": {}}},
        "annotations": {"deployment.kubernetes.io/revision": str(revision)},
    }


def rollout(
    service: str, *, at: datetime, revision: int = 2, limits_only: bool = False
) -> list[dict[str, Any]]:
    """Two ReplicaSets of ``service``: the old one and a new revision created at ``at``."""
    old = replicaset(
        service, revision=revision - 1, created=START - timedelta(days=3), image=f"{service}:1.0"
    )
    new = replicaset(
        service,
        revision=revision,
        created=at,
        image=f"{service}:1.0" if limits_only else f"{service}:1.1",
        cpu_limit="100m" if limits_only else "500m",
    )
    return [old, new]


def configmap(
    name: str, *, updated: datetime, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "kind": "configmap",
        "name": name,
        "namespace": NAMESPACE,
        "created": models.format_time(START - timedelta(days=10)),
        "updated": models.format_time(updated),
        "labels": labels or {},
        "annotations": {},
        "keys": ["settings.yaml"],
        "digest": "sha256:0",
    }


def cluster(
    *, replicasets: Sequence[Any] = (), configs: Sequence[Any] = (), window: models.Window
) -> list[models.Evidence]:
    """The cluster evidence records the graph would gather."""
    records = []
    for query, items in (
        (f"kubectl get replicasets -n {NAMESPACE} -o yaml", list(replicasets)),
        (f"kubectl get configmaps -n {NAMESPACE} --show-managed-fields -o yaml", list(configs)),
    ):
        status = models.Status.OK if items else models.Status.EMPTY
        records.append(
            models.Evidence.make(
                source="kubernetes",
                query=query,
                window=None,
                status=status,
                summary=f"{len(items)} objects",
                raw=items,
            )
        )
    return records


def at(seconds: float) -> datetime:
    """START plus ``seconds``."""
    return START + timedelta(seconds=seconds)
