"""From a rollout to its commits, and from the commits to the evidence (docs/changes.md).

Pure functions over plain data:

- :func:`version_of` maps what a ReplicaSet runs to a commit: the pod template's (or the
  object's) ``org.opencontainers.image.revision`` annotation, with the repository from
  ``org.opencontainers.image.source``; else an image tag that is a commit id (``3f9c2ab``,
  ``sha-3f9c2ab…``, ``git-…``; hex with at least one letter, so build numbers are not read as
  commits).
- :func:`ranges_to_read` pairs each rollout in the window with the revision before it: the
  commit ranges worth reading, newest first.
- :func:`classify` names what a changed file is (a migration and its framework, SQL, code,
  configuration, a dependency manifest, Kubernetes manifests, tests, documentation);
  :func:`schema_changes` reads what a migration does to which table (drops or creates an
  index, creates, alters or drops a table) in SQL, Alembic, Django, Rails and Liquibase.
- :func:`read_range` ties a range to the database's findings: a migration that drops an index
  on a table the probes saw scanned sequentially, creates it without one, or alters a table
  whose lock holds others up; a changed file that holds a statement the probes single out (its
  normalised text, as ``pg_stat_statements`` shows it). :func:`attach` puts the range on the
  hypotheses it bears on, suspects best first, and weakens a rollout whose commits touch
  nothing the evidence points at.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Any

from diagnose.domain import models

REVISION_ANNOTATION = "org.opencontainers.image.revision"
SOURCE_ANNOTATION = "org.opencontainers.image.source"

_COMMIT = re.compile(r"[0-9a-f]{7,40}")
_TAG_COMMIT = re.compile(r"(?:sha-|git-|g)?(?P<sha>[0-9a-f]{7,40})")

Item = Mapping[str, Any]


# --- versions and ranges ----------------------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """The commit a workload revision runs, and where it was read."""

    revision: str
    repository: str | None
    via: str  # "annotation" | "image tag"


def version_of(replicaset: Item) -> Version | None:
    """The commit a ReplicaSet's pods run, or None when nothing names one."""
    annotations = {**(replicaset.get("annotations") or {})}
    annotations |= replicaset.get("template_annotations") or {}
    source = annotations.get(SOURCE_ANNOTATION) or None
    revision = str(annotations.get(REVISION_ANNOTATION) or "").strip().lower()
    if _COMMIT.fullmatch(revision):
        return Version(revision=revision, repository=source, via="annotation")
    for image in replicaset.get("images") or []:
        tag = _tag(str(image)).lower()
        found = _TAG_COMMIT.fullmatch(tag)
        if found and re.search(r"[a-f]", found["sha"]):
            return Version(revision=found["sha"], repository=source, via="image tag")
    return None


def _tag(image: str) -> str:
    """An image reference's tag (``registry:5000/app:TAG@sha256:…`` → ``TAG``)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.rsplit(":", 1)[1] if ":" in last else ""


@dataclass(frozen=True)
class RangeRequest:
    """A rollout's commit range: what to ask the repository for."""

    change: str  # "deployment/orders-api@8"
    component: str
    repository: str
    since: str
    until: str


def ranges_to_read(
    replicasets: Sequence[Item],
    *,
    window: models.Window,
    limit: int = 3,
    deliveries: Sequence[Item] = (),
) -> tuple[list[RangeRequest], list[str]]:
    """The ranges of the rollouts made in ``window`` (at most ``limit``, the newest first), and
    a note for each rollout whose commits cannot be named. A GitOps sync that applied the
    rollout (``deliveries``: ``diagnose.domain.delivery`` payloads) names its commits first."""
    by_owner: dict[str, list[Item]] = {}
    for item in replicasets:
        owner = str(item.get("owner") or "")
        if owner.startswith("deployment/") and item.get("revision") is not None:
            by_owner.setdefault(owner, []).append(item)
    found: list[tuple[datetime, RangeRequest]] = []
    notes: list[str] = []
    for owner, items in by_owner.items():
        items.sort(key=lambda i: int(i["revision"]))
        for previous, item in itertools.pairwise(items):
            at = _time(item.get("created"))
            if at is None or not window.start <= at <= window.end:
                continue
            request, note = _synced_range(owner, item=item, at=at, deliveries=deliveries)
            if request is None:
                request, note = _range(owner, previous=previous, item=item)
            if request is not None:
                found.append((at, request))
            elif note:
                notes.append(note)
    found.sort(key=lambda pair: pair[0], reverse=True)
    return [r for _, r in found[:limit]], notes


