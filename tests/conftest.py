"""Fixtures shared by every test folder: where things are, a throwaway PostgreSQL, the lab."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from diagnose.lab import lab, postgres

LabRunFactory = Callable[..., lab.LabRun]
"""``lab_run(scenario_dir, shift=True)``: stand a scenario up; stopped after the test."""


@pytest.fixture(scope="session")
def repo_root() -> Path:
    """The repository's top folder."""
    return Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_datasets(repo_root: Path) -> Path:
    """The recorded datasets kept beside the repository (``../shared/datasets``), or skip."""
    path = repo_root.parent / "shared" / "datasets"
    if not path.is_dir():
        pytest.skip(f"the shared datasets are not here ({path} is absent)")
    return path


@pytest.fixture(scope="session")
def postgres_cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[postgres.PostgresCluster]:
    """A throwaway PostgreSQL for the whole session; databases made in it are the tests' own."""
    with postgres.PostgresCluster.start(workdir=tmp_path_factory.mktemp("postgres")) as cluster:
        yield cluster


@pytest.fixture
def lab_run(tmp_path: Path) -> Iterator[LabRunFactory]:
    """A factory standing scenarios up in the lab, each torn down after the test."""
    counter = itertools.count()
    with contextlib.ExitStack() as stack:

        def start(scenario_dir: Path, shift: bool = True) -> lab.LabRun:
            workdir = tmp_path / f"lab-{next(counter)}"
            running = lab.running(scenario_dir, now=datetime.now(UTC), shift=shift, workdir=workdir)
            return stack.enter_context(running)

        yield start
