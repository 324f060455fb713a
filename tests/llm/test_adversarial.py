"""A lying model over bundled scenarios on the lab's real servers changes no verdict.

Each scenario is stood up once and diagnosed twice through the real wiring: with no model, and
with the scripted server playing :mod:`tests.llm.adversary`. The deterministic ranking must
come through whole and in order, the true cause must rank no lower, and every proposed fix
must be the same.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from diagnose import wiring
from diagnose.settings import Settings
from tests.conftest import LabRunFactory
from tests.llm import adversary, running, scripted

pytestmark = [pytest.mark.slow, pytest.mark.lab]

SCENARIOS = running.SCENARIOS
CHOSEN = ("bad-deploy-5xx", "config-latency", "traffic-surge", "deploy-decoy")


@pytest.fixture
def liar() -> Iterator[scripted.ScriptedServer]:
    for server in scripted.serve():
        server.responder = adversary.respond
        yield server


@pytest.mark.parametrize("name", CHOSEN)
def test_a_lying_model_changes_no_verdict(
    name: str, lab_run: LabRunFactory, liar: scripted.ScriptedServer, tmp_path: Path
) -> None:
    up = lab_run(SCENARIOS / name)
    base = Settings.model_validate({"state_dir": tmp_path / "off"})
    off_settings = wiring.with_endpoints(base, up.endpoints)
    on_settings = off_settings.model_copy(
        update={"state_dir": tmp_path / "on", "llm_base_url": liar.url, "llm_retries": 0}
    )
    now = datetime.now(UTC)
    off = running.diagnose_once(off_settings, up.trigger, now=now)
    on = running.diagnose_once(on_settings, up.trigger, now=now)

    assert on["llm"]["used"] and on["llm"]["calls"] >= 2
    assert on["hypotheses"][: len(off["hypotheses"])] == off["hypotheses"]
    assert on["abstained"] == off["abstained"]
    before, after = running.rank(SCENARIOS / name, off), running.rank(SCENARIOS / name, on)
    assert before is not None and after == before
    assert running.fixes_of(on) == running.fixes_of(off)
    settled = on["reasoning"]["settled"]
    assert all(s["outcome"] != "added" or s["confidence"] < 0.35 for s in settled)
    assert not any(s["outcome"] == "added" and s["claim"]["fix"] for s in settled)


def test_the_liar_saw_only_refusals_for_its_hostile_calls(
    lab_run: LabRunFactory, liar: scripted.ScriptedServer, tmp_path: Path
) -> None:
    up = lab_run(SCENARIOS / "bad-deploy-5xx")
    settings = wiring.with_endpoints(
        Settings.model_validate({"state_dir": tmp_path, "llm_base_url": liar.url}), up.endpoints
    )
    result = running.diagnose_once(settings, up.trigger, now=datetime.now(UTC))
    tool_results = [m["content"] for m in liar.chats[1]["messages"] if m.get("role") == "tool"]
    refused = [t for t in tool_results if "\nerror: " in t]
    answered = [t for t in tool_results if "evidence id: " in t]
    assert len(answered) == 1 and "get_kubernetes" in answered[0]
    assert len(refused) == len(tool_results) - 1 >= 3
    # the first answer lies in form and is refused; the repair is well-formed but settled wrong
    assert result["reasoning"]["status"] == "accepted", result["reasoning"]
    assert all(s["outcome"] == "refused" for s in result["reasoning"]["settled"])
    listing = answered[0].split("evidence id: ", 1)[1].split()[0]
    assert listing in {e["id"] for e in result["evidence"]}
    assert len(result["reasoning"]["settled"]) == 2
    assert not any(n.startswith("llm:") for n in result["notes"])
