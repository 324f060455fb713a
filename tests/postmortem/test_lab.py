"""End to end through the real CLI: a bundled scenario is diagnosed in the lab, decided on, and
drafted; every timeline line resolves to the stored bundle or the audit log."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from connectors import bundle
from tests.postmortem.conftest import SECTIONS
from tests.support import approvals

pytestmark = [pytest.mark.lab, pytest.mark.slow]

BIN = Path(sys.executable).parent
SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
TIMELINE_LINE = re.compile(r"^- (?P<at>\S+): (?P<what>.+) — \[(?P<ref>[^\]]+)\]\(#[a-z0-9-]+\)$")


def _env(state_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    return env | {"DIAGNOSE_STATE_DIR": str(state_dir), "NO_COLOR": "1"}


def _diagnose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "diagnose"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
    )


def _json(*args: str, env: dict[str, str]) -> Any:
    done = _diagnose(*args, "--json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _section(text: str, title: str) -> list[str]:
    body = text.split(title + "\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in body.splitlines() if line.strip()]


def _check_timeline(
    text: str, *, run_id: str, state_dir: Path, env: dict[str, str], at_least: int
) -> list[str]:
    """Every timeline line names a stored record that exists; returns the lines."""
    folder = state_dir / "bundles" / run_id
    evidence = {e.id for e in bundle.read_evidence(folder)}
    manifest = bundle.read_manifest(folder)
    audit = {f"audit:{e['key']}" for e in _json("audit", run_id, env=env)}
    lines = _section(text, "## Timeline (UTC)")
    assert len(lines) >= at_least
    for line in lines:
        found = TIMELINE_LINE.match(line)
        assert found, f"timeline line without a citation: {line}"
        ref = found["ref"]
        if ref.startswith("manifest.json#"):
            assert ref.split("#", 1)[1] in manifest, line
        elif ref.startswith("audit:"):
            assert ref in audit, line
        else:
            assert ref in evidence, line
    return lines


def _check_images(paths: list[str]) -> None:
    assert paths
    for name in paths:
        with Image.open(name) as image:
            image.verify()
        with Image.open(name) as image:
            assert image.format == "PNG"
            width, height = image.size
        assert 600 <= width <= 2000 and 250 <= height <= 1200
        assert Path(name).stat().st_size > 10_000


def test_a_decided_bad_deploy_is_drafted_with_plots_and_cited_timeline(tmp_path: Path) -> None:
    env = _env(tmp_path)
    result = _json("run", "--scenario", str(SCENARIOS / "bad-deploy-5xx"), env=env)
    run_id = result["run_id"]
    fix = result["fixes"][0]
    checked = approvals.flag(result["hypotheses"][fix["hypothesis"]])
    approved = _diagnose(
        "approve", run_id, "--fix", fix["id"], "--checked", checked,
        "--approver", "alice", "--reason", "errors began with the rollout", env=env,
    )  # fmt: skip
    assert approved.returncode == 0, approved.stderr

    out = tmp_path / "draft"
    written = _json("postmortem", run_id, "--out", str(out), env=env)
    assert written["markdown"] == str(out / "postmortem.md")
    text = Path(written["markdown"]).read_text()
    positions = [text.index(section) for section in SECTIONS]
    assert positions == sorted(positions)

    lines = _check_timeline(text, run_id=run_id, state_dir=tmp_path, env=env, at_least=7)
    assert any("deployment/checkout@14" in line and "top hypothesis" in line for line in lines)
    assert any("alice approved fix-1" in line for line in lines)
    assert any("onset of the anomaly in checkout" in line for line in lines)
    _check_images(written["images"])
    for image in written["images"]:
        assert f"]({Path(image).name})" in text

    impact = "\n".join(_section(text, "## Impact"))
    assert "- End: unknown (ongoing)" in impact
    assert "Error budget burned: unknown: no SLO target" in impact
    assert re.search(r"checkout: ≈ [\d,]+ failed requests of ≈ [\d,]+", impact)
    assert "(computed)" in text


def test_a_rejected_run_without_a_clear_cause_stays_not_sure(tmp_path: Path) -> None:
    env = _env(tmp_path)
    result = _json("run", "--scenario", str(SCENARIOS / "no-clear-cause"), env=env)
    run_id = result["run_id"]
    assert result["abstained"] is True
    if result["fixes"]:
        rejected = _diagnose(
            "approve", run_id, "--reject", "--approver", "bob", "--reason", "no evidence",
            env=env,
        )  # fmt: skip
        assert rejected.returncode == 0, rejected.stderr

    written = _json("postmortem", run_id, "--slo-target", "99.9", env=env)
    assert written["markdown"] == str(tmp_path / "postmortems" / run_id / "postmortem.md")
    text = Path(written["markdown"]).read_text()
    lines = _check_timeline(text, run_id=run_id, state_dir=tmp_path, env=env, at_least=2)
    assert any("alert fired" in line for line in lines)
    assert "- Onset: unknown" in text
    assert "Error budget burned: unknown: the 99.9% objective" in text
    assert _section(text, "## Root cause")[0].startswith("Not sure")
    assert "Establish the root cause by hand" in text
    assert "the change the top hypothesis names" not in text
