"""The application's repository in the pipeline: read the commits behind recent rollouts, then
put them on the hypotheses they bear on (docs/changes.md).

:func:`gather_code` is a gather step (listed in :data:`graphs.pipeline.GATHERERS`): it reads
the namespace's ReplicaSets, names the commit range of each rollout in the window
(``diagnose.analysis.commits``) and asks the repository port for each. Every answer is kept
as evidence of kind ``commits`` whose raw is a :class:`CodeRecord`, so a replay reads the same
ranges. :func:`attach_code` runs once the database's findings are known (at the start of the
reason step): each range is tied to the findings and attached to the hypotheses, suspects
first. Without a repository configured the step says so in a note; nothing is an error.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

from diagnose.analysis import commits
from diagnose.domain import code, delivery, models
from graphs.gathering import Gathered
from graphs.state import Context, Run
from sandbox import findings as db_findings

Kind = models.EvidenceKind


class CodeRecord(TypedDict):
    """The raw of a ``commits`` evidence record: which rollout, and what the repository said."""

    change: str  # "deployment/orders-api@8"
    component: str
    repository: str
    since: str
    until: str
    range: code.CommitRangePayload | None  # None when the repository could not answer


def gather_code(run: Run, *, context: Context) -> Gathered:
    """The commit ranges of the rollouts made in the window, newest first (at most
    ``policy.code_ranges``), read from the repositories' local clones."""
    source, cluster = context.repositories, context.cluster
    if cluster is None:
        return Gathered()
    synced = _deliveries(cluster, namespace=run.trigger.namespace)
    kept = [synced] if synced is not None and synced.status is models.Status.OK else []
    flux, flux_notes = _flux_events(cluster, synced=synced, run=run)
    kept += flux
    if source is None:  # no repository: the syncs alone (which delivery applied a rollout)
        return Gathered(evidence=tuple(kept), notes=tuple(flux_notes))
    listed = cluster.list_replicasets(namespace=run.trigger.namespace)
    if listed.status is not models.Status.OK or not isinstance(listed.raw, list):
        return Gathered(notes=(f"code: ReplicaSets not read ({listed.summary})",))
    requests, notes = commits.ranges_to_read(
        listed.raw,
        window=run.window,
        limit=context.policy.code_ranges,
        deliveries=synced.raw if synced and isinstance(synced.raw, list) else (),
    )
    found = [_read(source, request) for request in requests]
    if synced is not None and synced.status is models.Status.DENIED:
        notes.append(f"code: GitOps syncs not read ({synced.summary})")
    notes += flux_notes
    notes += [
        f"code: {e.raw['change']}: {e.summary}"
        for e in found
        if e.status in (models.Status.ERROR, models.Status.EMPTY) and e.raw["range"] is None
    ]
    return Gathered(evidence=(*kept, *found), notes=tuple(notes))


def _deliveries(cluster: object, *, namespace: str) -> models.Evidence | None:
    """Argo CD, Flux and Helm syncs targeting the namespace, when the cluster source reads
    them (their commits name a rollout's range before its annotations do)."""
    if not isinstance(cluster, delivery.DeliverySource):
        return None
    return cluster.list_deliveries(namespace=namespace).of_kind(Kind.DELIVERIES)


def _flux_events(
    cluster: object, *, synced: models.Evidence | None, run: Run
) -> tuple[list[models.Evidence], list[str]]:
    """Flux's events on the Flux objects among the syncs that live outside the namespace
    (``flux-system``): kept when read, a note when the role may not read them."""
    if not isinstance(cluster, delivery.DeliverySource) or synced is None:
        return [], []
    if synced.status is not models.Status.OK or not isinstance(synced.raw, list):
        return [], []
    found = cluster.list_delivery_events(
        namespace=run.trigger.namespace, deliveries=synced.raw, window=run.window
    ).of_kind(Kind.EVENTS)
    if found.status is models.Status.OK:
        return [found], []
    if found.status is models.Status.EMPTY:
        return [], []
    return [], [f"code: Flux events not read ({found.summary})"]


def _read(source: code.RepositorySource, request: commits.RangeRequest) -> models.Evidence:
    answer = source.list_commits(
        repository=request.repository, since=request.since, until=request.until
    )
    record: CodeRecord = {
        "change": request.change,
        "component": request.component,
        "repository": request.repository,
        "since": request.since,
        "until": request.until,
        "range": answer.raw if answer.status is models.Status.OK else None,
    }
    return dataclasses.replace(answer, raw=record).of_kind(Kind.COMMITS)


def attach_code(
    correlation: Mapping[str, Any],
    *,
    evidence: Sequence[models.Evidence],
    abstain_below: float,
) -> dict[str, Any]:
    """The ranking with each commit range on the hypotheses it bears on, re-ranked, and
    abstaining as the analysis does; unchanged when no range was read."""
    records = [
        e.raw
        for e in evidence
        if e.kind is Kind.COMMITS and isinstance(e.raw, dict) and e.raw.get("range")
    ]
    delivered = _delivered(evidence)
    if not (records or delivered) or not correlation.get("hypotheses"):
        return dict(correlation)
    probes = [e for e in evidence if e.kind is Kind.PROBE]
    found = [f.to_dict() for f in db_findings.find_all(probes)] if probes else []
    readings = [
        commits.read_range(r["range"], request=_request(r), findings=found) for r in records
    ]
    attached = commits.attach(correlation["hypotheses"], readings)
    hypotheses = commits.mark_delivered(attached.hypotheses, delivered)
    abstained = hypotheses[0]["confidence"] < abstain_below
    notes = [n for n in correlation.get("notes", []) if not n.startswith("abstained")]
    if abstained:
        notes.append("abstained: the best hypothesis is below the confidence threshold")
    return dict(correlation) | {"hypotheses": hypotheses, "abstained": abstained, "notes": notes}


def _delivered(evidence: Sequence[models.Evidence]) -> dict[str, commits.Delivered]:
    """Which delivery applied each rollout, from the syncs and ReplicaSets read."""
    deliveries = [
        d for e in evidence if e.kind is Kind.DELIVERIES and isinstance(e.raw, list) for d in e.raw
    ]
    if not deliveries:
        return {}
    replicasets = [
        r for e in evidence if e.kind is Kind.REPLICASETS and isinstance(e.raw, list) for r in e.raw
    ]
    return commits.delivered_by(replicasets, deliveries=deliveries)


def _request(record: Mapping[str, Any]) -> commits.RangeRequest:
    return commits.RangeRequest(
        change=str(record["change"]),
        component=str(record["component"]),
        repository=str(record["repository"]),
        since=str(record["since"]),
        until=str(record["until"]),
    )
