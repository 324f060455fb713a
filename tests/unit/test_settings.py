"""Settings come from DIAGNOSE_* variables only, and bad values name the variable."""

from pathlib import Path

import pytest

from diagnose.domain import errors
from diagnose.settings import Settings


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
