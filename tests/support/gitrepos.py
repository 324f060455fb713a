"""Git repositories built from a script, byte for byte the same on every run.

Each commit is written with dulwich's object model (blobs, trees, a commit with fixed author,
committer and dates), so its SHA depends only on the script: scenarios can name commits in
their Kubernetes annotations. :func:`write_bundle` writes what ``git bundle create FILE --all``
writes (a v2 bundle of every branch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from dulwich import bundle
from dulwich.objects import Blob, Commit, Tree
from dulwich.repo import Repo

AUTHOR = b"Shop Developer <dev@shop.example>"


@dataclass(frozen=True)
class Step:
    """One commit: files written (path → text) or deleted (path → None) on top of the last."""

    message: str
    at: datetime
    files: Mapping[str, str | None] = field(default_factory=dict)


def build(path: Path, steps: Sequence[Step], *, branch: str = "main") -> list[str]:
    """A bare repository at ``path`` whose ``branch`` holds ``steps`` in order; their SHAs."""
    repo = Repo.init_bare(str(path), mkdir=True)
    files: dict[str, bytes] = {}
    parent: bytes | None = None
    shas: list[str] = []
    with repo:
        for step in steps:
            for name, text in step.files.items():
                if text is None:
                    files.pop(name, None)
                else:
                    files[name] = text.encode()
            tree = _tree(repo, files)
            parent = _commit(repo, tree=tree, parent=parent, step=step)
            shas.append(parent.decode())
        ref = f"refs/heads/{branch}".encode()
        repo.refs[ref] = shas[-1].encode()
        repo.refs.set_symbolic_ref(b"HEAD", ref)
    return shas


def write_bundle(repo_path: Path, target: Path) -> None:
    """Every branch of the repository at ``repo_path`` as a bundle file."""
    with Repo(str(repo_path)) as repo:
        refs = [r for r in repo.get_refs() if r.startswith(b"refs/heads/")]
        made = bundle.create_bundle_from_repo(repo, refs=sorted(refs), version=2)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with target.open("wb") as out:
                bundle.write_bundle(out, made)
        finally:
            made.close()


def _tree(repo: Repo, files: Mapping[str, bytes]) -> bytes:
    """The tree of ``files`` (nested folders included), written to the object store."""
    folders: dict[str, dict[str, bytes]] = {}
    blobs: dict[str, bytes] = {}
    for name, data in files.items():
        head, _, rest = name.partition("/")
        if rest:
            folders.setdefault(head, {})[rest] = data
        else:
            blob = Blob.from_string(data)
            repo.object_store.add_object(blob)
            blobs[head] = blob.id
    tree = Tree()
    for name, blob_id in blobs.items():
        tree.add(name.encode(), 0o100644, blob_id)
    for name, inner in folders.items():
        tree.add(name.encode(), 0o040000, _tree(repo, inner))
    repo.object_store.add_object(tree)
    return tree.id


def _commit(repo: Repo, *, tree: bytes, parent: bytes | None, step: Step) -> bytes:
    commit = Commit()
    commit.tree = tree
    commit.parents = [parent] if parent else []
    commit.author = commit.committer = AUTHOR
    stamp = int(step.at.timestamp())
    commit.author_time = commit.commit_time = stamp
    commit.author_timezone = commit.commit_timezone = 0
    commit.encoding = b"UTF-8"
    commit.message = step.message.encode() + b"\n"
    repo.object_store.add_object(commit)
    return commit.id


def bundle_heads(data: bytes) -> dict[bytes, bytes]:
    """The references a bundle file's bytes name (its header: ``SHA refname`` lines)."""
    header = data.split(b"\n\n", 1)[0].splitlines()[1:]
    return dict(reversed(line.split(b" ", 1)) for line in header if b" " in line)
