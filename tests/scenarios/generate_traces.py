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
}


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
        print(f"{name}: written")


if __name__ == "__main__":
    main()
