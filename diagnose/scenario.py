"""The scenario format, version 1 (see SCENARIOS.md): ``scenario.yaml`` and the files beside it.

Scenarios are written by people outside the team, so the models accept fields they do not know
(a newer scenario still loads) and say which file and field is wrong when one cannot be used.
``truth`` is kept apart from what the agent sees: only the evaluation reads it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from diagnose.domain import errors, models

SCENARIO_FILE = "scenario.yaml"


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class TimeRange(_Model):
    """The interval the recorded data covers."""

    start: datetime
    end: datetime

    @field_validator("start", "end")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return models.parse_time(value)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end < self.start:
            raise ValueError(f"time.end ({self.end}) is before time.start ({self.start})")
        return self


class TriggerSpec(_Model):
    """What the pager said; the agent starts from this alone."""

    source: str
    title: str
    service: str
    namespace: str = ""
    at: datetime
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return models.parse_time(value)

    @field_validator("labels", mode="before")
    @classmethod
    def _labels_as_text(cls, value: object) -> object:
        if isinstance(value, dict):
            return {str(k): str(v) for k, v in value.items()}
        return value


class PostgresSpec(_Model):
    """The database the lab creates for ``postgres/setup.sql``."""

    database: str = "postgres"


class RepositorySpec(_Model):
    """An application's repository as a Git bundle (``repositories/<name>.bundle``, made by
    ``git bundle create FILE --all``); the lab unpacks it to a clone read as ``url``."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    url: str
    bundle: str | None = None  # relative to the scenario folder; default repositories/<name>.bundle

    @property
    def bundle_path(self) -> str:
        return self.bundle or f"repositories/{self.name}.bundle"


class RootCause(_Model):
    kind: str
    component: str
    change: str | None = None
    detail: str | None = None


class Accepted(_Model):
    """Another (kind, component) pair that counts as right when the data cannot tell them apart
    (a code fault that shows as CPU, say)."""

    kind: str
    component: str


class Truth(_Model):
    """The known answer. Only ``diagnose eval`` reads it; the agent never does."""

    root_cause: RootCause | None = None
    fix: str | None = None
    also_accept: tuple[Accepted, ...] = ()


class Scenario(_Model):
    """A loaded ``scenario.yaml``; ``root`` is the folder its data files live in."""

    format: Literal[1] = 1
    name: str
    description: str = ""
    time: TimeRange
    trigger: TriggerSpec
    postgres: PostgresSpec | None = None
    repositories: tuple[RepositorySpec, ...] = ()
    truth: Truth | None = Field(default=None, repr=False)
    root: Path

    @classmethod
    def load(cls, path: Path) -> Scenario:
        """Load a scenario from its folder (or its ``scenario.yaml``), naming what is wrong."""
        file = path / SCENARIO_FILE if path.is_dir() else path
        data = _read_yaml(file)
        try:
            return cls.model_validate({**data, "root": file.parent})
        except ValidationError as exc:
            raise errors.ScenarioError(_explain(file, exc)) from exc

    @property
    def metrics_file(self) -> Path | None:
        """``metrics.om`` when the scenario has metrics."""
        path = self.root / "metrics.om"
        return path if path.is_file() else None

    @property
    def kubernetes_files(self) -> list[Path]:
        return sorted(self.root.glob("kubernetes/*.yaml")) + sorted(
            self.root.glob("kubernetes/*.yml")
        )

    @property
    def traces_files(self) -> list[Path]:
        return sorted(self.root.glob("traces/*.json"))

    @property
    def logs_dir(self) -> Path | None:
        """``logs/`` when the scenario has pod logs (``logs/<pod>.log``; docs/logs.md)."""
        path = self.root / "logs"
        return path if path.is_dir() else None

    def repository_bundles(self) -> list[tuple[RepositorySpec, Path]]:
        """Each repository with its bundle file, naming a bundle that is missing or that lies
        outside the scenario folder."""
        found = []
        for spec in self.repositories:
            path = (self.root / spec.bundle_path).resolve()
            if not path.is_relative_to(self.root.resolve()) or not path.is_file():
                raise errors.ScenarioError(
                    f"{self.root / SCENARIO_FILE}: repository {spec.name!r}: no bundle at "
                    f"{spec.bundle_path} inside the scenario folder (git bundle create … --all)"
                )
            found.append((spec, path))
        return found

    @property
    def postgres_dir(self) -> Path | None:
        """``postgres/`` when the scenario has a database part."""
        path = self.root / "postgres"
        return path if path.is_dir() else None

    @property
    def database(self) -> str:
        """The database the scenario's SQL runs in."""
        return self.postgres.database if self.postgres else "postgres"

    def trigger_record(self) -> models.Trigger:
        """The trigger as the agent receives it."""
        spec = self.trigger
        return models.Trigger(
            source=spec.source,
            title=spec.title,
            service=spec.service,
            namespace=spec.namespace,
            at=spec.at,
            labels=dict(spec.labels),
        )

    def shifted(self, offset: timedelta, *, root: Path | None = None) -> Scenario:
        """The same scenario with every timestamp moved by ``offset`` (and its data elsewhere)."""
        return self.model_copy(
            update={
                "time": TimeRange(start=self.time.start + offset, end=self.time.end + offset),
                "trigger": self.trigger.model_copy(update={"at": self.trigger.at + offset}),
                "root": root if root is not None else self.root,
            }
        )


def _read_yaml(file: Path) -> dict[str, object]:
    try:
        with file.open(encoding="utf-8") as stream:
            data = yaml.safe_load(stream)
    except FileNotFoundError as exc:
        raise errors.ScenarioError(f"{file}: no such file; a scenario folder needs one") from exc
    except yaml.YAMLError as exc:
        raise errors.ScenarioError(f"{file}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise errors.ScenarioError(f"{file}: expected a mapping at the top level")
    if data.get("format", 1) != 1:
        raise errors.ScenarioError(
            f"{file}: field 'format': version {data.get('format')!r} is not supported (only 1)"
        )
    return data


def _explain(file: Path, exc: ValidationError) -> str:
    problems = [
        f"field '{'.'.join(str(part) for part in error['loc']) or '(top)'}': {error['msg']}"
        for error in exc.errors()
    ]
    return f"{file}: " + "; ".join(problems)
