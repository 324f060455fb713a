"""``diagnose tune`` on saved lab runs: a harmful starting configuration is tuned back to the
default's held-out accuracy, each round says whether it kept or reverted its change, lessons
carry over to the next run, and the output is a diff (the playbook files are not touched)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from diagnose import playbook, tuning

BIN = Path(sys.executable).parent
SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
TRAIN = ["bad-deploy-5xx", "config-latency", "cpu-throttling", "oomkill-memory-limit"]
TRAIN += ["traffic-surge", "no-clear-cause"]
HELD_OUT = ["deploy-decoy", "slow-dependency", "db-lock-contention"]
HARM = """thresholds:
  anomalous_z: 60
weights:
  config: 0.05
  dependency: 0.05
  resource: 5
"""
"""Appended to latency-slo-burn: nothing latency-like is anomalous any more, and config and
dependency causes sink under resource ones."""


def _tune(tmp: Path, *args: str) -> tuple[dict[str, Any], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    env |= {"DIAGNOSE_STATE_DIR": str(tmp / "state"), "NO_COLOR": "1", "COLUMNS": "300"}
    done = subprocess.run(
        [
            str(BIN / "diagnose"),
            "tune",
            *(str(SCENARIOS / n) for n in TRAIN + HELD_OUT),
            "--holdout",
            ",".join(HELD_OUT),
            "--bundles",
            str(tmp / "bundles"),
            "--json",
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout), done.stderr


@pytest.mark.lab
@pytest.mark.slow
def test_a_harmful_configuration_is_tuned_back(tmp_path: Path) -> None:
    default, _ = _tune(tmp_path, "--rounds", "0", "--lessons", str(tmp_path / "none.jsonl"))
    harmful = tmp_path / "harmful"
    shutil.copytree(playbook.DEFAULT_DIR, harmful)
    target = harmful / "latency-slo-burn.yaml"
    target.write_text(target.read_text() + HARM)
    before = {p.name: p.read_text() for p in harmful.iterdir()}
    lessons = tmp_path / "lessons.jsonl"

    tuned, progress = _tune(
        tmp_path, "--playbooks", str(harmful), "--rounds", "4", "--lessons", str(lessons)
    )
    rounds = re.findall(r"round (\d+): (kept|reverted): ", progress)
    assert [int(n) for n, _ in rounds] == [1, 2, 3, 4]
    assert "kept" in {verdict for _, verdict in rounds}
    held = tuned["held_out"]
    assert held["before"]["AC@1"] < default["held_out"]["before"]["AC@1"]  # it was harmful
    assert held["after"]["AC@1"] >= default["held_out"]["before"]["AC@1"]
    assert held["after"]["Avg@5"] >= default["held_out"]["before"]["Avg@5"]
    assert tuned["written"] is True
    assert "-  anomalous_z: 60" in tuned["diff"]
    assert "+++ b/harmful/latency-slo-burn.yaml" in tuned["diff"]
    assert {p.name: p.read_text() for p in harmful.iterdir()} == before  # a diff, no edit
    assert len(tuning.read_lessons(lessons)) == 4

    again, _ = _tune(
        tmp_path, "--playbooks", str(harmful), "--rounds", "2", "--lessons", str(lessons)
    )
    assert again["lessons_read"] == 4
    reverted = {
        (r["playbook"], r["knob"], r["from"], r["to"], r["config"])
        for r in tuning.read_lessons(lessons)[:4]
        if not r["kept"]
    }
    for entry in again["rounds"]:
        key = (entry["playbook"], entry["knob"], entry["from"], entry["to"], entry["config"])
        assert key not in reverted  # a lesson learnt is not tried again on the same config


def _score(ac1: float, avg5: float, wrong: int = 0, tokens: int = 0) -> tuning.Score:
    return tuning.Score(ac1=ac1, avg5=avg5, wrong_abstentions=wrong, tokens=tokens)


def test_a_change_is_kept_only_when_it_gains_without_costs() -> None:
    """Kept: accuracy higher at no more tokens, or no lower at strictly fewer tokens; never
    with worse abstention, more failed model runs or lower accuracy."""
    start = _score(0.5, 0.7, wrong=1, tokens=100)
    assert _score(0.6, 0.7, wrong=1, tokens=100).better_than(start)
    assert _score(0.5, 0.8, wrong=0, tokens=90).better_than(start)
    assert _score(0.5, 0.7, wrong=1, tokens=99).better_than(start)  # same accuracy, cheaper
    assert not _score(0.5, 0.7, wrong=1, tokens=100).better_than(start)  # no gain at all
    assert not _score(0.4, 0.9, wrong=1, tokens=10).better_than(start)  # AC@1 lower
    assert not _score(0.9, 0.9, wrong=2).better_than(start)  # worse abstention
    assert not _score(0.9, 0.9, wrong=1, tokens=101).better_than(start)  # more tokens
    failing = tuning.Score(ac1=0.5, avg5=0.7, wrong_abstentions=1, tokens=50, model_failures=1)
    assert not failing.better_than(start)  # cheaper because the model's answer failed


def test_a_change_that_lowers_held_out_accuracy_is_refused() -> None:
    written, why = tuning.decide(changed=True, before=_score(0.8, 0.9), after=_score(0.7, 0.95))
    assert not written and why.startswith("refused")
    assert tuning.decide(changed=True, before=_score(0.8, 0.9), after=_score(0.8, 0.9))[0]
    assert not tuning.decide(changed=False, before=_score(0.8, 0.9), after=_score(0.8, 0.9))[0]
