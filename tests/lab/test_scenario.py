"""Loading scenario.yaml: the public format, read forgivingly, with errors that name the field."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from diagnose import scenario as scenario_format
from diagnose.domain import errors
from tests.lab import conftest


def test_a_scenario_loads_with_its_trigger_and_data_files(small_scenario: Path) -> None:
    loaded = scenario_format.Scenario.load(small_scenario)
    trigger = loaded.trigger_record()
    assert (trigger.service, trigger.namespace) == ("checkout", "shop")
    assert trigger.at == datetime(2026, 1, 9, 8, 50, tzinfo=UTC)
    assert trigger.labels == {"severity": "critical"}
    assert loaded.metrics_file == small_scenario / "metrics.om"
    assert loaded.kubernetes_files == [small_scenario / "kubernetes" / "shop.yaml"]
    assert loaded.postgres_dir == small_scenario / "postgres"
    assert loaded.database == "shop"
    assert loaded.truth is not None and loaded.truth.fix == "cancel_query"


def test_unknown_fields_are_ignored_and_optional_parts_may_be_absent(tmp_path: Path) -> None:
    folder = conftest.write_scenario(tmp_path / "s", postgres=False, kubernetes=False)
    text = (folder / "scenario.yaml").read_text().replace("postgres: {database: shop}\n", "")
    (folder / "scenario.yaml").write_text(text.split("truth:")[0])
    loaded = scenario_format.Scenario.load(folder / "scenario.yaml")
    assert (loaded.truth, loaded.postgres, loaded.postgres_dir) == (None, None, None)
    assert loaded.kubernetes_files == [] and loaded.traces_files == []


def test_a_malformed_scenario_names_the_file_and_the_field(tmp_path: Path) -> None:
    folder = conftest.write_scenario(tmp_path / "s", postgres=False, kubernetes=False)
    text = (folder / "scenario.yaml").read_text()
    (folder / "scenario.yaml").write_text(text.replace("at: 2026-01-09T08:50:00Z", "at: soon"))
    with pytest.raises(errors.ScenarioError, match=r"scenario\.yaml.*'trigger\.at'"):
        scenario_format.Scenario.load(folder)


def test_a_missing_field_is_named(tmp_path: Path) -> None:
    (tmp_path / "scenario.yaml").write_text(
        "format: 1\nname: x\ntime: {start: 2026-01-01T00:00:00Z}\n"
    )
    with pytest.raises(errors.ScenarioError) as caught:
        scenario_format.Scenario.load(tmp_path)
    assert "'time.end'" in str(caught.value) and "'trigger'" in str(caught.value)


def test_an_unknown_format_version_is_refused(tmp_path: Path) -> None:
    (tmp_path / "scenario.yaml").write_text("format: 2\nname: x\n")
    with pytest.raises(errors.ScenarioError, match="'format'"):
        scenario_format.Scenario.load(tmp_path)


def test_a_folder_without_scenario_yaml_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(errors.ScenarioError, match="no such file"):
        scenario_format.Scenario.load(tmp_path)
