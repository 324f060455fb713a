"""What a changed file is and what it does: :func:`classify` names a file's kind (a
migration and its framework, SQL, code, configuration, a dependency manifest, Kubernetes
manifests, tests, documentation); :func:`schema_changes` reads what a migration does to which
table (drops or creates an index, creates, alters or drops a table) in SQL, Alembic, Django,
Rails and Liquibase; :func:`holds_statement` finds a statement's normalised text (as
``pg_stat_statements`` shows it) in changed lines. Pure functions over paths and lines."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import PurePosixPath

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


def queries(lines: Sequence[str], *, table: str, columns: Sequence[str]) -> bool:
    """Whether added lines query ``table`` filtering on one of ``columns``."""
    text = "\n".join(lines).lower()
    if not re.search(rf"\b(?:from|join|update|into)\s+[\"`]?{re.escape(table.lower())}\b", text):
        return False
    return any(re.search(rf"\b{re.escape(c.lower())}\b\s*(?:=|in\b|<|>)", text) for c in columns)
