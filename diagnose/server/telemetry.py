"""The agent's own metrics, served at ``/metrics`` in Prometheus' text format.

One registry per process (not prometheus_client's global one), so tests and embedded servers
do not collide.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import prometheus_client


class Metrics:
    """Counters and histograms for webhooks and jobs."""

    def __init__(self) -> None:
        self.registry = prometheus_client.CollectorRegistry()
        self.webhooks = prometheus_client.Counter(
            "diagnose_webhooks_total",
            "Webhook deliveries by source and outcome.",
            ["source", "outcome"],
            registry=self.registry,
        )
        self.jobs = prometheus_client.Counter(
            "diagnose_jobs_total",
            "Jobs finished by kind and outcome.",
            ["kind", "outcome"],
            registry=self.registry,
        )
        self.job_seconds = prometheus_client.Histogram(
            "diagnose_job_duration_seconds",
            "Wall time of a job.",
            ["kind"],
            buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.in_flight = prometheus_client.Gauge(
            "diagnose_jobs_in_flight",
            "Jobs this process is running.",
            ["kind"],
            registry=self.registry,
        )
        self.approvals = prometheus_client.Counter(
            "diagnose_approvals_total",
            "Answers at the approval step by verdict and outcome.",
            ["verdict", "outcome"],
            registry=self.registry,
        )

    def webhook(self, source: str, *, outcome: str) -> None:
        self.webhooks.labels(source=source, outcome=outcome).inc()

    @contextmanager
    def running(self, kind: str) -> Iterator[None]:
        gauge = self.in_flight.labels(kind=kind)
        gauge.inc()
        try:
            yield
        finally:
            gauge.dec()

    def finished(self, kind: str, *, outcome: str, seconds: float) -> None:
        self.jobs.labels(kind=kind, outcome=outcome).inc()
        self.job_seconds.labels(kind=kind).observe(seconds)

    def render(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)
