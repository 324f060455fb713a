"""Benchmark: the model's side of a diagnosis on a digest of about 16,000 prompt tokens.

Builds the digest from a run's state and evidence (:func:`graphs.reasoning.digest_of`), renders
it fenced and redacted (:func:`diagnose.domain.reasoning.render_digest`), estimates its tokens,
validates a five-hypothesis answer against it and settles the claims in code. In the same
process it times a plain baseline over the same data (``json.dumps`` of the digest, ``json.loads``
of the answer and set look-ups of its ids) and prints the ratio. It also prints what the default
budget sends: the digest fitted to its share of ``DIAGNOSE_LLM_MAX_PROMPT_TOKENS``.

Then, across the bundled scenarios, each stood up in the lab and diagnosed with the default
budget against a stand-in OpenAI-compatible server on loopback (it reads one piece of evidence,
then answers with a well-formed claim, and reports each request's prompt tokens as estimated
here), it prints the prompt tokens each diagnosis sent and names the largest; it exits 1 when
any run sent more than the default budget::

    python -m benchmarks.reasoning [--tokens 16000] [--repeat 5] [--no-suite] [FOLDER ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from benchmarks import endtoend
from connectors import llm
from diagnose import wiring
from diagnose.domain import answers, errors, models, reasoning
from diagnose.lab import lab
from diagnose.settings import Settings
from graphs import reasoning as reason_step
from graphs import reporting

AT = datetime(2026, 1, 10, 10, 7, tzinfo=UTC)
NONCE = "0123456789abcdef"
TARGET_MS = 250.0
"""Digest, rendering, validation and settling together should stay well under a model call."""


def make_run(*, evidence_count: int, seed: int) -> tuple[dict[str, Any], list[models.Evidence]]:
    """A run's state (trigger, correlation) and its evidence: 30 components, 40 changes, the
    evidence cited by five candidates plus derived findings, with secrets in some summaries."""
    rng = random.Random(seed)
    components = [f"svc-{i:02d}" for i in range(30)]
    evidence = [
        _evidence(i, rng=rng, component=rng.choice(components)) for i in range(evidence_count)
    ]
    ids = [e.id for e in evidence]
    changes = [
        {
            "kind": "rollout",
            "ref": f"deployment/{c}@{rng.randrange(2, 40)}",
            "component": c,
            "at": models.format_time(AT - timedelta(minutes=rng.randrange(3, 60))),
            "evidence": ids[0],
        }
        for c in rng.sample(components, 30) + rng.sample(components, 10)
    ]
    signals = {
        c: [{"kind": "errors", "evidence": rng.choice(ids), "z": rng.uniform(0, 20)}]
        for c in components
    }
    hypotheses = [
        {
            "kind": "deploy",
            "component": change["component"],
            "change": change["ref"],
            "confidence": round(0.9 - 0.15 * i, 3),
            "summary": f"rollout {change['ref']} before errors on {change['component']}",
            "evidence": rng.sample(ids, 6),
            "counter_evidence": [],
            "onset": models.format_time(AT),
        }
        for i, change in enumerate(changes[:5])
    ]
    correlation = {
        "hypotheses": hypotheses,
        "components": [
            {"component": c, "onset": models.format_time(AT), "anomalous": True, "signals": s}
            for c, s in signals.items()
        ],
        "changes": changes,
        "abstained": False,
        "notes": [],
    }
    trigger = models.Trigger("pagerduty", "checkout 5xx above 5%", "svc-00", "shop", AT)
    state = {"run_id": "bench", "trigger": trigger.to_dict(), "correlation": correlation}
    return state, evidence


def _evidence(index: int, *, rng: random.Random, component: str) -> models.Evidence:
    query = (
        f'sum by (http_route) (rate(http_server_request_duration_seconds_count{{service_name="'
        f'{component}",http_response_status_code=~"5..",shard="{index}"}}[5m])) / sum by '
        f'(http_route) (rate(http_server_request_duration_seconds_count{{service_name="'
        f'{component}",shard="{index}"}}[5m]))'
    )
    routes = ", ".join(
        f"/api/v{rng.randrange(1, 3)}/r{rng.randrange(99)} +{rng.uniform(3, 30):.1f}σ"
        for _ in range(12)
    )
    secret = " DB_PASSWORD=hunter2 Authorization: Bearer abcdefghijklmnop" if index % 7 == 0 else ""
    summary = f"{component} error ratio rose at 10:0{index % 10} on {routes}{secret}"
    source = "analysis" if index % 3 else "prometheus"
    return models.Evidence.make(
        source=source, query=query, window=None, status=models.Status.OK, summary=summary
    )


def answer_for(digest: reasoning.Digest, *, seed: int) -> str:
    rng = random.Random(seed)
    hypotheses = [
        {
            "kind": "deploy",
            "component": component,
            "change": None,
            "evidence": rng.sample(list(digest.evidence_ids), 8),
            "rationale": "The rollout precedes the error onset on this component.",
            "fix": None,
        }
        for component in rng.sample(list(digest.components), 5)
    ]
    return json.dumps({"hypotheses": hypotheses})


def ours(state: dict[str, Any], evidence: list[models.Evidence], answer: str) -> int:
    digest = reason_step.digest_of(state, evidence=evidence)  # type: ignore[arg-type]
    text = reasoning.render_digest(digest, nonce=NONCE)
    checked = answers.validate_answer(answer, digest=digest, nonce=NONCE)
    known = {e.id: e for e in evidence}
    reason_step.settle(
        checked.claims, correlation=state["correlation"], evidence=known, trigger_at=AT
    )
    return reasoning.estimate_tokens(text)


def baseline(state: dict[str, Any], evidence: list[models.Evidence], answer: str) -> int:
    """The same selection, serialised and checked without fencing, redaction or settling."""
    correlation = state["correlation"]
    by_id = {e.id: e for e in evidence}
    cited = [ev for h in correlation["hypotheses"][:5] for ev in h["evidence"]]
    derived = [e.id for e in evidence if e.source == "analysis"]
    chosen = list(dict.fromkeys([*cited, *derived]))[: reason_step.MAX_DIGEST_EVIDENCE]
    text = json.dumps(
        {
            "candidates": correlation["hypotheses"][:5],
            "components": [c["component"] for c in correlation["components"]],
            "changes": [c["ref"] for c in correlation["changes"]],
            "evidence": [by_id[i].to_dict(with_raw=False) for i in chosen],
        }
    )
    ids = set(by_id)
    payload = json.loads(answer)
    _ = all(ev in ids for h in payload["hypotheses"] for ev in h["evidence"])
    return len(text) // 3


def best_of(repeat: int, run: Callable[[], int]) -> tuple[float, int]:
    times = []
    result = 0
    for _ in range(repeat):
        began = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - began)
    return min(times), result


def sized_run(tokens: int) -> tuple[dict[str, Any], list[models.Evidence], reasoning.Digest]:
    """The smallest synthetic run whose rendered digest reaches ``tokens`` (estimated)."""
    count = 60
    while True:
        state, evidence = make_run(evidence_count=count, seed=7)
        digest = reason_step.digest_of(state, evidence=evidence)  # type: ignore[arg-type]
        size = reasoning.estimate_tokens(reasoning.render_digest(digest, nonce=NONCE))
        if size >= tokens or count > 4000:
            return state, evidence, digest
        count = int(count * 1.25)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.reasoning")
    parser.add_argument("--tokens", type=int, default=16_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-suite", dest="suite", action="store_false")
    parser.add_argument("folders", nargs="*", type=Path)
    args = parser.parse_args(argv)
    reason_step.MAX_DIGEST_EVIDENCE = 10_000  # let the digest grow to the size asked for
    state, evidence, digest = sized_run(args.tokens)
    answer = answer_for(digest, seed=11)
    ours_s, tokens = best_of(args.repeat, lambda: ours(state, evidence, answer))
    base_s, base_tokens = best_of(args.repeat, lambda: baseline(state, evidence, answer))
    budget = reasoning.Budget()
    room = int(budget.max_prompt_tokens * llm.DIGEST_SHARE)
    fit_s, _ = best_of(
        args.repeat,
        lambda: len(reasoning.fit_digest(digest, max_tokens=room, nonce=NONCE).evidence),
    )
    fitted = reasoning.fit_digest(digest, max_tokens=room, nonce=NONCE)
    fitted_tokens = reasoning.estimate_tokens(reasoning.render_digest(fitted, nonce=NONCE))
    print(
        f"reasoning: digest of {len(digest.evidence)} evidence, {len(digest.components)} "
        f"components, {len(digest.changes)} changes, ~{tokens:,} prompt tokens (estimated)"
    )
    print(f"  digest+render+validate+settle {ours_s * 1000:8.2f} ms   (< {TARGET_MS:g} ms)")
    print(f"  json baseline                 {base_s * 1000:8.2f} ms   (~{base_tokens:,} tokens)")
    print(f"  ratio ours/baseline           {ours_s / base_s:8.2f}x")
    print(
        f"  default budget: digest fitted to {room:,} of {budget.max_prompt_tokens:,} prompt "
        f"tokens keeps {len(fitted.evidence)} of {len(digest.evidence)} evidence "
        f"(~{fitted_tokens:,} tokens) in {fit_s * 1000:.2f} ms"
    )
    code = 0 if ours_s * 1000 < TARGET_MS else 1
    reason_step.MAX_DIGEST_EVIDENCE = 60
    if args.suite:
        code = max(code, suite(endtoend.find_scenarios(args.folders), budget=budget))
    return code


# --- across the bundled scenarios --------------------------------------------------------------


def suite(folders: list[Path], *, budget: reasoning.Budget) -> int:
    """Prompt tokens each diagnosis sends with the default budget; 1 when any run exceeds it."""
    print(f"\nreasoning across {len(folders)} scenarios (default budget, stand-in model)")
    print(f"  {'scenario':<28} {'requests':>8} {'prompt tokens':>14} {'largest request':>16}")
    sent: list[tuple[int, str]] = []
    with stand_in() as (url, seen):
        for folder in folders:
            seen.clear()
            try:
                llm_block = _diagnose(folder, url=url)
            except errors.DiagnoseError as exc:
                print(f"  {folder.name:<28} could not run: {exc}")
                continue
            total = int(llm_block["prompt_tokens"])
            sent.append((total, folder.name))
            print(f"  {folder.name:<28} {len(seen):>8} {total:>14,} {max(seen, default=0):>16,}")
    if not sent:
        return 1
    largest, name = max(sent)
    limit = budget.max_prompt_tokens
    print(f"  largest: {name}, {largest:,} prompt tokens (budget {limit:,})")
    return 0 if largest <= limit else 1


def _diagnose(folder: Path, *, url: str) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="diagnose-bench-") as state_dir,
        lab.running(folder, now=datetime.now(UTC)) as run,
    ):
        settings = Settings.model_validate({"state_dir": state_dir, "llm_base_url": url})
        with wiring.open_agent(
            wiring.with_endpoints(settings, run.endpoints), progress=lambda _m: None
        ) as agent:
            paused = agent.start(run.trigger)
    return dict(reporting.result(paused.state)["llm"])


@contextlib.contextmanager
def stand_in() -> Iterator[tuple[str, list[int]]]:
    """A loopback OpenAI-compatible server; ``seen`` collects each request's prompt estimate."""
    seen: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = json.dumps(body["messages"]) + json.dumps(body.get("tools") or [])
            seen.append(reasoning.estimate_tokens(prompt))
            self._send(_stand_in_answer(body, prompt_tokens=seen[-1]))

        def _send(self, answer: dict[str, Any]) -> None:
            payload = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()


