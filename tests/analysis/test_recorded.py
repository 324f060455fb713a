"""Recorded incidents: the analysis localises them without code written for them.

Sock Shop (real cluster, CPU and memory hogs, metrics only) from the shared datasets, and the
team's scenarios in ``tests/scenarios`` when present. Each is read as the graph would gather it:
one evidence record per metric name, sampled every 5 s like ``query_range``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from diagnose.analysis import correlating
from diagnose.domain import models
from tests.support import scenarios


def _accuracy(folders: list[Path], *, by_kind: bool) -> tuple[float, float, list[str]]:
    """AC@1, AC@3 and one line per scenario."""
    hits1 = hits3 = 0
    lines = []
    for folder in folders:
        loaded = scenarios.load(folder)
        result = correlating.correlate(
            trigger=loaded.trigger,
            window=loaded.window,
            metrics=loaded.metrics,
            cluster=loaded.cluster,
            now=loaded.now,
        )
        known = {e.id for e in [*loaded.metrics, *loaded.cluster, *result.derived]}
        assert models.cited_ids(result.hypotheses) <= known, folder.name
        truth = (loaded.truth.get("kind"), loaded.truth.get("component"))
        found = [(h.kind.value if by_kind else truth[0], h.component) for h in result.hypotheses]
        rank = found.index(truth) + 1 if truth in found else None
        hits1 += rank == 1
        hits3 += rank is not None and rank <= 3
        top = [(h.kind.value, h.component, round(h.confidence, 2)) for h in result.hypotheses[:3]]
        lines.append(f"{folder.name}: truth={truth} rank={rank} abstained={result.abstained} {top}")
    n = max(1, len(folders))
    return hits1 / n, hits3 / n, lines


def test_sockshop_incidents_are_localised(shared_datasets: Path) -> None:
    """The injected service is first for most of the ten Sock Shop incidents (BARO: 0.99 Avg@5)."""
    folders = sorted(p for p in (shared_datasets / "sockshop").iterdir() if p.is_dir())
    ac1, ac3, lines = _accuracy(folders, by_kind=False)
    print("\n".join(lines), f"\nsockshop AC@1={ac1:.2f} AC@3={ac3:.2f}")
    assert ac3 >= 0.9
    assert ac1 >= 0.8


def _team_scenarios() -> list[Path]:
    root = Path(__file__).resolve().parents[1] / "scenarios"
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "scenario.yaml").exists())


@pytest.mark.skipif(not _team_scenarios(), reason="no scenarios in tests/scenarios yet")
def test_team_scenarios_are_diagnosed() -> None:
    """Kind and component of the truth among the first three for most team scenarios."""
    folders = [f for f in _team_scenarios() if (f / "metrics.om").exists()]
    ac1, ac3, lines = _accuracy(folders, by_kind=True)
    print("\n".join(lines), f"\nteam scenarios AC@1={ac1:.2f} AC@3={ac3:.2f}")
    assert ac3 >= 0.6
