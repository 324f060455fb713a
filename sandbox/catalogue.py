"""The probe catalogue: data in ``playbooks/probes.yaml``, read and checked here.

A probe is a name, a description, one SQL statement with psycopg ``%(name)s`` placeholders and
their defaults, and an optional server-version range. The catalogue also says which probes'
statements (from ``pg_stat_statements``) are worth a generic plan. Nothing here widens the gate:
every probe still passes :func:`sandbox.gating.check` when it runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from diagnose.domain import database, errors
from diagnose.domain.models import JSON, Evidence, Status
from sandbox import gating

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "playbooks" / "probes.yaml"

_MONITORING = ("pg_", "information_schema.", "pg_catalog.")
"""Relations whose readers are monitoring (our own probes among them), not the workload."""


@dataclass(frozen=True)
class Entry:
    """A probe and the server versions (``server_version_num``) it runs on."""

    probe: database.Probe
    min_server_version: int = 0
    max_server_version: int | None = None

    def runs_on(self, server_version: int) -> bool:
        top = self.max_server_version
        return server_version >= self.min_server_version and (top is None or server_version <= top)


@dataclass(frozen=True)
class Catalogue:
    entries: tuple[Entry, ...]
    explain_from: tuple[str, ...] = ()
    explain_max: int = 3

    def for_server(self, server_version: int) -> list[database.Probe]:
        return [entry.probe for entry in self.entries if entry.runs_on(server_version)]

    def probe(self, name: str) -> database.Probe:
        for entry in self.entries:
            if entry.probe.name == name:
                return entry.probe
        raise KeyError(name)


def load(
    path: Path | None = None, *, overrides: Mapping[str, Mapping[str, JSON]] | None = None
) -> Catalogue:
    """Read a catalogue file; ``overrides`` replace parameter defaults per probe name."""
    source = path or DEFAULT_PATH
    try:
        data = yaml.safe_load(source.read_text(encoding="utf-8"))
        catalogue = _catalogue_from(data, overrides=overrides or {})
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        raise errors.ConfigurationError(f"{source}: not a usable probe catalogue: {exc}") from exc
    return catalogue


def suspect_statements(evidence: Iterable[Evidence], *, limit: int) -> list[str]:
    """Normalised SELECTs worth a generic plan, from ``pg_stat_statements`` probe evidence:
    slowest first, without duplicates, monitoring queries, or anything the gate refuses."""
    chosen: list[str] = []
    for item in evidence:
        for statement in _statements_of(item):
            if statement not in chosen and _worth_explaining(statement):
                chosen.append(statement)
    return chosen[:limit]


def _statements_of(item: Evidence) -> list[str]:
    raw = item.raw
    if item.status is not Status.OK or not isinstance(raw, dict) or "query" not in raw["columns"]:
        return []
    column = raw["columns"].index("query")
    return [str(row[column]) for row in raw["rows"] if row[column]]


def _worth_explaining(statement: str) -> bool:
    """A SELECT the gate allows, with parameters (a filter), reading application tables only."""
    try:
        if gating.check(statement).kind is not database.StatementKind.SELECT:
            return False
        read = gating.relations(statement)
    except database.StatementRefused:
        return False
    ours = [name for name in read if not name.lower().startswith(_MONITORING)]
    return "$" in statement and bool(read) and len(ours) == len(read)


def _catalogue_from(data: Any, *, overrides: Mapping[str, Mapping[str, JSON]]) -> Catalogue:
    if not isinstance(data, dict) or data.get("version") != 1:
        raise ValueError("expected a mapping with 'version: 1'")
    entries = tuple(_entry_from(entry, overrides=overrides) for entry in data["probes"])
    names = [entry.probe.name for entry in entries]
    if len(set(names)) != len(names):
        raise ValueError("probe names must be unique")
    explain = data.get("explain") or {}
    sources = explain.get("from") or []
    sources = [sources] if isinstance(sources, str) else list(sources)
    unknown = set(sources) - set(names)
    if unknown:
        raise ValueError(f"explain.from names unknown probes: {sorted(unknown)}")
    return Catalogue(entries, tuple(sources), int(explain.get("max_statements", 3)))


def _entry_from(entry: Any, *, overrides: Mapping[str, Mapping[str, JSON]]) -> Entry:
    name = str(entry["name"])
    probe = database.Probe(
        name=name,
        description=" ".join(str(entry.get("description", "")).split()),
        sql=str(entry["sql"]).strip(),
        params={**(entry.get("params") or {}), **(overrides.get(name) or {})},
    )
    top = entry.get("max_server_version")
    return Entry(
        probe=probe,
        min_server_version=int(entry.get("min_server_version", 0)),
        max_server_version=int(top) if top is not None else None,
    )
