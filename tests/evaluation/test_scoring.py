"""Scoring of `diagnose eval` on hand-built cases: AC@k and Avg@5, the latest-change baseline,
the culprit change, fault types and datasets, and the confidence-order check."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from diagnose import evaluation
from diagnose.analysis import ranking
from diagnose.domain import models

ALERT = datetime(2026, 1, 10, 10, 7, tzinfo=UTC)


def _truth(
    kind: str | None,
    component: str | None,
    *,
    change: str | None = None,
    also: tuple[tuple[str, str], ...] = (),
) -> evaluation.Truth:
    return evaluation.Truth(kind=kind, component=component, change=change, fix=None, also=also)


def _hypothesis(
    kind: str, component: str, confidence: float, change: str | None = None
) -> dict[str, Any]:
    return {"kind": kind, "component": component, "confidence": confidence, "change": change}


def _change(kind: str, ref: str, component: str, minutes_before_alert: float) -> dict[str, Any]:
    at = ALERT - timedelta(minutes=minutes_before_alert)
    return {"kind": kind, "ref": ref, "component": component, "at": models.format_time(at)}


def _case(
    truth: evaluation.Truth,
    hypotheses: Sequence[dict[str, Any]] = (),
    *,
    changes: Sequence[dict[str, Any]] = (),
    name: str = "case",
    dataset: str = "set",
) -> evaluation.Case:
    result = {"hypotheses": list(hypotheses), "changes": list(changes), "abstained": False}
    return evaluation.Case(name=name, truth=truth, result=result, dataset=dataset, trigger_at=ALERT)


def test_ac_at_k_and_avg5_count_the_rank_of_the_true_cause() -> None:
    """Ranks 1, 2, absent and 4 give AC@1 1/4, AC@3 2/4 and Avg@5 the mean of AC@1..AC@5."""
    truth = _truth("resource", "cart")
    right = _hypothesis("resource", "cart", 0.2)
    other = [_hypothesis("resource", f"svc{i}", 0.9 - i / 10) for i in range(4)]
    cases = [
        _case(truth, [right]),
        _case(truth, [*other[:1], right]),
        _case(truth, other),
        _case(truth, [*other[:3], right]),
    ]
    agent = evaluation.summarise(cases)["agent"]
    assert agent == {"AC@1": 0.25, "AC@3": 0.5, "Avg@5": pytest.approx((1 + 2 + 2 + 3 + 3) / 20)}


def test_an_also_accepted_kind_on_the_same_component_counts_as_right() -> None:
    """A code fault named as a resource cause on the right service is right when allowed."""
    truth = _truth("deploy", "ts-food", also=(("resource", "ts-food"),))
    assert _case(truth, [_hypothesis("resource", "ts-food", 0.6)]).rank() == 1
    assert _case(truth, [_hypothesis("traffic", "ts-food", 0.6)]).rank() is None


def test_the_latest_change_baseline_names_the_last_change_made_before_the_alert() -> None:
    """Latest first, one entry per component; changes after the alert, restarts and node
    trouble are left out; the kind comes from the change type."""
    changes = [
        _change("config", "configmap/search-config", "search", 30),
        _change("rollout", "deployment/pets@7", "pets", 5),
        _change("rollout", "deployment/search@3", "search", 60),  # older than its config edit
        _change("restart", "pod/cart-1", "cart", 1),
        _change("node", "node/n1", "node/n1", 2),
        _change("scale", "deployment/web", "web", -1),  # after the alert
    ]
    case = _case(_truth("config", "search"), changes=changes)
    assert [(b["kind"], b["component"], b["change"]) for b in case.latest_changes()] == [
        ("deploy", "pets", "deployment/pets@7"),
        ("config", "search", "configmap/search-config"),
    ]
    assert case.latest_change_rank() == 2


def test_limits_and_scale_changes_are_resource_causes_as_the_ranking_reads_them() -> None:
    """The baseline's change-to-cause table agrees with the one the ranking uses."""
    for change_kind, cause in evaluation.CAUSE_OF_CHANGE.items():
        assert ranking._KIND_OF_CHANGE[models.ChangeKind(change_kind)].value == cause
    case = _case(
        _truth("resource", "web"), changes=[_change("limits", "deployment/web@4", "web", 3)]
    )
    assert case.latest_changes()[0]["kind"] == "resource"


def test_without_a_trigger_time_the_latest_change_baseline_names_nothing() -> None:
    """A case whose lab never stood up has no alert time: no change can be placed before it."""
    case = _case(
        _truth("deploy", "pets"), changes=[_change("rollout", "deployment/pets@7", "pets", 5)]
    )
    case.trigger_at = None
    assert case.latest_changes() == [] and case.latest_change_rank() is None


