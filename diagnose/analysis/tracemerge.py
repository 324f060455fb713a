"""Trace findings merged into the ranking: a trace suspect corroborates a component's
hypothesis, lifts a dependency the callers wait on, or stands on its own; a canary's version
is tied to the rollout that shipped it."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

from diagnose.analysis import components as components_
from diagnose.analysis import drafts, tracing
from diagnose.domain import models


def merge_traces(
    drafts: Sequence[drafts.Draft],
    *,
    ranked: Sequence[components_.ComponentScore],
    traces: tracing.TraceFindings,
    changes: Sequence[models.Change],
    change_evidence: Mapping[str, str],
    policy: drafts.ConfidencePolicy,
) -> tuple[list[drafts.Draft], frozenset[str]]:
    """Each trace suspect corroborates its anomalous component's draft, or, when the metrics
    have nothing on it, adds a draft of its own; a suspect on a quiet component is dropped (the
    metrics contradict it). Callers of a suspect seen only in the traces wait on it. Returns the
    drafts and the components only the traces drafted."""
    out, added, done = list(drafts), [], set()
    for hint in traces.hints:
        seen = match_component(hint.component, ranked)
        if (seen is not None and not seen.anomalous) or hint.component in done:
            continue
        done.add(hint.component)
        rollout = _rollout_for(hint, changes=changes)
        cite = _change_cite(rollout, change_evidence=change_evidence)
        if seen is None:
            anchor = _anchor(hint, drafts=drafts, edges=traces.edges)
            added.append(
                _trace_only(hint, anchor=anchor, rollout=rollout, cite=cite, policy=policy)
            )
            continue
        index = next(i for i, d in enumerate(out) if d.component == seen.component)
        draft = _corroborated(out[index], hint=hint, policy=policy)
        out[index] = _canary(
            draft, hint=hint, rollout=rollout, cite=cite, base=seen.rank, seen=seen, policy=policy
        )
    waited = {a: d.component for d in added for a in _ancestors(d.component, edges=traces.edges)}
    hinted = [h.component for h in traces.hints]
    out = [_waiting(d, waited=waited, hinted=hinted, policy=policy) for d in out]
    return out + added, frozenset(d.component for d in added)


def off_path(
    drafts: Sequence[drafts.Draft],
    *,
    traces: tracing.TraceFindings,
    policy: drafts.ConfidencePolicy,
) -> list[drafts.Draft]:
    """Workloads the trace back end has no spans of, when it has spans of the request path (it
    lists at least ``path_services`` services): such a workload serves none of the traced
    requests and calls no traced service, so neither its slowness nor its errors reach the
    alerted requests through them; its ordering score is multiplied by ``off_path_penalty``.
    Dependencies (``external/``, ``postgres/``) and nodes are not workloads and keep theirs; so
    does a workload a traced service calls by host name in the samples (uninstrumented, but on
    the path). The listing is its counter-evidence."""
    if len(traces.services) < policy.path_services:
        return list(drafts)
    traced = traces.services | {n for e in traces.edges for n in e}
    names = {w for n in traced if (w := _workload_of(n)) is not None}
    out = []
    for draft in drafts:
        if (
            "/" in draft.component
            or draft.kind is models.CauseKind.TRAFFIC
            or any(components_.same_workload(draft.component, n) for n in names)
        ):
            out.append(draft)
            continue
        out.append(
            replace(
                draft,
                score=draft.score * policy.off_path_penalty,
                summary=f"{draft.summary}; the trace back end has no span of it (off the traced "
                "request path)",
                counter=(*draft.counter, *traces.listing),
            )
        )
    return sorted(out, key=lambda d: -d.score)


def _workload_of(name: str) -> str | None:
    """A traced name as a workload: ``external/cart-db:5432`` → ``cart-db``, and
    ``cart-db.shop.svc`` alike; a host outside the cluster (``api.bank.example``) is none."""
    if not name.startswith("external/"):
        return name
    host = name.removeprefix("external/").split(":")[0]
    if "." in host and not host.endswith((".svc", ".cluster.local")):
        return None
    return host.split(".")[0]


def match_component(
    name: str, ranked: Sequence[components_.ComponentScore]
) -> components_.ComponentScore | None:
    """The scored component a trace name denotes, if the metrics have one."""
    return next((c for c in ranked if components_.same_workload(c.component, name)), None)


def _corroborated(
    draft: drafts.Draft, *, hint: tracing.TraceHint, policy: drafts.ConfidencePolicy
) -> drafts.Draft:
    kind = _kind_of_name(hint.component) or draft.kind
    return replace(
        draft,
        kind=kind,
        score=draft.score * (1.0 + policy.trace_weight * hint.score),
        strength=max(draft.strength, hint.strength),
        fit=max(draft.fit, policy.trace_fit),
        summary=f"{draft.summary}; traces: {hint.headline}{_exemplar_text(hint)}",
        evidence=(*draft.evidence, *hint.evidence),
    )


def _trace_only(
    hint: tracing.TraceHint,
    *,
    anchor: drafts.Draft | None,
    rollout: models.Change | None,
    cite: tuple[str, ...],
    policy: drafts.ConfidencePolicy,
) -> drafts.Draft:
    """A suspect the metrics do not cover: ordered against the callers that wait on it."""
    base = anchor.score if anchor else hint.strength
    kind = _kind_of_name(hint.component)
    waiting = f", which {anchor.component} waits on" if anchor else ""
    draft = drafts.Draft(
        kind or models.CauseKind.RESOURCE,
        hint.component,
        base * (1.0 + policy.trace_weight * hint.score),
        max(hint.strength, anchor.strength if anchor else 0.0),
        0.85 if kind else 0.6,
        f"{hint.component}: {hint.headline} (in the traces{waiting}; no metrics of its own)"
        f"{_exemplar_text(hint)}",
        hint.evidence,
        (),
        None,
        None,
    )
    return _canary(
        draft, hint=hint, rollout=rollout, cite=cite, base=base, seen=None, policy=policy
    )


def _canary(
    draft: drafts.Draft,
    *,
    hint: tracing.TraceHint,
    rollout: models.Change | None,
    cite: tuple[str, ...],
    base: float,
    seen: components_.ComponentScore | None,
    policy: drafts.ConfidencePolicy,
) -> drafts.Draft:
    """A failing canary version is a deploy; its change is the rollout that shipped it."""
    if hint.version is None:
        return draft
    if rollout is None:
        return replace(
            draft,
            kind=models.CauseKind.DEPLOY,
            change=draft.change if draft.kind is models.CauseKind.DEPLOY else None,
            fit=max(draft.fit, policy.trace_fit),
            summary=f"canary {hint.component} {hint.version} fails (no rollout of that version "
            f"in the cluster evidence): {draft.summary}",
        )
    boosted = base * (1.0 + policy.change_bonus) * (1.0 + policy.trace_weight * hint.score)
    return replace(
        draft,
        kind=models.CauseKind.DEPLOY,
        change=rollout.ref,
        score=max(draft.score, boosted),
        fit=max(draft.fit, policy.canary_fit),
        summary=_shipped(hint, rollout=rollout, seen=seen),
        evidence=(*cite, *_metric_evidence(seen), *hint.evidence),
        counter=tuple(c for c in draft.counter if c not in cite),
    )


def _shipped(
    hint: tracing.TraceHint, *, rollout: models.Change, seen: components_.ComponentScore | None
) -> str:
    lead = (seen.onset - rollout.at).total_seconds() if seen and seen.onset else None
    when = "" if lead is None else f" {abs(lead):.0f}s {'before' if lead >= 0 else 'after'} onset"
    metrics = f"{drafts.describe(seen)}; " if seen else ""
    return (
        f"canary {hint.component} {hint.version} fails: {rollout.kind.value} {rollout.ref} "
        f"({rollout.detail}) shipped it{when}; {metrics}traces: {hint.headline}"
        f"{_exemplar_text(hint)}"
    )


def _metric_evidence(seen: components_.ComponentScore | None) -> tuple[str, ...]:
    if seen is None:
        return ()
    return tuple(e for e in (seen.evidence, *(s.evidence for s in seen.signals[:2])) if e)


def _waiting(
    draft: drafts.Draft,
    *,
    waited: Mapping[str, str],
    hinted: Sequence[str],
    policy: drafts.ConfidencePolicy,
) -> drafts.Draft:
    if any(components_.same_workload(draft.component, h) for h in hinted):
        return draft
    callee = next(
        (c for a, c in waited.items() if components_.same_workload(draft.component, a)), None
    )
    if callee is None:
        return draft
    return replace(
        draft,
        score=draft.score * policy.waiting_penalty,
        summary=f"{draft.summary}; in the traces it waits on {callee}",
    )


def _anchor(
    hint: tracing.TraceHint, *, drafts: Sequence[drafts.Draft], edges: frozenset[tuple[str, str]]
) -> drafts.Draft | None:
    """The strongest draft among the suspect's callers in the traces, else the strongest."""
    callers = _ancestors(hint.component, edges=edges)
    mine = [d for d in drafts if any(components_.same_workload(d.component, c) for c in callers)]
    return max(mine or drafts, key=lambda d: d.score, default=None)


