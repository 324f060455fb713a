"""A minute of PagerDuty traffic at 200 deliveries per second against the real service.

``diagnose serve`` and two ``diagnose worker`` processes share a queue in real PostgreSQL;
diagnoses read a Prometheus that answers slowly, so they are still running when one worker is
killed with SIGKILL. Reply times are printed here and benchmarked in ``benchmarks/webhooks.py``
(against ``/healthz`` in the same run); this test checks what must hold whatever the machine's
speed: every answer, exactly one run per incident, nothing lost to the dead worker. Some
incidents are reopened (one more run each) and some resolved (one postmortem draft each), both
redelivered once by PagerDuty, in slots the plan gave to events that are ignored.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
import pytest
from psycopg.rows import dict_row

from benchmarks import webhooks
from diagnose import wiring
from diagnose.lab import postgres
from diagnose.settings import Settings

RATE = 200.0
SECONDS = 60.0
INCIDENTS = 60
REOPENED = ("PLD00001", "PLD00002", "PLD00003", "PLD00004")
RESOLVED = ("PLD00003", "PLD00004", "PLD00005", "PLD00006")  # two of them reopened first


def _lifecycle_event(kind: str, incident_id: str, *, n: int) -> webhooks.Delivery:
    """A signed ``incident.reopened`` or ``incident.resolved`` delivery (PagerDuty V3)."""
    incident = {
        "id": incident_id,
        "type": "incident",
        "html_url": f"https://acme.pagerduty.com/incidents/{incident_id}",
        "status": "resolved" if kind == "resolve" else "triggered",
        "created_at": "2026-03-01T12:00:00Z",
        "title": f"checkout 5xx ratio above 5% ({incident_id})",
        "service": {"id": "PSVC001", "summary": "checkout", "type": "service_reference"},
        "urgency": "high",
    }
    event = {
        "id": f"ev-{kind}-{n}",
        "event_type": "incident.reopened" if kind == "reopen" else "incident.resolved",
        "resource_type": "incident",
        "occurred_at": "2026-03-01T12:30:00.000Z",
        "agent": {"id": "PUSER01", "type": "user_reference"},
        "client": None,
        "data": incident,
    }
    body = json.dumps({"event": event}).encode()
    headers = {
        "Content-Type": "application/json",
        "X-Webhook-Id": f"wh-{kind}-{n}",
        "X-PagerDuty-Signature": webhooks.sign(body, secret=webhooks.SECRET),
    }
    path = "/webhooks/pagerduty"
    return webhooks.Delivery(kind, path, body, headers, incident_id, 202, ("queued",))


def _with_lifecycle(deliveries: list[webhooks.Delivery]) -> list[webhooks.Delivery]:
    """Reopen and resolve some incidents in the second half of the minute (resolutions after
    the reopenings), each delivered twice; ignored events give up their slots."""
    mixed = list(deliveries)
    free = [n for n, d in enumerate(mixed) if d.kind == "other" and n > len(mixed) * 0.55]
    wanted = [("reopen", i) for i in REOPENED] + [("resolve", i) for i in RESOLVED]
    step = len(free) // (2 * len(wanted) + 1)
    for k, (kind, incident_id) in enumerate(wanted):
        first, again = free[k * step], free[(k + len(wanted)) * step]
        made = _lifecycle_event(kind, incident_id, n=first)
        mixed[first] = made
        mixed[again] = replace(made, kind="retry", expect_status=("duplicate",))
    return mixed


@dataclass
class Killed:
    """A diagnosis its worker was running, with the time the run had pinned, when killed."""

    job_id: int
    run_id: str
    now: str | None
    proposed: bool


def _running_past_intake(dsn: str, *, pid: int) -> tuple[int, str] | None:
    """A diagnosis ``pid`` runs that has checkpointed past intake (start, intake, scope)."""
    sql = """SELECT j.id, j.run_id FROM diagnose_jobs j
             WHERE j.kind = 'diagnose' AND j.state = 'running' AND j.lease_owner LIKE %s
               AND (SELECT count(*) FROM checkpoints c WHERE c.thread_id = j.run_id) >= 3
             LIMIT 1"""
    with psycopg.connect(dsn) as conn:
        row = conn.execute(sql, (f"%:{pid}:%",)).fetchone()
    return (int(row[0]), str(row[1])) if row else None


def _kill_mid_run(
    dsn: str, *, worker: int, settings: Settings, after_s: float, found: list[Killed]
) -> None:
    """SIGKILL ``worker`` while it runs a diagnosis that has checkpointed past intake, and
    note the time that run pinned (a restarted run would pin a new one)."""
    time.sleep(after_s)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        victim = _running_past_intake(dsn, pid=worker)
        if victim is not None:
            os.kill(worker, signal.SIGKILL)
            job_id, run_id = victim
            with wiring.open_agent(settings, progress=lambda _m: None) as agent:
                state = agent.status(run_id).state
            now, proposed = state.get("now"), state.get("fixes") is not None
            found.append(Killed(job_id=job_id, run_id=run_id, now=now, proposed=proposed))
            return
        time.sleep(0.1)


def _wait_until_diagnosed(dsn: str, *, timeout_s: float) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout_s
    with psycopg.connect(dsn, row_factory=dict_row, autocommit=True) as conn:
        while True:
            rows = conn.execute("SELECT * FROM diagnose_jobs ORDER BY id").fetchall()
            if all(r["state"] in ("done", "failed") for r in rows) or time.monotonic() > deadline:
                return rows
            time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.lab
@pytest.mark.timeout(240)
def test_a_minute_at_200_deliveries_per_second_loses_and_duplicates_nothing(
    tmp_path: Path, postgres_cluster: postgres.PostgresCluster
) -> None:
    name = "load_" + uuid.uuid4().hex[:8]
    postgres_cluster.create_database(name)
    dsn = postgres_cluster.dsn(name)
    deliveries = webhooks.with_health_checks(
        _with_lifecycle(webhooks.plan(rate=RATE, seconds=SECONDS, incidents=INCIDENTS))
    )
    kinds = Counter(d.kind for d in deliveries)
    sent = sum(n for kind, n in kinds.items() if kind != "health")
    assert sent == RATE * SECONDS
    assert (kinds["retry"] + kinds["duplicate"]) / sent >= 0.28
    killed: list[Killed] = []
    with (
        webhooks.slow_prometheus() as prometheus_url,
        webhooks.running_stack(
            database_url=dsn, prometheus_url=prometheus_url, workdir=tmp_path, workers=2
        ) as stack,
    ):
        settings = Settings.from_env(stack.env)
        victim = stack.workers[0]
        killer = threading.Thread(
            target=_kill_mid_run,
            args=(dsn,),
            kwargs={"worker": victim.pid, "settings": settings, "after_s": 10.0, "found": killed},
        )
        killer.start()
        outcomes = asyncio.run(webhooks.send_all(stack.base_url, deliveries, rate=RATE))
        killer.join()
        rows = _wait_until_diagnosed(dsn, timeout_s=60)
        assert stack.server.poll() is None, "diagnose serve died under load"
        assert stack.workers[1].poll() is None, "the surviving worker died"
        diagnosed = [r for r in rows if r["kind"] == "diagnose"]
        with wiring.open_agent(settings, progress=lambda _m: None) as agent:
            finals = {str(r["run_id"]): agent.status(str(r["run_id"])).state for r in diagnosed}
        with psycopg.connect(dsn) as conn:
            threads = conn.execute("SELECT count(DISTINCT thread_id) FROM checkpoints").fetchone()

    print()
    # Every delivery got the answer its kind calls for; every bad signature got 403; each
    # incident was queued by exactly one of the deliveries triggering it.
    failed = [o for o in outcomes if o.code == 0]
    causes = Counter(o.error.split("(")[0] for o in failed)
    assert not failed, f"{len(failed)} requests failed: {dict(causes)}, e.g. {failed[0].error}"
    problems = webhooks.check(outcomes)
    assert not problems, f"{len(problems)} wrong answers: {problems[:10]}"
    bad = [o for o in outcomes if o.delivery.kind == "bad_signature"]
    assert bad and all(o.code == 403 for o in bad)

    # Reply times: the absolute target (p99 < 100 ms) is the benchmark's to report, since two
    # shared cores cannot promise it; what must hold on any machine is that a webhook costs no
    # more than a health check answered under the same load.
    hook_p99, health_p99 = webhooks.report(outcomes)
    assert hook_p99 <= 3 * max(health_p99, 0.010)

    # One run per incident and one more per reopening, each finished at the approval step;
    # one postmortem draft per resolution, made after the incident's runs.
    incidents = {d.incident_id for d in deliveries if d.kind == "trigger"}
    assert len(incidents) == INCIDENTS
    runs = INCIDENTS + len(REOPENED)
    assert Counter(str(r["kind"]) for r in rows) == {"diagnose": runs, "postmortem": len(RESOLVED)}
    assert {str(r["ordering_key"]) for r in rows} == {f"pagerduty:{i}" for i in incidents}
    assert {r["state"] for r in rows} == {"done"}, Counter(str(r["state"]) for r in rows)
    per_incident = Counter(str(r["ordering_key"]) for r in diagnosed)
    assert {k for k, n in per_incident.items() if n != 1} == {f"pagerduty:{i}" for i in REOPENED}
    assert set(per_incident.values()) == {1, 2}
    assert len(finals) == runs and threads == (runs,)
    assert all(state.get("fixes") is not None for state in finals.values())
    drafts = [r for r in rows if r["kind"] == "postmortem"]
    assert sorted(str(r["ordering_key"]) for r in drafts) == [f"pagerduty:{i}" for i in RESOLVED]
    for draft in drafts:  # of the incident's latest run: a reopened incident's second
        latest = max(
            (r for r in diagnosed if r["ordering_key"] == draft["ordering_key"]),
            key=lambda r: int(str(r["id"])),
        )
        assert int(str(draft["id"])) > int(str(latest["id"]))
        assert draft["result"]["run_id"] == latest["run_id"]  # type: ignore[index]
        assert draft["result"]["markdown"].startswith("# Postmortem draft")  # type: ignore[index]

    # The killed worker's run was continued by the other from its checkpoint, not restarted.
    assert killed, "no worker was caught mid-run: the diagnoses finished too fast to test"
    (taken,) = killed
    assert taken.now and not taken.proposed, "the worker was not killed mid-run"
    job = next(r for r in rows if r["id"] == taken.job_id)
    assert job["attempts"] == 2
    assert f":{victim.pid}:" not in str(job["lease_owner"])
    assert job["result"]["run_id"] == taken.run_id  # type: ignore[index]
    assert finals[taken.run_id]["now"] == taken.now
