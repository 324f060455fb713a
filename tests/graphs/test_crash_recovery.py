"""A ``diagnose`` process killed with SIGKILL anywhere in the graph is finished by
``diagnose finish``: the run reaches its report, the approved action is applied exactly once,
and the audit log holds each record once.

Each case drives whole runs through the real CLI against the lab's Prometheus and a Kubernetes
API of their own (execution mode writes to it), checkpoints and audit log in SQLite (one case:
in PostgreSQL), killing ``diagnose run``, ``diagnose approve`` and ``diagnose finish`` at random
points: as a step of the graph begins or a little after, and just after the approval was
recorded, before its step was saved. Every killed command is
followed by ``finish`` (itself killed too, sometimes) until the run is done.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from connectors import kubernetes
from diagnose import wiring
from diagnose.domain import errors, models
from diagnose.lab import kubeapi, lab, postgres
from diagnose.settings import Settings
from graphs import approval, runner
from tests.support import approvals

pytestmark = [pytest.mark.lab, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
BAD_DEPLOY = ROOT / "tests" / "scenarios" / "bad-deploy-5xx"

BEFORE_APPROVAL = (
    "intake",
    "scope",
    "gather_metrics",
    "gather_changes",
    "gather_traces",
    "check_stops",
    "correlate",
    "reason",
    "propose",
)
AFTER_APPROVAL = ("approval recorded", "act", "verify", "report")
KILLS_PER_CASE = 13  # four cases: 52 kill points at least
CASE_DEADLINE_S = 600.0  # a guard against a loop, not a benchmark


class Forker:
    """The forking server of ``tests.graphs.forking``: starts ``diagnose`` commands."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.graphs.forking"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self.process.stdout.readline())
        return answer

    def close(self) -> None:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self.process.stdout.close()


@pytest.fixture(scope="module")
def bad_deploy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[lab.LabRun]:
    """bad-deploy-5xx in the lab, shifted so its trigger fired minutes ago."""
    workdir = tmp_path_factory.mktemp("lab")
    with lab.running(BAD_DEPLOY, now=datetime.now(UTC), workdir=workdir) as run:
        yield run


@pytest.fixture(scope="module")
def forker() -> Iterator[Forker]:
    server = Forker()
    yield server
    server.close()


@dataclass
class Chain:
    """One run driven to its end through kills; what it needs and what happened to it."""

    run_id: str
    env: dict[str, str]
    settings: Settings
    logs: Path
    kills: list[str] = field(default_factory=list)
    commands: int = 0


def _env(
    run: lab.LabRun,
    kube: kubeapi.KubeApiServer,
    state: Path,
    *,
    execute: bool,
    database_url: str | None,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    return (
        env
        | {
            "NO_COLOR": "1",
            "DIAGNOSE_STATE_DIR": str(state),
            "DIAGNOSE_PROMETHEUS_URL": str(run.endpoints.prometheus_url),
            "DIAGNOSE_KUBERNETES_URL": kube.url,
            "DIAGNOSE_EXECUTE": "true" if execute else "false",
            "DIAGNOSE_VERIFY_WATCH_S": "0.6",
            "DIAGNOSE_VERIFY_INTERVAL_S": "0.2",
        }
        | ({"DIAGNOSE_KUBERNETES_WRITE_URL": kube.url} if execute else {})
        | ({"DIAGNOSE_DATABASE_URL": database_url} if database_url else {})
    )


def _settings(
    run: lab.LabRun, kube: kubeapi.KubeApiServer, state: Path, *, database_url: str | None
) -> Settings:
    return Settings.model_validate(
        {
            "state_dir": state,
            "prometheus_url": run.endpoints.prometheus_url,
            "kubernetes_url": kube.url,
            "database_url": database_url,
        }
    )


def _ended(pid: int) -> bool:
    """The child exited (a zombie until the forking server reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def _approval_recorded(chain: Chain) -> bool:
    """Whether the audit log holds the run's approval, read straight from its table."""
    if chain.settings.database_url:
        try:
            with psycopg.connect(chain.settings.database_url) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM diagnose_audit WHERE run_id = %s AND kind = 'approval'",
                    (chain.run_id,),
                ).fetchone()
        except psycopg.errors.UndefinedTable:  # not created yet
            return False
        return bool(row and row[0])
    audit, run_id = chain.settings.state_dir / "audit.sqlite", chain.run_id
    if not audit.exists():
        return False
    conn = sqlite3.connect(f"file:{audit}?mode=ro", uri=True, timeout=5)
    try:
        row = conn.execute(
            "SELECT count(*) FROM audit WHERE run_id = ? AND kind = 'approval'", (run_id,)
        ).fetchone()
    except sqlite3.OperationalError:  # the table is being created
        return False
    finally:
        conn.close()
    return bool(row and row[0])


