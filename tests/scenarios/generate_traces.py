"""Write the trace-bearing scenarios: traces only (OTLP/JSON), from the trace test generator.

    python tests/scenarios/generate_traces.py

Each scenario's baseline traces cover the 40 minutes that end 20 minutes before the alert and
its incident traces the 15 minutes around it, as a tracing back end would hold them. The data
is deterministic (seeded); the files are small enough to commit.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from diagnose.domain.models import Window, format_time, parse_time  # noqa: E402
from tests.traces import otlp_gen  # noqa: E402

AT = parse_time("2026-01-10T09:00:00Z")

CASES = {
    "traces-slow-dependency": (
        "slow_dependency",
        "frontend: p95 latency of GET /checkout above 400ms for 5m",
        {
            "kind": "resource",
            "component": "payments",
            "detail": "payments' POST /charge takes 300 ms longer; callers wait on it",
        },
        "none",
    ),
    "traces-slow-sql": (
        "slow_sql",
        "frontend: p95 latency of GET /checkout above 350ms for 5m",
        {
            "kind": "database",
            "component": "postgres/shop",
            "detail": "the orders query checkout runs takes 250 ms longer",
        },
        "none",
    ),
    "traces-canary": (
        "canary",
        "frontend: 5xx ratio of GET /checkout above 5% for 5m",
        {
            "kind": "deploy",
            "component": "checkout",
            "change": "deployment/checkout@2",
            "detail": "checkout 2.14 (revision 2, a canary beside 2.13) fails 40% of requests",
        },
        "rollback",
    ),
}


def replicaset(revision: int, tag: str, *, created: str, replicas: int) -> dict[str, object]:
    """A checkout ReplicaSet as the API returns it."""
    name = f"checkout-{revision}f8c6b5d"
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "uid": f"rs-{revision}",
            "creationTimestamp": created,
            "labels": {"app": "checkout"},
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "checkout",
                    "uid": "dep-checkout",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": {
                "metadata": {"labels": {"app": "checkout"}},
                "spec": {"containers": [{"name": "checkout", "image": f"shop/checkout:{tag}"}]},
            },
        },
        "status": {"replicas": replicas, "availableReplicas": replicas},
    }


def canary_objects() -> list[dict[str, object]]:
    """checkout 2.13 (revision 1) serving, 2.14 (revision 2) rolled out as a canary."""
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "checkout",
            "namespace": "shop",
            "uid": "dep-checkout",
            "creationTimestamp": format_time(AT - timedelta(days=30)),
            "labels": {"app": "checkout"},
            "annotations": {"deployment.kubernetes.io/revision": "2"},
        },
        "spec": {
            "replicas": 4,
            "selector": {"matchLabels": {"app": "checkout"}},
            "template": {
                "metadata": {"labels": {"app": "checkout"}},
                "spec": {"containers": [{"name": "checkout", "image": "shop/checkout:2.14.0"}]},
            },
        },
        "status": {"replicas": 4, "availableReplicas": 4},
    }
    return [
        deployment,
        replicaset(1, "2.13.2", created=format_time(AT - timedelta(days=9)), replicas=2),
        replicaset(2, "2.14.0", created=format_time(AT - timedelta(minutes=13)), replicas=2),
    ]


def scenario(name: str, *, title: str, cause: dict[str, str], fix: str) -> dict[str, object]:
    return {
        "format": 1,
        "name": name,
        "description": "Recorded in namespace shop; traces only.",
        "time": {
            "start": format_time(AT - timedelta(hours=1)),
            "end": format_time(AT + timedelta(minutes=3)),
        },
        "trigger": {
            "source": "alertmanager",
            "title": title,
            "service": "frontend",
            "namespace": "shop",
            "at": format_time(AT),
            "labels": {"severity": "warning"},
        },
        "truth": {"root_cause": cause, "fix": fix},
    }


def main() -> None:
    baseline = Window(AT - timedelta(minutes=60), AT - timedelta(minutes=22))
    incident = Window(AT - timedelta(minutes=12), AT + timedelta(minutes=2))
    for name, (fault, title, cause, fix) in CASES.items():
        folder = HERE / name
        (folder / "traces").mkdir(parents=True, exist_ok=True)
        otlp_gen.write_document(
            fault, folder / "traces", baseline=baseline, incident=incident, traces_per_window=80
        )
        spec = scenario(name, title=title, cause=cause, fix=fix)
        (folder / "scenario.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
        if fault == "canary":
            (folder / "kubernetes").mkdir(exist_ok=True)
            (folder / "kubernetes" / "checkout.yaml").write_text(
                yaml.safe_dump_all(canary_objects(), sort_keys=False)
            )
        print(f"{name}: written")


if __name__ == "__main__":
    main()