def _range(owner: str, *, previous: Item, item: Item) -> tuple[RangeRequest | None, str]:
    name = owner.split("/", 1)[1]
    change = f"{owner}@{item['revision']}"
    old, new = version_of(previous), version_of(item)
    if old is None or new is None:
        return None, (
            f"code: {change} names no commit (set the pod template's {REVISION_ANNOTATION} "
            "and .source annotations, or tag images with the commit)"
        )
    repository = new.repository or old.repository
    if repository is None:
        return (
            None,
            f"code: {change} runs {new.revision[:12]} but names no repository "
            f"({SOURCE_ANNOTATION})",
        )
    if old.revision == new.revision:
        return None, ""
    request = RangeRequest(
        change=change, component=name, repository=repository, since=old.revision, until=new.revision
    )
    return request, ""


SYNC_LEAD = timedelta(minutes=15)
"""A sync applies a rollout it precedes by at most this much (the controller's reconcile)."""


def _synced_range(
    owner: str, *, item: Item, at: datetime, deliveries: Sequence[Item]
) -> tuple[RangeRequest | None, str]:
    """The range of the GitOps sync that applied this rollout: the delivery managing the
    workload (or targeting its namespace, when it lists no workloads) whose sync with a commit
    came at most :data:`SYNC_LEAD` before the new ReplicaSet, from the sync before it."""
    namespace = str(item.get("namespace") or "")
    for found in deliveries:
        managed = list(found.get("workloads") or [])
        if owner not in managed and (managed or found.get("target_namespace") != namespace):
            continue
        syncs = [s for s in found.get("syncs") or [] if s.get("commit") and _time(s.get("at"))]
        for previous, sync in itertools.pairwise(syncs):
            synced = _time(sync["at"])
            if synced is not None and at - SYNC_LEAD <= synced <= at + timedelta(minutes=2):
                if previous["commit"] == sync["commit"] or not found.get("repository"):
                    return None, ""
                return RangeRequest(
                    change=f"{owner}@{item['revision']}",
                    component=owner.split("/", 1)[1],
                    repository=str(found["repository"]),
                    since=str(previous["commit"]),
                    until=str(sync["commit"]),
                ), ""
    return None, ""


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return models.parse_time(value)
    except ValueError:
        return None


# --- what a changed file is ---------------------------------------------------------------


class FileKind(StrEnum):
    MIGRATION = "migration"
    SQL = "sql"
    CODE = "code"
    CONFIG = "config"
    DEPENDENCIES = "dependencies"
    KUBERNETES = "kubernetes"
    TESTS = "tests"
    DOCS = "docs"
    OTHER = "other"


QUIET_KINDS = frozenset({FileKind.DOCS, FileKind.TESTS})
"""Kinds of file that change nothing a running service does."""

_MIGRATION_FOLDERS = frozenset({"migrations", "migration", "migrate", "db_migrations", "schema"})
_DEPENDENCY_FILES = frozenset(
    {
        "requirements.txt",
        "requirements.in",
        "pyproject.toml",
        "poetry.lock",
        "uv.lock",
        "pipfile",
        "pipfile.lock",
        "setup.py",
        "setup.cfg",
        "package.json",
        "package-lock.json",
        "yarn.lock",
        "pnpm-lock.yaml",
        "go.mod",
        "go.sum",
        "gemfile",
        "gemfile.lock",
        "pom.xml",
        "build.gradle",
        "build.gradle.kts",
        "cargo.toml",
        "cargo.lock",
        "composer.json",
        "composer.lock",
    }
)
_KUBERNETES_FOLDERS = frozenset(
    {"k8s", "kubernetes", "deploy", "manifests", "charts", "chart", "helm", "kustomize", "overlays"}
)
_KUBERNETES_FILES = frozenset({"kustomization.yaml", "kustomization.yml", "chart.yaml"})
_DOC_SUFFIXES = frozenset({".md", ".rst", ".adoc", ".txt"})
_DOC_NAMES = frozenset({"license", "changelog", "readme", "authors", "notice", "codeowners"})
_CONFIG_SUFFIXES = frozenset(
    {".yaml", ".yml", ".json", ".toml", ".ini", ".conf", ".cfg", ".properties", ".env"}
)
_CODE_SUFFIXES = frozenset(
    {".py", ".go", ".java", ".kt", ".scala", ".rb", ".js", ".mjs", ".ts", ".rs", ".php", ".cs"}
    | {".ex", ".exs", ".clj", ".c", ".cc", ".cpp", ".h", ".swift", ".sh"}
)
_FLYWAY = re.compile(r"(?i)^[vur]\d[\w.]*__\w.*\.sql$|^r__\w.*\.sql$")
_GOLANG_MIGRATE = re.compile(r"(?i)^\d+_\w.*\.(?:up|down)\.sql$")
_DJANGO = re.compile(r"^\d{4}_\w+\.py$")
_RAILS = re.compile(r"^\d{14}_\w+\.rb$")


