"""`diagnose eval` on an archive, through the real CLI and the lab: the archive is extracted into
the cache once, its scenarios are scored as one dataset, per fault type, and a second call
reuses the extracted folder."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path

import pytest

from diagnose import evaluation
from tests.e2e.test_cli_lab import SCENARIOS, _diagnose, _env

pytestmark = [pytest.mark.slow, pytest.mark.lab]

PAIR = ("bad-deploy-5xx", "config-latency")


def test_an_archive_is_scored_as_one_dataset_and_extracted_once(tmp_path: Path) -> None:
    """The table has a row for the archive's dataset and one per fault type; the second run
    finds the marker and extracts nothing."""
    archive = tmp_path / "tiny.tar.xz"
    with tarfile.open(archive, "w:xz") as tar:
        for name in PAIR:
            tar.add(SCENARIOS / name, arcname=f"tiny/{name}")
    env = _env(tmp_path / "state", XDG_CACHE_HOME=str(tmp_path / "cache"))

    first = _diagnose("eval", str(archive), env=env, timeout=600)
    assert first.returncode == 0, first.stderr
    assert "extracting tiny.tar.xz" in first.stderr
    for index, name in enumerate(PAIR, start=1):
        assert f"eval [{index}/2] tiny/{name}: " in first.stderr
    rows = _table(first.stdout)
    assert rows["tiny"][0] == "2" and rows["all"][0] == "2"  # n, the first column
    assert rows["  deploy"][0] == "1" and rows["  config"][0] == "1"
    marker = next((tmp_path / "cache").glob(f"diagnose/datasets/tiny-*/{evaluation.MARKER}"))
    extracted_at = marker.stat().st_mtime_ns

    second = _diagnose("eval", str(archive), "--only", "config-*", "--json", env=env, timeout=600)
    assert second.returncode == 0, second.stderr
    assert "extracted before" in second.stderr and "extracting" not in second.stderr
    assert marker.stat().st_mtime_ns == extracted_at
    summary = json.loads(second.stdout)["summary"]
    assert summary["by_dataset"]["tiny"]["scenarios"] == 1
    assert list(summary["by_dataset"]["tiny"]["by_fault_type"]) == ["config"]


def _table(stdout: str) -> dict[str, list[str]]:
    """The breakdown's rows: first column (indented for fault types) → the other cells."""
    rows = {}
    for line in stdout.splitlines():
        match = re.match(r"^( {0,2}\S(?:.*?\S)?)\s{2,}(\d.*)$", line)
        if match:
            rows[match[1]] = match[2].split()
    return rows
