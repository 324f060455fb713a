"""The held-out Istio scenario through the real CLI and the lab: a healthy service's long polls
in the 10-30 s bucket lift its p95 into the tail its p99 always had (settled, not 31,000 sigmas), so
the slow rollout leads without a near tie."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.test_cli_lab import _diagnose, _env

pytestmark = [pytest.mark.slow, pytest.mark.lab]

HELDOUT = Path(__file__).resolve().parents[1] / "heldout"


def test_long_polls_in_a_wide_bucket_do_not_tie_with_the_slow_rollout(tmp_path: Path) -> None:
    env = _env(tmp_path / "state")
    done = _diagnose(
        "eval", str(HELDOUT), "--only", "istio-default-buckets", "--json", env=env, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    [case] = json.loads(done.stdout)["cases"]
    assert case["rank"] == 1 and not case["abstained"], case["hypotheses"][:3]
    assert case["hypotheses"][0]["change"] == "deployment/risk-score@26"
    loyalty = next(c for c in case["components"] if c["component"] == "loyalty")
    assert max(abs(s["z"]) for s in loyalty["signals"]) < 5
