"""Database findings become ranked hypotheses and catalogue fixes, confidence by code."""

from typing import Any

from diagnose.domain import models
from graphs import pipeline
from sandbox import advising
from sandbox import findings as found


def _pile_up(*, state: str, waiters: int = 3) -> found.LockPileUp:
    return found.LockPileUp(
        database="shop",
        blocking_pid=4242,
        blocking_query="ALTER TABLE orders ADD c text",
        blocking_state=state,
        blocking_user="migrator",
        blocking_application="flyway",
        blocking_xact_age_s=400.0,
        waiters=waiters,
        waiting_pids=(1, 2, 3),
        proposal="",
        proposal_note="",
        evidence=("ev-locks",),
    )


def test_an_active_blocker_gets_a_cancel_of_that_pid() -> None:
    [advice] = advising.advise([_pile_up(state="active")], default_database="shop")
    assert advice.hypothesis.kind is models.CauseKind.DATABASE
    assert advice.hypothesis.component == "postgres/shop"
    assert advice.fix is not None and advice.fix.command == "SELECT pg_cancel_backend(4242);"
    assert advice.fix.risk is models.Risk.MEDIUM


def test_an_idle_in_transaction_blocker_needs_terminate_and_is_high_risk() -> None:
    [advice] = advising.advise([_pile_up(state="idle in transaction")], default_database="shop")
    assert advice.fix is not None
    assert advice.fix.command == "SELECT pg_terminate_backend(4242);"
    assert advice.fix.risk is models.Risk.HIGH


def test_more_waiters_mean_more_confidence_up_to_a_cap() -> None:
    one = advising.advise([_pile_up(state="active", waiters=1)], default_database="shop")
    many = advising.advise([_pile_up(state="active", waiters=40)], default_database="shop")
    assert one[0].hypothesis.confidence < many[0].hypothesis.confidence <= 0.9


def test_database_hypotheses_are_ranked_in_by_confidence_and_lift_an_abstention() -> None:
    weak: dict[str, Any] = models.Hypothesis(
        kind=models.CauseKind.RESOURCE,
        component="cart",
        confidence=0.1,
        summary="weak",
        evidence=("ev-1",),
    ).to_dict()
    correlation = {"hypotheses": [weak], "abstained": True, "notes": ["abstained: low"]}
    [advice] = advising.advise([_pile_up(state="active")], default_database="shop")
    merged = pipeline.merge_hypotheses(correlation, [advice.hypothesis])
    assert [h["component"] for h in merged["hypotheses"]] == ["postgres/shop", "cart"]
    assert merged["abstained"] is False
    assert not any(n.startswith("abstained") for n in merged["notes"])


def test_a_saturated_database_gets_more_room_without_a_restart() -> None:
    saturation = found.Saturation(
        scope="database",
        name="shop",
        connections=22,
        limit=24,
        fraction=22 / 24,
        evidence=("ev-conn",),
    )
    [advice] = advising.advise([saturation], default_database="shop")
    assert advice.fix is not None
    assert advice.fix.command == 'ALTER DATABASE "shop" CONNECTION LIMIT 48;'
    assert advice.fix.rollback == 'ALTER DATABASE "shop" CONNECTION LIMIT 24;'


def test_a_saturated_server_gets_no_fix_since_max_connections_needs_a_restart() -> None:
    saturation = found.Saturation(
        scope="server",
        name="server",
        connections=95,
        limit=100,
        fraction=0.95,
        evidence=("ev-conn",),
    )
    [advice] = advising.advise([saturation], default_database="shop")
    assert advice.fix is None
