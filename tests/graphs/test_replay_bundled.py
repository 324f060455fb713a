"""Replaying a run's bundle reproduces the run: every bundled scenario is stood up in the lab
and diagnosed through the real wiring (a model at the port reading each digest), then its
bundle alone is replayed through the same pipeline (``diagnose replay``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors import bundle
from diagnose import evaluation, wiring
from diagnose.domain import models, reasoning
from diagnose.lab import lab
from diagnose.settings import Settings
from graphs import pipeline
from tests.e2e.conftest import _scenario_metrics  # noqa: F401  (an autouse session fixture)

pytestmark = [pytest.mark.lab, pytest.mark.slow]

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
BUNDLED = sorted(p.parent.name for p in SCENARIOS.glob("*/scenario.yaml"))
DRY_RUN_KEYS = ("sweep", "patch", "digest", "dry_run_result")
"""What a fix gets from the cluster's dry run after the pipeline chose it: not replayed."""


@dataclasses.dataclass
class Echo:
    """A model at the port: it confirms the leading candidate and claims another cause on the
    same component with the same evidence (which code settles as it sees fit)."""

    asked: int = 0

    def reason(
        self,
        digest: reasoning.Digest,
        *,
        budget: reasoning.Budget,
        toolbox: reasoning.Toolbox | None = None,
    ) -> reasoning.Reasoning:
        self.asked += 1
        claims = [_claim(h, kind=h.kind, digest=digest) for h in digest.candidates[:1]]
        claims += [_claim(h, kind=_other(h.kind), digest=digest) for h in digest.candidates[:1]]
        usage = reasoning.Usage(prompt_tokens=1200, completion_tokens=80, requests=1, seconds=0.4)
        status = reasoning.ReasoningStatus.ACCEPTED if claims else reasoning.ReasoningStatus.STOPPED
        reasons = () if claims else ("no candidate to read",)
        return reasoning.Reasoning(status, tuple(claims), reasons, usage, model="echo")


def _claim(
    hypothesis: models.Hypothesis, *, kind: models.CauseKind, digest: reasoning.Digest
) -> reasoning.Claim:
    cited = tuple(e for e in hypothesis.evidence if e in digest.evidence_ids)
    change = hypothesis.change if kind is hypothesis.kind else None
    return reasoning.Claim(kind, hypothesis.component, change, cited, "the model's reading")


def _other(kind: models.CauseKind) -> models.CauseKind:
    return (
        models.CauseKind.TRAFFIC
        if kind is not models.CauseKind.TRAFFIC
        else models.CauseKind.RESOURCE
    )


def _chosen(fixes: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in f.items() if k not in DRY_RUN_KEYS} for f in fixes]


@pytest.mark.parametrize("scenario", BUNDLED)
def test_the_replayed_bundle_gives_the_runs_hypotheses_confidences_and_fixes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: str
) -> None:
    """The replay's hypotheses (confidences included), abstention, model reading and chosen
    fixes equal the run's, and the model is not asked again."""
    monkeypatch.setenv("DIAGNOSE_STATE_DIR", str(tmp_path / "state"))
    model = Echo()
    with lab.running(SCENARIOS / scenario, now=datetime.now(UTC), workdir=tmp_path / "lab") as up:
        settings = wiring.with_endpoints(Settings(), up.endpoints)
        with wiring.open_agent(settings, progress=lambda _m: None, remember=False) as agent:
            agent.context = dataclasses.replace(agent.context, reasoner=model)
            paused = agent.start(up.trigger)
            if paused.waiting:
                agent.resume(paused.run_id, evaluation.REJECT)
    ran = paused.state
    folder = settings.bundles_dir / paused.run_id
    replayed = pipeline.replay_state(
        bundle.read_manifest(folder), evidence=bundle.read_evidence(folder), run_id=folder.name
    )
    assert model.asked == 1
    assert replayed["correlation"]["hypotheses"] == ran["correlation"]["hypotheses"]
    assert replayed["correlation"]["abstained"] == ran["correlation"]["abstained"]
    assert replayed["reasoning"] == ran["reasoning"]
    assert replayed.get("db_fixes", []) == ran.get("db_fixes", [])
    assert _chosen(replayed["fixes"]) == _chosen(ran["fixes"])
