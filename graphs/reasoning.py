"""The ``reason`` node: a language model reads a digest of the deterministic findings.

Never load-bearing. The model may explore with the read-only tools of :mod:`graphs.toolbox`
(within the run's :class:`~diagnose.domain.reasoning.Budget`), and answers with claims that
:func:`~diagnose.domain.answers.validate_answer` checked for form. Code then settles each claim
against the analysis (:func:`settle`):

- every cited evidence id must exist, and support the claim: a cited metric series must be
  anomalous on the claimed component, a cited or named change must belong to that component
  and precede its onset;
- a proposed fix must be a catalogue action that fits the cause, on the claimed component;
- a claim that matches a deterministic hypothesis confirms it and changes nothing; a new one
  is ranked in (:func:`merge_claims`) after every deterministic hypothesis, with a confidence
  computed here from its evidence and kept under the abstention threshold, so the model can
  widen the list but never, by itself, change the top cause or make the agent conclude.

The model cannot refute a deterministic hypothesis: none is ever dropped. When the model is
absent, slow, unreachable or wrong, the run goes on with the deterministic ranking and its
notes say so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from langgraph.runtime import Runtime

from diagnose.analysis import ranking
from diagnose.domain import answers, fixes, models
from diagnose.domain import reasoning as llm_reasoning
from graphs import toolbox
from graphs.state import Context, CorrelationData, DiagnosisState, SettledData
from sandbox import catalogue

MAX_DIGEST_EVIDENCE = 60
ANOMALOUS_Z = 3.0
"""A cited series supports a claim when one of its signals on the claimed component scores at
least this robust z (the analysis' own bar for a strong signal)."""
MODEL_CAP = 0.3
"""The most confidence a model-only hypothesis gets; under the abstention threshold (0.35)."""
ONSET_SLACK_S = 90.0
"""A change may land this much after the detected onset and still count as preceding it (onset
detection has the resolution of one step)."""


def toolbox_for(
    state: DiagnosisState, *, runtime: Runtime[Context], digest: llm_reasoning.Digest
) -> toolbox.PortToolbox:
    """The read-only tools over the run's ports, each answer kept in the run's bundle."""
    context = runtime.context
    probes: list[Any] = []
    if context.database is not None:
        probes = [entry.probe for entry in catalogue.load().entries]
    ports = toolbox.Ports(
        metrics=context.metrics,
        traces=context.traces,
        cluster=context.cluster,
        database=context.database,
        database_name=context.database_name,
        probes=probes,
    )
    scope = toolbox.Scope(
        window=models.Window.from_dict(state["window"]),
        namespace=str(state["trigger"].get("namespace") or ""),
        components=digest.components,
    )
    run_id = state["run_id"]
    return toolbox.PortToolbox(
        ports=ports,
        scope=scope,
        evidence={e.id: e for e in digest.evidence},
        keep=lambda found: context.store.put(run_id, [found]),
    )


def digest_of(
    state: DiagnosisState, *, evidence: Sequence[models.Evidence], interleave: bool = False
) -> llm_reasoning.Digest:
    """The compact picture a model reasons over: the candidates and what they rest on, the
    leader's evidence first, or (``interleave``) each candidate's first piece, then each
    one's second, so a trimmed digest still shows the alternatives' evidence."""
    correlation = state.get("correlation") or {}
    hypotheses = [models.Hypothesis.from_dict(h) for h in correlation.get("hypotheses", [])]
    trigger = models.Trigger.from_dict(state["trigger"])
    per_candidate = [[*h.evidence, *h.counter_evidence] for h in hypotheses[:5]]
    if interleave:
        depth = max((len(ids) for ids in per_candidate), default=0)
        cited = [ids[n] for n in range(depth) for ids in per_candidate if n < len(ids)]
    else:
        cited = [ev for ids in per_candidate for ev in ids]
    by_id = {e.id: e for e in evidence}
    derived = [e.id for e in evidence if e.source == "analysis"]
    chosen = list(dict.fromkeys([*cited, *derived]))[:MAX_DIGEST_EVIDENCE]
    components = [c["component"] for c in correlation.get("components", [])]
    components += [h.component for h in hypotheses if h.component not in components]
    return llm_reasoning.Digest(
        incident=f"{trigger.title} ({trigger.service}/{trigger.namespace or '-'}) "
        f"at {models.format_time(trigger.at)}",
        components=tuple(components),
        evidence=tuple(by_id[i] for i in chosen if i in by_id),
        changes=tuple(c["ref"] for c in correlation.get("changes", [])),
        candidates=tuple(hypotheses[:5]),
    )


# --- settling claims in code -------------------------------------------------------------------


@dataclass(frozen=True)
class Settled:
    """Code's verdict on one claim: ``confirms`` a deterministic hypothesis (by index),
    ``added`` as a new one with a computed confidence, or ``refused`` with reasons."""

    claim: llm_reasoning.Claim
    outcome: str
    confidence: float | None = None
    confirms: int | None = None
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> SettledData:
        return {
            "claim": self.claim.to_dict(),
            "outcome": self.outcome,
            "confidence": self.confidence,
            "confirms": self.confirms,
            "reasons": list(self.reasons),
        }


def settle(
    claims: Sequence[llm_reasoning.Claim],
    *,
    correlation: Mapping[str, Any],
    evidence: Mapping[str, models.Evidence],
    trigger_at: datetime,
    fix_catalogue: fixes.Catalogue = fixes.CATALOGUE,
) -> list[Settled]:
    """Code's verdict on each claim (see the module's docstring); a claim's fix must be a
    ``fix_catalogue`` action that fits its cause kind."""
    return [
        _settle_one(
            claim,
            correlation=correlation,
            evidence=evidence,
            trigger_at=trigger_at,
            fix_catalogue=fix_catalogue,
        )
        for claim in claims
    ]


def _settle_one(
    claim: llm_reasoning.Claim,
    *,
    correlation: Mapping[str, Any],
    evidence: Mapping[str, models.Evidence],
    trigger_at: datetime,
    fix_catalogue: fixes.Catalogue,
) -> Settled:
    problems = [f"cites {ev}, which does not exist" for ev in claim.evidence if ev not in evidence]
    onset = _onset(correlation, component=claim.component, default=trigger_at)
    strength = 0.0
    for ev in claim.evidence:
        found, z = _series_support(ev, component=claim.component, correlation=correlation)
        problems += found
        strength = max(strength, _strength(z))
    lead = _change_support(claim, correlation=correlation, onset=onset, problems=problems)
    if lead is not None:
        strength = max(strength, 0.5 * _precedence(lead))
    problems += _fix_problems(claim, correlation=correlation, fix_catalogue=fix_catalogue)
    match = _matching(claim, correlation=correlation)
    if not problems and match is None and strength <= 0.0:
        problems.append(
            f"no cited evidence shows an anomalous series on {claim.component} "
            "or a change of it before the onset"
        )
    if problems:
        return Settled(claim, "refused", reasons=tuple(problems))
    if match is not None:
        confidence = float(correlation["hypotheses"][match]["confidence"])
        return Settled(claim, "confirms", confidence=confidence, confirms=match)
    return Settled(claim, "added", confidence=round(MODEL_CAP * strength, 4))


def _series_support(
    evidence_id: str, *, component: str, correlation: Mapping[str, Any]
) -> tuple[list[str], float]:
    """Problems with a cited series, and the best |z| it shows on ``component``."""
    signals = [
        (c["component"], s)
        for c in correlation.get("components", [])
        for s in c.get("signals", [])
        if s.get("evidence") == evidence_id
    ]
    if not signals:
        return [], 0.0  # not a scored series: a change, a trace, a probe, a tool's answer
    mine = [abs(float(s.get("z") or 0.0)) for owner, s in signals if owner == component]
    best = max(mine, default=0.0)
    if best < ANOMALOUS_Z:
        return [f"cites {evidence_id}, whose series is not anomalous on {component}"], 0.0
    return [], best


def _change_support(
    claim: llm_reasoning.Claim,
    *,
    correlation: Mapping[str, Any],
    onset: datetime,
    problems: list[str],
) -> float | None:
    """Seconds the claim's change leads the onset (None without a change); problems appended."""
    ref = claim.change
    if ref is None:
        return None
    changes = {c["ref"]: c for c in correlation.get("changes", [])}
    change = changes.get(ref)
    if change is None:
        problems.append(f"names change {ref}, which the analysis did not find")
        return None
    if change.get("component") != claim.component:
        problems.append(f"change {ref} belongs to {change.get('component')}, not {claim.component}")
        return None
    lead = (onset - models.parse_time(change["at"])).total_seconds()
    if lead < -ONSET_SLACK_S:
        problems.append(f"change {ref} comes after the onset on {claim.component}")
        return None
    return lead


def _fix_problems(
    claim: llm_reasoning.Claim, *, correlation: Mapping[str, Any], fix_catalogue: fixes.Catalogue
) -> list[str]:
    fix = claim.fix
    if fix is None:
        return []
    problems = []
    if fix.action not in fix_catalogue:
        problems.append(f"fix {fix.action} is not a catalogue action")
    if fix.target != claim.component:
        problems.append(f"fix targets {fix.target}, not the claimed component {claim.component}")
    if fix.target not in _in_scope(correlation):
        problems.append(f"fix target {fix.target} is not a component in scope")
    if fix.action not in fix_catalogue.fitting(claim.kind):
        problems.append(f"fix {fix.action} does not address a {claim.kind.value} cause")
    return problems


def _matching(claim: llm_reasoning.Claim, *, correlation: Mapping[str, Any]) -> int | None:
    for index, h in enumerate(correlation.get("hypotheses", [])):
        same_change = claim.change is None or claim.change == h.get("change")
        if h["kind"] == claim.kind.value and h["component"] == claim.component and same_change:
            return index
    return None


def _in_scope(correlation: Mapping[str, Any]) -> set[str]:
    components = {str(c["component"]) for c in correlation.get("components", [])}
    return components | {str(h["component"]) for h in correlation.get("hypotheses", [])}


def _onset(correlation: Mapping[str, Any], *, component: str, default: datetime) -> datetime:
    for c in correlation.get("components", []):
        if c["component"] == component and c.get("onset"):
            return models.parse_time(c["onset"])
    return default


def _strength(z: float) -> float:
    """The analysis' compression of a robust z into (0, 1): a 10-sigma series gives 0.63."""
    if z <= 0:
        return 0.0
    policy = ranking.ConfidencePolicy()
    return 1.0 - math.exp(-min(z, 100.0) / policy.strength_scale)


def _precedence(lead_s: float) -> float:
    policy = ranking.ConfidencePolicy()
    moment = datetime(2000, 1, 1)
    return ranking.precedence(moment - timedelta(seconds=lead_s), moment, policy=policy)


def merge_claims(correlation: CorrelationData, settled: Sequence[Settled]) -> CorrelationData:
    """The ranking with the added claims after every deterministic hypothesis, best first.

    Nothing deterministic is dropped, reordered or re-scored; abstention stays the analysis'
    (an added claim's confidence is under the threshold).
    """
    added = sorted(
        (s for s in settled if s.outcome == "added" and s.confidence is not None),
        key=lambda s: -(s.confidence or 0.0),
    )
    if not added:
        return correlation
    known = {(h["kind"], h["component"], h.get("change")) for h in correlation["hypotheses"]}
    extra = []
    for s in added:
        key = (s.claim.kind.value, s.claim.component, s.claim.change)
        if key in known:
            continue
        known.add(key)
        hypothesis = s.claim.to_hypothesis(confidence=s.confidence or 0.0)
        summary = f"{answers.quoted(hypothesis.summary)} (a claim checked by code)"
        extra.append(hypothesis.to_dict() | {"summary": summary})
    threshold = ranking.ConfidencePolicy().abstain_below
    merged = [*correlation.get("hypotheses", []), *extra]
    abstained = bool(correlation.get("abstained", True)) or merged[0]["confidence"] < threshold
    return {**correlation, "hypotheses": merged, "abstained": abstained}


def note_of(outcome: llm_reasoning.Reasoning) -> list[str]:
    """The report's note when the model's part came to nothing, and why."""
    if outcome.status is llm_reasoning.ReasoningStatus.ACCEPTED:
        return []
    why = "; ".join(outcome.reasons[:3]) or "no reason given"
    return [f"llm: {outcome.status.value} ({why}); the ranking is the deterministic analysis alone"]