def _stand_in_answer(body: dict[str, Any], *, prompt_tokens: int) -> dict[str, Any]:
    tools = {t["function"]["name"]: t["function"]["parameters"] for t in body.get("tools") or []}
    explored = any(m.get("role") == "tool" for m in body["messages"])
    read = tools.get(reasoning.READ_EVIDENCE_TOOL)
    if body.get("tool_choice") == "auto" and read and not explored:
        ids = read["properties"]["evidence_id"].get("enum") or ["-"]
        call = {
            "name": reasoning.READ_EVIDENCE_TOOL,
            "arguments": json.dumps({"evidence_id": ids[0]}),
        }
    else:
        item = tools[reasoning.ANSWER_TOOL]["properties"]["hypotheses"]["items"]["properties"]
        hypothesis = {
            "kind": "deploy",
            "component": (item["component"].get("enum") or ["-"])[0],
            "change": None,
            "evidence": (item["evidence"]["items"].get("enum") or ["-"])[:1],
            "rationale": "The first candidate fits the evidence.",
            "fix": None,
        }
        call = {
            "name": reasoning.ANSWER_TOOL,
            "arguments": json.dumps({"hypotheses": [hypothesis]}),
        }
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "type": "function", "function": call}],
    }
    return {
        "id": "bench",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 40},
    }


if __name__ == "__main__":
    raise SystemExit(main())