_Parts = tuple[str, frozenset[str]]  # a path's file name and its folders, in lower case


def _parts(path: str) -> _Parts:
    pure = PurePosixPath(path.lower())
    return pure.name, frozenset(pure.parts[:-1])


_FRAMEWORKS: tuple[tuple[str, Callable[[str, frozenset[str]], bool]], ...] = (
    (
        "alembic",
        lambda name, folders: (
            ("versions" in folders and bool({"alembic", "migrations"} & folders))
            and name.endswith(".py")
        ),
    ),
    ("django", lambda name, folders: "migrations" in folders and bool(_DJANGO.match(name))),
    (
        "rails",
        lambda name, folders: (
            {"db", "migrate"} <= folders or ("migrate" in folders and bool(_RAILS.match(name)))
        ),
    ),
    ("flyway", lambda name, folders: bool(_FLYWAY.match(name))),
    ("golang-migrate", lambda name, folders: bool(_GOLANG_MIGRATE.match(name))),
    (
        "liquibase",
        lambda name, folders: (
            bool({"changelog", "liquibase"} & folders or "changelog" in name)
            and PurePosixPath(name).suffix in {".xml", ".yaml", ".yml", ".json", ".sql"}
        ),
    ),
    ("sql", lambda name, folders: name.endswith(".sql") and bool(folders & _MIGRATION_FOLDERS)),
)
"""Migration tools, first match wins: what each one's files look like."""


def migration_framework(path: str) -> str | None:
    """Which migration tool a path belongs to (``alembic``, ``django``, ``flyway``,
    ``liquibase``, ``rails``, ``golang-migrate``, ``sql``), or None."""
    name, folders = _parts(path)
    return next((tool for tool, matches in _FRAMEWORKS if matches(name, folders)), None)


_KINDS: tuple[tuple[FileKind, Callable[[str, frozenset[str]], bool]], ...] = (
    (
        FileKind.TESTS,
        lambda name, folders: (
            bool(folders & {"test", "tests", "spec", "__tests__"}) or _is_test_name(name)
        ),
    ),
    (
        FileKind.DEPENDENCIES,
        lambda name, folders: (
            name in _DEPENDENCY_FILES
            or bool(re.fullmatch(r"requirements[\w.-]*\.(?:txt|in)", name))
        ),
    ),
    (
        FileKind.DOCS,
        lambda name, folders: (
            PurePosixPath(name).stem in _DOC_NAMES
            or bool(folders & {"docs", "doc"})
            or PurePosixPath(name).suffix in _DOC_SUFFIXES
        ),
    ),
    (FileKind.SQL, lambda name, folders: name.endswith(".sql")),
    (
        FileKind.KUBERNETES,
        lambda name, folders: (
            name in _KUBERNETES_FILES
            or (
                bool(folders & _KUBERNETES_FOLDERS)
                and PurePosixPath(name).suffix in {".yaml", ".yml", ".json", ".tpl"}
            )
        ),
    ),
    (
        FileKind.CONFIG,
        lambda name, folders: (
            PurePosixPath(name).suffix in _CONFIG_SUFFIXES
            or name == "dockerfile"
            or bool(folders & {"config", "conf"})
        ),
    ),
    (FileKind.CODE, lambda name, folders: PurePosixPath(name).suffix in _CODE_SUFFIXES),
)
"""File kinds after migrations (:data:`_FRAMEWORKS`), first match wins (docs/changes.md)."""


def classify(path: str) -> FileKind:
    """What a changed file is, by its path: a migration, else the first of :data:`_KINDS`."""
    if migration_framework(path):
        return FileKind.MIGRATION
    name, folders = _parts(path)
    return next((kind for kind, matches in _KINDS if matches(name, folders)), FileKind.OTHER)


def _is_test_name(name: str) -> bool:
    stem = name.rsplit(".", 1)[0]
    return stem.startswith("test_") or stem.endswith(("_test", "_spec", ".test", ".spec"))


# --- what a migration does --------------------------------------------------------------------


@dataclass(frozen=True)
class SchemaChange:
    """One operation a migration performs on the schema."""

    action: str  # drop_index | create_index | create_table | alter_table | drop_table
    table: str | None
    index: str | None = None
    columns: tuple[str, ...] = ()


