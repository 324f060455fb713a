"""Workloads the trace back end has no spans of are off the traced request path: a slowness
of theirs reaches no traced request, so it yields to one on the path."""

from __future__ import annotations

from datetime import timedelta

import numpy as np

from diagnose.analysis import correlating, tracemerge, tracing
from diagnose.domain import models
from tests.analysis import test_traces_merge as merge

BATCH = "report-batch"  # an idle workload with periodic outbound calls: no spans, no callers


def _metrics(*, batch_jump: float) -> list[models.Evidence]:
    """payments' latency rises 0.3 s from the onset; the batch job's own outbound latency
    jumps by ``batch_jump`` seconds from a flat 5 ms, far more sigmas than payments' rise."""
    rng = np.random.default_rng(11)
    t = merge.T0.timestamp() + merge.STEP * np.arange(int(merge.WINDOW.seconds / merge.STEP) + 1)
    after = t >= merge.ONSET.timestamp()
    gauges = []
    for index, service in enumerate((*merge.SERVICES, BATCH)):
        if service == BATCH:
            level = 0.005 + batch_jump * after + rng.normal(0, 0.0001, t.size)
        else:
            rise = 0.3 if service == "payments" else 0.0
            level = 0.02 + 0.01 * index + rise * after + rng.normal(0, 0.01, t.size)
        gauges.append(merge._series("app_request_latency_seconds", service, t, level))
    return [merge._evidence("app_request_latency_seconds", gauges)]


def _listing(*names: str, status: models.Status = models.Status.OK) -> models.Evidence:
    window = models.Window(merge.ONSET - timedelta(minutes=15), merge.WINDOW.end)
    return models.Evidence.make(
        source="traces",
        query="http://tempo:3200/api/search/tag/service.name/values",
        window=window,
        status=status,
        summary=f"{len(names)} services",
        raw=list(names),
        kind=models.EvidenceKind.TRACE_SERVICES,
    )


def _names(result: correlating.Correlation) -> list[str]:
    return [h.component for h in result.hypotheses]


def test_a_workload_without_spans_yields_to_the_traced_dependency() -> None:
    metrics = _metrics(batch_jump=20.0)
    traces = merge.trace_evidence("slow_dependency")
    unknown = merge.run(metrics, traces=traces)
    assert _names(unknown)[0] == BATCH  # no listing: nothing says it is off the path
    listed = merge.run(metrics, traces=[*traces, _listing(*merge.SERVICES)])
    assert _names(listed)[0] == "payments"
    listing = _listing(*merge.SERVICES)
    batch = next(h for h in listed.hypotheses if h.component == BATCH)
    assert "the trace back end has no span of it" in batch.summary
    assert listing.id in batch.counter_evidence  # the listing that leaves it out
    assert all(listing.id not in h.counter_evidence for h in listed.hypotheses if h is not batch)
    assert [h.confidence for h in listed.hypotheses] == sorted(
        (h.confidence for h in listed.hypotheses), reverse=True
    )


def test_a_listed_workload_keeps_its_place() -> None:
    """The back end lists the batch job (it sends spans the samples did not catch): on the
    path as far as anyone can tell, so its jump leads as before."""
    metrics = _metrics(batch_jump=20.0)
    traces = merge.trace_evidence("slow_dependency")
    listed = merge.run(metrics, traces=[*traces, _listing(*merge.SERVICES, BATCH)])
    assert _names(listed)[0] == BATCH
    assert all("no span of it" not in h.summary for h in listed.hypotheses)


def test_a_failed_or_short_listing_says_nothing() -> None:
    traces = merge.trace_evidence("slow_dependency")
    failed = _listing(*merge.SERVICES, status=models.Status.ERROR)
    assert tracing.read_traces([*traces, failed]).services == frozenset()
    assert tracing.read_traces([*traces, _listing("frontend", "checkout")]).services == {
        "frontend",
        "checkout",
    }
    metrics = _metrics(batch_jump=20.0)
    short = merge.run(metrics, traces=[*traces, _listing("frontend", "checkout")])
    assert _names(short)[0] == BATCH  # two services are not a request path


def test_dependencies_and_callees_by_host_name_are_on_the_path() -> None:
    """``external/`` and ``postgres/`` are dependencies, not workloads; a workload a traced
    service calls by host name (``external/cache:6379``) is uninstrumented but on the path."""
    drafts = [
        _draft("postgres/shop", 10.0),
        _draft("cache", 9.0),
        _draft("report-batch", 8.0),
        _draft("payments", 5.0),
        _draft("api", 4.0),  # a workload named like an outside host's first label
    ]
    findings = tracing.TraceFindings(
        (),
        frozenset(
            {
                ("checkout", "external/cache:6379"),
                ("checkout", "payments"),
                ("payments", "external/api.bank.example:443"),
            }
        ),
        (),
        (),
        frozenset({"frontend", "checkout", "payments"}),
    )
    out = tracemerge.off_path(
        drafts, traces=findings, policy=correlating.ranking.ConfidencePolicy()
    )
    scores = {d.component: d.score for d in out}
    assert scores == {
        "postgres/shop": 10.0,
        "cache": 9.0,
        "report-batch": 3.2,
        "payments": 5.0,
        "api": 1.6,
    }
    assert [d.component for d in out] == [
        "postgres/shop",
        "cache",
        "payments",
        "report-batch",
        "api",
    ]


def _draft(component: str, score: float) -> tracemerge.drafts.Draft:
    return tracemerge.drafts.Draft(
        models.CauseKind.RESOURCE,
        component,
        score,
        score,
        0.6,
        f"{component}: latency",
        (),
        (),
        None,
        None,
    )
