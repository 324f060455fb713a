"""A leading hypothesis that carries its commit range (docs/changes.md) tells the people on call
which commit to revert, or which migration to follow up with: in the PagerDuty note and in the
postmortem draft."""

from __future__ import annotations

import dataclasses
from typing import Any

from diagnose import postmortem
from diagnose.postmortem import drafting, markdown, wording
from diagnose.server import jobs
from tests.postmortem.conftest import record_of

SLOW_QUERY = {
    "repository": "https://git.example/shop/orders",
    "from": "1111111aaaa",
    "to": "2222222bbbb",
    "commits": [{"sha": "3f9c2ab0000", "subject": "search orders by customer", "files": []}],
    "suspects": [
        {
            "sha": "3f9c2ab0000",
            "file": "app/orders/search.py",
            "why": "holds the slow statement SELECT … FROM orders WHERE customer_id = $1",
        }
    ],
}
MIGRATION = {
    **SLOW_QUERY,
    "suspects": [
        {
            "sha": "9e8d7c6000",
            "file": "migrations/versions/0042_drop_customer_index.py",
            "why": "drops index orders_customer_id_idx on orders, which the probes saw scanned",
        }
    ],
}


def test_a_code_file_is_reverted_and_a_migration_followed_up_forward() -> None:
    """A suspect code file's commit is to be reverted; a migration already ran, so it is
    followed up with a new one; a range with no suspect says nothing."""
    revert = wording.code_follow_up(SLOW_QUERY)
    assert revert is not None and revert.startswith("Revert commit 3f9c2ab (app/orders/search.py")
    forward = wording.code_follow_up(MIGRATION)
    assert forward is not None and "Follow up the migration migrations/versions/0042" in forward
    assert "rolling the workload back does not undo it" in forward
    assert wording.code_follow_up({**SLOW_QUERY, "suspects": []}) is None
    assert wording.code_follow_up(None) is None


def _with_code(code: dict[str, Any]) -> postmortem.RunRecord:
    record = record_of("bad-deploy-5xx")
    state: dict[str, Any] = dict(record.state)
    correlation = dict(state["correlation"])
    top = {**correlation["hypotheses"][0], "code": code}
    correlation["hypotheses"] = [top, *correlation["hypotheses"][1:]]
    state["correlation"] = correlation
    return dataclasses.replace(record, state=state)


def test_the_pagerduty_note_names_the_commit_to_revert() -> None:
    """The note's leading cause is followed by the commit to revert."""
    state: Any = _with_code(SLOW_QUERY).state
    lines = jobs.note_text(state, run_id="run-c", public_url=None)
    code = [line for line in lines.splitlines() if line.startswith("Code: ")]
    assert code == [f"Code: {wording.code_follow_up(SLOW_QUERY)}"]


def test_the_postmortem_names_the_migration_in_its_root_cause_and_action_items() -> None:
    """The draft's root cause carries the migration, and following it up is an action item."""
    text = markdown.markdown(drafting.draft(_with_code(MIGRATION)), images={})
    root = text.split("## Root cause", 1)[1].split("## Contributing factors", 1)[0]
    actions = text.split("## Action items", 1)[1].split("## Plots", 1)[0]
    assert "migrations/versions/0042_drop_customer_index.py" in root
    assert "Follow up the migration migrations/versions/0042_drop_customer_index.py" in actions


def test_a_draft_without_a_commit_range_has_no_code_line() -> None:
    """Runs without a repository read draft as before."""
    text = markdown.markdown(drafting.draft(record_of("bad-deploy-5xx")), images={})
    assert "- code:" not in text and "Revert commit" not in text
