"""Recorded runs for the drafting tests: a bundled scenario's data, analysed as a run does."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from diagnose import postmortem
from diagnose.analysis import correlating
from diagnose.domain import models
from graphs import proposing
from tests.e2e.conftest import _scenario_metrics  # the bundled scenarios' metrics.om
from tests.support import scenarios

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
RUN_ID = "run-recorded01"

__all__ = ["_scenario_metrics"]

RecordFactory = Callable[..., postmortem.RunRecord]


def audit_entry(kind: str, key: str, *, at: datetime, entry: Mapping[str, Any]) -> dict[str, Any]:
    """One row as the audit log's ``entries`` returns it."""
    return {
        "seq": 0,
        "at": models.format_time(at),
        "run_id": RUN_ID,
        "kind": kind,
        "key": key,
        "entry": dict(entry),
    }


def record_of(
    name: str,
    *,
    decision: models.Decision | None = None,
    extra_evidence: Sequence[models.Evidence] = (),
    notes: Sequence[str] = (),
) -> postmortem.RunRecord:
    """A scenario's data through the real analysis, with the audit trail a run would leave."""
    loaded, found = _analysed(name)
    evidence = [*loaded.metrics, *loaded.cluster, *found.derived, *extra_evidence]
    correlation = found.to_dict()
    correlation.pop("derived")
    started = loaded.trigger.at + timedelta(minutes=2)
    state: dict[str, Any] = {
        "run_id": RUN_ID,
        "trigger": loaded.trigger.to_dict(),
        "window": loaded.window.to_dict(),
        "now": models.format_time(started),
        "step_s": 6.0,
        "evidence": [e.to_dict(with_raw=False) for e in evidence],
        "notes": list(notes),
        "correlation": correlation,
        "timings_s": {"gather_metrics": 0.4, "correlate": 0.1},
    }
    state["fixes"] = proposing.proposals(
        correlation, namespace=loaded.trigger.namespace, matched={}, evidence=evidence
    )
    ready = started + timedelta(seconds=1)
    audit = [
        audit_entry(
            "proposal",
            f"proposal:{fix['id']}",
            at=ready,
            entry={"fix": fix, "hypothesis": correlation["hypotheses"][fix["hypothesis"]]},
        )
        for fix in state["fixes"]
    ]
    if decision is not None:
        state["decision"] = decision.to_dict()
        audit += _decided(decision, fixes=state["fixes"])
    return postmortem.RunRecord(state=state, evidence=evidence, audit=audit)


@functools.cache
def _analysed(name: str) -> tuple[scenarios.Loaded, correlating.Correlation]:
    loaded = scenarios.load(SCENARIOS / name, step=6.0)
    found = correlating.correlate(
        trigger=loaded.trigger,
        window=loaded.window,
        metrics=loaded.metrics,
        cluster=loaded.cluster,
        now=loaded.now,
        traces=[],
    )
    return loaded, found


def _decided(decision: models.Decision, *, fixes: Sequence[Mapping[str, Any]]) -> list[Any]:
    body = decision.to_dict()
    if decision.verdict is models.Verdict.REJECT:
        return [audit_entry("decision", "decision", at=decision.at, entry=body)]
    fix = next(f for f in fixes if f["id"] == decision.fix)
    action = {"fix": fix["id"], "executed": False, "command": fix["command"]}
    handed = decision.at + timedelta(seconds=1)
    return [
        audit_entry("approval", "approval:1", at=decision.at, entry=body),
        audit_entry("action", f"action:{fix['id']}", at=handed, entry=action),
        audit_entry("decision", "decision", at=handed, entry=body),
    ]


SECTIONS = (
    "## Summary",
    "## Impact",
    "## Timeline (UTC)",
    "## Root cause",
    "## Contributing factors",
    "## What went well",
    "## What went badly",
    "## Action items",
    "## Plots",
    "## Evidence cited",
)
"""A draft's sections, in the order a reader expects them."""


@pytest.fixture(scope="session")
def bad_deploy() -> postmortem.RunRecord:
    """bad-deploy-5xx, diagnosed and waiting at the approval step."""
    return record_of("bad-deploy-5xx")
