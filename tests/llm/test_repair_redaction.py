"""The model's own earlier answer, sent back to it in a repair turn, carries no secret: its
content, its reasoning and its tool-call arguments pass through the one redactor first."""

from __future__ import annotations

import json

from connectors import llm
from diagnose.domain import reasoning, redaction
from tests.llm import scripted
from tests.llm.conftest import good_answer

STRIPE = "sk_" + "live_" + "4eC39HqLyjWDarjtT1zdp7dc"  # built from parts: no key in the source


def test_a_key_in_a_refused_answer_is_masked_when_it_goes_back_for_repair(
    server: scripted.ScriptedServer, reasoner: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    """Arguments, content and reasoning of the refused turn reach the repair request redacted."""
    refused = good_answer(digest)
    refused["hypotheses"][0]["evidence"] = ["ev-0000000000"]  # type: ignore[index]
    refused["hypotheses"][0]["rationale"] = f"The log of checkout shows key {STRIPE} failing."  # type: ignore[index]
    first = scripted.completion(
        content=f"<think>the key is {STRIPE}</think>",
        reasoning=f"I saw {STRIPE} in the events.",
        tool_calls=[scripted.call(reasoning.ANSWER_TOOL, refused)],
    )
    fixed = scripted.completion(
        tool_calls=[scripted.call(reasoning.ANSWER_TOOL, good_answer(digest))]
    )
    server.script(first, fixed)

    outcome = reasoner.reason(digest, budget=reasoning.Budget())

    assert outcome.status is reasoning.ReasoningStatus.ACCEPTED, outcome.reasons
    repair = server.chats[1]["messages"]
    (assistant,) = [m for m in repair if m.get("role") == "assistant"]
    assert STRIPE not in json.dumps(server.chats[1])
    arguments = json.loads(assistant["tool_calls"][0]["function"]["arguments"])
    assert redaction.REDACTED in arguments["hypotheses"][0]["rationale"]
    assert (
        redaction.REDACTED in assistant["content"] and redaction.REDACTED in assistant["reasoning"]
    )
    assert assistant["content"].startswith("<think>")  # the thinking still goes back


def test_an_answer_without_secrets_goes_back_as_the_model_spelled_it(
    server: scripted.ScriptedServer, reasoner: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    """Redaction changes nothing else: the arguments' own spelling is kept."""
    refused = good_answer(digest)
    refused["hypotheses"][0]["evidence"] = ["ev-0000000000"]  # type: ignore[index]
    spelled = json.dumps(refused, indent=1)
    server.script(
        scripted.completion(tool_calls=[scripted.call(reasoning.ANSWER_TOOL, spelled)]),
        scripted.completion(tool_calls=[scripted.call(reasoning.ANSWER_TOOL, good_answer(digest))]),
    )
    reasoner.reason(digest, budget=reasoning.Budget())
    (assistant,) = [m for m in server.chats[1]["messages"] if m.get("role") == "assistant"]
    assert assistant["tool_calls"][0]["function"]["arguments"] == spelled