_Q = r"[\"'`]?"
_NAME = r"[\w.\"`]+"
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (action, re.compile(pattern, re.IGNORECASE | re.DOTALL))
    for action, pattern in (
        # SQL (plain files, Flyway, golang-migrate, Liquibase formatted SQL, execute() calls)
        (
            "drop_index",
            rf"\bdrop\s+index\s+(?:concurrently\s+)?(?:if\s+exists\s+)?(?P<index>{_NAME})",
        ),
        (
            "create_index",
            rf"\bcreate\s+(?:unique\s+)?index\s+(?:concurrently\s+)?(?:if\s+not\s+exists\s+)?"
            rf"(?P<index>{_NAME})?\s*on\s+(?:only\s+)?(?P<table>{_NAME})(?:\s+using\s+\w+)?\s*"
            r"\((?P<columns>[^)]*)\)",
        ),
        (
            "create_table",
            rf"\bcreate\s+(?:unlogged\s+)?table\s+(?:if\s+not\s+exists\s+)?(?P<table>{_NAME})",
        ),
        ("alter_table", rf"\balter\s+table\s+(?:if\s+exists\s+)?(?:only\s+)?(?P<table>{_NAME})"),
        ("drop_table", rf"\bdrop\s+table\s+(?:if\s+exists\s+)?(?P<table>{_NAME})"),
        # Alembic
        (
            "drop_index",
            rf"\bop\.drop_index\(\s*(?:op\.f\(\s*)?{_Q}(?P<index>[\w.]+){_Q}\)?"
            rf"(?:[^)]{{0,200}}?table_name\s*=\s*{_Q}(?P<table>\w+))?",
        ),
        (
            "create_index",
            rf"\bop\.create_index\(\s*(?:op\.f\(\s*)?{_Q}(?P<index>[\w.]+){_Q}\)?\s*,\s*"
            rf"{_Q}(?P<table>\w+){_Q}\s*,\s*\[(?P<columns>[^\]]*)\]",
        ),
        ("create_table", rf"\bop\.create_table\(\s*{_Q}(?P<table>\w+)"),
        ("drop_table", rf"\bop\.drop_table\(\s*{_Q}(?P<table>\w+)"),
        (
            "alter_table",
            rf"\bop\.(?:add_column|alter_column|drop_column|create_foreign_key|"
            rf"create_unique_constraint|drop_constraint)\(\s*{_Q}(?P<table>\w+)",
        ),
        # Django
        (
            "drop_index",
            rf"\bmigrations\.RemoveIndex\(\s*model_name\s*=\s*{_Q}(?P<table>\w+){_Q}\s*,\s*"
            rf"name\s*=\s*{_Q}(?P<index>\w+)",
        ),
        (
            "drop_index",
            rf"\bmigrations\.AlterField\(\s*model_name\s*=\s*{_Q}(?P<table>\w+){_Q}\s*,\s*"
            rf"name\s*=\s*{_Q}(?P<columns>\w+){_Q}.{{0,300}}?db_index\s*=\s*False",
        ),
        (
            "create_index",
            rf"\bmigrations\.AddIndex\(\s*model_name\s*=\s*{_Q}(?P<table>\w+){_Q}.{{0,300}}?"
            r"fields\s*=\s*\[(?P<columns>[^\]]*)\]",
        ),
        ("create_table", rf"\bmigrations\.CreateModel\(\s*name\s*=\s*{_Q}(?P<table>\w+)"),
        ("drop_table", rf"\bmigrations\.DeleteModel\(\s*name\s*=\s*{_Q}(?P<table>\w+)"),
        (
            "alter_table",
            rf"\bmigrations\.(?:AddField|AlterField|RemoveField|RenameField)\(\s*"
            rf"model_name\s*=\s*{_Q}(?P<table>\w+)",
        ),
        # Rails
        (
            "drop_index",
            r"\bremove_index\s*\(?\s*:(?P<table>\w+)(?:\s*,\s*(?:column:\s*)?"
            r"(?::(?P<columns>\w+)|\[(?P<more>[^\]]*)\]))?(?:[^\n]*?name:\s*[\"'](?P<index>\w+))?",
        ),
        (
            "create_index",
            r"\badd_index\s*\(?\s*:(?P<table>\w+)\s*,\s*(?::(?P<columns>\w+)|\[(?P<more>[^\]]*)\])",
        ),
        ("create_table", r"\bcreate_table\s*\(?\s*:(?P<table>\w+)"),
        ("drop_table", r"\bdrop_table\s*\(?\s*:(?P<table>\w+)"),
        (
            "alter_table",
            r"\b(?:add_column|change_column|remove_column|rename_column|add_reference|"
            r"change_table)\s*\(?\s*:(?P<table>\w+)",
        ),
        # Liquibase (XML attributes or YAML/JSON keys, in either order)
        (
            "drop_index",
            r"\bdropIndex\b(?=.{0,300}?\bindexName\s*[=:]\s*[\"']?(?P<index>\w+))"
            r"(?=.{0,300}?\btableName\s*[=:]\s*[\"']?(?P<table>\w+))?",
        ),
        (
            "create_index",
            r"\bcreateIndex\b(?=.{0,300}?\btableName\s*[=:]\s*[\"']?(?P<table>\w+))"
            r"(?=.{0,400}?\bcolumn\b.{0,80}?\bname\s*[=:]\s*[\"']?(?P<columns>\w+))?",
        ),
        ("create_table", r"\bcreateTable\b.{0,300}?\btableName\s*[=:]\s*[\"']?(?P<table>\w+)"),
        (
            "alter_table",
            r"\b(?:addColumn|dropColumn|modifyDataType|renameColumn|addForeignKeyConstraint)\b"
            r".{0,300}?\btableName\s*[=:]\s*[\"']?(?P<table>\w+)",
        ),
    )
)


