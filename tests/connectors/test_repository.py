"""connectors.repository against real Git repositories on disk (built with dulwich)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from connectors import repository
from diagnose.domain import code
from diagnose.domain.models import Status
from tests.support import gitrepos

URL = "https://git.shop.example/shop/orders-api.git"
T0 = datetime(2026, 4, 7, 8, 0, tzinfo=UTC)


@pytest.fixture
def clone(tmp_path: Path) -> tuple[Path, list[str]]:
    steps = [
        gitrepos.Step("Initial orders API", T0, {"app/db.py": "def orders():\n    pass\n"}),
        gitrepos.Step(
            "Drop the old customer index",
            T0 + timedelta(minutes=5),
            {"migrations/versions/0042_drop_idx.py": 'op.drop_index("orders_customer_idx")\n'},
        ),
        gitrepos.Step(
            "Query orders by status",
            T0 + timedelta(minutes=9),
            {
                "app/db.py": (
                    "def orders():\n    return 'SELECT id FROM orders WHERE status = %s'\n"
                ),
                "README.md": "password = hunter2hunter2\n",
            },
        ),
    ]
    path = tmp_path / "orders-api.git"
    return path, gitrepos.build(path, steps)


def _read(path: Path, *, since: str, until: str, url: str = URL) -> code.CommitRangePayload:
    found = repository.LocalRepositories.of({URL: path}).list_commits(
        repository=url, since=since, until=until
    )
    assert found.status is Status.OK, found.summary
    payload: code.CommitRangePayload = found.raw
    return payload


def test_a_range_lists_its_commits_newest_first_with_their_files(
    clone: tuple[Path, list[str]],
) -> None:
    """The commits after ``since`` up to ``until`` come newest first, with their files."""
    path, shas = clone
    payload = _read(path, since=shas[0], until=shas[2])
    assert [c["sha"] for c in payload["commits"]] == [shas[2], shas[1]]
    assert payload["commits"][0]["subject"] == "Query orders by status"
    assert payload["commits"][1]["files"][0]["path"] == "migrations/versions/0042_drop_idx.py"
    assert payload["commits"][1]["files"][0]["change"] == "add"


def test_a_modified_file_carries_the_lines_added_and_removed(
    clone: tuple[Path, list[str]],
) -> None:
    """A modified file lists the lines its commit added and removed, not the whole file."""
    path, shas = clone
    payload = _read(path, since=shas[1], until=shas[2])
    by_path = {f["path"]: f for f in payload["commits"][0]["files"]}
    assert by_path["app/db.py"]["added"] == ["    return 'SELECT id FROM orders WHERE status = %s'"]
    assert by_path["app/db.py"]["removed"] == ["    pass"]


def test_added_lines_are_redacted(clone: tuple[Path, list[str]]) -> None:
    """A secret in an added line never leaves the connector."""
    path, shas = clone
    payload = _read(path, since=shas[1], until=shas[2])
    readme = next(f for f in payload["commits"][0]["files"] if f["path"] == "README.md")
    assert "hunter2hunter2" not in " ".join(readme["added"])


def test_abbreviated_revisions_and_other_url_spellings_resolve(
    clone: tuple[Path, list[str]],
) -> None:
    """Seven-digit SHAs name their commits, and an ssh URL finds the clone of the https one."""
    path, shas = clone
    payload = _read(
        path, since=shas[0][:7], until=shas[1][:7], url="git@git.shop.example:shop/orders-api"
    )
    assert payload["from"] == shas[0] and payload["to"] == shas[1]
    assert len(payload["commits"]) == 1


def test_the_commit_bound_cuts_the_oldest_and_says_so(clone: tuple[Path, list[str]]) -> None:
    """With a bound of one commit, the newest is kept and the range says it was cut."""
    path, shas = clone
    bounded = repository.LocalRepositories.of(
        {URL: path}, bounds=repository.RepositoryBounds(commits=1)
    )
    found = bounded.list_commits(repository=URL, since=shas[0], until=shas[2])
    assert [c["sha"] for c in found.raw["commits"]] == [shas[2]]
    assert found.raw["truncated"] is True


def test_a_repository_without_a_clone_is_an_empty_answer_naming_the_setting() -> None:
    """An unmapped repository is evidence (empty) that says which variable to set."""
    found = repository.LocalRepositories.of({}).list_commits(
        repository=URL, since="a" * 40, until="b" * 40
    )
    assert found.status is Status.EMPTY
    assert "DIAGNOSE_REPOSITORIES" in found.summary


def test_a_missing_clone_is_an_error_answer(tmp_path: Path) -> None:
    """A clone path that holds no repository is evidence (error), not an exception."""
    found = repository.LocalRepositories.of({URL: tmp_path / "nowhere"}).list_commits(
        repository=URL, since="a" * 40, until="b" * 40
    )
    assert found.status is Status.ERROR
    assert "cannot be read" in found.summary


def test_a_revision_the_clone_lacks_is_an_error_answer(clone: tuple[Path, list[str]]) -> None:
    """A stale clone (the new revision not fetched yet) says to fetch it."""
    path, shas = clone
    found = repository.LocalRepositories.of({URL: path}).list_commits(
        repository=URL, since=shas[0], until="f" * 40
    )
    assert found.status is Status.ERROR
    assert "lacks revision" in found.summary and "fetch" in found.summary


def test_repository_keys_ignore_scheme_user_port_and_suffix() -> None:
    """https, ssh and scp-like spellings of one repository share a key."""
    keys = {
        code.repository_key(u)
        for u in (
            "https://Git.Shop.Example/shop/orders-api.git",
            "ssh://git@git.shop.example:22/shop/orders-api",
            "git@git.shop.example:shop/orders-api.git",
            "https://git.shop.example/shop/orders-api/",
        )
    }
    assert keys == {"git.shop.example/shop/orders-api"}
