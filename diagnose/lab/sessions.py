"""The database side of a scenario: setup, a repeated workload, and sessions held open.

``postgres/sessions.yaml`` lists sessions (``name``, ``sql``, optional ``after``) that must stay
open during the diagnosis: a migration holding a lock, a reader blocked behind it, a client idle
in a transaction. They live in a child process (``python -m diagnose.lab.sessions``), in its own
session, so they outlive a detached ``lab up``; it prints ``ready`` once every session has run
its statements, or is stuck in one (a statement still running after a moment counts as run: a
blocked statement stays blocked).
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import psycopg
import yaml

from diagnose.domain import errors
from diagnose.lab import postgres, processes

PROBE_ROLE = "diagnose"
"""The role the agent probes a scenario's database as: the agent refuses a superuser. As
deploy/sql/diagnose-role.sql makes it (pg_monitor, read-only sessions), plus SELECT on the
scenario's tables so statements can be explained."""

_PROBE_ROLE_SQL = f"""
DO $$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{PROBE_ROLE}') THEN
    CREATE ROLE {PROBE_ROLE} LOGIN;
  END IF;
END$$;
GRANT pg_monitor TO {PROBE_ROLE};
ALTER ROLE {PROBE_ROLE} SET default_transaction_read_only = on;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO {PROBE_ROLE};
"""

DEFAULT_WORKLOAD_REPEAT = 50
READY_TIMEOUT_S = 30.0
RUNNING_AFTER_S = 0.3  # a statement still running after this long counts as "run"


@dataclass(frozen=True)
class SessionSpec:
    """One session of ``sessions.yaml``."""

    name: str
    sql: tuple[str, ...]
    after: str | None = None


def load_sessions(path: Path) -> list[SessionSpec]:
    """Read ``sessions.yaml``, checking names and ``after`` references."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        specs = [_session_from(entry) for entry in data.get("sessions") or []]
    except (yaml.YAMLError, AttributeError, KeyError, TypeError) as exc:
        raise errors.ScenarioError(f"{path}: expected 'sessions' with name and sql: {exc}") from exc
    names = [spec.name for spec in specs]
    for spec in specs:
        if spec.after is not None and spec.after not in names:
            raise errors.ScenarioError(
                f"{path}: session {spec.name!r}: field 'after' names no session ({spec.after!r})"
            )
    return specs


def _session_from(entry: dict[str, Any]) -> SessionSpec:
    sql = entry["sql"]
    statements = (sql,) if isinstance(sql, str) else tuple(str(s) for s in sql)
    after = entry.get("after")
    return SessionSpec(str(entry["name"]), statements, str(after) if after else None)


def prepare_database(
    cluster: postgres.PostgresCluster,
    postgres_dir: Path,
    *,
    database: str,
    repeat: int = DEFAULT_WORKLOAD_REPEAT,
) -> None:
    """Create the database and pg_stat_statements, run setup.sql, let :data:`PROBE_ROLE` read,
    then run the workload."""
    cluster.create_database(database)
    with psycopg.connect(cluster.dsn(database), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    if (postgres_dir / "setup.sql").is_file():
        cluster.run_sql_file(postgres_dir / "setup.sql", database=database)
    with psycopg.connect(cluster.dsn(database), autocommit=True) as conn:
        conn.execute(_PROBE_ROLE_SQL)
    if (postgres_dir / "workload.sql").is_file():
        run_workload(cluster, postgres_dir / "workload.sql", database=database, repeat=repeat)


def run_workload(
    cluster: postgres.PostgresCluster, workload: Path, *, database: str, repeat: int
) -> None:
    """Run ``workload`` ``repeat`` times in one psql session (fills the statistics views)."""
    text = workload.read_text(encoding="utf-8").rstrip()
    if not text.endswith(";"):
        text += ";"
    with tempfile.NamedTemporaryFile("w", suffix=".sql", encoding="utf-8") as script:
        script.write("\n".join([text] * repeat) + "\n")
        script.flush()
        cluster.run_sql_file(Path(script.name), database=database)


class SessionHolder(processes.Server):
    """The child process holding the sessions open. Use as a context manager, or ``stop``."""

    def __init__(self, child: processes.Child) -> None:
        self.child = child

    @classmethod
    def start(cls, sessions_file: Path, *, dsn: str, workdir: Path) -> SessionHolder:
        """Start the holder and wait until every session has run (or is stuck in) its SQL."""
        load_sessions(sessions_file)  # fail here, with the file named, rather than in the child
        argv = [sys.executable, "-m", "diagnose.lab.sessions", "--dsn", dsn, str(sessions_file)]
        child, process = processes.spawn(argv, log=workdir / "sessions.log", stdout_pipe=True)
        holder = cls(child)
        assert process.stdout is not None
        line = processes.read_line(process.stdout, timeout=READY_TIMEOUT_S)
        process.stdout.close()
        if line.strip() != "ready":
            holder.stop()
            raise errors.LabError(
                f"the sessions of {sessions_file} did not start:\n"
                + processes.tail(workdir / "sessions.log")
            )
        return holder

    def stop(self) -> None:
        self.child.stop()


# --- the child process ------------------------------------------------------------------------


class _Session(threading.Thread):
    def __init__(self, spec: SessionSpec, *, dsn: str, others: dict[str, _Session]) -> None:
        super().__init__(name=spec.name, daemon=True)
        self.spec = spec
        self.dsn = dsn
        self.others = others
        self.finished = threading.Event()
        self.in_flight_since: float | None = None
        self.error: BaseException | None = None

    def has_run(self) -> bool:
        since = self.in_flight_since
        return self.finished.is_set() or (
            since is not None and time.monotonic() - since >= RUNNING_AFTER_S
        )

    def run(self) -> None:
        try:
            self._wait_for_predecessor()
            conn = psycopg.connect(self.dsn, autocommit=True, application_name=self.spec.name)
            for statement in self.spec.sql:
                self.in_flight_since = time.monotonic()
                conn.execute(statement.encode())  # bytes: no client-side parameter parsing
                self.in_flight_since = None
            self.finished.set()
            threading.Event().wait()  # keep the connection (and its transaction) open
        except BaseException as exc:
            self.error = exc
            self.finished.set()

    def _wait_for_predecessor(self) -> None:
        if self.spec.after is None:
            return
        before = self.others[self.spec.after]
        while not before.has_run():
            time.sleep(0.02)


def hold(specs: Sequence[SessionSpec], *, dsn: str) -> int:
    """Run the sessions, print ``ready``, and hold them until SIGTERM or SIGINT."""
    running: dict[str, _Session] = {}
    for spec in specs:
        running[spec.name] = _Session(spec, dsn=dsn, others=running)
    for session in running.values():
        session.start()
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not all(s.has_run() for s in running.values()) and time.monotonic() < deadline:
        time.sleep(0.02)
    failed = [s for s in running.values() if s.error is not None or not s.has_run()]
    for session in failed:
        print(f"session {session.spec.name!r}: {session.error or 'did not start'}", file=sys.stderr)
    print("error" if failed else "ready", flush=True)
    if failed:
        return 1
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diagnose.lab.sessions")
    parser.add_argument("--dsn", required=True)
    parser.add_argument("sessions_file", type=Path)
    args = parser.parse_args(argv)
    return hold(load_sessions(args.sessions_file), dsn=args.dsn)


if __name__ == "__main__":
    sys.exit(main())
