"""The propose step's choice of fixes: catalogue fixes for the best hypotheses, the database's
fixes where its findings lead, each with the query that shows whether it worked, in the order
the matched playbook prefers. Pure: the dry runs happen after (``graphs/acting.py``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from diagnose.analysis import fixing
from diagnose.domain import models
from graphs.state import DatabaseFix

Kind = models.EvidenceKind

VERIFY_PREFERENCE = ("errors", "latency", "saturation", "throttling", "restarts", "memory", "cpu")
"""Which signal's recovery best shows a fix worked: what users feel first, resources after."""


def proposals(
    correlation: Mapping[str, Any],
    *,
    namespace: str,
    matched: Mapping[str, Any],
    evidence: Sequence[models.Evidence],
    db_fixes: Sequence[DatabaseFix] = (),
    min_confidence: float = fixing.MIN_CONFIDENCE,
) -> list[models.ProposedFix]:
    """Fixes for a correlation. Hypotheses below ``min_confidence`` get none, and an
    abstaining diagnosis none at all: a lead is not a reason to change production."""
    if correlation.get("abstained"):
        return []
    hypotheses = [models.Hypothesis.from_dict(h) for h in correlation.get("hypotheses", [])]
    fixes = fixing.propose_fixes(
        hypotheses,
        namespace=namespace,
        replicasets=items_of(evidence, Kind.REPLICASETS),
        verify_queries=verify_queries(correlation),
        sizing=_sizing(matched, evidence=evidence),
        min_confidence=min_confidence,
        configs=items_of(evidence, Kind.CONFIGS),
        findings=findings_of(evidence),
        deliveries=items_of(evidence, Kind.DELIVERIES),
    )
    plain = [_proposed(f.to_dict()) for f in fixes]
    by_summary = {d["summary"]: d["fix"] for d in db_fixes}
    for index, hypothesis in enumerate(hypotheses[:3]):
        if hypothesis.summary in by_summary and hypothesis.confidence >= min_confidence:
            plain.append(_proposed(by_summary[hypothesis.summary]) | {"hypothesis": index})
    plain.sort(key=lambda f: f["hypothesis"])
    levels = verify_levels(correlation)
    for fix in plain:
        component = hypotheses[fix["hypothesis"]].component
        fix["verify_levels"] = levels.get(component, {}) if fix["verify"] else {}
    plain = fit_to_playbook(plain, matched=matched)
    return [f | {"id": f"fix-{n}"} for n, f in enumerate(plain, start=1)]


def _proposed(fix: models.FixData) -> models.ProposedFix:
    """The fix as the run's state holds it, before the propose step and the dry runs add to it."""
    return {
        "id": fix["id"],
        "kind": fix["kind"],
        "target": fix["target"],
        "command": fix["command"],
        "rollback": fix["rollback"],
        "verify": fix["verify"],
        "risk": fix["risk"],
        "blast_radius": fix["blast_radius"],
        "hypothesis": fix["hypothesis"],
        "dry_run": fix["dry_run"],
        "action": fix["action"],
    }


def items_of(evidence: Sequence[models.Evidence], kind: models.EvidenceKind) -> list[Any]:
    """The items of every listing of one kind (Deployments, ReplicaSets, …) that answered."""
    return [item for e in evidence if e.kind is kind and isinstance(e.raw, list) for item in e.raw]


def findings_of(evidence: Sequence[models.Evidence]) -> dict[str, dict[str, Any]]:
    """Component → the Kubernetes-state finding the analysis derived for it (its record's raw
    names a ``fault`` and the ``check`` that shows it)."""
    return {
        str(e.raw["component"]): dict(e.raw)
        for e in evidence
        if e.kind is Kind.DERIVED and isinstance(e.raw, dict) and {"fault", "check"} <= set(e.raw)
    }


def fit_to_playbook(
    fixes: Sequence[models.ProposedFix], *, matched: Mapping[str, Any]
) -> list[models.ProposedFix]:
    """The fixes with the kinds the matched playbook lists first. A fix of another kind stays
    (a playbook must not hide the right fix), marked ``outside_playbook`` and after them; a
    playbook that lists no fixes changes nothing."""
    listed = [str(k) for k in matched.get("fixes") or []]
    if not listed:
        return list(fixes)
    outside = f"outside playbook {matched['name']}'s fixes ({', '.join(listed)})"
    marked = [f if f["kind"] in listed else f | {"outside_playbook": outside} for f in fixes]
    return sorted(marked, key=lambda f: "outside_playbook" in f)


def _sizing(matched: Mapping[str, Any], *, evidence: Sequence[models.Evidence]) -> fixing.Sizing:
    """The matched playbook's fix template parameters, and the replica counts on record."""
    templates = matched.get("fix_templates") or {}
    replicas = {
        str(item["name"]): int(item["replicas"])
        for item in items_of(evidence, Kind.DEPLOYMENTS)
        if item.get("replicas") is not None
    }
    return fixing.Sizing(
        scale_factor=(templates.get("scale") or {}).get("factor"),
        limit_multiplier=(templates.get("raise_limits") or {}).get("multiplier"),
        replicas=replicas,
    )


def verify_levels(correlation: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Per component, the baseline and incident level of the signal ``verify_queries`` picks:
    recovery is judged against them."""
    levels = {}
    for component in correlation.get("components", []):
        signals = [s for s in component.get("signals", []) if s.get("query")]
        if signals:
            best = min(signals, key=_verify_rank)
            if best.get("baseline") is not None and best.get("after") is not None:
                levels[component["component"]] = {
                    "baseline": float(best["baseline"]),
                    "incident": float(best["after"]),
                }
    return levels


def verify_queries(correlation: Mapping[str, Any]) -> dict[str, str]:
    """Per component, the query of its most telling anomalous signal: its recovery shows a fix
    worked."""
    queries = {}
    for component in correlation.get("components", []):
        signals = [s for s in component.get("signals", []) if s.get("query")]
        if signals:
            best = min(signals, key=_verify_rank)
            queries[component["component"]] = str(best["query"])
    return queries


def _verify_rank(signal: Mapping[str, Any]) -> tuple[int, float]:
    kind = str(signal.get("kind"))
    order = VERIFY_PREFERENCE.index(kind) if kind in VERIFY_PREFERENCE else len(VERIFY_PREFERENCE)
    strong = abs(float(signal.get("z") or 0.0)) >= 3.0
    return (order if strong else order + 100, -abs(float(signal.get("z") or 0.0)))
