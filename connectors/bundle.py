"""Evidence bundles on the local filesystem: the raw side of every run's evidence.

A bundle is a folder::

    <bundle>/manifest.json     what was diagnosed: trigger, window, the time of the run
    <bundle>/evidence.jsonl    one evidence record per line, raw included

A bundle alone is enough to re-run the analysis offline (``diagnose replay BUNDLE``), audit a
diagnosis, or turn it into a test.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from diagnose.domain import errors, models

MANIFEST = "manifest.json"
EVIDENCE = "evidence.jsonl"


class FileEvidenceStore:
    """An :class:`~diagnose.domain.ports.EvidenceStore` keeping one folder per run."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folder(self, run_id: str) -> Path:
        if not run_id or "/" in run_id or run_id.startswith("."):
            raise ValueError(f"not a usable run id: {run_id!r}")
        return self.root / run_id

    def put(self, run_id: str, evidence: Sequence[models.Evidence]) -> None:
        folder = self.folder(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        lines = "".join(_encode(ev) + "\n" for ev in evidence)
        with (folder / EVIDENCE).open("a", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())

    def load(self, run_id: str) -> list[models.Evidence]:
        return read_evidence(self.folder(run_id))

    def write_manifest(self, run_id: str, manifest: Mapping[str, Any]) -> None:
        folder = self.folder(run_id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _encode(evidence: models.Evidence) -> str:
    try:
        return json.dumps(evidence.to_dict(), allow_nan=False)
    except ValueError:  # a NaN or infinity somewhere in raw: JSON has no word for it
        return json.dumps(_finite(evidence.to_dict()), allow_nan=False)


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def read_evidence(folder: Path) -> list[models.Evidence]:
    """Every evidence record of a bundle folder, the last copy of each id winning."""
    path = folder / EVIDENCE
    if not path.is_file():
        return []
    records: dict[str, models.Evidence] = {}
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                evidence = models.Evidence.from_dict(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                raise errors.ConfigurationError(
                    f"{path}:{number}: not an evidence record ({exc}); the bundle is damaged"
                ) from exc
            records[evidence.id] = evidence
    return list(records.values())


def read_manifest(folder: Path) -> dict[str, object]:
    """The manifest of a bundle folder, with a clear error when it is not a bundle."""
    path = folder / MANIFEST
    if not path.is_file():
        raise errors.ConfigurationError(
            f"{folder} is not an evidence bundle: {MANIFEST} is missing "
            "(bundles are written under the state directory's bundles/RUN_ID)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise errors.ConfigurationError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise errors.ConfigurationError(f"{path} must hold a JSON object")
    return data
