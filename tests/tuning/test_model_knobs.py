"""``diagnose tune`` over the language model's knobs, against a scripted OpenAI-compatible
server on saved lab runs: every replay asks the model, tokens come from the run's ``llm``
block, a cheaper prompt budget that keeps accuracy is kept, a completion cap that cuts the
answer off is reverted, and without a model the knobs are skipped, saying why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from diagnose import playbook, tuning
from diagnose.domain import reasoning
from diagnose.settings import Settings
from tests.llm import scripted

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
TRAIN = ["bad-deploy-5xx", "config-latency"]
HELD_OUT = ["traffic-surge"]
ANSWER_TOKENS = 3000
"""What the stand-in model spends on its answer (its thinking included): more than half the
default completion cap (4096), so halving the cap cuts the answer off."""
READS = 4
"""Pieces of evidence the stand-in model reads before it answers, when the budget lets it."""


def _prompt_tokens(body: dict[str, Any]) -> int:
    """What the server counts for a request: about four characters a token of what it is
    sent (messages and tool schemas)."""
    return len(json.dumps(body["messages"]) + json.dumps(body.get("tools", []))) // 4


def _answer(body: dict[str, Any]) -> dict[str, Any]:
    """A curious, deterministic model: it reads evidence while it may, then submits the first
    component it is shown with the first piece of evidence; an answer longer than the
    request's ``max_tokens`` is cut off there, as real servers do."""
    tools = {t["function"]["name"]: t["function"] for t in body.get("tools", [])}
    prompt = _prompt_tokens(body)
    done = sum(1 for m in body["messages"] if m["role"] == "tool")
    if reasoning.READ_EVIDENCE_TOOL in tools and body.get("tool_choice") == "auto" and done < READS:
        ids = tools[reasoning.READ_EVIDENCE_TOOL]["parameters"]["properties"]["evidence_id"]["enum"]
        read = scripted.call(reasoning.READ_EVIDENCE_TOOL, {"evidence_id": ids[done % len(ids)]})
        return scripted.completion(tool_calls=[read], prompt_tokens=prompt, completion_tokens=40)
    items = tools[reasoning.ANSWER_TOOL]["parameters"]["properties"]["hypotheses"]["items"]
    fields = items["properties"]
    claim = {
        "kind": "deploy",
        "component": fields["component"]["enum"][0],
        "change": None,
        "evidence": fields["evidence"]["items"]["enum"][:1],
        "rationale": "The first component shown has the earliest anomalous series.",
        "fix": None,
    }
    text = json.dumps({"hypotheses": [claim]})
    limit = int(body["max_tokens"])
    if limit >= ANSWER_TOKENS:
        answer = scripted.call(reasoning.ANSWER_TOOL, text)
        return scripted.completion(
            tool_calls=[answer], prompt_tokens=prompt, completion_tokens=ANSWER_TOKENS
        )
    cut = scripted.completion(
        tool_calls=[scripted.call(reasoning.ANSWER_TOOL, text[: len(text) // 2])],
        prompt_tokens=prompt,
        completion_tokens=limit,
    )
    cut["choices"][0]["finish_reason"] = "length"
    return cut


@pytest.fixture
def model() -> Iterator[scripted.ScriptedServer]:
    serving = scripted.serve()
    server = next(serving)
    server.responder = _answer
    yield server
    serving.close()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuning.Recorded]:
    """The three scenarios' lab runs, recorded once (without a model, as ``tune`` does)."""
    where = tmp_path_factory.mktemp("bundles")
    base = Settings.model_validate({"state_dir": where / "state"})
    found = tuning.record(
        [SCENARIOS / n for n in TRAIN + HELD_OUT],
        base=base,
        bundles=where,
        progress=lambda _m: None,
    )
    return {r.name: r for r in found}


def _tune(
    recorded: dict[str, tuning.Recorded],
    tmp_path: Path,
    *,
    rounds: int,
    settings: Settings,
    lessons: Path | None = None,
) -> tuple[tuning.Outcome, list[str]]:
    said: list[str] = []
    outcome = tuning.tune(
        [recorded[n] for n in TRAIN],
        [recorded[n] for n in HELD_OUT],
        start=tuning.knobs_of(playbook.load([playbook.DEFAULT_DIR])),
        rounds=rounds,
        lessons=lessons or tmp_path / "lessons.jsonl",
        progress=said.append,
        settings=settings,
    )
    return outcome, said


@pytest.mark.lab
@pytest.mark.slow
def test_a_cheaper_prompt_budget_is_kept_and_a_cut_off_answer_reverted(
    recorded: dict[str, tuning.Recorded], model: scripted.ScriptedServer, tmp_path: Path
) -> None:
    settings = Settings.model_validate({"state_dir": tmp_path, "llm_base_url": model.url})
    lessons = tmp_path / "lessons.jsonl"
    outcome, said = _tune(recorded, tmp_path, rounds=5, settings=settings, lessons=lessons)
    prompt = [r for r in outcome.rounds if r["knob"] == "llm_max_prompt_tokens"]
    assert [r["from"] for r in prompt][:2] == [16000.0, 10667.0]
    first = prompt[0]
    assert first["kept"], first
    before, after = first["train_before"], first["train_after"]
    assert after["tokens"] < before["tokens"]
    assert (after["AC@1"], after["Avg@5"]) == (before["AC@1"], before["Avg@5"])
    assert after["model_failures"] == before["model_failures"] == 0
    for name in TRAIN:  # tokens per scenario, from each run's llm block
        spent, was = after["scenarios"][name], before["scenarios"][name]
        assert spent["status"] == "accepted"
        assert spent["prompt_tokens"] < was["prompt_tokens"]
    for entry in prompt:  # kept exactly while tokens fell
        fell = entry["train_after"]["tokens"] < entry["train_before"]["tokens"]
        assert entry["kept"] == fell
    digests = {len(chat["messages"][1]["content"]) for chat in model.chats}
    assert len(digests) > 2  # smaller budgets sent smaller digests

    (cap,) = [r for r in outcome.rounds if r["knob"] == "llm_max_completion_tokens"]
    assert (cap["from"], cap["to"], cap["kept"]) == (4096.0, 2048.0, False)
    assert cap["train_after"]["model_failures"] == len(TRAIN)
    assert {s["status"] for s in cap["train_after"]["scenarios"].values()} == {"rejected"}
    assert f"reverted: {tuning.MODEL}: llm_max_completion_tokens 4096 → 2048" in "\n".join(said)

    assert outcome.model.startswith("tuned")
    assert outcome.written
    tuned = int(outcome.settings()["DIAGNOSE_LLM_MAX_PROMPT_TOKENS"])
    assert tuned < 16000 and list(outcome.settings()) == ["DIAGNOSE_LLM_MAX_PROMPT_TOKENS"]
    assert outcome.held_out_after.accuracy() == outcome.held_out_before.accuracy()
    assert outcome.held_out_after.tokens < outcome.held_out_before.tokens
    assert len(tuning.read_lessons(lessons)) == len(outcome.rounds) == 5


@pytest.mark.lab
@pytest.mark.slow
def test_without_a_model_its_knobs_are_skipped_saying_why(
    recorded: dict[str, tuning.Recorded], tmp_path: Path
) -> None:
    settings = Settings.model_validate({"state_dir": tmp_path})
    outcome, said = _tune(recorded, tmp_path, rounds=1, settings=settings)
    assert said[0] == f"tune: {tuning.NO_MODEL}"
    assert "DIAGNOSE_LLM_BASE_URL" in outcome.model
    assert all(r["playbook"] != tuning.MODEL for r in outcome.rounds)
    assert outcome.train_before.tokens == 0 and outcome.train_before.scenarios == {}
