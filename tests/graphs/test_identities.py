"""The two-person rule counts people: a name however spelled, an OS account or a Kubernetes
user seen on the first approval cannot give the second."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from diagnose.domain import identities
from graphs import approval
from tests.graphs.test_approval import HIGH_RISK, _answer

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _first(**accounts: str) -> Any:
    """The high-risk state after alice's approval (given from ``accounts``)."""
    decision, problems = approval.validate(_answer(**accounts), state=HIGH_RISK, now=NOW)
    assert decision is not None, problems
    return HIGH_RISK | {"approvals": [decision.to_dict()]}


@pytest.mark.parametrize("spelling", ["alice ", " Alice", "ALICE", "ａｌｉｃｅ", "al\u200bice"])
def test_another_spelling_of_the_same_name_is_not_a_second_approver(spelling: str) -> None:
    """Trailing blanks, case, full-width letters and invisible characters name the same person."""
    decision, problems = approval.validate(_answer(approver=spelling), state=_first(), now=NOW)
    assert decision is None
    assert "different person" in problems[0] and "'alice'" in problems[0]


def test_the_same_os_account_cannot_approve_twice_under_another_name() -> None:
    """bob typed at alice's OS account is refused, and the message names the account."""
    state = _first(os_user="alice@laptop", via="cli")
    answer = _answer(approver="bob", os_user="alice@laptop", via="cli")
    decision, problems = approval.validate(answer, state=state, now=NOW)
    assert decision is None and "OS account 'alice@laptop'" in problems[0]


def test_the_same_kubernetes_user_cannot_approve_twice_from_another_os_account() -> None:
    """Two machines, one kubeconfig user: still one person for the two-person rule."""
    state = _first(os_user="alice@laptop", kube_user="oncall-admin", via="kubectl")
    answer = _answer(approver="bob", os_user="bob@desktop", kube_user="oncall-admin", via="kubectl")
    decision, problems = approval.validate(answer, state=state, now=NOW)
    assert decision is None and "Kubernetes user 'oncall-admin'" in problems[0]


def test_another_person_from_another_account_completes_the_two_person_rule() -> None:
    """A different name from a different OS account is the second approver the fix needs."""
    state = _first(os_user="alice@laptop", via="cli")
    answer = _answer(approver="bob", os_user="bob@desktop", via="cli")
    decision, problems = approval.validate(answer, state=state, now=NOW)
    assert problems == [] and decision is not None
    assert approval.second_approver_needed(decision, state=state) == ""
    assert decision.to_dict()["os_user"] == "bob@desktop"


def test_act_refuses_two_approvals_that_share_an_account() -> None:
    """A state edited to hold two names from one OS account is not two people at ``act``."""
    state = _first(os_user="alice@laptop")
    second = dict(state["approvals"][0]) | {"approver": "mallory"}
    fix = dict(state["fixes"][0])
    forged = state | {"approvals": [*state["approvals"], second], "decision": second}
    forged["fixes"] = [fix | {"digest": approval.digest(fix, run_id="run-1")}]
    refused = approval.refusals(forged, audit_entries=None)
    assert refused and "not two different people" in refused[0]


def test_names_normalise_to_one_spelling() -> None:
    """NFKC, case-folded, trimmed, inner blanks collapsed."""
    assert {identities.normalise(n) for n in ("Ａlice  Smith ", "alice smith", "ALICE\tSMITH")} == {
        "alice smith"
    }
