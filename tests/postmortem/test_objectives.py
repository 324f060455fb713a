"""The SLO settings postmortem drafts measure error budgets against."""

from __future__ import annotations

import pytest

from diagnose import postmortem
from diagnose.domain import errors
from diagnose.settings import Settings


def _record(service: str) -> postmortem.RunRecord:
    return postmortem.RunRecord(state={"trigger": {"service": service}}, evidence=[])


def test_a_service_s_own_objective_and_the_default_are_both_read() -> None:
    settings = Settings.from_env(
        {
            "DIAGNOSE_SLO_TARGET": "0.99",
            "DIAGNOSE_SLO_TARGETS": "checkout=0.999, cart=0.995",
            "DIAGNOSE_SLO_WINDOW_DAYS": "28",
        }
    )
    found = postmortem.objectives(settings, _record("cart"))
    assert found.service == postmortem.Slo(0.995, 28.0, "DIAGNOSE_SLO_TARGETS cart")
    assert found.default == postmortem.Slo(0.99, 28.0, "DIAGNOSE_SLO_TARGET")
    other = postmortem.objectives(settings, _record("search"))
    assert other.service is None and other.default == found.default


def test_without_settings_no_objective_is_assumed() -> None:
    found = postmortem.objectives(Settings.from_env({}), _record("cart"))
    assert found == postmortem.Objectives()


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DIAGNOSE_SLO_TARGET": "99.9"}, "DIAGNOSE_SLO_TARGET: .*0.999 for 99.9%"),
        ({"DIAGNOSE_SLO_TARGET": "1"}, "DIAGNOSE_SLO_TARGET: .*strictly between 0 and 1, not 1"),
        ({"DIAGNOSE_SLO_TARGET": "0"}, "DIAGNOSE_SLO_TARGET: .*strictly between 0 and 1"),
        ({"DIAGNOSE_SLO_TARGETS": "cart=99.5"}, "DIAGNOSE_SLO_TARGETS: .*for cart.*0.995"),
        ({"DIAGNOSE_SLO_TARGETS": "cart"}, "DIAGNOSE_SLO_TARGETS: .*expected key=value pairs"),
        ({"DIAGNOSE_SLO_TARGETS": "cart=high"}, "DIAGNOSE_SLO_TARGETS: .*for cart is not a number"),
        ({"DIAGNOSE_SLO_WINDOW_DAYS": "0"}, "DIAGNOSE_SLO_WINDOW_DAYS: .*greater than 0"),
    ],
)
def test_a_bad_objective_is_refused_naming_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(errors.ConfigurationError, match=message):
        Settings.from_env(env)
