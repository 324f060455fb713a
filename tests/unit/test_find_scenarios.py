"""`diagnose eval` finds scenarios through symbolic links, once each, and a link that loops
back up the tree ends the walk instead of recursing forever."""

from __future__ import annotations

from pathlib import Path

import pytest

from diagnose import evaluation
from diagnose.domain import errors


def _scenario(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "scenario.yaml").write_text("name: x\n")
    return folder


def test_linked_scenarios_are_found_and_a_loop_is_walked_once(tmp_path: Path) -> None:
    kept = _scenario(tmp_path / "elsewhere" / "a")
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "a").symlink_to(kept, target_is_directory=True)
    (suite / "again").symlink_to(kept, target_is_directory=True)  # the same one twice
    (suite / "loop").symlink_to(suite, target_is_directory=True)  # back up the tree
    _scenario(suite / "b")
    found = evaluation.find_scenarios(suite)
    assert [p.name for p in found] == ["a", "b"]


def test_a_folder_without_scenarios_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(errors.ScenarioError, match=r"no scenario\.yaml"):
        evaluation.find_scenarios(tmp_path)
