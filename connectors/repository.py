"""Local read-only clones of the applications' repositories: the only module that reads Git.

:class:`LocalRepositories` implements :class:`diagnose.domain.code.RepositorySource` over
clones kept on disk (``DIAGNOSE_REPOSITORIES`` maps each repository URL to its clone; in a
cluster the chart's ``git-sync`` sidecar keeps it fresh). It reads them with dulwich: objects
are never parsed by hand, and nothing in a repository is ever run (no hooks, no filters, no
checkout). A range read lists the commits reachable from the new revision and not from the old
one, newest first, each with its changed files against its first parent and the lines they
added and removed, redacted and bounded (:class:`RepositoryBounds`). A repository with no
clone configured, a clone that cannot be read, or a revision the clone lacks is evidence with a
status and a summary that says what to do, never an exception.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from dulwich import diff_tree, objectspec
from dulwich.errors import NotGitRepository
from dulwich.objects import Blob, Commit, TreeEntry
from dulwich.repo import Repo

from diagnose.domain import code, redaction
from diagnose.domain.models import Evidence, Status, format_time

SOURCE = code.SOURCE


@dataclass(frozen=True)
class RepositoryBounds:
    """How much of a range is read at most."""

    commits: int = 200
    """Commits per range; a longer range is cut at the newest ones, and says so."""
    files: int = 300
    """Changed files per commit."""
    lines: int = 400
    """Added (and removed) lines kept per file."""
    line_chars: int = 500
    """Characters kept per line."""
    file_bytes: int = 1_000_000
    """A blob larger than this is not diffed (its lines are left out, ``truncated``)."""


@dataclass(frozen=True)
class LocalRepositories:
    """Clones on disk by repository URL (any spelling of it: :func:`code.repository_key`)."""

    clones: Mapping[str, Path] = field(default_factory=dict)
    bounds: RepositoryBounds = field(default_factory=RepositoryBounds)

    @classmethod
    def of(
        cls, clones: Mapping[str, str | Path], *, bounds: RepositoryBounds | None = None
    ) -> LocalRepositories:
        """The clones of ``clones`` (URL → path)."""
        keyed = {code.repository_key(url): Path(path) for url, path in clones.items()}
        return cls(clones=keyed, bounds=bounds or RepositoryBounds())

    def list_commits(self, *, repository: str, since: str, until: str) -> Evidence:
        query = f"git log --name-status {since}..{until}  # {repository}"
        path = self.clones.get(code.repository_key(repository))
        if path is None:
            summary = (
                f"no local clone of {repository}: map it to one with "
                f"DIAGNOSE_REPOSITORIES={repository}=/path/to/clone"
            )
            return _evidence(query, status=Status.EMPTY, summary=summary)
        try:
            repo = Repo(str(path))
        except (NotGitRepository, OSError) as exc:
            summary = f"the clone of {repository} at {path} cannot be read ({exc}): clone it there"
            return _evidence(query, status=Status.ERROR, summary=summary)
        with repo:
            return self._range(repo, query=query, repository=repository, since=since, until=until)

    def _range(
        self, repo: Repo, *, query: str, repository: str, since: str, until: str
    ) -> Evidence:
        try:
            old, new = _resolve(repo, since), _resolve(repo, until)
        except KeyError as exc:
            summary = (
                f"the clone of {repository} lacks revision {exc.args[0]}: fetch it "
                "(or let git-sync catch up)"
            )
            return _evidence(query, status=Status.ERROR, summary=summary)
        limit = self.bounds.commits
        walker = repo.get_walker(include=[new.id], exclude=[old.id], max_entries=limit + 1)
        commits = [entry.commit for entry in walker]
        payload: code.CommitRangePayload = {
            "repository": repository,
            "from": old.id.decode(),
            "to": new.id.decode(),
            "commits": [self._commit(repo, c) for c in commits[:limit]],
            "truncated": len(commits) > limit,
        }
        files = sum(len(c["files"]) for c in payload["commits"])
        summary = f"{len(payload['commits'])} commit(s), {files} changed file(s) in {repository}"
        status = Status.OK if commits else Status.EMPTY
        return _evidence(query, status=status, summary=summary, raw=payload)

    def _commit(self, repo: Repo, commit: Commit) -> code.CommitPayload:
        parent = repo[commit.parents[0]] if commit.parents else None
        base = parent.tree if isinstance(parent, Commit) else None
        changes = list(diff_tree.tree_changes(repo.object_store, base, commit.tree))
        files = [self._file(repo, change) for change in changes[: self.bounds.files]]
        message = commit.message.decode("utf-8", errors="replace")
        return {
            "sha": commit.id.decode(),
            "subject": redaction.redact(message.strip().splitlines()[0] if message.strip() else ""),
            "at": format_time(datetime.fromtimestamp(commit.author_time, tz=UTC)),
            "files": files,
        }

    def _file(self, repo: Repo, change: diff_tree.TreeChange) -> code.FileChangePayload:
        entry = change.new if change.new is not None and change.new.path else change.old
        assert entry is not None and entry.path is not None  # a change has one side at least
        old_lines, old_cut = self._lines(repo, change.old)
        new_lines, new_cut = self._lines(repo, change.new)
        added, removed = _diff(old_lines, new_lines)
        bound = self.bounds.lines
        return {
            "path": entry.path.decode("utf-8", errors="replace"),
            "change": _CHANGE.get(change.type, change.type),
            "added": [self._line(line) for line in added[:bound]],
            "removed": [self._line(line) for line in removed[:bound]],
            "truncated": old_cut or new_cut or len(added) > bound or len(removed) > bound,
        }

    def _lines(self, repo: Repo, entry: TreeEntry | None) -> tuple[list[str], bool]:
        """A blob's lines, or none (and ``True``) when it is binary, too big, or a submodule."""
        if entry is None or entry.sha is None:
            return [], False
        try:
            blob = repo.object_store[entry.sha]
        except KeyError:  # a submodule's commit: not in this repository
            return [], True
        if not isinstance(blob, Blob) or blob.raw_length() > self.bounds.file_bytes:
            return [], True
        data = blob.as_raw_string()
        if b"\0" in data[:8000]:
            return [], True
        return data.decode("utf-8", errors="replace").splitlines(), False

    def _line(self, line: str) -> str:
        return redaction.redact(line[: self.bounds.line_chars])


_CHANGE = {"add": "add", "modify": "modify", "delete": "delete", "rename": "rename"}


def _resolve(repo: Repo, revision: str) -> Commit:
    """The commit a revision names (a full or abbreviated SHA, a tag, a branch)."""
    try:
        return objectspec.parse_commit(repo, revision.encode())
    except (KeyError, ValueError) as exc:
        raise KeyError(revision) from exc


def _diff(old: list[str], new: list[str]) -> tuple[list[str], list[str]]:
    """The lines ``new`` adds to ``old`` and the ones it removes (difflib's opcodes)."""
    added: list[str] = []
    removed: list[str] = []
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            removed += old[i1:i2]
        if tag in ("replace", "insert"):
            added += new[j1:j2]
    return added, removed


def _evidence(
    query: str, *, status: Status, summary: str, raw: code.CommitRangePayload | None = None
) -> Evidence:
    return Evidence.make(
        source=SOURCE, query=query, window=None, status=status, summary=summary, raw=raw
    )