def schema_changes(lines: Sequence[str]) -> list[SchemaChange]:
    """What the added lines of a migration do to the schema, in order of appearance."""
    text = "\n".join(lines)
    found: list[tuple[int, SchemaChange]] = []
    for action, pattern in _PATTERNS:
        for match in pattern.finditer(text):
            groups = match.groupdict()
            columns = ",".join(g for g in (groups.get("columns"), groups.get("more")) if g)
            change = SchemaChange(
                action=action,
                table=_bare(groups.get("table")),
                index=_bare(groups.get("index")),
                columns=tuple(_bare(c) or "" for c in re.split(r"[,\s]+", columns) if _bare(c)),
            )
            found.append((match.start(), change))
    found.sort(key=lambda pair: pair[0])
    return list(dict.fromkeys(change for _, change in found))


def _bare(name: str | None) -> str | None:
    """A name without quotes, a schema or a leading colon: ``public."Orders"`` → ``orders``."""
    if not name:
        return None
    text = name.strip().strip(":").strip("\"'`").split(".")[-1].strip("\"'`").lower()
    return text or None


def same_table(name: str | None, table: str) -> bool:
    """Whether a migration's name for a table (or a model: ``order``, ``Order``) is ``table``."""
    if not name:
        return False
    a, b = name.lower(), table.lower()
    return a == b or b in (f"{a}s", f"{a}es") or b.endswith((f"_{a}", f"_{a}s"))


# --- statements -------------------------------------------------------------------------------

_PLACEHOLDER = re.compile(r"\$\d+|%\(\w+\)s|%s|\?|(?<![:\w]):\w+|'[^'\s]*'|\b\d+(?:\.\d+)?\b")
_WORD = re.compile(r"[a-z_][a-z0-9_]*")
_MIN_TOKENS = 4


def statement_tokens(text: str) -> tuple[str, ...]:
    """A statement's words in order, without literals, placeholders, quotes or punctuation:
    ``pg_stat_statements``' ``… WHERE customer_id = $1`` and a driver's ``… = %s`` agree."""
    return tuple(_WORD.findall(_PLACEHOLDER.sub(" ", text.lower())))


def holds_statement(lines: Sequence[str], statement: str) -> bool:
    """Whether added lines hold a statement's text (across lines and string pieces)."""
    wanted = statement_tokens(statement)
    if len(wanted) < _MIN_TOKENS:
        return False
    have = statement_tokens("\n".join(lines))
    size = len(wanted)
    return any(have[i : i + size] == wanted for i in range(len(have) - size + 1))


def _queries(lines: Sequence[str], *, table: str, columns: Sequence[str]) -> bool:
    """Whether added lines query ``table`` filtering on one of ``columns``."""
    text = "\n".join(lines).lower()
    if not re.search(rf"\b(?:from|join|update|into)\s+[\"`]?{re.escape(table.lower())}\b", text):
        return False
    return any(re.search(rf"\b{re.escape(c.lower())}\b\s*(?:=|in\b|<|>)", text) for c in columns)


# --- tying a range to the evidence ------------------------------------------------------------


