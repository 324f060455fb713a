"""The agent's own metrics, served at ``/metrics`` in Prometheus' text format.

One registry per process (not prometheus_client's global one), so tests and embedded servers
do not collide.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

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
        self.llm_tokens = prometheus_client.Counter(
            "diagnose_llm_tokens_total",
            "Tokens the language model counted, by side (prompt, completion).",
            ["side"],
            registry=self.registry,
        )
        self.llm_calls = prometheus_client.Counter(
            "diagnose_llm_calls_total",
            "Chat requests to the language model, by result (answered, failed).",
            ["result"],
            registry=self.registry,
        )
        self.llm_sessions = prometheus_client.Counter(
            "diagnose_llm_sessions_total",
            "Diagnoses that asked the language model, by how its part ended.",
            ["status"],
            registry=self.registry,
        )
        self.llm_seconds = prometheus_client.Histogram(
            "diagnose_llm_duration_seconds",
            "Time one diagnosis spent waiting for the language model.",
            buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
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

    def llm_used(self, block: Mapping[str, Any] | None) -> None:
        """Count one diagnosis' language-model cost (its report's ``llm`` block)."""
        if not block or not (block.get("calls") or block.get("failed_calls")):
            return
        self.llm_tokens.labels(side="prompt").inc(int(block.get("prompt_tokens") or 0))
        self.llm_tokens.labels(side="completion").inc(int(block.get("completion_tokens") or 0))
        self.llm_calls.labels(result="answered").inc(int(block.get("calls") or 0))
        self.llm_calls.labels(result="failed").inc(int(block.get("failed_calls") or 0))
        self.llm_sessions.labels(status=str(block.get("status") or "unknown")).inc()
        self.llm_seconds.observe(float(block.get("seconds") or 0.0))

    def render(self) -> bytes:
        return prometheus_client.generate_latest(self.registry)
