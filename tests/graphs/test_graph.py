"""The diagnosis graph: approval cannot be bypassed, runs pause and resume from checkpoints,
and missing sources become notes rather than crashes."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors import bundle, prometheus
from diagnose.domain import models
from graphs import checkpoints, diagnosis, pipeline, runner
from graphs.state import Context, Run

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TRIGGER = models.Trigger(
    source="manual", title="checkout 5xx", service="checkout", namespace="shop", at=AT
)


def _reachable_from(graph: Any, start: str, *, without: str) -> set[str]:
    edges: dict[str, set[str]] = {}
    for edge in graph.get_graph().edges:
        edges.setdefault(edge.source, set()).add(edge.target)
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node in seen or node == without:
            continue
        seen.add(node)
        todo.extend(edges.get(node, ()))
    return seen


def test_act_is_reachable_only_through_approve() -> None:
    graph = diagnosis.build()
    assert "act" in _reachable_from(graph, "__start__", without="nothing")
    assert "act" not in _reachable_from(graph, "__start__", without="approve")


class _Cluster:
    """A ClusterSource port that answers from fixed payloads."""

    def __init__(self, replicasets: list[dict[str, Any]]) -> None:
        self.replicasets = replicasets

    def _ok(self, query: str, raw: list[Any]) -> models.Evidence:
        status = models.Status.OK if raw else models.Status.EMPTY
        return models.Evidence.make(
            source="kubernetes",
            query=query,
            window=None,
            status=status,
            summary=f"{len(raw)} objects",
            raw=raw,
        )

    def list_deployments(self, *, namespace: str) -> models.Evidence:
        return self._ok(f"kubectl get deployments -n {namespace} -o yaml", [])

    def list_replicasets(self, *, namespace: str) -> models.Evidence:
        return self._ok(f"kubectl get replicasets -n {namespace} -o yaml", self.replicasets)

    def list_configs(self, *, namespace: str) -> models.Evidence:
        return self._ok(f"kubectl get configmaps -n {namespace} -o yaml", [])

    def list_pods(self, *, namespace: str) -> models.Evidence:
        return self._ok(f"kubectl get pods -n {namespace} -o yaml", [])

    def list_events(self, *, namespace: str, window: models.Window) -> models.Evidence:
        return self._ok(f"kubectl get events -n {namespace} -o yaml", [])


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def context(tmp_path: Path) -> Context:
    metrics = prometheus.PrometheusConnector(f"http://127.0.0.1:{_closed_port()}", timeout_s=2)
    rs = {
        "name": "checkout-abc",
        "namespace": "shop",
        "owner": "deployment/checkout",
        "revision": 7,
        "created": models.format_time(AT - timedelta(minutes=4)),
        "images": ["checkout:1.7"],
        "replicas": 3,
        "resources": {},
        "annotations": {},
    }
    return Context(
        store=bundle.FileEvidenceStore(tmp_path / "bundles"),
        metrics=metrics,
        cluster=_Cluster([rs]),
        clock=lambda: AT + timedelta(minutes=3),
    )


@pytest.fixture
def agent_factory(tmp_path: Path, context: Context) -> Iterator[Any]:
    opened = []

    def make() -> runner.Agent:
        cm = checkpoints.sqlite_saver(tmp_path / "runs.sqlite")
        opened.append(cm)
        return runner.Agent(context=context, checkpointer=cm.__enter__())

    yield make
    for cm in opened:
        cm.__exit__(None, None, None)


def test_unreachable_prometheus_becomes_a_note_and_the_run_still_pauses(
    agent_factory: Any,
) -> None:
    paused = agent_factory().start(TRIGGER, run_id="run-unreachable")
    assert paused.waiting
    notes = " ".join(paused.state["notes"])
    assert "prometheus" in notes and "refused" in notes.lower()
    statuses = {e["source"]: e["status"] for e in paused.state["evidence"]}
    assert statuses["prometheus"] == "error"


def test_a_paused_run_resumes_from_a_new_agent(agent_factory: Any) -> None:
    agent_factory().start(TRIGGER, run_id="run-resume")
    answer = {"verdict": "reject", "approver": "carol", "reason": "need metrics first"}
    finished = agent_factory().resume("run-resume", answer)
    assert not finished.waiting
    assert finished.state["decision"]["approver"] == "carol"
    assert finished.state["report"]["decision"]["verdict"] == "reject"


def test_an_invalid_answer_is_refused_and_asked_again(agent_factory: Any) -> None:
    agent = agent_factory()
    agent.start(TRIGGER, run_id="run-again")
    again = agent.resume("run-again", {"verdict": "approve", "approver": "", "reason": ""})
    assert again.waiting
    assert any("approver" in p for p in again.state["approval_errors"])
    assert "decision" not in again.state


def test_the_bundle_replays_to_the_same_hypotheses(agent_factory: Any, context: Context) -> None:
    paused = agent_factory().start(TRIGGER, run_id="run-replay")
    evidence = context.store.load("run-replay")
    run = Run.of(paused.state)
    replayed = pipeline.replay(run, evidence=evidence)
    assert replayed.correlation["hypotheses"] == paused.state["correlation"]["hypotheses"]
    brief = lambda fixes: [(f["id"], f["kind"], f["target"]) for f in fixes]  # noqa: E731
    assert brief(replayed.fixes) == brief(paused.state["fixes"])