def _ancestors(name: str, *, edges: frozenset[tuple[str, str]]) -> set[str]:
    """Everything that calls ``name`` in the traces, directly or not."""
    found: set[str] = set()
    frontier = {name}
    while frontier:
        frontier = {a for a, b in edges if b in frontier and a not in found and a != name}
        found |= frontier
    return found


def _kind_of_name(name: str) -> models.CauseKind | None:
    if name.startswith("external/"):
        return models.CauseKind.DEPENDENCY
    if "/" in name:  # postgres/<db>, or <db.system>/<db> for other databases
        return models.CauseKind.DATABASE
    return None


def _rollout_for(
    hint: tracing.TraceHint, *, changes: Sequence[models.Change]
) -> models.Change | None:
    """The latest rollout of the suspect's workload whose new image carries its version."""
    if hint.version is None:
        return None
    found = [
        c
        for c in changes
        if c.kind is models.ChangeKind.ROLLOUT
        and components_.same_workload(c.component, hint.component)
        and any(_carries(_tag(image), hint.version) for image in _new_images(c.detail))
    ]
    return max(found, key=lambda c: c.at, default=None)


def _new_images(detail: str) -> list[str]:
    """Images a rollout's detail says it brought (``image a:1 → a:2, …`` or ``(a:2, b:1)``)."""
    changed = re.search(r"image (.+?)(?:;|$)", detail)
    if changed:
        return [pair.split(" → ")[-1].strip() for pair in changed[1].split(", ")]
    first = re.search(r"\((.*)\)\s*$", detail)
    return [i.strip() for i in first[1].split(",")] if first else []


def _carries(tag: str, version: str) -> bool:
    """Whether an image tag is that version: ``2.14``, ``v2.14``, or a release of it
    (``2.14.0``, ``2.14-rc1``); ``2.140`` is not ``2.14``."""
    tag = tag.removeprefix("v")
    return tag == version or (tag.startswith(version) and tag[len(version)] in ".-+_")


def _tag(image: str) -> str:
    name = image.split("@", 1)[0].rsplit("/", 1)[-1]
    return name.rsplit(":", 1)[1] if ":" in name else ""


def _change_cite(
    change: models.Change | None, *, change_evidence: Mapping[str, str]
) -> tuple[str, ...]:
    if change is None:
        return ()
    return (change_evidence[change.ref + change.at.isoformat()], change.evidence)


def _exemplar_text(hint: tracing.TraceHint) -> str:
    if not hint.exemplars:
        return ""
    return f"; e.g. trace {', '.join(hint.exemplars[:2])}"
