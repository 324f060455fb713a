"""What a careful approver names as checked, for tests that approve a run's fix."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def checked(hypothesis: Mapping[str, Any]) -> list[str]:
    """The evidence an approver of a fix for ``hypothesis`` names as checked: the first it
    cites and, when it has any, the first of its counter-evidence (the approval step's rule)."""
    return [hypothesis["evidence"][0], *(hypothesis.get("counter_evidence") or [])[:1]]


def checked_for(state: Mapping[str, Any], fix_id: str) -> list[str]:
    """The same, for the fix ``fix_id`` of a run's state."""
    fix = next(f for f in state["fixes"] if f["id"] == fix_id)
    return checked(state["correlation"]["hypotheses"][fix["hypothesis"]])


def flag(hypothesis: Mapping[str, Any]) -> str:
    """The same ids as ``diagnose approve --checked`` takes them."""
    return ",".join(checked(hypothesis))
