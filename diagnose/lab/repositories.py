"""The lab's repositories: each scenario bundle unpacked into a bare clone the agent reads.

A bundle (``git bundle create FILE --all``) is unpacked with dulwich into a fresh bare
repository: its objects stored, its branches and tags set, ``HEAD`` on the branch the bundle's
``HEAD`` names (else ``main``, ``master`` or the first branch). Nothing in it is run (no hooks,
no checkout). The agent then reads the clone through ``DIAGNOSE_REPOSITORIES``, as it reads a
``git-sync`` clone in a cluster.
"""

from __future__ import annotations

from pathlib import Path

from dulwich import bundle
from dulwich.objects import ObjectID
from dulwich.refs import Ref
from dulwich.repo import Repo

from diagnose.domain import errors


def unpack(source: Path, *, target: Path) -> Path:
    """A bare clone at ``target`` holding the bundle ``source``; returns ``target``."""
    try:
        with source.open("rb") as stream:
            read = bundle.read_bundle(stream)
            try:
                _store(read, source=source, target=target)
            finally:
                read.close()
    except (ValueError, AssertionError, KeyError) as exc:
        raise errors.ScenarioError(f"{source}: not a Git bundle ({exc})") from exc
    return target


def _store(read: bundle.Bundle, *, source: Path, target: Path) -> None:
    if read.prerequisites:
        raise errors.ScenarioError(
            f"{source}: the bundle needs commits it does not hold; "
            "make it with `git bundle create FILE --all`"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with Repo.init_bare(str(target), mkdir=True) as repo:
        read.store_objects(repo.object_store)
        _set_refs(repo, {bytes(k): bytes(v) for k, v in read.references.items()})


def _set_refs(repo: Repo, references: dict[bytes, bytes]) -> None:
    head = references.pop(b"HEAD", None)
    for name, sha in references.items():
        if name.startswith((b"refs/heads/", b"refs/tags/")):
            repo.refs[Ref(name)] = ObjectID(sha)
    branches = sorted(n for n in references if n.startswith(b"refs/heads/"))
    named = [n for n in branches if references[n] == head]
    preferred = [n for n in (b"refs/heads/main", b"refs/heads/master") if n in branches]
    for choice in (named, preferred, branches):
        if choice:
            repo.refs.set_symbolic_ref(Ref(b"HEAD"), Ref(choice[0]))
            return
