"""Diagnose a scenario standing in the lab through the real wiring, and score the result."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any

from diagnose import evaluation, wiring
from diagnose import scenario as scenario_format
from diagnose.domain import models
from diagnose.settings import Settings
from graphs import reporting

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def diagnose_once(settings: Settings, trigger: models.Trigger, *, now: datetime) -> dict[str, Any]:
    """One run up to the approval step, its clock pinned so two runs see the same window."""
    with wiring.open_agent(settings, progress=lambda _m: None) as agent:
        agent.context = dataclasses.replace(agent.context, clock=lambda: now)
        paused = agent.start(trigger)
    correlation = paused.state.get("correlation") or {}
    return reporting.result(paused.state) | {"components": correlation.get("components", [])}


def rank(folder: Path, result: dict[str, Any]) -> int | None:
    """The 1-based rank of the scenario's true cause in the result, as ``diagnose eval`` scores."""
    truth = evaluation.truth_of(scenario_format.Scenario.load(folder))
    return evaluation.Case(name=folder.name, truth=truth, result=result).rank()


def fixes_of(result: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The proposed fixes, by what they would do."""
    keys = ("kind", "target", "command", "hypothesis")
    return [tuple(f.get(k) for k in keys) for f in result["fixes"]]