@dataclass(frozen=True)
class Suspect:
    sha: str
    file: str
    why: str
    score: float
    finding: str = ""  # the evidence ids of the finding it answers, joined ("" when none)

    def to_dict(self) -> dict[str, str]:
        return {"sha": self.sha, "file": self.file, "why": self.why}


@dataclass(frozen=True)
class CodeReading:
    """A rollout's commit range and the changes in it that bear on the evidence."""

    change: str
    component: str
    repository: str
    since: str
    until: str
    commits: tuple[Mapping[str, Any], ...]
    kinds: Mapping[str, int]
    suspects: tuple[Suspect, ...] = ()
    tables: tuple[str, ...] = ()  # the tables the findings name

    @property
    def quiet(self) -> bool:
        """Only documentation and tests changed (or nothing at all)."""
        return all(FileKind(k) in QUIET_KINDS for k in self.kinds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "from": self.since,
            "to": self.until,
            "change": self.change,
            "commits": [dict(c) for c in self.commits],
            "suspects": [s.to_dict() for s in self.suspects],
        }

    def describe(self) -> str:
        """``3 commits: 1 migration, 2 code`` or ``3 commits, none touching orders' queries``."""
        count = f"{len(self.commits)} commit{'s' if len(self.commits) != 1 else ''}"
        if self.suspects:
            best = self.suspects[0]
            return f"{count}; {best.sha[:7]} {best.file}: {best.why}"
        if self.quiet:
            return f"{count}, touching only documentation or tests"
        if self.tables:
            names = ", ".join(f"{t}'" if t.endswith("s") else f"{t}'s" for t in self.tables)
            return f"{count}, none touching {names} queries"
        parts = ", ".join(f"{n} {k}" for k, n in sorted(self.kinds.items(), key=lambda kv: -kv[1]))
        return f"{count}: {parts}" if parts else count


def findings_tables(findings: Sequence[Item]) -> tuple[str, ...]:
    """The tables the database's findings name (a missing index's, a DDL lock's)."""
    tables = [str(f["table"]) for f in findings if f.get("table")]
    for finding in findings:
        for change in schema_changes([str(finding.get("blocking_query") or "")]):
            if change.table:
                tables.append(change.table)
    return tuple(dict.fromkeys(t.lower() for t in tables))


def read_range(
    payload: Item, *, request: RangeRequest, findings: Sequence[Item] = ()
) -> CodeReading:
    """A range read from the repository, its files classified and tied to ``findings``
    (the database's findings as plain data: ``sandbox.findings``' ``to_dict``)."""
    commits = list(payload.get("commits") or [])
    kinds: Counter[str] = Counter()
    suspects: list[Suspect] = []
    created = _created_indexes(commits)
    for commit in commits:
        for changed in commit.get("files") or []:
            kinds[classify(str(changed["path"])).value] += 1
            suspects += _suspects(commit, changed, findings=findings, created=created)
    best: dict[tuple[str, str], Suspect] = {}
    for suspect in sorted(suspects, key=lambda s: -s.score):
        best.setdefault((suspect.sha, suspect.file), suspect)
    return CodeReading(
        change=request.change,
        component=request.component,
        repository=str(payload.get("repository") or request.repository),
        since=str(payload.get("from") or request.since),
        until=str(payload.get("to") or request.until),
        commits=tuple(
            {
                "sha": str(c["sha"]),
                "subject": str(c.get("subject") or ""),
                "files": [str(f["path"]) for f in c.get("files") or []],
            }
            for c in commits
        ),
        kinds=dict(kinds),
        suspects=tuple(best.values()),
        tables=findings_tables(findings),
    )


def _created_indexes(commits: Sequence[Item]) -> list[SchemaChange]:
    return [
        change
        for commit in commits
        for changed in commit.get("files") or []
        if classify(str(changed["path"])) is FileKind.MIGRATION
        for change in schema_changes(changed.get("added") or [])
        if change.action == "create_index"
    ]


def _suspects(
    commit: Item, changed: Item, *, findings: Sequence[Item], created: Sequence[SchemaChange]
) -> list[Suspect]:
    path, added = str(changed["path"]), list(changed.get("added") or [])
    kind = classify(path)
    found: list[Suspect] = []
    for finding in findings:
        tag = ",".join(finding.get("evidence") or ())
        for why, score in _ties(kind, added, finding=finding, created=created):
            found.append(Suspect(str(commit["sha"]), path, why, score, finding=tag))
    return found


