"""Evidence bundles keep every record, raw included, and refuse damaged input clearly."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors import bundle
from diagnose.domain import errors, models

WINDOW = models.Window(
    start=datetime(2026, 1, 1, tzinfo=UTC),
    end=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=1),
)


def _evidence(query: str, raw: object) -> models.Evidence:
    return models.Evidence.make(
        source="prometheus",
        query=query,
        window=WINDOW,
        status=models.Status.OK,
        summary="s",
        raw=raw,
    )


def test_round_trips_evidence_with_raw(tmp_path: Path) -> None:
    store = bundle.FileEvidenceStore(tmp_path)
    ev = _evidence("up", [{"labels": {"job": "a"}, "t": [1.0], "v": [2.5]}])
    store.put("run-1", [ev])
    assert store.load("run-1") == [ev]


def test_non_finite_values_are_stored_as_null(tmp_path: Path) -> None:
    store = bundle.FileEvidenceStore(tmp_path)
    store.put("run-1", [_evidence("up", {"v": [float("nan"), 1.0, float("inf")]})])
    assert store.load("run-1")[0].raw == {"v": [None, 1.0, None]}


def test_the_same_question_twice_keeps_one_record(tmp_path: Path) -> None:
    store = bundle.FileEvidenceStore(tmp_path)
    store.put("run-1", [_evidence("up", 1)])
    store.put("run-1", [_evidence("up", 2)])
    assert [e.raw for e in store.load("run-1")] == [2]


def test_a_damaged_line_names_file_and_line(tmp_path: Path) -> None:
    store = bundle.FileEvidenceStore(tmp_path)
    store.put("run-1", [_evidence("up", 1)])
    with (tmp_path / "run-1" / bundle.EVIDENCE).open("a") as handle:
        handle.write(json.dumps({"id": "x"}) + "\n")
    with pytest.raises(errors.ConfigurationError, match=r"evidence.jsonl:2"):
        store.load("run-1")


def test_a_folder_without_manifest_is_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigurationError, match="not an evidence bundle"):
        bundle.read_manifest(tmp_path)


def test_run_ids_cannot_escape_the_store(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a usable run id"):
        bundle.FileEvidenceStore(tmp_path).put("../etc", [])