def test_the_culprit_change_is_scored_for_the_agent_and_for_the_latest_change() -> None:
    """Among cases whose truth names a change: the share whose top hypothesis names it, and the
    share whose latest change before the alert is it."""
    culprit = "configmap/search-config"
    changes = [
        _change("config", culprit, "search", 20),
        _change("rollout", "deployment/pets@7", "pets", 4),  # a decoy, later
    ]
    truth = _truth("config", "search", change=culprit)
    named = _case(truth, [_hypothesis("config", "search", 0.7, culprit)], changes=changes)
    missed = _case(
        truth, [_hypothesis("deploy", "pets", 0.7, "deployment/pets@7")], changes=changes
    )
    no_change = _case(_truth("resource", "cart"), [_hypothesis("resource", "cart", 0.5)])
    summary = evaluation.summarise([named, missed, no_change])
    assert summary["culprit_change"] == {"cases": 2, "agent": 0.5, "baseline_latest_change": 0.0}
    assert summary["baseline_latest_change"]["AC@1"] == 0.0
    assert summary["baseline_latest_change"]["AC@3"] == pytest.approx(2 / 3)


def test_results_are_grouped_per_dataset_and_per_fault_type() -> None:
    """Each dataset has its own block and, inside it, one per fault type (kind and the other
    kinds allowed on the same component)."""
    code = _truth("deploy", "ts-food", also=(("resource", "ts-food"), ("config", "ts-food")))
    cpu = _truth("resource", "cart")
    cases = [
        _case(code, [_hypothesis("resource", "ts-food", 0.5)], dataset="nezha"),
        _case(cpu, [_hypothesis("resource", "web", 0.5)], dataset="nezha"),
        _case(cpu, [_hypothesis("resource", "cart", 0.5)], dataset="sockshop"),
    ]
    summary = evaluation.summarise(cases)
    nezha = summary["by_dataset"]["nezha"]
    assert nezha["scenarios"] == 2 and nezha["agent"]["AC@1"] == 0.5
    assert set(nezha["by_fault_type"]) == {"deploy (or config/resource)", "resource"}
    assert summary["by_dataset"]["sockshop"]["agent"]["AC@1"] == 1.0
    assert summary["by_fault_type"]["resource"]["scenarios"] == 2
    rows = evaluation.breakdown(summary).splitlines()[1:6]
    labels = ["nezha", "  deploy (or config/resource)", "  resource", "sockshop", "  resource"]
    assert [row[: len(label) + 1] for row, label in zip(rows, labels, strict=True)] == [
        label + " " for label in labels
    ]


def test_a_run_whose_confidences_rise_down_the_ranking_is_flagged() -> None:
    """Rank 3 above rank 2 is reported by rank, in the case's JSON and in the summary."""
    rising = _case(
        _truth("resource", "a"),
        [
            _hypothesis("resource", "a", 0.5),
            _hypothesis("resource", "b", 0.3),
            _hypothesis("resource", "c", 0.4),
        ],
        name="rising",
    )
    level = _case(
        _truth("resource", "a"),
        [_hypothesis("resource", "a", 0.5), _hypothesis("resource", "b", 0.5)],
        name="level",
    )
    assert rising.confidence_breaks() == [3] and level.confidence_breaks() == []
    assert rising.to_dict()["confidence_order_ok"] is False
    assert evaluation.summarise([rising, level])["confidence_out_of_order"] == ["rising"]
    assert "ranks 3" in evaluation.order_warning(rising)


def test_changes_made_at_the_same_instant_are_a_tie_counted_at_its_worst_rank() -> None:
    """Ten services deployed together: the latest change cannot single one out."""
    changes = [
        _change("rollout", f"deployment/{name}@1", name, 60 * 24) for name in ("ad", "cart", "pay")
    ]
    case = _case(_truth("deploy", "ad", change="deployment/ad@1"), changes=changes)
    assert case.latest_changes()[0]["component"] == "ad"
    assert case.latest_change_rank() == 3
    assert not case.latest_change_names_culprit()


def test_a_dataset_recording_several_applications_is_also_scored_per_namespace() -> None:
    """Nezha holds Online Boutique and Train Ticket: each gets its row; a dataset with one
    application gets none."""
    truth = _truth("resource", "cart")
    cases = [
        _case(truth, [_hypothesis("resource", "cart", 0.5)], dataset="nezha"),
        _case(truth, [_hypothesis("resource", "web", 0.5)], dataset="nezha"),
        _case(truth, [_hypothesis("resource", "cart", 0.5)], dataset="sockshop"),
    ]
    cases[0].namespace, cases[1].namespace = "online-boutique", "train-ticket"
    cases[2].namespace = "sock-shop"
    by_dataset = evaluation.summarise(cases)["by_dataset"]
    per_app = by_dataset["nezha"]["by_namespace"]
    assert {ns: b["agent"]["AC@1"] for ns, b in per_app.items()} == {
        "online-boutique": 1.0,
        "train-ticket": 0.0,
    }
    assert by_dataset["sockshop"]["by_namespace"] == {}
    rows = evaluation.breakdown(evaluation.summarise(cases)).splitlines()
    assert [r.split()[1] for r in rows if r.startswith("  ns ")] == [
        "online-boutique",
        "train-ticket",
    ]
