"""The bundled scenarios whose answer is in the application's repository, through the real CLI
and the lab (the repository bundle unpacked into a clone the agent reads)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from pathlib import Path

import pytest
import yaml

from tests.e2e.test_cli_lab import SCENARIOS, _diagnose, _env, _run_json

pytestmark = [pytest.mark.slow, pytest.mark.lab]


@pytest.mark.parametrize(
    ("scenario", "subject", "file"),
    [
        (
            "code-migration-dropped-index",
            "Tidy up order indexes",
            "migrations/versions/0042_tidy_order_indexes.py",
        ),
        ("code-slow-query", "Look orders up by coupon code", "orders/queries.py"),
        (  # no CI annotations: the Argo CD Application's sync names the commits
            "code-argocd-sync",
            "Tidy up order indexes",
            "migrations/versions/0042_tidy_order_indexes.py",
        ),
        # no CI annotations: the Flux Kustomization's applied revision names the commits
        ("code-flux-kustomization", "Look orders up by coupon code", "orders/queries.py"),
    ],
)
def test_the_leader_names_the_commit_and_file_behind_the_probes_finding(
    tmp_path: Path, scenario: str, subject: str, file: str
) -> None:
    """The database hypothesis leads and its first suspect is the commit and file that caused
    it, inside the rollout's range; the fix stays a non-blocking index."""
    result = _run_json(scenario, _env(tmp_path))
    top = result["hypotheses"][0]
    assert (top["kind"], top["component"]) == ("database", "postgres/shop")
    code = top["code"]
    subjects = {c["sha"]: c["subject"] for c in code["commits"]}
    suspect = code["suspects"][0]
    assert (subjects[suspect["sha"]], suspect["file"]) == (subject, file)
    assert result["fixes"][0]["kind"] == "create_index"
    assert "CONCURRENTLY" in result["fixes"][0]["command"]


def test_a_rollout_of_documentation_only_is_named_as_such_and_not_suspected(
    tmp_path: Path,
) -> None:
    """The decoy rollout's range is shown with no suspect and its summary says it touched only
    documentation; the database leads without a commit pinned on it."""
    result = _run_json("code-decoy-docs-rollout", _env(tmp_path))
    top = result["hypotheses"][0]
    assert (top["kind"], top["component"]) == ("database", "postgres/shop")
    assert top.get("code") is None
    rollout = next(h for h in result["hypotheses"] if h.get("change") == "deployment/orders-api@8")
    assert rollout["code"]["suspects"] == []
    assert "touching only documentation" in rollout["summary"]
    assert rollout["confidence"] < top["confidence"]


def test_diagnose_show_lists_the_suspect_before_the_range(tmp_path: Path) -> None:
    """``diagnose show`` prints the range behind the leader, the suspect line first, then each
    commit with its files."""
    env = _env(tmp_path)
    result = _run_json("code-migration-dropped-index", env)
    shown = _diagnose("show", result["run_id"], env=env)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("code behind #1"))
    suspect = lines[head + 1]
    assert suspect.strip().startswith("suspect ")
    assert "migrations/versions/0042_tidy_order_indexes.py: drops index" in suspect
    commits = [line.strip() for line in lines[head + 2 : head + 5]]
    assert [c.split(" ", 1)[1].split(" (")[0] for c in commits] == [
        "Show order totals in euros",
        "Document the orders endpoints",
        "Tidy up order indexes",
    ]


def test_a_helm_upgrade_is_named_on_its_rollout_with_the_one_key_it_changed(
    tmp_path: Path,
) -> None:
    """The database leads with the commit behind it; the rollout says which Helm revision
    applied it and the one value key it changed, and no value of the release is shown."""
    result = _run_json("code-helm-upgrade", _env(tmp_path))
    top = result["hypotheses"][0]
    assert top["code"]["suspects"][0]["file"] == "orders/queries.py"
    rollout = next(h for h in result["hypotheses"] if h.get("change") == "deployment/orders-api@8")
    assert rollout["delivery"]["tool"] == "helm"
    assert rollout["delivery"]["changed_keys"] == ["image.tag"]
    assert "which changed values image.tag" in rollout["summary"]
    assert "not-a-real-password" not in json.dumps(result)