def _reached(target: str, *, log: Path, chain: Chain) -> bool:
    if target == "approval recorded":
        return _approval_recorded(chain)
    return log.exists() and f"· {target}…" in log.read_text(encoding="utf-8", errors="replace")


def _command(
    forker: Forker, argv: list[str], *, chain: Chain, target: str | None, rng: random.Random
) -> int:
    """Run one ``diagnose`` command; with a ``target``, SIGKILL it when the target is reached
    (a step begins, or the approval is recorded), after a random few milliseconds."""
    chain.commands += 1
    log = chain.logs / f"{chain.commands:02d}-{argv[0]}.log"
    pid = int(forker.ask({"argv": argv, "env": chain.env, "log": str(log)})["pid"])
    deadline = time.monotonic() + 120
    while target is not None and not _ended(pid):
        assert time.monotonic() < deadline, f"{argv[0]} never ended nor reached {target}"
        if _reached(target, log=log, chain=chain):
            if target != "approval recorded":
                time.sleep(rng.uniform(0.0, 0.08))
            os.kill(pid, signal.SIGKILL)
            break
        time.sleep(0.002 if target == "approval recorded" else 0.01)
    status = int(forker.ask({"wait": pid})["status"])
    if status == -signal.SIGKILL:
        chain.kills.append(f"{argv[0]}@{target}")
    else:
        assert status in (0, 3), log.read_text(encoding="utf-8")
    return status


def _status(chain: Chain) -> runner.Paused | None:
    with wiring.open_agent(chain.settings, progress=lambda _m: None, remember=False) as agent:
        try:
            return agent.status(chain.run_id)
        except errors.RunNotFound:
            return None


def _audit(chain: Chain) -> list[dict[str, Any]]:
    log = wiring.open_audit(chain.settings)
    try:
        return log.entries(chain.run_id)
    finally:
        log.close()


def _answer(paused: runner.Paused) -> list[str]:
    fix = paused.state["fixes"][0]
    checked = approvals.flag(paused.state["correlation"]["hypotheses"][fix["hypothesis"]])
    reason = "5xx began with the rollout"
    return ["--fix", fix["id"], "--approver", "alice", "--reason", reason, "--checked", checked]


def _drive(
    forker: Forker, chain: Chain, *, trigger: models.Trigger, rng: random.Random, after: str
) -> runner.Paused:
    """Diagnose, approve the first fix and finish, killing commands on the way."""
    run = ["run", "--service", trigger.service, "-n", trigger.namespace, "--json"]
    run += ["--at", models.format_time(trigger.at), "--title", trigger.title]
    run += ["--run-id", chain.run_id]
    ahead = sorted(rng.sample(BEFORE_APPROVAL, 4), key=BEFORE_APPROVAL.index)
    paused = None
    while paused is None or not paused.waiting:
        argv = run if paused is None else ["finish", chain.run_id]
        _command(forker, argv, chain=chain, target=ahead.pop(0) if ahead else None, rng=rng)
        paused = _status(chain)
        if paused is None:  # killed before its first checkpoint: nothing was kept
            assert _audit(chain) == []
        assert paused is None or not paused.finished, "finished without an approval"
    approve = ["approve", chain.run_id, *_answer(paused)]
    _command(forker, approve, chain=chain, target=after, rng=rng)
    later = AFTER_APPROVAL[AFTER_APPROVAL.index(after) + 1 :]
    ahead = sorted(rng.sample(later, rng.randint(1, len(later))), key=later.index)
    paused = _status(chain)
    assert paused is not None
    for _ in range(len(ahead) + 1):
        if paused.finished:
            break
        target = ahead.pop(0) if ahead else None
        _command(forker, ["finish", chain.run_id], chain=chain, target=target, rng=rng)
        paused = _status(chain)
        assert paused is not None and not paused.waiting, "asked again after the approval"
    assert paused.finished, f"an unkilled finish left the run unfinished: {chain.kills}"
    return paused


