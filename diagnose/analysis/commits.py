"""From a rollout to its commits, and from the commits to the evidence (docs/changes.md).

Pure functions over plain data:

- :func:`version_of` maps what a ReplicaSet runs to a commit: the pod template's (or the
  object's) ``org.opencontainers.image.revision`` annotation, with the repository from
  ``org.opencontainers.image.source``; else an image tag that is a commit id (``3f9c2ab``,
  ``sha-3f9c2ab…``, ``git-…``; hex with at least one letter, so build numbers are not read as
  commits).
- :func:`ranges_to_read` pairs each rollout in the window with the revision before it: the
  commit ranges worth reading, newest first.
- :func:`codefiles.classify` names what a changed file is (a migration and its framework, SQL, code,
  configuration, a dependency manifest, Kubernetes manifests, tests, documentation);
  :func:`codefiles.schema_changes` reads what a migration does to which table (drops or creates an
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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from diagnose.analysis import codefiles
from diagnose.domain import models

classify = codefiles.classify
schema_changes = codefiles.schema_changes
holds_statement = codefiles.holds_statement
migration_framework = codefiles.migration_framework

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


# --- tying a range to the evidence ------------------------------------------------------------


@dataclass(frozen=True)
class Suspect:
    sha: str
    file: str
    why: str
    score: float
    finding: str = ""  # the evidence ids of the finding it answers, joined ("" when none)

    def to_dict(self) -> models.SuspectData:
        return {"sha": self.sha, "file": self.file, "why": self.why}


@dataclass(frozen=True)
class CodeReading:
    """A rollout's commit range and the changes in it that bear on the evidence."""

    change: str
    component: str
    repository: str
    since: str
    until: str
    commits: tuple[models.CommitBrief, ...]
    kinds: Mapping[str, int]
    suspects: tuple[Suspect, ...] = ()
    tables: tuple[str, ...] = ()  # the tables the findings name

    @property
    def quiet(self) -> bool:
        """Only documentation and tests changed (or nothing at all)."""
        return all(codefiles.FileKind(k) in codefiles.QUIET_KINDS for k in self.kinds)

    def to_dict(self) -> models.CodeData:
        return {
            "repository": self.repository,
            "from": self.since,
            "to": self.until,
            "change": self.change,
            "commits": [models.CommitBrief(**c) for c in self.commits],
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
        for change in codefiles.schema_changes([str(finding.get("blocking_query") or "")]):
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
            kinds[codefiles.classify(str(changed["path"])).value] += 1
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


def _created_indexes(commits: Sequence[Item]) -> list[codefiles.SchemaChange]:
    return [
        change
        for commit in commits
        for changed in commit.get("files") or []
        if codefiles.classify(str(changed["path"])) is codefiles.FileKind.MIGRATION
        for change in codefiles.schema_changes(changed.get("added") or [])
        if change.action == "create_index"
    ]


def _suspects(
    commit: Item,
    changed: Item,
    *,
    findings: Sequence[Item],
    created: Sequence[codefiles.SchemaChange],
) -> list[Suspect]:
    path, added = str(changed["path"]), list(changed.get("added") or [])
    kind = codefiles.classify(path)
    found: list[Suspect] = []
    for finding in findings:
        tag = ",".join(finding.get("evidence") or ())
        for why, score in _ties(kind, added, finding=finding, created=created):
            found.append(Suspect(str(commit["sha"]), path, why, score, finding=tag))
    return found


def _ties(
    kind: codefiles.FileKind,
    added: Sequence[str],
    *,
    finding: Item,
    created: Sequence[codefiles.SchemaChange],
) -> list[tuple[str, float]]:
    """Why a file bears on one finding, with how strongly (1 is a migration that drops the very
    index)."""
    if kind in codefiles.QUIET_KINDS:
        return []
    ties: list[tuple[str, float]] = []
    table = str(finding.get("table") or "")
    columns = [str(c) for c in finding.get("columns") or ()]
    if kind is codefiles.FileKind.MIGRATION:
        ties += _migration_ties(added, finding=finding, created=created)
    for key in ("statement", "blocking_query", "last_query"):
        statement = str(finding.get(key) or "")
        if statement and codefiles.holds_statement(added, statement):
            ties.append((f"adds the statement the probes single out ({_short(statement)})", 0.95))
    if (
        table
        and columns
        and kind is not codefiles.FileKind.MIGRATION
        and codefiles.queries(added, table=table, columns=columns)
    ):
        ties.append((f"queries {table} by {', '.join(columns)}", 0.6))
    return ties


def _migration_ties(
    added: Sequence[str], *, finding: Item, created: Sequence[codefiles.SchemaChange]
) -> list[tuple[str, float]]:
    table = str(finding.get("table") or "")
    columns = [str(c).lower() for c in finding.get("columns") or ()]
    locked = [c.table for c in codefiles.schema_changes([str(finding.get("blocking_query") or "")])]
    ties: list[tuple[str, float]] = []
    for change in codefiles.schema_changes(added):
        on_table = codefiles.same_table(change.table, table) if table else False
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
                codefiles.same_table(c.table, table) and set(columns) <= set(c.columns)
                for c in created
            ):
                ties.append((f"creates {table} with no index on {', '.join(columns)}", 0.7))
        elif change.action == "alter_table" and any(
            codefiles.same_table(change.table, t) for t in locked if t
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
    hypotheses: list[models.HypothesisData]
    notes: list[str] = field(default_factory=list)


def attach(
    hypotheses: Sequence[models.HypothesisData],
    readings: Sequence[CodeReading],
    *,
    policy: CodePolicy | None = None,
) -> Attached:
    """The hypotheses, each with the commit range it bears on (``code``), re-ranked: a rollout
    carries its own range; a hypothesis whose evidence a suspect answers carries that suspect's
    range (its suspects first); a rollout whose range touches nothing related is weakened."""
    policy = policy or CodePolicy()
    by_change = {r.change: r for r in readings}
    out: list[models.HypothesisData] = []
    for hypothesis in hypotheses:
        h = models.HypothesisData(**hypothesis)
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
    hypothesis: models.HypothesisData, *, reading: CodeReading, policy: CodePolicy
) -> models.HypothesisData:
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
    code = reading.to_dict()
    code["summary"] = described
    out = models.HypothesisData(**hypothesis)
    out["confidence"] = round(confidence, 4)
    out["summary"] = summary
    out["code"] = code
    return out


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

    def to_dict(self) -> models.DeliveryData:
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
    hypotheses: Sequence[models.HypothesisData], delivered: Mapping[str, Delivered]
) -> list[models.HypothesisData]:
    """The hypotheses, a rollout's saying which delivery applied it (``delivery``, and in its
    summary)."""
    out = []
    for hypothesis in hypotheses:
        h = models.HypothesisData(**hypothesis)
        found = delivered.get(str(h.get("change") or ""))
        if found is not None:
            h["summary"] = f"{h['summary']}; {found.describe()}"
            h["delivery"] = found.to_dict()
        out.append(h)
    return out
