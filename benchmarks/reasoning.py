"""Benchmark: the model's side of a diagnosis on a digest of about 16,000 prompt tokens.

Builds the digest from a run's state and evidence (:func:`graphs.reasoning.digest_of`), renders
it fenced and redacted (:func:`diagnose.domain.reasoning.render_digest`), estimates its tokens,
validates a five-hypothesis answer against it and settles the claims in code. In the same
process it times a plain baseline over the same data (``json.dumps`` of the digest, ``json.loads``
of the answer and set look-ups of its ids) and prints the ratio. It also prints what the default
budget sends: the digest fitted to its share of ``DIAGNOSE_LLM_MAX_PROMPT_TOKENS``::

    python -m benchmarks.reasoning [--tokens 16000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors import llm
from diagnose.domain import models, reasoning
from graphs import reasoning as reason_step

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
    checked = reasoning.validate_answer(answer, digest=digest, nonce=NONCE)
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
    return 0 if ours_s * 1000 < TARGET_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
