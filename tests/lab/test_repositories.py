"""Scenario repositories: bundles in the scenario folder, unpacked by the lab into clones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from connectors import repository
from diagnose import scenario as scenario_format
from diagnose.domain import errors
from diagnose.domain.models import Status
from diagnose.lab import repositories
from tests.support import gitrepos

URL = "https://git.shop.example/shop/orders-api"
T0 = datetime(2026, 4, 7, 8, 0, tzinfo=UTC)


def _bundle(folder: Path) -> tuple[Path, list[str]]:
    steps = [
        gitrepos.Step("one", T0, {"a.py": "x = 1\n"}),
        gitrepos.Step("two", T0 + timedelta(minutes=1), {"docs/b.md": "# b\n"}),
    ]
    shas = gitrepos.build(folder / "source.git", steps)
    target = folder / "scenario" / "repositories" / "orders-api.bundle"
    gitrepos.write_bundle(folder / "source.git", target)
    return target, shas


def _scenario(folder: Path, entry: dict[str, str]) -> scenario_format.Scenario:
    data = {
        "format": 1,
        "name": "code",
        "time": {"start": "2026-04-07T09:00:00Z", "end": "2026-04-07T10:00:00Z"},
        "trigger": {
            "source": "manual",
            "title": "t",
            "service": "orders-api",
            "at": "2026-04-07T09:59:00Z",
        },
        "repositories": [entry],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scenario.yaml").write_text(yaml.safe_dump(data))
    return scenario_format.Scenario.load(folder)


def test_an_unpacked_bundle_is_a_clone_the_connector_reads(tmp_path: Path) -> None:
    """The lab's clone of a bundle answers a range read with the bundle's commits."""
    bundle, shas = _bundle(tmp_path)
    clone = repositories.unpack(bundle, target=tmp_path / "lab" / "orders-api")
    found = repository.LocalRepositories.of({URL: clone}).list_commits(
        repository=URL, since=shas[0], until=shas[1]
    )
    assert found.status is Status.OK
    assert [c["subject"] for c in found.raw["commits"]] == ["two"]


def test_a_scenario_lists_its_repositories_with_their_bundles(tmp_path: Path) -> None:
    """``repositories: [{name, url}]`` finds ``repositories/<name>.bundle`` by default."""
    bundle, _ = _bundle(tmp_path)
    loaded = _scenario(tmp_path / "scenario", {"name": "orders-api", "url": URL})
    [(spec, path)] = loaded.repository_bundles()
    assert (spec.url, path) == (URL, bundle.resolve())


@pytest.mark.parametrize("bundle", ["repositories/missing.bundle", "../outside.bundle"])
def test_a_bundle_missing_or_outside_the_folder_is_refused(tmp_path: Path, bundle: str) -> None:
    """A bundle that is not in the scenario folder is named in a scenario error."""
    (tmp_path / "outside.bundle").write_bytes(b"")
    loaded = _scenario(tmp_path / "scenario", {"name": "orders-api", "url": URL, "bundle": bundle})
    with pytest.raises(errors.ScenarioError, match="orders-api"):
        loaded.repository_bundles()


def test_a_file_that_is_not_a_bundle_is_refused(tmp_path: Path) -> None:
    """Unpacking a file that is not a Git bundle names the file."""
    fake = tmp_path / "fake.bundle"
    fake.write_text("not a bundle\n")
    with pytest.raises(errors.ScenarioError, match=r"fake\.bundle"):
        repositories.unpack(fake, target=tmp_path / "clone")
