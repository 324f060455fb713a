"""The bundled scenarios whose cause only the pod logs show, and the one whose logs are noise,
through the real CLI and the lab (pods/log served by the lab's Kubernetes API)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_cli_lab import _diagnose, _env, _run_json

pytestmark = [pytest.mark.slow, pytest.mark.lab]


@pytest.mark.parametrize(
    ("scenario", "kind", "component"),
    [
        ("logs-exception-after-rollout", "deploy", "checkout"),
        ("logs-dependency-refused", "dependency", "external/api.bank.example"),
    ],
)
def test_a_cause_only_the_logs_show_is_named_and_cites_kubectl_logs(
    tmp_path: Path, scenario: str, kind: str, component: str
) -> None:
    """The leader is the logs' cause, above the abstention threshold, and one of its evidence
    records re-runs as a ``kubectl logs`` command."""
    result = _run_json(scenario, _env(tmp_path))
    top = result["hypotheses"][0]
    assert (top["kind"], top["component"]) == (kind, component)
    assert result["abstained"] is False
    queries = {e["id"]: e["query"] for e in result["evidence"]}
    assert any(queries.get(ev, "").startswith("kubectl logs ") for ev in top["evidence"])


def test_a_chatty_service_does_not_mislead(tmp_path: Path) -> None:
    """catalog logs errors all along and a new info line in the incident: nothing the logs
    found is about it, and the cart rollout the metrics show leads."""
    result = _run_json("logs-chatty-noise", _env(tmp_path))
    assert (result["hypotheses"][0]["kind"], result["hypotheses"][0]["component"]) == (
        "deploy",
        "cart",
    )
    about_catalog = [
        e["summary"] for e in result["evidence"] if e["summary"].startswith("logs: catalog:")
    ]
    assert about_catalog, "the new warm-up line is found (and weighs nothing)"
    assert not [s for s in about_catalog if any(w in s for w in ("error", "warning", "exception"))]
    assert all(h["component"] != "catalog" for h in result["hypotheses"][:3])


def test_a_replay_reads_the_logs_from_the_bundle(tmp_path: Path) -> None:
    """The log reads are in the bundle: a replay, with no server, ranks the same way."""
    env = _env(tmp_path)
    result = _run_json("logs-dependency-refused", env)
    replayed = _diagnose("replay", str(tmp_path / "bundles" / result["run_id"]), "--json", env=env)
    assert replayed.returncode == 0, replayed.stderr
    again = json.loads(replayed.stdout)
    strip = lambda hs: [(h["kind"], h["component"], h["change"]) for h in hs]  # noqa: E731
    assert strip(again["hypotheses"]) == strip(result["hypotheses"])
