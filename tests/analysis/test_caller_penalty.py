"""A caller whose callee went wrong first yields only what the callee explains: its latency,
not its own CPU."""

from __future__ import annotations

import numpy as np
import pytest

from diagnose.analysis import components, scoring, signals

STEP = 6.0
POINTS = 600
ONSET = 450


def _row(base: float, after: float, *, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    level = np.where(np.arange(POINTS) >= ONSET, after, base)
    return level + rng.normal(0.0, noise, POINTS)


def _info(component: str, kind: str, metric: str) -> signals.SignalInfo:
    return signals.SignalInfo(
        component=component,
        metric=metric,
        kind=kind,
        direction=1,
        query=f'{metric}{{service="{component}"}}',
        evidence="ev-test",
        detail="",
    )


ROWS = [
    # food: its own CPU saturates and its requests slow down with it
    (
        _info("food", "cpu", "container_cpu_usage_seconds_total"),
        _row(0.05, 0.5, noise=0.01, seed=1),
    ),
    (_info("food", "latency", "server_latency_p90"), _row(0.09, 0.9, noise=0.01, seed=2)),
    # delivery, which food calls, slows a little at the same time
    (_info("delivery", "latency", "server_latency_p90"), _row(0.02, 0.1, noise=0.01, seed=3)),
    # cart, which also calls delivery, has nothing but latency
    (_info("cart", "latency", "server_latency_p90"), _row(0.05, 0.5, noise=0.01, seed=4)),
]


def _ranks(edges: frozenset[tuple[str, str]]) -> dict[str, components.ComponentScore]:
    grid = signals.Grid(start=0.0, step=STEP, size=POINTS)
    found = signals.Signals(
        grid=grid,
        values=np.vstack([values for _, values in ROWS]),
        info=[info for info, _ in ROWS],
        edges=edges,
        widths=np.ones(len(ROWS), dtype=np.intp),
    )
    policy = scoring.ScoringPolicy()
    scores = scoring.score_rows(
        found.values,
        times=grid.times,
        trigger_at=float(grid.times[ONSET + 40]),
        directions=np.ones(len(ROWS), dtype=np.int_),
        floors=np.full(len(ROWS), 1e-3),
        policy=policy,
        widths=found.widths,
    )
    ranked = components.score_components(
        found, scores, policy=policy, ranking=components.RankingPolicy()
    )
    return {c.component: c for c in ranked}


def test_a_callers_own_signals_keep_their_weight_when_its_callee_went_wrong_first() -> None:
    """With the call edges known, food's CPU part of its rank stays whole and only its
    latency part is scaled; cart, which has only latency, yields entirely."""
    alone = _ranks(frozenset())
    called = _ranks(frozenset({("food", "delivery"), ("cart", "delivery")}))
    penalty = components.RankingPolicy().caller_penalty
    food, cart = alone["food"], alone["cart"]
    assert 0 < food.own_rank < food.rank and cart.own_rank == 0
    assert called["food"].rank == pytest.approx(
        food.own_rank + penalty * (food.rank - food.own_rank)
    )
    assert called["food"].rank > penalty * food.rank
    assert called["cart"].rank == pytest.approx(penalty * cart.rank)
    assert called["delivery"].rank == pytest.approx(alone["delivery"].rank)
