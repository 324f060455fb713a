"""Playbooks in the lab: each shipped playbook runs on a scenario its alert matches, and the
playbook written in docs/playbooks.md is matched, linted and used on a service whose metrics
have team-made names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from diagnose import playbook
from tests.playbooks.test_playbooks import FIXTURES, ROOT, playbook_of, scenario_folders

pytestmark = [pytest.mark.lab, pytest.mark.slow]

BIN = Path(sys.executable).parent
DOC_PLAYBOOKS = FIXTURES / "ledger-playbooks"
DERIVED_FROM = ROOT / "tests" / "scenarios" / "oomkill-memory-limit"
"""The fixtures holding only a scenario.yaml replay this incident's data under another alert."""


def _diagnose(*args: str, state_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    return subprocess.run(
        [str(BIN / "diagnose"), *args],
        env=clean | {"DIAGNOSE_STATE_DIR": str(state_dir), "NO_COLOR": "1"} | env,
        capture_output=True,
        text=True,
        timeout=240,
        stdin=subprocess.DEVNULL,
    )


def _staged(folder: Path, tmp_path: Path) -> Path:
    """The scenario folder, with the data of the incident it replays when it has none."""
    if (folder / "metrics.om").exists() or (folder / "postgres").exists():
        return folder
    staged = tmp_path / folder.name
    shutil.copytree(DERIVED_FROM, staged, ignore=shutil.ignore_patterns("scenario.yaml"))
    shutil.copy(folder / "scenario.yaml", staged / "scenario.yaml")
    return staged


def _run(folder: Path, tmp_path: Path, **env: str) -> dict[str, Any]:
    done = _diagnose("run", "--scenario", str(folder), "--json", state_dir=tmp_path, **env)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _first_scenario_of(name: str) -> Path:
    return next(f for f in scenario_folders() if playbook_of(f) == name)


@pytest.mark.parametrize(
    "name", sorted(item.playbook.name for item in playbook.load([playbook.DEFAULT_DIR]))
)
def test_each_shipped_playbook_runs_on_a_scenario_it_matches(name: str, tmp_path: Path) -> None:
    """The report names the playbook; its queries ran (with series, where the scenario has
    metrics) and its probes are exactly the ones run (where it has a database)."""
    folder = _staged(_first_scenario_of(name), tmp_path)
    result = _run(folder, tmp_path)
    assert result["playbook"]["name"] == name
    ran = {e["query"]: e for e in result["evidence"] if e["source"] == "prometheus"}
    if (folder / "metrics.om").exists():
        for query in result["playbook"]["queries"]:
            assert ran[query["query"]]["status"] == "ok", ran[query["query"]]["summary"]
    if (folder / "postgres").exists():
        probed = {
            e["summary"].split(":")[0] for e in result["evidence"] if e["source"] == "postgres"
        }
        assert probed - {"explain_generic"} == set(result["playbook"]["probes"])
    assert result["hypotheses"], result["notes"]


def test_the_documented_playbook_is_matched_linted_and_used(tmp_path: Path) -> None:
    """docs/playbooks.md's example on ledger-custom-metrics: failures counted under a team's own
    metric name are read as errors, cited by the top hypothesis and used to verify the fix."""
    doc = (ROOT / "docs" / "playbooks.md").read_text()
    written = (DOC_PLAYBOOKS / "ledger-failures.yaml").read_text()
    block = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert textwrap.dedent(block).strip() == written.split("\n", 1)[1].strip()  # verbatim
    lint = _diagnose("playbooks", "lint", str(DOC_PLAYBOOKS), state_dir=tmp_path)
    assert lint.returncode == 0, lint.stdout
    explain = _diagnose(
        "playbooks",
        "explain",
        "alertname=LedgerTxnFailures",
        "-n",
        "fin",
        "--json",
        state_dir=tmp_path,
        DIAGNOSE_PLAYBOOKS=f"{playbook.DEFAULT_DIR}:{DOC_PLAYBOOKS}",
    )
    assert json.loads(explain.stdout)["playbook"]["name"] == "ledger-failures"

    result = _run(
        FIXTURES / "ledger-custom-metrics",
        tmp_path,
        DIAGNOSE_PLAYBOOKS=f"{playbook.DEFAULT_DIR}:{DOC_PLAYBOOKS}",
    )
    assert result["playbook"]["name"] == "ledger-failures"
    assert result["playbook"]["matched_by"] == "labels"
    errors = result["playbook"]["queries"][0]
    evidence = {e["query"]: e for e in result["evidence"]}
    assert evidence[errors["query"]]["status"] == "ok"
    top = result["hypotheses"][0]
    assert (top["kind"], top["component"], top["change"]) == (
        "deploy",
        "ledger",
        "deployment/ledger@7",
    )
    assert evidence[errors["query"]]["id"] in top["evidence"]
    rollback = next(f for f in result["fixes"] if f["kind"] == "rollback")
    assert rollback["verify"] == errors["query"]
    names = [f'__name__="{q["series"]}"' for q in result["playbook"]["queries"]]
    assert not [e["query"] for e in result["evidence"] if any(n in e["query"] for n in names)]


SURGE = ROOT / "tests" / "scenarios" / "traffic-surge"


@pytest.mark.parametrize(
    ("fixes", "first", "outside"),
    [
        ("[{kind: scale, factor: 2}]", "scale", "config_revert"),
        ("[config_revert]", "config_revert", "scale"),
    ],
)
def test_the_playbooks_fixes_shape_the_proposals(
    fixes: str, first: str, outside: str, tmp_path: Path
) -> None:
    """traffic-surge under a latency playbook that lists only some fixes: its kinds come first,
    the other catalogue fix is still proposed, marked and after them, and a scale template's
    factor sizes the scale-out from the recorded replica count (frontend runs 2)."""
    books = tmp_path / "books"
    shutil.copytree(playbook.DEFAULT_DIR, books)
    target = books / "latency-slo-burn.yaml"
    text = target.read_text()
    listed = next(line for line in text.splitlines() if line.startswith("fixes:"))
    target.write_text(text.replace(listed, f"fixes: {fixes}"))
    result = _run(SURGE, tmp_path, DIAGNOSE_PLAYBOOKS=str(books))
    assert result["playbook"]["name"] == "latency-slo-burn"
    kinds = [f["kind"] for f in result["fixes"]]
    assert kinds == [first, outside]
    assert "outside_playbook" not in result["fixes"][0]
    mark = result["fixes"][1]["outside_playbook"]
    assert mark.startswith("outside playbook latency-slo-burn's fixes")
    scale = next(f for f in result["fixes"] if f["kind"] == "scale")
    assert scale["target"] == "deployment/frontend"
    if first == "scale":
        assert scale["command"] == "kubectl scale deployment/frontend -n shop --replicas=5"
        assert scale["action"]["replicas"] == 5
        assert scale["dry_run_result"]["outcome"] == "accepted", scale["dry_run_result"]
    else:
        assert "* 3 / 2 + 1" in scale["command"]
    shown = _diagnose("show", result["run_id"], state_dir=tmp_path, DIAGNOSE_PLAYBOOKS=str(books))
    assert mark in " ".join(shown.stdout.split()), shown.stdout
