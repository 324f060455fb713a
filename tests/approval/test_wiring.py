"""Execution is off by default, needs write credentials of its own, and the read path never
holds them."""

from __future__ import annotations

from pathlib import Path

import pytest

from diagnose import wiring
from diagnose.domain import errors
from diagnose.settings import Settings

READ = "http://127.0.0.1:1"
WRITE = "http://127.0.0.1:2"


def _settings(tmp_path: Path, **values: object) -> Settings:
    return Settings.model_validate({"state_dir": tmp_path, "kubernetes_url": READ} | values)


def test_execution_is_off_by_default_and_dry_runs_use_the_read_credentials(
    tmp_path: Path,
) -> None:
    context = wiring.make_context(_settings(tmp_path), progress=lambda _m: None)
    assert context.execution.enabled is False and context.executor is None
    assert context.dry_runner is not None and context.dry_runner.dry_run_only  # type: ignore[attr-defined]


def test_execution_without_write_credentials_stops_with_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigurationError, match="DIAGNOSE_KUBERNETES_WRITE_CONTEXT"):
        wiring.make_context(_settings(tmp_path, execute=True), progress=lambda _m: None)


def test_writes_go_through_the_write_credentials_and_reads_through_the_read_ones(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, execute=True, kubernetes_write_url=WRITE)
    context = wiring.make_context(settings, progress=lambda _m: None)
    assert context.cluster is not None and context.cluster.host == READ  # type: ignore[attr-defined]
    assert context.executor is not None and context.executor.host == WRITE  # type: ignore[attr-defined]
    assert context.dry_runner is not None and context.dry_runner.host == WRITE  # type: ignore[attr-defined]
    assert not hasattr(context.cluster, "patch")


def test_the_setting_is_read_from_the_environment(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"DIAGNOSE_EXECUTE": "true", "DIAGNOSE_VERIFY_WATCH_S": "60"}, state_dir=tmp_path
    )
    assert settings.execute is True and settings.verify_watch_s == 60
    with pytest.raises(errors.ConfigurationError, match="DIAGNOSE_VERIFY_WATCH_S"):
        Settings.from_env({"DIAGNOSE_VERIFY_WATCH_S": "-1"})