def _ties(
    kind: FileKind, added: Sequence[str], *, finding: Item, created: Sequence[SchemaChange]
) -> list[tuple[str, float]]:
    """Why a file bears on one finding, with how strongly (1 is a migration that drops the very
    index)."""
    if kind in QUIET_KINDS:
        return []
    ties: list[tuple[str, float]] = []
    table = str(finding.get("table") or "")
    columns = [str(c) for c in finding.get("columns") or ()]
    if kind is FileKind.MIGRATION:
        ties += _migration_ties(added, finding=finding, created=created)
    for key in ("statement", "blocking_query", "last_query"):
        statement = str(finding.get(key) or "")
        if statement and holds_statement(added, statement):
            ties.append((f"adds the statement the probes single out ({_short(statement)})", 0.95))
    if (
        table
        and columns
        and kind is not FileKind.MIGRATION
        and _queries(added, table=table, columns=columns)
    ):
        ties.append((f"queries {table} by {', '.join(columns)}", 0.6))
    return ties


def _migration_ties(
    added: Sequence[str], *, finding: Item, created: Sequence[SchemaChange]
) -> list[tuple[str, float]]:
    table = str(finding.get("table") or "")
    columns = [str(c).lower() for c in finding.get("columns") or ()]
    locked = [c.table for c in schema_changes([str(finding.get("blocking_query") or "")])]
    ties: list[tuple[str, float]] = []
    for change in schema_changes(added):
        on_table = same_table(change.table, table) if table else False
        named = bool(table) and change.index is not None and table.lower() in change.index
        where = f"{table}.{', '.join(columns)}" if columns else table
        if change.action == "drop_index" and (on_table or named):
            exact = any(c in (change.index or "") or c in change.columns for c in columns)
            why = f"drops index {change.index or '(unnamed)'} on {table}"
            ties.append(
                (f"{why}: the probes see {where} scanned sequentially", 1.0 if exact else 0.8)
            )
        elif change.action == "create_table" and on_table and columns:
            if not any(
                same_table(c.table, table) and set(columns) <= set(c.columns) for c in created
            ):
                ties.append((f"creates {table} with no index on {', '.join(columns)}", 0.7))
        elif change.action == "alter_table" and any(
            same_table(change.table, t) for t in locked if t
        ):
            ties.append((f"alters {change.table}, whose lock holds other sessions up", 0.9))
        elif change.action in ("alter_table", "drop_table") and on_table:
            ties.append((f"alters {table}, the table the probes single out", 0.5))
    return ties


def _short(statement: str, limit: int = 80) -> str:
    text = " ".join(statement.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- onto the hypotheses ----------------------------------------------------------------------


@dataclass(frozen=True)
class CodePolicy:
    """How much a commit range moves a hypothesis's confidence."""

    quiet: float = 0.6
    """A rollout whose commits touch only documentation or tests: its confidence is scaled by
    this (a deploy that changed nothing a service runs explains little)."""
    unrelated: float = 0.85
    """A rollout whose commits touch none of the tables the database's findings name."""
    tied: float = 0.05
    """Added to a hypothesis a suspect ties to its evidence (at most ``ceiling``)."""
    ceiling: float = 0.99


@dataclass(frozen=True)
class Attached:
    hypotheses: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


def attach(
    hypotheses: Sequence[Mapping[str, Any]],
    readings: Sequence[CodeReading],
    *,
    policy: CodePolicy | None = None,
) -> Attached:
    """The hypotheses, each with the commit range it bears on (``code``), re-ranked: a rollout
    carries its own range; a hypothesis whose evidence a suspect answers carries that suspect's
    range (its suspects first); a rollout whose range touches nothing related is weakened."""
    policy = policy or CodePolicy()
    by_change = {r.change: r for r in readings}
    out: list[dict[str, Any]] = []
    for hypothesis in hypotheses:
        h = dict(hypothesis)
        reading = by_change.get(str(h.get("change") or "")) or _answering(h, readings)
        if reading is not None:
            h = _with_reading(h, reading=_for(h, reading), policy=policy)
        out.append(h)
    out.sort(key=lambda h: -float(h["confidence"]))
    return Attached(hypotheses=out)


def _answering(
    hypothesis: Mapping[str, Any], readings: Sequence[CodeReading]
) -> CodeReading | None:
    """The reading whose best suspect answers a finding this hypothesis cites."""
    cited = set(hypothesis.get("evidence") or ())
    scored = [
        (s.score, r)
        for r in readings
        for s in r.suspects
        if s.finding and cited & set(s.finding.split(","))
    ]
    return max(scored, key=lambda pair: pair[0])[1] if scored else None


def _for(hypothesis: Mapping[str, Any], reading: CodeReading) -> CodeReading:
    """The reading with the suspects that answer this hypothesis's evidence first."""
    cited = set(hypothesis.get("evidence") or ())
    mine = [s for s in reading.suspects if s.finding and cited & set(s.finding.split(","))]
    rest = [s for s in reading.suspects if s not in mine]
    return replace(reading, suspects=tuple(mine + rest))


def _with_reading(
    hypothesis: dict[str, Any], *, reading: CodeReading, policy: CodePolicy
) -> dict[str, Any]:
    confidence = float(hypothesis["confidence"])
    rollout = hypothesis.get("change") == reading.change
    if reading.suspects:
        confidence = min(policy.ceiling, confidence + policy.tied)
    elif rollout and reading.quiet:
        confidence *= policy.quiet
    elif rollout and reading.tables:
        confidence *= policy.unrelated
    described = reading.describe()
    summary = str(hypothesis["summary"])
    if rollout:  # another hypothesis keeps its summary: database fixes are matched by it
        summary = f"{summary}; code: {described}"
    return hypothesis | {
        "confidence": round(confidence, 4),
        "summary": summary,
        "code": reading.to_dict() | {"summary": described},
    }


# --- which delivery applied a rollout ---------------------------------------------------------


@dataclass(frozen=True)
class Delivered:
    """The GitOps or Helm sync that applied a rollout."""

    tool: str
    name: str
    id: str  # Argo CD's history id, Flux's revision, Helm's release revision
    revision: str
    changed_keys: tuple[str, ...] = ()

    def describe(self) -> str:
        what = f"{self.tool} {self.name} {self.id}"
        if self.tool in ("helm", "flux-helmrelease") and self.revision:
            what += f" (chart {self.revision})"
        if self.changed_keys:
            keys = ", ".join(self.changed_keys[:8]) + (", …" if len(self.changed_keys) > 8 else "")
            what += f", which changed values {keys}"
        return f"delivered by {what}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "tool": self.tool,
            "name": self.name,
            "id": self.id,
            "revision": self.revision,
            "changed_keys": list(self.changed_keys),
        }


