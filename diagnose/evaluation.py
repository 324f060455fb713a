"""``diagnose eval``: run scenarios through the lab and the graph, and score the rankings.

Scoring follows SCENARIOS.md: a hypothesis is right when its ``kind`` and ``component`` match
the scenario's ``truth``; AC@k is the share of scenarios whose true root cause is among the
first k hypotheses, Avg@5 the mean of AC@1..AC@5; ``change`` and ``fix`` are scored apart.
Scenarios whose truth has no root cause are right when the agent abstains.

Two baselines come from the same runs, so they see exactly the data the agent saw: *random*
(the expected AC@k of a uniformly random order of the components in scope) and *max-|z|*
(components ordered by their largest robust z-score, the classic "loudest dashboard" read).
Baselines name components only, so they are compared on the component; the agent's
component-only accuracy is printed next to them.

Only this module reads ``truth``; it never reaches the agent.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from diagnose import scenario as scenario_format
from diagnose import wiring
from diagnose.domain import errors
from diagnose.settings import Settings
from graphs import reporting

REJECT = {"verdict": "reject", "approver": "diagnose-eval", "reason": "evaluation run"}
K_MAX = 5


@dataclass(frozen=True)
class Truth:
    kind: str | None
    component: str | None
    change: str | None
    fix: str | None
    also: tuple[tuple[str, str], ...] = ()
    """Other (kind, component) pairs that count as right (``truth.also_accept``)."""

    def accepts(self, kind: str, component: str) -> bool:
        return (kind, component) == (self.kind, self.component) or (kind, component) in self.also


@dataclass
class Case:
    """One scenario's run and its score."""

    name: str
    truth: Truth
    result: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0

    @property
    def expects_abstention(self) -> bool:
        return self.truth.component is None

    def rank(self, *, component_only: bool = False) -> int | None:
        """1-based rank of the true cause among the hypotheses, None when absent."""
        for index, h in enumerate(self.result.get("hypotheses", [])[:K_MAX], start=1):
            if (component_only and h["component"] == self.truth.component) or (
                not component_only and self.truth.accepts(h["kind"], h["component"])
            ):
                return index
        return None

    def baseline_rank(self) -> int | None:
        """Rank of the true component when components are ordered by max |z|."""
        order = [c["component"] for c in _by_max_z(self.result)]
        if self.truth.component in order:
            return order.index(self.truth.component) + 1
        return None

    def candidates(self) -> int:
        return max(1, len(self.result.get("components", [])))

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "truth": self.truth.__dict__,
            "rank": self.rank(),
            "error": self.error,
            "seconds": round(self.seconds, 3),
            **self.result,
        }


