"""The application's repository, and the port through which the core reads it.

A connector hands back one :class:`CommitRangePayload` per range it read: the commits between
the revision a workload ran before a rollout and the one it runs after, newest first, each
with its changed files and the lines they added and removed (redacted, bounded; never whole
files). Repositories are named by URL, compared by :func:`repository_key` so that
``git@host:team/app.git`` and ``https://host/team/app`` are one repository. Standard library
only.
"""

from __future__ import annotations

import re
from typing import Protocol, TypedDict

from diagnose.domain.models import Evidence

SOURCE = "repository"
"""The ``source`` of every piece of repository evidence."""


class FileChangePayload(TypedDict):
    """One file a commit changed (against its first parent)."""

    path: str  # the path after the commit (before it, for a deletion)
    change: str  # add | modify | delete | rename
    added: list[str]  # lines the commit added, redacted, at most the connector's bound
    removed: list[str]  # lines it removed, likewise
    truncated: bool  # lines were left out (the bound, a binary or an oversized file)


class CommitPayload(TypedDict):
    sha: str
    subject: str  # the first line of the message
    at: str  # the author date, RFC 3339
    files: list[FileChangePayload]


CommitRangePayload = TypedDict(
    "CommitRangePayload",
    {
        "repository": str,  # the URL as asked
        "from": str,  # the revision before the rollout (full SHA once resolved)
        "to": str,  # the revision after it
        "commits": list[CommitPayload],  # newest first, ``from`` excluded, ``to`` included
        "truncated": bool,  # more commits than the bound
    },
)
"""The commits between two revisions (``Evidence.raw`` of a range read)."""


class RepositorySource(Protocol):
    """Local read-only clones of the applications' repositories (``connectors.repository``)."""

    def list_commits(self, *, repository: str, since: str, until: str) -> Evidence:
        """The commits reachable from ``until`` and not from ``since``, with their changed
        files (raw :class:`CommitRangePayload`). A repository with no clone configured is
        ``empty``; a clone that cannot be read, or that lacks a revision, is ``error``: each
        with a summary that says what to set or fetch."""
        ...


_SCP_LIKE = re.compile(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+):(?P<path>(?!//)[^\s]+)$")
_URL = re.compile(r"^[a-z][a-z0-9+.-]*://(?:[^@/]*@)?(?P<host>[^/:]+)(?::\d+)?/(?P<path>.+)$")


def repository_key(url: str) -> str:
    """``host/path`` in lower case, without a user, a port, a scheme or ``.git``: the same
    repository however a URL spells it (https, ssh, scp-like ``git@host:path``)."""
    text = url.strip().rstrip("/")
    found = _URL.match(text) or _SCP_LIKE.match(text)
    if found is None:
        return text.lower().removesuffix(".git")
    path = found["path"].strip("/").removesuffix(".git")
    return f"{found['host']}/{path}".lower()