@pytest.mark.parametrize(
    ("scenario", "kind", "command"),
    [
        ("code-helm-upgrade", "helm_rollback", "helm rollback orders-api 1 -n shop --wait"),
        ("code-argocd-sync", "argocd_rollback", "argocd app rollback shop-orders 11"),
    ],
)
def test_a_rollout_a_delivery_tool_applied_is_undone_through_that_tool(
    tmp_path: Path, scenario: str, kind: str, command: str
) -> None:
    """The rollout's fix is Helm's or Argo CD's rollback to the sync before, not `kubectl
    rollout undo` (the next sync would put the bad version back); the agent does not run it
    and says so."""
    result = _run_json(scenario, _env(tmp_path))
    rollout = next(
        i for i, h in enumerate(result["hypotheses"]) if h["change"] == "deployment/orders-api@8"
    )
    [fix] = [f for f in result["fixes"] if f["hypothesis"] == rollout]
    assert (fix["kind"], fix["command"], fix["action"]) == (kind, command, None)
    assert fix["dry_run_result"]["outcome"] == "not run"
    assert "every " in fix["blast_radius"] and "It worked when" in fix["blast_radius"]


def test_a_rollout_flux_applied_is_reverted_in_git_and_reconciled(tmp_path: Path) -> None:
    """code-flux-kustomization: Flux would re-apply a `kubectl rollout undo`, so the rollout's
    fix reverts the commits Kustomization shop-orders applied and reconciles it; with no
    metrics read it promises no verify query, and names the rollout status instead."""
    result = _run_json("code-flux-kustomization", _env(tmp_path))
    rollout = next(
        i for i, h in enumerate(result["hypotheses"]) if h["change"] == "deployment/orders-api@8"
    )
    [fix] = [f for f in result["fixes"] if f["hypothesis"] == rollout]
    assert (fix["kind"], fix["action"]) == ("flux_revert", None)
    assert "revert --no-edit 2c0f447287defcfb87ef2d6a0628a9e52c9bfd9c..a23164c" in fix["command"]
    assert fix["command"].endswith(
        "flux reconcile kustomization shop-orders -n flux-system --with-source"
    )
    assert "flux suspend kustomization shop-orders -n flux-system" in fix["blast_radius"]
    assert fix["verify"] == "" and "verify query recovers" not in fix["blast_radius"]
    assert "kubectl rollout status deployment/orders-api -n shop" in fix["blast_radius"]
    assert fix["dry_run_result"]["outcome"] == "not run"


def test_a_configmap_argocd_manages_is_reverted_in_its_repository(tmp_path: Path) -> None:
    """config-argocd-sync: the culprit ConfigMap is listed by the Argo CD Application that
    synced it, so its fix reverts the synced commits in the deploy repository and syncs;
    no kubectl apply that the next sync would undo."""
    result = _run_json("config-argocd-sync", _env(tmp_path))
    [fix] = [f for f in result["fixes"] if f["target"] == "configmap/payments-config"]
    assert fix["kind"] == "config_revert"
    assert (
        "kubectl apply" not in fix["command"]
        and "argocd app sync shop-payments" in (fix["command"])
    )
    assert "revert --no-edit 0b7f3a90b7f3a90b7f3a90b7f3a90b7f3a9c4d5e..5e1d0c2" in fix["command"]
    assert "in https://git.shop.example/shop/deploy" in fix["blast_radius"]


def test_the_terminal_view_lists_the_suspect_before_the_range(tmp_path: Path) -> None:
    """``diagnose run`` in a terminal (no --json) prints the range behind the leader under the
    hypotheses: the suspect line first, then the commits."""
    done = _diagnose("run", "--scenario", str(SCENARIOS / "code-slow-query"), env=_env(tmp_path))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("code behind #1"))
    block = list(itertools.takewhile(lambda line: line.startswith("  "), lines[head + 1 :]))
    suspects = [line for line in block if line.strip().startswith("suspect ")]
    assert suspects and block[: len(suspects)] == suspects
    assert "orders/queries.py" in suspects[0]
    commits = block[len(suspects) :]
    assert commits and all(re.match(r"^  [0-9a-f]{7} ", line) for line in commits)


def test_a_repository_with_no_clone_is_a_note_not_an_error(tmp_path: Path) -> None:
    """The scenario's bundle is for another URL, so the rollout's repository has no clone: the
    run still answers (the database leads, without a range) and a note says which setting to
    give."""
    copy = tmp_path / "code-slow-query"
    shutil.copytree(SCENARIOS / "code-slow-query", copy)
    manifest = yaml.safe_load((copy / "scenario.yaml").read_text())
    manifest["repositories"][0]["url"] = "https://git.shop.example/shop/other"
    (copy / "scenario.yaml").write_text(yaml.safe_dump(manifest))
    done = _diagnose("run", "--scenario", str(copy), "--json", env=_env(tmp_path / "state"))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["hypotheses"][0]["kind"], result["hypotheses"][0].get("code")) == (
        "database",
        None,
    )
    [note] = [n for n in result["notes"] if n.startswith("code: ")]
    assert "no local clone of https://git.shop.example/shop/orders-api" in note
    assert "DIAGNOSE_REPOSITORIES" in note