def delivered_by(
    replicasets: Sequence[Item], *, deliveries: Sequence[Item]
) -> dict[str, Delivered]:
    """Each rollout (``deployment/x@8``) a delivery's latest sync applied: the delivery that
    manages the workload (or targets its namespace) and synced at most :data:`SYNC_LEAD`
    before the new ReplicaSet."""
    found: dict[str, Delivered] = {}
    for item in replicasets:
        owner, at = str(item.get("owner") or ""), _time(item.get("created"))
        if not owner.startswith("deployment/") or at is None or item.get("revision") is None:
            continue
        for candidate in deliveries:
            sync = _sync_before(candidate, owner=owner, item=item, at=at)
            if sync is not None:
                found[f"{owner}@{item['revision']}"] = Delivered(
                    tool=str(candidate.get("tool") or ""),
                    name=str(candidate.get("name") or ""),
                    id=str(sync.get("id") or ""),
                    revision=str(sync.get("revision") or ""),
                    changed_keys=_changed_if_latest(candidate, sync),
                )
                break
    return found


def _sync_before(found: Item, *, owner: str, item: Item, at: datetime) -> Item | None:
    managed = list(found.get("workloads") or [])
    namespace = str(item.get("namespace") or "")
    if owner not in managed and (managed or found.get("target_namespace") != namespace):
        return None
    for sync in reversed(list(found.get("syncs") or [])):
        synced = _time(sync.get("at"))
        if synced is not None and at - SYNC_LEAD <= synced <= at + timedelta(minutes=2):
            return dict(sync)
    return None


def _changed_if_latest(found: Item, sync: Item) -> tuple[str, ...]:
    """A Helm release's changed value keys belong to its latest revision only."""
    syncs = list(found.get("syncs") or [])
    if syncs and syncs[-1].get("id") == sync.get("id"):
        return tuple(str(k) for k in found.get("changed_keys") or ())
    return ()


def mark_delivered(
    hypotheses: Sequence[Mapping[str, Any]], delivered: Mapping[str, Delivered]
) -> list[dict[str, Any]]:
    """The hypotheses, a rollout's saying which delivery applied it (``delivery``, and in its
    summary)."""
    out = []
    for hypothesis in hypotheses:
        h = dict(hypothesis)
        found = delivered.get(str(h.get("change") or ""))
        if found is not None:
            h |= {"summary": f"{h['summary']}; {found.describe()}", "delivery": found.to_dict()}
        out.append(h)
    return out
