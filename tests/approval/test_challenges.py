"""What would prove a hypothesis wrong is worded for its kind: a change is falsified by timing,
a node by placement (its events may trail the onset it caused)."""

from __future__ import annotations

from typing import Any

from graphs import approval


def _state(*hypotheses: dict[str, Any]) -> Any:
    return {"correlation": {"hypotheses": list(hypotheses), "abstained": False}, "evidence": []}


def _hypothesis(component: str, change: str, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "resource",
        "component": component,
        "change": change,
        "confidence": 0.8,
        "summary": "s",
        "evidence": [],
        "counter_evidence": [],
        "onset": "2026-01-01T10:00:00Z",
        **extra,
    }


def test_a_change_is_falsified_by_the_symptoms_starting_before_it() -> None:
    (top,) = approval.challenges(_state(_hypothesis("checkout", "deployment/checkout@14")))
    assert "began before deployment/checkout@14 took effect" in top["wrong_if"][0]


def test_a_node_is_falsified_by_the_same_anomaly_off_the_node_not_by_timing() -> None:
    node = _hypothesis("node/worker-b", "node/worker-b")
    (top,) = approval.challenges(_state(node))
    assert "no pod on worker-b" in top["wrong_if"][0]
    assert not any("began before" in line for line in top["wrong_if"])


def test_alternatives_name_every_other_leading_hypothesis() -> None:
    first, second = _hypothesis("node/a", "node/a"), _hypothesis("cart", "deployment/cart@3")
    top, runner_up = approval.challenges(_state(first, second))
    assert top["alternatives"] == ["#2 resource cart (0.80): s"]
    assert runner_up["alternatives"] == ["#1 resource node/a (0.80): s"]
