"""When the database is probed, and how a probe that finds a session holding others up takes its
place above the services that only wait on it."""

from __future__ import annotations

from typing import Any

from diagnose.domain import models
from graphs import databases
from sandbox import findings as db_findings


def _signal(kind: str, z: float) -> dict[str, Any]:
    return {"kind": kind, "z": z, "metric": f"m_{kind}", "query": "q"}


def _component(name: str, *signals: dict[str, Any]) -> dict[str, Any]:
    return {"component": name, "anomalous": True, "evidence": f"ev-{name}", "signals": [*signals]}


def _hypothesis(component: str, confidence: float, *, change: str | None = None) -> dict[str, Any]:
    return models.Hypothesis(
        kind=models.CauseKind.RESOURCE,
        component=component,
        confidence=confidence,
        summary=f"{component} is slow",
        evidence=(f"ev-{component}",),
        change=change,
    ).to_dict()


def _correlation(*components: dict[str, Any], hypotheses: list[dict[str, Any]]) -> dict[str, Any]:
    return {"components": list(components), "hypotheses": hypotheses, "abstained": False}


def _pile_up(evidence: str = "ev-probe") -> db_findings.LockPileUp:
    return db_findings.LockPileUp(
        database="shop", blocking_pid=42, blocking_query="ALTER TABLE orders ADD COLUMN c text",
        blocking_state="idle in transaction", blocking_user="migrator",
        blocking_application="psql", blocking_xact_age_s=300.0, waiters=2, waiting_pids=(7, 8),
        proposal="SELECT pg_terminate_backend(42);", proposal_note="", evidence=(evidence,),
    )  # fmt: skip


def _database_hypothesis(confidence: float, evidence: str = "ev-probe") -> models.Hypothesis:
    return models.Hypothesis(
        kind=models.CauseKind.DATABASE,
        component="postgres/shop",
        confidence=confidence,
        summary="backend 42 blocks 2 session(s)",
        evidence=(evidence,),
    )


def test_a_slow_service_leads_to_the_probes_even_when_the_ranking_names_it() -> None:
    """A configured database is probed when latency is anomalous, though nothing points at it."""
    correlation = _correlation(
        _component("checkout", _signal("latency", 40.0)),
        hypotheses=[_hypothesis("checkout", 0.8)],
    )
    assert databases.should_probe(correlation, configured=True, asked=False)


def test_no_database_configured_means_no_probe() -> None:
    """Without a database to probe, nothing routes to the probes, whatever the symptoms."""
    correlation = _correlation(
        _component("checkout", _signal("errors", 40.0)), hypotheses=[_hypothesis("checkout", 0.8)]
    )
    assert not databases.should_probe(correlation, configured=False, asked=True)


def test_a_resource_incident_without_latency_or_errors_is_not_probed() -> None:
    """Only CPU moved and the ranking is confident: the probes are not run."""
    correlation = _correlation(
        _component("checkout", _signal("cpu", 30.0), _signal("latency", 2.0)),
        hypotheses=[_hypothesis("checkout", 0.8)],
    )
    assert not databases.should_probe(correlation, configured=True, asked=False)


def test_a_lock_holder_is_ranked_above_the_services_that_only_wait() -> None:
    """A blocking chain's root outranks a slow service with no resource signal or change, and
    cites that service's evidence too."""
    correlation = _correlation(
        _component("checkout", _signal("latency", 40.0), _signal("errors", 12.0)),
        hypotheses=[_hypothesis("checkout", 0.85)],
    )
    lifted = databases.explain_waiting(
        correlation, [_database_hypothesis(0.7)], findings=[_pile_up()]
    )
    assert lifted[0].confidence > 0.85
    assert "ev-checkout" in lifted[0].evidence


def test_a_service_with_its_own_cpu_trouble_keeps_its_place() -> None:
    """A service throttled on CPU is not merely waiting: the lock holder is not lifted over it."""
    correlation = _correlation(
        _component("checkout", _signal("latency", 40.0), _signal("throttling", 25.0)),
        hypotheses=[_hypothesis("checkout", 0.85)],
    )
    lifted = databases.explain_waiting(
        correlation, [_database_hypothesis(0.7)], findings=[_pile_up()]
    )
    assert lifted[0].confidence == 0.7


def test_a_rollout_blamed_on_a_service_keeps_its_place() -> None:
    """A hypothesis that blames a change is not a service that only waits."""
    correlation = _correlation(
        _component("checkout", _signal("latency", 40.0)),
        hypotheses=[_hypothesis("checkout", 0.85, change="deployment/checkout@4")],
    )
    lifted = databases.explain_waiting(
        correlation, [_database_hypothesis(0.7)], findings=[_pile_up()]
    )
    assert lifted[0].confidence == 0.7


def test_an_idle_transaction_holding_no_lock_explains_nothing() -> None:
    """A session idle in its transaction with no lock and no connection shortage is named but
    not lifted above the slow service."""
    idle = db_findings.IdleInTransaction(
        database="shop", pid=9, user="app", application="worker", idle_s=60.0, locks_held=0,
        last_query="SELECT 1", evidence=("ev-idle",),
    )  # fmt: skip
    correlation = _correlation(
        _component("cart", _signal("latency", 40.0)), hypotheses=[_hypothesis("cart", 0.6)]
    )
    lifted = databases.explain_waiting(
        correlation, [_database_hypothesis(0.25, "ev-idle")], findings=[idle]
    )
    assert lifted[0].confidence == 0.25
