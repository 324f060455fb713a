"""The wire protocol against a scripted OpenAI-compatible server: what the client sends, and
how it takes what comes back (reasoning fields, ``<think>`` content, tool calls, errors)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from connectors import _http, llm
from diagnose import settings as config
from diagnose.domain import errors, reasoning
from diagnose.domain.models import Evidence
from diagnose.domain.models import Status as EvidenceStatus
from tests.llm import scripted
from tests.llm.conftest import good_answer
from tests.llm.scripted import Answer, call, completion

Status = reasoning.ReasoningStatus
NAMED = {"type": "function", "function": {"name": reasoning.ANSWER_TOOL}}


def answer(digest: reasoning.Digest, **extra: Any) -> dict[str, Any]:
    """A completion whose tool call is a valid answer."""
    return completion(tool_calls=[call(reasoning.ANSWER_TOOL, good_answer(digest))], **extra)


def read(evidence_id: str, **extra: Any) -> dict[str, Any]:
    """A completion asking to read one piece of evidence."""
    return completion(
        tool_calls=[call(reasoning.READ_EVIDENCE_TOOL, {"evidence_id": evidence_id})], **extra
    )


def toolbox(digest: reasoning.Digest) -> reasoning.EvidenceToolbox:
    return reasoning.EvidenceToolbox.of(digest.evidence)


def test_the_answer_is_a_named_strict_tool_call_with_minimax_sampling(
    server: scripted.ScriptedServer, reasoner: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    server.script(answer(digest))
    outcome = reasoner.reason(digest, budget=reasoning.Budget())
    assert outcome.status is Status.ACCEPTED, outcome.reasons
    (body,) = server.chats
    assert body["model"] == scripted.MODEL and body["stream"] is False
    assert (body["temperature"], body["top_p"], body["top_k"]) == (1.0, 0.95, 40)
    assert body["tool_choice"] == NAMED
    (tool,) = body["tools"]
    assert tool["function"]["name"] == reasoning.ANSWER_TOOL and tool["function"]["strict"]
    assert server.requests[0].headers["authorization"] == "Bearer test-key"


def test_reasoning_is_sent_back_on_the_assistant_turn(
    server: scripted.ScriptedServer, reasoner: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    """vLLM's ``minimax_m2`` parser: reasoning in ``message.reasoning``, echoed under that name."""
    first = digest.evidence_ids[0]
    server.script(read(first, reasoning="I should read the 5xx series."), answer(digest))
    outcome = reasoner.reason(digest, budget=reasoning.Budget(), toolbox=toolbox(digest))
    assert outcome.status is Status.ACCEPTED, outcome.reasons
    explore, final = server.chats
    assert explore["tool_choice"] == "auto" and explore["stream"] is False
    assert {t["function"]["name"] for t in explore["tools"]} == {
        reasoning.READ_EVIDENCE_TOOL,
        reasoning.ANSWER_TOOL,
    }
    assistant, tool = final["messages"][-2:]
    assert assistant["role"] == "assistant"
    assert assistant["reasoning"] == "I should read the 5xx series."
    assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"evidence_id": first}
    assert tool["role"] == "tool" and tool["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert tool["content"].startswith("<<<DATA 0123456789abcdef") and first in tool["content"]


def test_legacy_reasoning_content_is_sent_back_under_its_own_name(
    server: scripted.ScriptedServer, reasoner: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    first = digest.evidence_ids[0]
    server.script(
        read(first, reasoning="old vLLM", reasoning_key="reasoning_content"), answer(digest)
    )
    reasoner.reason(digest, budget=reasoning.Budget(), toolbox=toolbox(digest))
    assistant = server.chats[1]["messages"][-2]
    assert assistant["reasoning_content"] == "old vLLM" and "reasoning" not in assistant


def test_think_in_content_goes_back_verbatim(
    server: scripted.ScriptedServer, reasoner: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    """vLLM's ``minimax_m2_append_think``: the reasoning stays in ``content``."""
    thought = "<think>\nThe rollout precedes the errors.\n</think>\n\n"
    first = digest.evidence_ids[0]
    server.script(
        completion(
            content=thought, tool_calls=[call(reasoning.READ_EVIDENCE_TOOL, {"evidence_id": first})]
        ),
        completion(content=thought + json.dumps(good_answer(digest))),
    )
    outcome = reasoner.reason(digest, budget=reasoning.Budget(), toolbox=toolbox(digest))
    assert outcome.status is Status.ACCEPTED, outcome.reasons
    assistant = server.chats[1]["messages"][-2]
    assert assistant["content"] == thought


def test_server_errors_are_retried_until_an_answer(
    server: scripted.ScriptedServer, reasoner: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    server.script(
        Answer({"object": "error", "message": "busy"}, status=500),
        Answer({"object": "error", "message": "busy"}, status=503),
        answer(digest),
    )
    outcome = reasoner.reason(digest, budget=reasoning.Budget())
    assert outcome.status is Status.ACCEPTED and len(server.chats) == 3
    assert outcome.usage.requests == 1


def test_a_client_error_is_not_retried(
    server: scripted.ScriptedServer, reasoner: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    server.script(Answer({"object": "error", "message": "model not found"}, status=404))
    outcome = reasoner.reason(digest, budget=reasoning.Budget())
    assert outcome.status is Status.UNAVAILABLE and len(server.chats) == 1
    assert "404" in outcome.reasons[0] and "model not found" in outcome.reasons[0]


def test_a_hanging_server_times_out_without_a_retry(
    server: scripted.ScriptedServer, digest: reasoning.Digest
) -> None:
    server.script(Answer(answer(digest), delay_s=30))
    retry = _http.RetryPolicy(attempts=3, backoff_s=0.01, budget_s=5.0)
    started = time.monotonic()
    with llm.ChatClient(server.url, model=scripted.MODEL, timeout_s=0.5, retry=retry) as chat:
        outcome = llm.OpenAIReasoner(chat).reason(digest, budget=reasoning.Budget())
    assert time.monotonic() - started < 5
    assert outcome.status is Status.UNAVAILABLE and "in time" in outcome.reasons[0]
    assert len(server.chats) == 1


def test_the_session_deadline_bounds_a_slow_answer(
    server: scripted.ScriptedServer, reasoner: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    server.script(Answer(answer(digest), delay_s=30))
    started = time.monotonic()
    outcome = reasoner.reason(digest, budget=reasoning.Budget(max_seconds=0.5))
    assert time.monotonic() - started < 3 and outcome.status is Status.UNAVAILABLE


@pytest.mark.parametrize(
    "body",
    [
        "{not json",
        b"\x00\xff\xfe",
        {"object": "chat.completion", "choices": []},
        {"choices": [{"message": "hello"}]},
        ["a", "list"],
    ],
)
def test_a_malformed_body_is_unavailable_not_a_crash(
    body: Any,
    server: scripted.ScriptedServer,
    reasoner: llm.OpenAIReasoner,
    digest: reasoning.Digest,
) -> None:
    server.script(Answer(body))
    outcome = reasoner.reason(digest, budget=reasoning.Budget())
    assert outcome.status is Status.UNAVAILABLE and outcome.reasons


def test_garbage_gets_one_repair_then_a_rejection(
    server: scripted.ScriptedServer, reasoner: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    server.script(
        completion(content="I think it is probably the database, or DNS."),
        completion(content='{"hypotheses": [{"kind": "deploy", "compo'),
    )
    outcome = reasoner.reason(digest, budget=reasoning.Budget())
    assert outcome.status is Status.REJECTED and not outcome.claims
    assert len(server.chats) == 2
    assert any("not JSON" in r for r in outcome.reasons)
    assert any(r.startswith("after repair:") and "cut short" in r for r in outcome.reasons)
    repair = server.chats[1]["messages"][-1]
    assert repair["role"] == "user" and "rejected" in repair["content"]
    assert server.chats[1]["tool_choice"] == NAMED
    assert len(outcome.answers) == 2


def test_an_invalid_citation_is_repaired(
    server: scripted.ScriptedServer, reasoner: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    bad = good_answer(digest)
    bad["hypotheses"][0]["evidence"] = ["ev-0000000000"]  # type: ignore[index]
    server.script(completion(tool_calls=[call(reasoning.ANSWER_TOOL, bad)]), answer(digest))
    outcome = reasoner.reason(digest, budget=reasoning.Budget())
    assert outcome.status is Status.ACCEPTED, outcome.reasons
    assistant, tool = server.chats[1]["messages"][-2:]
    assert tool["role"] == "tool" and tool["tool_call_id"] == assistant["tool_calls"][0]["id"]
    assert "ev-0000000000" in tool["content"]


def test_invalid_citations_twice_are_rejected(
    server: scripted.ScriptedServer, reasoner: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    bad = good_answer(digest)
    bad["hypotheses"][0]["evidence"] = ["ev-0000000000"]  # type: ignore[index]
    server.script(*[completion(tool_calls=[call(reasoning.ANSWER_TOOL, bad)])] * 2)
    outcome = reasoner.reason(digest, budget=reasoning.Budget())
    assert outcome.status is Status.REJECTED and len(server.chats) == 2
    assert sum("ev-0000000000" in r for r in outcome.reasons) == 2


def test_the_same_call_twice_is_a_loop(
    server: scripted.ScriptedServer, reasoner: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    first = digest.evidence_ids[0]
    server.script(read(first), read(first), answer(digest))
    outcome = reasoner.reason(digest, budget=reasoning.Budget(), toolbox=toolbox(digest))
    assert outcome.status is Status.STOPPED and "loop" in outcome.reasons[0]
    assert len(server.chats) == 2


def test_the_step_budget_ends_exploration_with_the_named_answer(
    server: scripted.ScriptedServer, reasoner: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    ids = digest.evidence_ids
    server.script(read(ids[0]), read(ids[1]), answer(digest))
    outcome = reasoner.reason(digest, budget=reasoning.Budget(max_steps=4), toolbox=toolbox(digest))
    assert outcome.status is Status.ACCEPTED
    assert [b["tool_choice"] for b in server.chats] == ["auto", "auto", NAMED]


def test_the_token_budget_stops_the_session(
    server: scripted.ScriptedServer, reasoner: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    server.script(read(digest.evidence_ids[0], prompt_tokens=900, completion_tokens=200))
    budget = reasoning.Budget(max_tokens=1000)
    outcome = reasoner.reason(digest, budget=budget, toolbox=toolbox(digest))
    assert outcome.status is Status.STOPPED and "token budget" in outcome.reasons[0]
    assert len(server.chats) == 1
    report = outcome.report()
    assert (report["prompt_tokens"], report["completion_tokens"]) == (900, 200)
    assert (report["used"], report["calls"], report["status"]) == (True, 1, "stopped")


def test_max_tokens_never_exceeds_what_the_budget_has_left(
    server: scripted.ScriptedServer, reasoner: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    server.script(answer(digest))
    reasoner.reason(digest, budget=reasoning.Budget(max_tokens=300))
    assert server.chats[0]["max_tokens"] == 300


def test_token_usage_is_summed_for_the_report(
    server: scripted.ScriptedServer, reasoner: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    server.script(
        read(digest.evidence_ids[0], prompt_tokens=1000, completion_tokens=50),
        answer(digest, prompt_tokens=1200, completion_tokens=80),
    )
    outcome = reasoner.reason(digest, budget=reasoning.Budget(), toolbox=toolbox(digest))
    report = outcome.report()
    assert (report["prompt_tokens"], report["completion_tokens"]) == (2200, 130)
    assert (report["used"], report["calls"], report["failed_calls"]) == (True, 2, 0)
    assert report["seconds"] >= 0 and outcome.to_dict()["status"] == "accepted"


def test_evidence_reaches_the_model_fenced_and_redacted(
    server: scripted.ScriptedServer, reasoner: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    rollout_id = digest.evidence_ids[1]
    server.script(read(rollout_id), answer(digest))
    reasoner.reason(digest, budget=reasoning.Budget(), toolbox=toolbox(digest))
    sent = json.dumps(server.chats)
    assert "hunter2" not in sent
    tool = server.chats[1]["messages"][-1]["content"]
    assert tool.startswith("<<<DATA 0123456789abcdef") and "IGNORE PREVIOUS" in tool
    assert tool.rstrip().endswith("<<<END DATA 0123456789abcdef>>>")


def test_models_are_listed(client: llm.ChatClient) -> None:
    assert client.list_models() == [scripted.MODEL]


def test_a_refused_connection_is_unavailable(digest: reasoning.Digest) -> None:
    retry = _http.RetryPolicy(attempts=2, backoff_s=0.01, budget_s=2.0)
    with llm.ChatClient("http://127.0.0.1:9/v1", model="m", timeout_s=1.0, retry=retry) as chat:
        with pytest.raises(errors.SourceUnavailable, match="DIAGNOSE_LLM_BASE_URL"):
            chat.list_models()
        outcome = llm.OpenAIReasoner(chat).reason(digest, budget=reasoning.Budget())
    assert outcome.status is Status.UNAVAILABLE and outcome.report()["used"] is False


def test_no_base_url_means_no_llm() -> None:
    assert llm.OpenAIReasoner.from_settings(config.Settings.from_env({}).llm) is None


def test_settings_configure_the_client(
    server: scripted.ScriptedServer, digest: reasoning.Digest
) -> None:
    env = {
        "DIAGNOSE_LLM_BASE_URL": server.url,
        "DIAGNOSE_LLM_MODEL": "any/other-model",
        "DIAGNOSE_LLM_API_KEY": "from-env",
        "DIAGNOSE_LLM_TOP_K": "20",
        "DIAGNOSE_LLM_MAX_STEPS": "3",
    }
    settings = config.Settings.from_env(env)
    reasoner = llm.OpenAIReasoner.from_settings(settings.llm)
    assert reasoner is not None and "from-env" not in repr(settings)
    server.script(answer(digest))
    outcome = reasoner.reason(digest, budget=llm.budget_from_settings(settings.llm))
    reasoner.close()
    assert outcome.accepted and outcome.model == "any/other-model"
    body = server.chats[0]
    assert body["model"] == "any/other-model" and body["top_k"] == 20
    assert server.requests[0].headers["authorization"] == "Bearer from-env"


def test_the_prompt_budget_fits_the_digest_yet_its_left_out_evidence_stays_citable(
    server: scripted.ScriptedServer, reasoner: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    findings = tuple(
        Evidence.make(
            source="analysis",
            query=f"finding {i}",
            window=None,
            status=EvidenceStatus.OK,
            summary="checkout p99 rose " + "x" * 600,
        )
        for i in range(30)
    )
    big = digest.with_evidence(findings)
    last = findings[-1].id
    claim = good_answer(digest)
    claim["hypotheses"][0]["evidence"] = [last]  # type: ignore[index]
    server.script(completion(tool_calls=[call(reasoning.ANSWER_TOOL, claim)]))
    budget = reasoning.Budget(max_prompt_tokens=8000)
    outcome = reasoner.reason(big, budget=budget)
    prompt = server.chats[0]["messages"][1]["content"]
    assert f"id {last}:" not in prompt and f"id {digest.evidence_ids[0]}:" in prompt
    assert reasoning.estimate_tokens(prompt) <= 8000 * llm.DIGEST_SHARE
    assert outcome.status is Status.ACCEPTED, outcome.reasons
    assert outcome.claims[0].evidence == (last,)


def test_a_request_that_would_cross_the_prompt_budget_is_not_sent(
    server: scripted.ScriptedServer, reasoner: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    outcome = reasoner.reason(digest, budget=reasoning.Budget(max_prompt_tokens=300))
    assert outcome.status is Status.STOPPED and "prompt token budget" in outcome.reasons[0]
    assert server.chats == []
