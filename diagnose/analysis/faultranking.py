"""Kubernetes-state findings ranked beside the metric hypotheses.

A definite finding (nothing of a workload ready, a refusal, a node down) is observed, not
inferred: it leads the best metric hypothesis. A partial one stands beside them. A finding on a
component that already has a hypothesis joins it, and the victims of a definite finding
elsewhere yield to it. Pure, like the rest of the analysis.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

from diagnose.analysis import cluster, ranking
from diagnose.analysis import components as components_
from diagnose.domain import models

DEFINITE_LEAD = 1.25
"""A definite finding's ordering score over the best metric hypothesis: a workload with
nothing ready, a refusal or a node down is observed, not inferred, and explains the anomalies
it causes."""
PARTIAL_SHARE = 0.45
"""A partial finding's ordering score as a share of the best one: beside, not above, them."""
VICTIM_SHARE = 0.5
"""A workload whose trouble a definite finding elsewhere explains keeps this share."""


def finding_evidence(finding: cluster.Finding, *, window: models.Window) -> models.Evidence:
    """The derived record a finding's hypothesis cites: its query re-checks it."""
    return models.Evidence.make(
        source="analysis",
        query=finding.check,
        window=window,
        status=models.Status.OK,
        summary=f"{finding.summary}; wrong if {finding.wrong_if}",
        raw=finding.to_dict(),
    )


def rank_faults(
    drafts: Sequence[ranking.Draft],
    findings: Sequence[cluster.Finding],
    *,
    cited: Mapping[str, str],
) -> list[ranking.Draft]:
    """The drafts with the findings ranked in (``cited``: finding component → the id of its
    derived record): a finding on a component that already has a draft joins it, the victims
    of a definite finding yield to it; best first. No findings: the drafts unchanged."""
    if not findings:
        return list(drafts)
    best = max([1.0, *(d.score for d in drafts)])
    out = list(drafts)
    for finding in findings:
        draft = _draft(finding, best=best, cited=cited.get(finding.component))
        own = next(
            (d for d in out if components_.same_workload(d.component, finding.component)), None
        )
        if own is not None:
            out.remove(own)
            draft = _joined(draft, own)
        if finding.severity >= cluster.DEFINITE:
            out = [_victim(d, finding) if _is_victim(d, finding) else d for d in out]
        out.append(draft)
    return sorted(out, key=lambda d: -d.score)


def _draft(finding: cluster.Finding, *, best: float, cited: str | None) -> ranking.Draft:
    definite = finding.severity >= cluster.DEFINITE
    return ranking.Draft(  # the partial ones neither lead nor lift what they join
        kind=finding.kind,
        component=finding.component,
        score=best * (DEFINITE_LEAD if definite else PARTIAL_SHARE),
        strength=25.0 if definite else 12.0,
        fit=0.9 if definite else 0.75,
        summary=f"{finding.summary}; check: {finding.check}; wrong if {finding.wrong_if}",
        evidence=_ids([cited or "", *finding.evidence]),
        counter=(),
        change=finding.change,
        onset=finding.at,
    )


def _joined(draft: ranking.Draft, own: ranking.Draft) -> ranking.Draft:
    """A finding and the hypothesis of the same component: the latter's change (and kind)
    when its metrics support one (a listed recent change alone does not), the finding's words
    first, both evidences."""
    # the metric hypothesis's kind and change when the metrics support a change, or when
    # the finding is only partial; a workload's creation (its first revision) is no change
    # that explains what the state shows
    creation = bool(own.change) and _CREATION.match(own.change or "") is not None
    keep = own.strength > 0 and (bool(own.change) or draft.fit < 0.9)
    keep = keep and not (creation and draft.fit >= 0.9)
    kind, change = (own.kind, own.change) if keep else (draft.kind, draft.change)
    return replace(
        draft,
        kind=kind,
        change=change,
        score=max(draft.score, own.score) if draft.fit >= 0.9 else own.score,
        strength=max(draft.strength, own.strength) if draft.fit >= 0.9 else own.strength,
        fit=max(draft.fit, own.fit) if draft.fit >= 0.9 else own.fit,
        summary=f"{draft.summary}; metrics: {own.summary}",
        evidence=_ids([*draft.evidence, *own.evidence]),
        counter=own.counter,
        onset=own.onset or draft.onset,
    )


_CREATION = re.compile(r"^(deployment|statefulset|daemonset)/[^@]+@1$")
"""A rollout reference to a workload's first revision: its creation."""


def _is_victim(draft: ranking.Draft, finding: cluster.Finding) -> bool:
    return any(components_.same_workload(draft.component, v) for v in finding.victims)


def _victim(draft: ranking.Draft, finding: cluster.Finding) -> ranking.Draft:
    return replace(
        draft,
        score=draft.score * VICTIM_SHARE,
        summary=f"{draft.summary}; explained by {finding.component}",
    )


def _ids(ids: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(i for i in ids if i))