def _object(kube: kubeapi.KubeApiServer, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(kube.url + path, timeout=10) as answer:
        found: dict[str, Any] = json.load(answer)
    return found


def _patches(kube: kubeapi.KubeApiServer) -> list[dict[str, Any]]:
    return [
        r
        for r in kube.write_requests()
        if r["method"] == "PATCH" and r["query"].get("dryRun") != "All"
    ]


def _check(
    chain: Chain, done: runner.Paused, kube: kubeapi.KubeApiServer, *, execute: bool
) -> None:
    state = done.state
    fix = state["fixes"][0]
    assert state["decision"]["approver"] == "alice" and state["decision"]["fix"] == fix["id"]
    (action,) = state["actions"]
    kinds = Counter(entry["kind"] for entry in _audit(chain))
    keys = Counter(entry["key"] for entry in _audit(chain))
    assert max(keys.values()) == 1
    assert kinds["approval"] == kinds["decision"] == kinds["action"] == 1, kinds
    assert kinds["proposal"] == len(state["fixes"]), kinds
    patches = _patches(kube)
    if not execute:
        assert action["outcome"] == "handed over" and patches == []
        return
    assert action["executed"] and action["outcome"] in ("accepted", "already applied"), action
    assert len(patches) == 1, chain.kills
    assert kinds["verification"] == 1 and kinds["action-intent"] == 1, kinds
    annotations = _object(kube, patches[0]["path"])["metadata"]["annotations"]
    key = approval.action_key(fix, run_id=chain.run_id)
    assert annotations[kubernetes.ACTION_MARKER] == key


def _database(request: pytest.FixtureRequest, name: str, *, store: str) -> str | None:
    """A fresh database for a run's checkpoints and audit log (None: SQLite files)."""
    if store == "sqlite":
        return None
    cluster: postgres.PostgresCluster = request.getfixturevalue("postgres_cluster")
    cluster.create_database(name)
    return cluster.dsn(name)


@dataclass(frozen=True)
class Case:
    execute: bool  # execution mode: the act step sends the patch to the lab's API
    after: str  # where the approving command is killed
    seed: int
    store: str = "sqlite"  # where checkpoints and the audit log live: sqlite or postgres


@pytest.mark.parametrize(
    "case",
    [
        Case(execute=True, after="approval recorded", seed=1),
        Case(execute=True, after="approval recorded", seed=2, store="postgres"),
        Case(execute=True, after="act", seed=3),
        Case(execute=False, after="approval recorded", seed=4),
    ],
    ids=["execute-approval", "execute-approval-postgres", "execute-act", "hand-over"],
)
def test_every_killed_run_is_finished_with_its_action_applied_once(
    bad_deploy: lab.LabRun,
    forker: Forker,
    tmp_path: Path,
    case: Case,
    request: pytest.FixtureRequest,
) -> None:
    """Runs killed at random points, each kill followed by ``finish``, all end with their
    report, one applied action and no audit record twice."""
    rng = random.Random(case.seed)
    objects = json.loads(
        (bad_deploy.workdir / "kubernetes" / "kubernetes-objects.json").read_text()
    )
    kills = 0
    began = time.monotonic()
    n = 0
    while kills < KILLS_PER_CASE:
        assert time.monotonic() - began < CASE_DEADLINE_S, f"only {kills} kill points"
        n += 1
        folder = tmp_path / f"run{n}"
        folder.mkdir()
        database_url = _database(request, f"crash_{case.seed}_{n}", store=case.store)
        with kubeapi.KubeApiServer.serve(objects, workdir=folder / "kube") as kube:
            env = _env(
                bad_deploy, kube, folder / "state", execute=case.execute, database_url=database_url
            )
            chain = Chain(
                run_id=f"run-crash{case.seed}x{n}",
                env=env,
                settings=_settings(bad_deploy, kube, folder / "state", database_url=database_url),
                logs=folder,
            )
            done = _drive(forker, chain, trigger=bad_deploy.trigger, rng=rng, after=case.after)
            _check(chain, done, kube, execute=case.execute)
        kills += len(chain.kills)
