"""A lab standing the bad-deploy scenario up, and agents wired to it as ``diagnose`` wires
them (settings → connectors → graph), with execution on or off."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from diagnose import wiring
from diagnose.lab import kubeapi, lab
from diagnose.settings import Settings
from graphs import runner
from tests.support import approvals

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
BAD_DEPLOY = SCENARIOS / "bad-deploy-5xx"


@pytest.fixture(scope="module")
def bad_deploy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lab.LabRun]:
    """bad-deploy-5xx in the lab, shifted so its trigger fired minutes ago."""
    workdir = tmp_path_factory.mktemp("lab")
    with lab.running(BAD_DEPLOY, now=datetime.now(UTC), workdir=workdir) as run:
        yield run


@pytest.fixture
def kube(bad_deploy: lab.LabRun, tmp_path: Path) -> Iterator[kubeapi.KubeApiServer]:
    """A fresh Kubernetes API over the scenario's (shifted) objects, for one test: writes to it
    are the test's own, and its request log holds exactly what the agent sent."""
    with kube_api(bad_deploy, workdir=tmp_path / "kube") as server:
        yield server


@contextmanager
def kube_api(
    run: lab.LabRun,
    *,
    workdir: Path,
    hold_writes_s: float = 0.0,
    extra: list[dict[str, Any]] | None = None,
) -> Iterator[kubeapi.KubeApiServer]:
    """The scenario's objects (plus ``extra``) served by a Kubernetes API of their own."""
    dump = run.workdir / "kubernetes" / "kubernetes-objects.json"
    objects = json.loads(dump.read_text(encoding="utf-8")) + list(extra or [])
    with kubeapi.KubeApiServer.serve(
        objects, workdir=workdir, hold_writes_s=hold_writes_s
    ) as server:
        yield server


def lab_settings(
    run: lab.LabRun, kube: kubeapi.KubeApiServer, *, state_dir: Path, **overrides: Any
) -> Settings:
    """Settings pointing at the lab's Prometheus and at ``kube``; execution off unless asked."""
    values: dict[str, Any] = {
        "state_dir": state_dir,
        "prometheus_url": run.endpoints.prometheus_url,
        "kubernetes_url": kube.url,
        "llm_base_url": None,
        "verify_watch_s": 3.0,
        # The forgery tests need a second fix to forge towards: the decoy rollout's, whose
        # hypothesis the analysis rates near zero, gets one only with the floor lowered.
        "fix_min_confidence": 0.0,
        "verify_interval_s": 0.5,
    }
    if overrides.get("execute"):
        values["kubernetes_write_url"] = kube.url
    return Settings.model_validate(values | overrides)


AgentFactory = Callable[..., runner.Agent]


@pytest.fixture
def agents() -> Iterator[AgentFactory]:
    """``agents(settings, progress=…)``: an agent wired from settings, closed after the test."""
    with ExitStack() as stack:

        def make(
            settings: Settings, progress: Callable[[str], None] = lambda _m: None
        ) -> runner.Agent:
            return stack.enter_context(wiring.open_agent(settings, progress=progress))

        yield make


def writes(kube: kubeapi.KubeApiServer, *, dry_run: bool) -> list[dict[str, Any]]:
    """The PATCH requests the API received, dry runs or real ones."""
    return [
        r
        for r in kube.write_requests()
        if r["method"] == "PATCH" and (r["query"].get("dryRun") == "All") is dry_run
    ]


def approval_of(paused: runner.Paused, fix_id: str, *, approver: str = "alice") -> dict[str, Any]:
    """A complete approval of ``fix_id`` as a human would give it."""
    return {
        "verdict": "approve",
        "approver": approver,
        "reason": "5xx began with the rollout",
        "fix": fix_id,
        "checked_evidence": approvals.checked_for(paused.state, fix_id),
    }


class Crash(Exception):
    """Raised from the progress callback as a step starts: the process stops there, as if
    killed, after the checkpoints before that step were written."""


def crash_before(step: str) -> Callable[[str], None]:
    def progress(message: str) -> None:
        if message == f"{step}…":
            raise Crash(step)

    return progress
