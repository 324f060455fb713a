"""Copying a scenario into the lab's folder, every timestamp shifted by one offset.

Metrics are shifted line by line and Kubernetes YAML document by document, so a large
recording is never held twice in memory. SQL files are copied as they are: a scenario's SQL
should use ``now()`` rather than absolute times.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from diagnose import scenario as scenario_format
from diagnose.domain import errors
from diagnose.lab import kubeapi, shifting

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def stage(
    scenario: scenario_format.Scenario, *, offset: timedelta, root: Path
) -> scenario_format.Scenario:
    """Write the shifted copy of ``scenario`` under ``root``; returns it, loaded from there."""
    root.mkdir(parents=True, exist_ok=True)
    _shift_yaml_file(scenario.root / scenario_format.SCENARIO_FILE, root, offset=offset)
    if scenario.metrics_file is not None:
        target = root / "metrics.om"
        with scenario.metrics_file.open(encoding="utf-8") as src, target.open("w") as dst:
            dst.writelines(shifting.shift_openmetrics(src, offset=offset))
    for path in scenario.kubernetes_files:
        _shift_yaml_file(path, root / "kubernetes", offset=offset)
    for path in scenario.traces_files:
        _shift_traces_file(path, root / "traces", offset=offset)
    if scenario.postgres_dir is not None:
        shutil.copytree(scenario.postgres_dir, root / "postgres", dirs_exist_ok=True)
    if scenario.logs_dir is not None:
        _shift_logs(scenario.logs_dir, root / "logs", offset=offset)
    for spec, path in scenario.repository_bundles():  # commits keep their own dates
        target = root / spec.bundle_path
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    return scenario_format.Scenario.load(root)


def load_kubernetes_objects(scenario: scenario_format.Scenario) -> list[Mapping[str, object]]:
    """Every Kubernetes object of the scenario, as the API would send it (times as strings)."""
    objects: list[Mapping[str, object]] = []
    for path in scenario.kubernetes_files:
        documents = (shifting.documents_as_api_data(doc) for doc in _read_documents(path))
        objects.extend(kubeapi.flatten(documents))
    return objects


def _read_documents(path: Path) -> Iterator[Any]:
    try:
        with path.open(encoding="utf-8") as stream:
            yield from yaml.load_all(stream, Loader=_Loader)  # _Loader is a safe loader
    except yaml.YAMLError as exc:
        raise errors.ScenarioError(f"{path}: not valid YAML: {exc}") from exc


def _shift_yaml_file(path: Path, folder: Path, *, offset: timedelta) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    shifted = (shifting.shift_document(doc, offset=offset) for doc in _read_documents(path))
    with (folder / path.name).open("w", encoding="utf-8") as out:
        yaml.dump_all(shifted, out, Dumper=_Dumper, sort_keys=False, allow_unicode=True)


def _shift_logs(folder: Path, target: Path, *, offset: timedelta) -> None:
    """Each ``<pod>.log`` with the timestamp that starts each line shifted (docs/logs.md)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.glob("*.log")):
        with (
            path.open(encoding="utf-8", errors="replace") as src,
            (target / path.name).open("w", encoding="utf-8") as dst,
        ):
            for line in src:
                stamp, space, rest = line.partition(" ")
                moved = shifting.shift_timestamp(stamp, offset=offset) if space else None
                dst.write(f"{moved} {rest}" if moved else line)


def _shift_traces_file(path: Path, folder: Path, *, offset: timedelta) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    text = path.read_text(encoding="utf-8")
    try:
        documents = [json.loads(text)]
        lines = False
    except json.JSONDecodeError:
        documents = [json.loads(line) for line in text.splitlines() if line.strip()]
        lines = True
    shifted = [shifting.shift_otlp(doc, offset=offset) for doc in documents]
    with (folder / path.name).open("w", encoding="utf-8") as out:
        if lines:
            out.writelines(json.dumps(doc) + "\n" for doc in shifted)
        else:
            json.dump(shifted[0], out)
