"""Settings come from DIAGNOSE_* variables only, and bad values name the variable."""

from pathlib import Path

import pytest

from diagnose.domain import errors
from diagnose.settings import Settings, variables


def test_reads_prefixed_variables_and_nested_gather_settings(tmp_path: Path) -> None:
    env = {
        "DIAGNOSE_PROMETHEUS_URL": "http://prom:9090",
        "DIAGNOSE_STATE_DIR": str(tmp_path),
        "DIAGNOSE_GATHER_LOOKBACK_MINUTES": "30",
        "PROMETHEUS_URL": "http://ignored",
    }
    settings = Settings.from_env(env)
    assert settings.prometheus_url == "http://prom:9090"
    assert settings.gather.lookback_minutes == 30
    assert settings.checkpoint_path == tmp_path / "runs.sqlite"


def test_overrides_win_over_the_environment() -> None:
    settings = Settings.from_env({"DIAGNOSE_PROMETHEUS_URL": "http://a"}, prometheus_url="http://b")
    assert settings.prometheus_url == "http://b"


def test_a_bad_value_names_the_variable() -> None:
    with pytest.raises(errors.ConfigurationError, match="DIAGNOSE_PROMETHEUS_TIMEOUT_S"):
        Settings.from_env({"DIAGNOSE_PROMETHEUS_TIMEOUT_S": "soon"})


def test_an_unknown_gather_setting_is_refused() -> None:
    with pytest.raises(errors.ConfigurationError, match="DIAGNOSE_GATHER_LOOKBAK_MINUTES"):
        Settings.from_env({"DIAGNOSE_GATHER_LOOKBAK_MINUTES": "5"})


@pytest.mark.parametrize(
    ("variable", "section", "field", "value", "expected"),
    [
        ("DIAGNOSE_LLM_MODEL", "llm", "model", "any/model", "any/model"),
        ("DIAGNOSE_LLM_MAX_STEPS", "llm", "max_steps", "3", 3),
        ("DIAGNOSE_TEMPO_URL", "traces", "tempo_url", "http://tempo:3200", "http://tempo:3200"),
        ("DIAGNOSE_TRACES_TENANT", "traces", "tenant", "acme", "acme"),
        ("DIAGNOSE_TRACES_MAX_SERVICES", "traces", "max_services", "0", 0),
        ("DIAGNOSE_TRACES_STOP_CHECKS", "traces", "stop_checks", "0", 0),
        ("DIAGNOSE_EXECUTE", "approval", "execute", "true", True),
        ("DIAGNOSE_KUBERNETES_WRITE_CONTEXT", "kubernetes", "write_context", "w", "w"),
        ("DIAGNOSE_JOB_LEASE_S", "queue", "job_lease_s", "30", 30.0),
        (
            "DIAGNOSE_SERVICE_MAP",
            "intake",
            "service_map",
            "Checkout=checkout",
            {"Checkout": "checkout"},
        ),
        ("DIAGNOSE_SLO_TARGETS", "slo", "targets", "cart=0.995", {"cart": 0.995}),
        (
            "DIAGNOSE_DATABASE_URL",
            "storage",
            "database_url",
            "postgresql://db/x",
            "postgresql://db/x",
        ),
    ],
)
def test_each_variable_reaches_its_section_under_its_old_name(
    variable: str, section: str, field: str, value: str, expected: object
) -> None:
    """The environment's names are unchanged; each value lands in its concern's section and
    the flat name reads the same value."""
    settings = Settings.from_env({variable: value})
    assert getattr(getattr(settings, section), field) == expected
    assert getattr(settings, variable.removeprefix("DIAGNOSE_").lower()) == expected
    assert variable in variables()


def test_a_bad_value_in_a_section_names_the_variable_people_set() -> None:
    """DIAGNOSE_VERIFY_WATCH_S, not the section's path, is named in the error."""
    with pytest.raises(errors.ConfigurationError, match=r"DIAGNOSE_VERIFY_WATCH_S:"):
        Settings.from_env({"DIAGNOSE_VERIFY_WATCH_S": "-1"})


def test_a_copy_with_a_flat_name_changes_only_that_field_of_its_section() -> None:
    """model_copy(update={"prometheus_url": …}) updates the prometheus section, nothing else."""
    settings = Settings.from_env({"DIAGNOSE_PROMETHEUS_TIMEOUT_S": "3"})
    copied = settings.model_copy(update={"prometheus_url": "http://prom:9090"})
    assert copied.prometheus.url == "http://prom:9090" and copied.prometheus.timeout_s == 3
    assert settings.prometheus.url is None and copied.llm == settings.llm
