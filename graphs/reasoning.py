"""The ``reason`` node: a language model reads a digest of the deterministic findings.

Never load-bearing: the deterministic ranking stands whatever the model says; its answer is
validated (citations, components and kinds must exist) and shown apart, labelled.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langgraph.runtime import Runtime

from diagnose.domain import models
from diagnose.domain import reasoning as llm_reasoning
from graphs.state import Context, DiagnosisState

Update = dict[str, Any]

MAX_DIGEST_EVIDENCE = 60


def reason(state: DiagnosisState, runtime: Runtime[Context]) -> Update:
    """Ask the language model, when one is configured, for its reading of the evidence."""
    reasoner = runtime.context.reasoner
    if reasoner is None:
        return {"reasoning": llm_reasoning.absent().to_dict()}
    evidence = runtime.context.store.load(state["run_id"])
    digest = digest_of(state, evidence=evidence)
    outcome = reasoner.reason(
        digest,
        budget=runtime.context.budget,
        toolbox=llm_reasoning.EvidenceToolbox.of(digest.evidence),
    )
    return {"reasoning": outcome.to_dict()}


def digest_of(
    state: DiagnosisState, *, evidence: Sequence[models.Evidence]
) -> llm_reasoning.Digest:
    """The compact picture a model reasons over: the candidates and what they rest on."""
    correlation = state.get("correlation") or {}
    hypotheses = [models.Hypothesis.from_dict(h) for h in correlation.get("hypotheses", [])]
    trigger = models.Trigger.from_dict(state["trigger"])
    cited = [ev for h in hypotheses[:5] for ev in (*h.evidence, *h.counter_evidence)]
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
