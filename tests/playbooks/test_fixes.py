"""A playbook's fixes shape the proposals: listed kinds first, other catalogue fixes kept but
marked and after them, and fix templates' parameters held within the catalogue's bounds."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from diagnose import cli, playbook
from diagnose.analysis import fixing
from diagnose.domain import fixes, models
from graphs import proposing
from tests.playbooks.test_playbooks import GOOD, PROBES

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _write(tmp_path: Path, fixes: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(GOOD.replace("fixes: [rollback]\n", fixes))
    return path


def test_templates_are_bare_kinds_or_kinds_with_parameters(tmp_path: Path) -> None:
    path = _write(tmp_path, "fixes:\n  - rollback\n  - {kind: scale, factor: 2}\n")
    (loaded,) = playbook.load([path], probe_names=PROBES)
    assert loaded.playbook.fix_kinds == ["rollback", "scale"]
    trigger = models.Trigger(source="manual", title="x", service="s", namespace="n", at=AT)
    summary = playbook.summary(loaded, trigger, window_s=60)
    assert summary["fixes"] == ["rollback", "scale"]
    assert summary["fix_templates"] == {"scale": {"factor": 2.0}}


def test_a_parameter_beyond_the_catalogues_bounds_is_a_lint_error_at_its_line(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, "fixes:\n  - rollback\n  - kind: scale\n    factor: 10\n")
    assert playbook.lint([path], probe_names=PROBES) == [
        f"{path}:15: fixes.1.factor: Input should be less than or equal to 3"
    ]
    path = _write(tmp_path, "fixes:\n  - {kind: raise_limits, multiplier: 1}\n")
    assert playbook.lint([path], probe_names=PROBES) == [
        f"{path}:13: fixes.0.multiplier: Input should be greater than or equal to 1.1"
    ]


def test_a_parameter_of_another_kind_or_a_kind_twice_is_a_lint_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "fixes:\n  - rollback\n  - {kind: rollback, factor: 2}\n")
    assert playbook.lint([path], probe_names=PROBES) == [
        f"{path}:14: fixes.1: Value error, 'factor' applies to scale only, not to rollback"
    ]
    path = _write(tmp_path, "fixes: [scale, rollback, scale]\n")
    assert playbook.lint([path], probe_names=PROBES) == [
        f"{path}:12: fixes: Value error, fix kinds listed more than once: scale"
    ]


def test_the_schema_bounds_are_the_catalogues(tmp_path: Path) -> None:
    """A template is checked against the bounds of the catalogue it is validated with."""
    narrow = fixes.Parameter("factor", default=1.5, least=1.2, most=2.0)
    scale = dataclasses.replace(fixes.CATALOGUE.kind("scale"), parameters=(narrow,))
    catalogue = fixes.Catalogue(
        tuple(scale if k.name == "scale" else k for k in fixes.CATALOGUE.kinds)
    )
    path = _write(tmp_path, "fixes:\n  - {kind: scale, factor: 2.5}\n")
    assert playbook.lint([path], probe_names=PROBES) == []
    assert playbook.lint([path], probe_names=PROBES, catalogue=catalogue) == [
        f"{path}:13: fixes.0.factor: Input should be less than or equal to 2"
    ]


def test_the_catalogue_holds_parameters_within_its_bounds_even_unchecked() -> None:
    assert fixes.SCALE_FACTOR.bounded(None) == 1.5
    assert fixes.SCALE_FACTOR.bounded(50) == 3.0
    assert fixes.LIMIT_MULTIPLIER.bounded(0.1) == 1.1
    sizing = fixing.Sizing(scale_factor=50, replicas={"web": 4})
    (fix,) = fixing.propose_fixes(
        [_hypothesis(models.CauseKind.TRAFFIC)], namespace="shop", sizing=sizing
    )
    assert fix.action is not None and fix.action.get("replicas") == 13  # 4 * 3 + 1, not 4 * 50 + 1


def _hypothesis(kind: models.CauseKind, change: str | None = None) -> models.Hypothesis:
    return models.Hypothesis(
        kind=kind,
        component="web",
        confidence=0.6,
        summary=f"{kind.value} on web",
        evidence=("ev-1",),
        change=change,
        onset=AT,
    )


def _asked(matched: dict[str, Any]) -> dict[str, Any]:
    hypotheses = [
        _hypothesis(models.CauseKind.TRAFFIC),
        _hypothesis(models.CauseKind.CONFIG, "configmap/web-config"),
        _hypothesis(models.CauseKind.RESOURCE, "deployment/web@3"),
    ]
    return {
        "correlation": {"hypotheses": [h.to_dict() for h in hypotheses], "components": []},
        "namespace": "shop",
        "matched": matched,
    }


DEPLOYMENTS = models.Evidence(
    id="ev-d",
    source="kubernetes",
    query="kubectl get deployments -n shop -o yaml",
    window=None,
    status=models.Status.OK,
    summary="1 deployment",
    raw=[{"name": "web", "replicas": 4}],
    kind=models.EvidenceKind.DEPLOYMENTS,
)
REPLICASETS = models.Evidence(
    id="ev-r",
    source="kubernetes",
    query="kubectl get replicasets -n shop -o yaml",
    window=None,
    status=models.Status.OK,
    summary="1 replicaset",
    raw=[
        {
            "owner": "deployment/web",
            "revision": 3,
            "resources": {"web": {"limits": {"memory": "256Mi"}}},
        }
    ],
    kind=models.EvidenceKind.REPLICASETS,
)


def test_kinds_the_playbook_lists_come_first_and_the_others_stay_marked() -> None:
    matched = {"name": "surge", "fixes": ["config_revert"]}
    fixes = proposing.proposals(**_asked(matched), evidence=[DEPLOYMENTS, REPLICASETS])
    assert [(f["id"], f["kind"]) for f in fixes] == [
        ("fix-1", "config_revert"),
        ("fix-2", "scale"),
        ("fix-3", "raise_limits"),
    ]
    assert "outside_playbook" not in fixes[0]
    for fix in fixes[1:]:
        assert fix["outside_playbook"] == "outside playbook surge's fixes (config_revert)"


def test_a_playbook_without_fixes_changes_nothing() -> None:
    plain = proposing.proposals(**_asked({}), evidence=[DEPLOYMENTS, REPLICASETS])
    listed = proposing.proposals(
        **_asked({"name": "p", "fixes": []}), evidence=[DEPLOYMENTS, REPLICASETS]
    )
    assert plain == listed
    assert [f["kind"] for f in plain] == ["scale", "config_revert", "raise_limits"]
    assert not any("outside_playbook" in f for f in plain)


def test_templates_size_scaling_and_limits_on_the_same_targets() -> None:
    matched = {
        "name": "p",
        "fixes": ["scale", "raise_limits", "config_revert"],
        "fix_templates": {"scale": {"factor": 2.0}, "raise_limits": {"multiplier": 1.5}},
    }
    default = proposing.proposals(**_asked({}), evidence=[DEPLOYMENTS, REPLICASETS])
    sized = proposing.proposals(**_asked(matched), evidence=[DEPLOYMENTS, REPLICASETS])
    assert [(f["kind"], f["target"]) for f in sized] == [(f["kind"], f["target"]) for f in default]
    scale, limits = sized[0], sized[2]
    assert scale["command"] == "kubectl scale deployment/web -n shop --replicas=9"
    assert scale["action"] == {
        "op": "scale",
        "kind": "deployment",
        "namespace": "shop",
        "name": "web",
        "replicas": 9,
    }
    assert scale["rollback"].endswith("--replicas=4")
    assert "--limits=memory=384Mi" in limits["command"]
    assert "--limits=memory=512Mi" in default[2]["command"]
    assert "* 3 / 2 + 1" in default[0]["command"]


def test_a_factor_without_a_recorded_count_leaves_the_command_to_a_human() -> None:
    matched = {"name": "p", "fixes": ["scale"], "fix_templates": {"scale": {"factor": 2.0}}}
    (scale, *_) = proposing.proposals(**_asked(matched), evidence=[REPLICASETS])
    assert "* 2 / 1 + 1" in scale["command"]
    assert scale["action"] is None


def test_explain_shows_the_templates_parameters(tmp_path: Path) -> None:
    text = GOOD.replace("fixes: [rollback]\n", "fixes: [rollback, {kind: scale, factor: 2}]\n")
    path = tmp_path / "p.yaml"
    path.write_text(text)
    result = CliRunner().invoke(
        cli.app,
        ["playbooks", "explain", "orders are slow"],
        env={"DIAGNOSE_PLAYBOOKS": str(path), "NO_COLOR": "1"},
    )
    assert result.exit_code == 0, result.output
    assert "fixes: rollback, scale (factor=2)" in result.stdout