def _by_max_z(result: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(result.get("components", []), key=lambda c: -_max_z(c))


def _max_z(component: dict[str, Any]) -> float:
    return max((abs(float(s.get("z") or 0.0)) for s in component.get("signals", [])), default=0.0)


def find_scenarios(root: Path) -> list[Path]:
    """Every scenario folder at or below ``root`` (a folder holding scenario.yaml), following
    symbolic links, so a suite can be a folder of links to scenarios kept elsewhere."""
    if (root / "scenario.yaml").is_file():
        return [root]
    found, seen = [], set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:  # a link back up the tree, or a second link to the same folder
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders.sort()  # deterministic: of two links to one folder, the first name counts
        if "scenario.yaml" in files:
            found.append(Path(folder))
    found.sort()
    if not found:
        raise errors.ScenarioError(f"no scenario.yaml at or below {root}")
    return found


def truth_of(loaded: scenario_format.Scenario) -> Truth:
    truth = loaded.truth
    cause = truth.root_cause if truth else None
    return Truth(
        kind=cause.kind if cause else None,
        component=cause.component if cause else None,
        change=cause.change if cause else None,
        fix=truth.fix if truth else None,
        also=tuple((a.kind, a.component) for a in truth.also_accept) if truth else (),
    )


def run_case(folder: Path, *, base: Settings, shift: bool, progress: Callable[[str], None]) -> Case:
    """Stand one scenario up, diagnose it, answer the approval step with a rejection."""
    from diagnose.lab import lab

    loaded = scenario_format.Scenario.load(folder)
    case = Case(name=loaded.name, truth=truth_of(loaded))
    began = time.perf_counter()
    try:
        with lab.running(folder, now=datetime.now(UTC), shift=shift, progress=progress) as up:
            settings = wiring.with_endpoints(base, up.endpoints)
            with wiring.open_agent(settings, progress=progress, remember=False) as agent:
                paused = agent.start(up.trigger)
                case.result = reporting.result(paused.state) | {
                    "components": (paused.state.get("correlation") or {}).get("components", [])
                }
                if paused.waiting:
                    agent.resume(paused.run_id, REJECT)
    except errors.DiagnoseError as exc:
        case.error = str(exc)
    case.seconds = time.perf_counter() - began
    return case


def run_all(
    folders: Iterable[Path], *, base: Settings, shift: bool, progress: Callable[[str], None]
) -> list[Case]:
    cases = []
    for folder in folders:
        progress(f"eval: {folder.name}")
        cases.append(run_case(folder, base=base, shift=shift, progress=lambda _m: None))
    return cases


def summarise(cases: Sequence[Case]) -> dict[str, Any]:
    """AC@k, Avg@5, change and fix accuracy, abstentions, stage times, and the baselines."""
    scored = [c for c in cases if not c.expects_abstention]
    abstain = [c for c in cases if c.expects_abstention]
    agent = _accuracy([c.rank() for c in scored])
    summary: dict[str, Any] = {
        "scenarios": len(cases),
        "errors": sum(1 for c in cases if c.error),
        "agent": agent,
        "agent_component_only": _accuracy([c.rank(component_only=True) for c in scored]),
        "baseline_max_z": _accuracy([c.baseline_rank() for c in scored]),
        "baseline_random": _random_accuracy([c.candidates() for c in scored]),
        "change_accuracy": _change_accuracy(scored),
        "fix_accuracy": _fix_accuracy(cases),
        "abstentions": {
            "made": sum(1 for c in cases if c.result.get("abstained")),
            "right": sum(1 for c in abstain if c.result.get("abstained")),
            "expected": len(abstain),
        },
        "seconds_per_stage": _stage_times(cases),
    }
    return summary


def _accuracy(ranks: Sequence[int | None]) -> dict[str, float]:
    if not ranks:
        return {f"AC@{k}": 0.0 for k in (1, 3)} | {"Avg@5": 0.0}
    ac = {k: sum(1 for r in ranks if r is not None and r <= k) / len(ranks) for k in range(1, 6)}
    return {"AC@1": ac[1], "AC@3": ac[3], "Avg@5": statistics.fmean(ac.values())}


def _random_accuracy(candidates: Sequence[int]) -> dict[str, float]:
    if not candidates:
        return _accuracy([])
    ac = {k: statistics.fmean(min(k, n) / n for n in candidates) for k in range(1, 6)}
    return {"AC@1": ac[1], "AC@3": ac[3], "Avg@5": statistics.fmean(ac.values())}


def _change_accuracy(cases: Sequence[Case]) -> float | None:
    with_change = [c for c in cases if c.truth.change]
    if not with_change:
        return None
    right = 0
    for case in with_change:
        top = (case.result.get("hypotheses") or [{}])[0]
        right += top.get("change") == case.truth.change
    return right / len(with_change)


def _fix_accuracy(cases: Sequence[Case]) -> float | None:
    with_fix = [c for c in cases if c.truth.fix]
    if not with_fix:
        return None
    right = 0
    for case in with_fix:
        fixes = case.result.get("fixes") or []
        proposed = fixes[0]["kind"] if fixes else "none"
        right += proposed == case.truth.fix
    return right / len(with_fix)


def _stage_times(cases: Sequence[Case]) -> dict[str, float]:
    stages: dict[str, list[float]] = {}
    for case in cases:
        for name, seconds in (case.result.get("timings_s") or {}).get("stages", {}).items():
            stages.setdefault(name, []).append(float(seconds))
    stages["lab+run"] = [c.seconds for c in cases]
    return {name: round(statistics.fmean(values), 4) for name, values in stages.items() if values}
