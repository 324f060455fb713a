"""The incident lab: a scenario stood up on real servers, and everything torn down after.

``running`` is for one diagnosis (``diagnose run --scenario``, ``diagnose eval``, tests): it
starts only the servers the scenario needs, in parallel, yields where they listen, and stops
them all on exit, on an exception, on Ctrl-C and on SIGTERM. ``up``/``status``/``down`` are the
detached form behind ``diagnose lab``: the servers outlive the command, and a JSON state file
in ``state_dir`` records their pids, ports and folders so a later command can check or stop
them.

Every server dies with the process that started it, however that process dies (see
``processes``): ``running``'s with the diagnosing process, a detached lab's with its keeper
process, which ``lab down`` stops. A command killed while it starts a lab leaves no server
behind.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import Any, TypedDict

from diagnose import scenario as scenario_format
from diagnose.domain import errors, models
from diagnose.lab import (
    kubeapi,
    postgres,
    processes,
    prometheus,
    repositories,
    sessions,
    shifting,
    staging,
    traceapi,
    watchdog,
)

Progress = Callable[[str], None]
STATE_FILE = "lab.json"


@dataclass(frozen=True)
class Endpoints:
    """Where the lab's servers listen; None for a server the scenario does not need."""

    prometheus_url: str | None
    kubernetes_url: str | None
    postgres_dsn: str | None
    tempo_url: str | None = None  # the lab's trace server, as Grafana Tempo's API
    jaeger_url: str | None = None  # the same traces, as Jaeger's query API
    repositories: dict[str, str] = field(default_factory=dict)  # repository URL -> clone path


class EndpointsRecord(TypedDict):
    """A detached lab's :class:`Endpoints` as its record keeps them."""

    prometheus_url: str | None
    kubernetes_url: str | None
    postgres_dsn: str | None
    repositories: dict[str, str]


class LabRecord(TypedDict):
    """A detached lab as the state file keeps it, under the scenario's name."""

    scenario_root: str
    workdir: str
    offset_s: float
    trigger: models.TriggerData
    endpoints: EndpointsRecord
    children: dict[str, dict[str, int]]  # server name -> processes.Child.to_dict()
    dirs: list[str]  # deleted when the lab goes down


class KeeperMessage(TypedDict, total=False):
    """One JSON line the keeper prints: a progress line, its record, or why it stopped."""

    progress: str
    record: LabRecord
    error: str


@dataclass(frozen=True)
class LabRun:
    """A scenario standing in the lab: what the agent is given, and where to find the servers."""

    scenario: scenario_format.Scenario  # shifted; its root is the lab's shifted copy
    trigger: models.Trigger  # shifted
    offset: timedelta
    endpoints: Endpoints
    workdir: Path
    children: dict[str, processes.Child] = field(default_factory=dict)

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(child.pid for child in self.children.values())


@dataclass(frozen=True)
class LabStatus:
    """A detached lab as the state file records it, and which of its servers still run."""

    name: str
    endpoints: Endpoints
    trigger: models.Trigger
    offset: timedelta
    workdir: Path
    servers: dict[str, bool]  # server name -> running

    @property
    def dead(self) -> list[str]:
        return [name for name, running in self.servers.items() if not running]

    def __str__(self) -> str:
        lines = [f"{self.name}: trigger at {models.format_time(self.trigger.at)}"]
        lines.append(f"  shifted by {self.offset}" if self.offset else "  not shifted")
        for label, value in (
            ("prometheus", self.endpoints.prometheus_url),
            ("kubernetes", self.endpoints.kubernetes_url),
            ("postgres", self.endpoints.postgres_dsn),
            ("tempo", self.endpoints.tempo_url),
            ("jaeger", self.endpoints.jaeger_url),
        ):
            if value:
                lines.append(f"  {label:<11} {value}")
        for url, clone in self.endpoints.repositories.items():
            lines.append(f"  {'repository':<11} {url} = {clone}")
        if self.dead:
            lines.append(f"  NOT RUNNING: {', '.join(self.dead)} (run `diagnose lab down`)")
        return "\n".join(lines)


# --- one diagnosis ------------------------------------------------------------------------


@contextlib.contextmanager
def running(
    scenario_dir: Path,
    *,
    now: datetime,
    shift: bool = True,
    workdir: Path | None = None,
    progress: Progress = lambda _: None,
) -> Iterator[LabRun]:
    """Stand the scenario up, yield it, and stop and delete everything the lab started."""
    owned = workdir is None
    folder = Path(tempfile.mkdtemp(prefix="diagnose-lab-")) if workdir is None else workdir
    folder.mkdir(parents=True, exist_ok=True)
    lab = _Lab(folder, progress=progress, record=folder / "watchdog.json")
    if owned:
        lab.dirs.append(folder)
    guard = watchdog.start(folder / "watchdog.json")  # cleans up if we are SIGKILLed
    try:
        with _sigterm_as_interrupt():
            run = lab.start(scenario_dir, now=now, shift=shift)
            yield run
    finally:
        lab.stop()
        guard.stop()
        if owned:
            shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """While the lab runs in the main thread, SIGTERM unwinds it like Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class _Lab:
    """The servers of one scenario, started together and stopped together."""

    def __init__(self, workdir: Path, *, progress: Progress, record: Path | None = None) -> None:
        self.workdir = workdir
        self.record = record  # what a watchdog must stop should this process die
        self._lock = threading.Lock()
        self._progress = progress
        self._stoppers: list[Callable[[], None]] = []
        self.children: dict[str, processes.Child] = {}
        self.dirs: list[Path] = []

    def say(self, line: str) -> None:
        with self._lock:
            self._progress(line)

    def keep(self, name: str, server: Any, *, dirs: tuple[Path, ...] = ()) -> None:
        """Remember a started server so that ``stop`` stops it."""
        with self._lock:
            self._stoppers.append(server.stop)
            self.children[name] = server.child
            self.dirs.extend(dirs)
            self._write_record()

    def _write_record(self) -> None:
        if self.record is not None:
            watchdog.write_record(self.record, children=self.children, dirs=self.dirs)

    def _keep_stopper(self, stop: Callable[[], None]) -> None:
        with self._lock:
            self._stoppers.append(stop)

    def stop(self) -> None:
        """Stop every server, last started first (the sessions before their database)."""
        with self._lock:
            stoppers, self._stoppers = self._stoppers[::-1], []
        for stop in stoppers:
            stop()

    def start(self, scenario_dir: Path, *, now: datetime, shift: bool) -> LabRun:
        self.workdir.mkdir(parents=True, exist_ok=True)
        original = scenario_format.Scenario.load(scenario_dir)
        offset = shifting.compute_offset(original.trigger.at, now=now) if shift else timedelta(0)
        scenario = self._staged(original, offset=offset)
        endpoints = self._start_servers(scenario)
        return LabRun(
            scenario=scenario,
            trigger=scenario.trigger_record(),
            offset=offset,
            endpoints=endpoints,
            workdir=self.workdir,
            children=dict(self.children),
        )

    def _staged(
        self, scenario: scenario_format.Scenario, *, offset: timedelta
    ) -> scenario_format.Scenario:
        if not offset:
            self.say(f"lab: {scenario.name}, recorded times kept")
            return scenario
        staged = staging.stage(scenario, offset=offset, root=self.workdir / "scenario")
        at = models.format_time(staged.trigger.at)
        self.say(f"lab: {scenario.name} shifted by {offset}, trigger now at {at}")
        return staged

    def _start_servers(self, scenario: scenario_format.Scenario) -> Endpoints:
        starters: dict[str, Callable[[], str]] = {}
        if scenario.metrics_file is not None:
            starters["prometheus"] = lambda: self._start_prometheus(scenario)
        if scenario.kubernetes_files:
            starters["kubernetes"] = lambda: self._start_kubernetes(scenario)
        if scenario.postgres_dir is not None:
            starters["postgres"] = lambda: self._start_postgres(scenario)
        if scenario.traces_files:
            starters["traces"] = lambda: self._start_traces(scenario)
        found = _run_all(starters)
        traces = found.get("traces")
        return Endpoints(
            prometheus_url=found.get("prometheus"),
            kubernetes_url=found.get("kubernetes"),
            postgres_dsn=found.get("postgres"),
            tempo_url=f"{traces}/tempo" if traces else None,
            jaeger_url=f"{traces}/jaeger" if traces else None,
            repositories=self._unpack_repositories(scenario),
        )

    def _unpack_repositories(self, scenario: scenario_format.Scenario) -> dict[str, str]:
        clones: dict[str, str] = {}
        for spec, path in scenario.repository_bundles():
            clone = repositories.unpack(path, target=self.workdir / "repositories" / spec.name)
            clones[spec.url] = str(clone)
            self.say(f"repository: {spec.url} unpacked from {path.name}")
        return clones

    def _start_prometheus(self, scenario: scenario_format.Scenario) -> str:
        assert scenario.metrics_file is not None
        size_mb = scenario.metrics_file.stat().st_size / 1e6
        self.say(f"prometheus: backfilling {size_mb:.1f} MB…")
        server = prometheus.PrometheusServer.from_openmetrics(
            scenario.metrics_file, workdir=self.workdir / "prometheus"
        )
        self.keep("prometheus", server)
        self.say(f"prometheus: listening on {server.url}")
        return server.url

    def _start_kubernetes(self, scenario: scenario_format.Scenario) -> str:
        objects = staging.load_kubernetes_objects(scenario)
        server = kubeapi.KubeApiServer.serve(
            objects, workdir=self.workdir / "kubernetes", logs=scenario.logs_dir
        )
        self.keep("kubernetes", server)
        self.say(f"kubernetes: {len(objects)} objects on {server.url}")
        return server.url

    def _start_traces(self, scenario: scenario_format.Scenario) -> str:
        files = scenario.traces_files
        server = traceapi.TraceApiServer.serve(files, workdir=self.workdir / "traces")
        self._keep_stopper(server.stop)
        with self._lock:
            self.children["traces"] = processes.adopt(server.process)
            self._write_record()
        self.say(f"traces: {len(files)} files on {server.url} (/tempo, /jaeger)")
        return server.url

    def _start_postgres(self, scenario: scenario_format.Scenario) -> str:
        assert scenario.postgres_dir is not None
        cluster = postgres.PostgresCluster.start(workdir=self.workdir / "postgres")
        self.keep("postgres", cluster, dirs=(cluster.data_dir,))
        self.say(f"postgres: listening on 127.0.0.1:{cluster.port}")
        database = scenario.database
        sessions.prepare_database(cluster, scenario.postgres_dir, database=database)
        held = scenario.postgres_dir / "sessions.yaml"
        if held.is_file():
            holder = sessions.SessionHolder.start(
                held, dsn=cluster.dsn(database), workdir=self.workdir / "postgres"
            )
            self.keep("sessions", holder)
            self.say(f"postgres: {len(sessions.load_sessions(held))} sessions held open")
        self.say(f"postgres: database {database} ready")
        return cluster.dsn(database, user=sessions.PROBE_ROLE)


def _run_all(starters: dict[str, Callable[[], str]]) -> dict[str, str]:
    """Run the starters in parallel; wait for all of them even on failure or Ctrl-C."""
    if not starters:
        return {}
    pool = futures.ThreadPoolExecutor(max_workers=len(starters), thread_name_prefix="lab")
    try:
        submitted = {name: pool.submit(start) for name, start in starters.items()}
        futures.wait(submitted.values())
    finally:
        pool.shutdown(wait=True)  # servers still starting are recorded, then stopped by the caller
    for future in submitted.values():
        if (failure := future.exception()) is not None:
            raise failure
    return {name: future.result() for name, future in submitted.items()}


# --- detached: lab up / status / down -------------------------------------------------------


def up(
    scenario_dir: Path,
    *,
    state_dir: Path,
    now: datetime,
    shift: bool = True,
    progress: Progress = lambda _: None,
) -> LabStatus:
    """Start a scenario's servers in the background and record them in ``state_dir``.

    The servers are started by a keeper process (:func:`keep`), and die with it. The keeper
    dies with this command until the state file records it: a command killed while starting
    leaves nothing running behind."""
    name = scenario_format.Scenario.load(scenario_dir).name
    with _state(state_dir) as state:
        if name in state:
            _refuse_or_clear(state, name)
        workdir = state_dir / "labs" / name
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        keeper, record = _start_keeper(
            scenario_dir, workdir=workdir, now=now, shift=shift, progress=progress
        )
        state[name] = record | {
            "children": {KEEPER: keeper.to_dict()} | record["children"],
            "dirs": [*record["dirs"], str(workdir)],
        }
        status_now = _status_of(name, state[name])
    processes.detach(keeper)  # recorded: from now on the lab outlives this command
    return status_now


KEEPER = "keeper"
"""The name of a detached lab's keeper process in the state file."""


def _start_keeper(
    scenario_dir: Path, *, workdir: Path, now: datetime, shift: bool, progress: Progress
) -> tuple[processes.Child, LabRecord]:
    """Start the keeper and wait for its record of the servers it started."""
    argv = [sys.executable, "-m", "diagnose.lab.keeper", str(scenario_dir), str(workdir)]
    argv += [models.format_time(now), "shift" if shift else "no-shift"]
    log = workdir / "keeper.log"
    child, process = processes.spawn(argv, log=log, stdout_pipe=True)
    assert process.stdout is not None
    message: KeeperMessage = {}
    try:
        with process.stdout:
            for line in process.stdout:
                message = json.loads(line)
                if "progress" in message:
                    progress(str(message["progress"]))
                elif "record" in message:
                    return child, message["record"]
                else:
                    break
        raise errors.LabError(
            str(message.get("error") or "the lab stopped while starting:\n" + processes.tail(log))
        )
    except BaseException:  # an error or Ctrl-C: stop what was started, keep nothing
        child.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        raise


def keep(argv: Sequence[str]) -> int:
    """The keeper of a detached lab (``python -m diagnose.lab.keeper SCENARIO WORKDIR NOW
    shift|no-shift``): start the servers, print their record as one JSON line (progress lines
    before it), then keep them until SIGTERM (``lab down``) and stop them. Its servers die
    with it however it dies."""
    scenario_dir, workdir, now, shift = argv

    def emit(message: KeeperMessage) -> None:
        print(json.dumps(message), flush=True)

    processes.allow_detach()
    record = Path(workdir) / "watchdog.json"
    lab = _Lab(Path(workdir), progress=lambda line: emit({"progress": line}), record=record)
    guard = watchdog.start(record)  # deletes the database's folder should the keeper be killed
    try:
        with _sigterm_as_interrupt():
            try:
                run = lab.start(
                    Path(scenario_dir), now=models.parse_time(now), shift=shift == "shift"
                )
            except errors.DiagnoseError as exc:
                emit({"error": str(exc)})
                return 1
            emit({"record": _record(run, dirs=lab.dirs)})
            while True:
                signal.pause()
    except KeyboardInterrupt:
        return 0
    finally:
        lab.stop()
        guard.stop()
    return 0


def status(*, state_dir: Path) -> list[LabStatus]:
    """Every detached lab, and whether each of its servers still runs."""
    with _state(state_dir) as state:
        return [_status_of(name, record) for name, record in sorted(state.items())]


def down(name: str | None, *, state_dir: Path) -> list[str]:
    """Stop one detached lab (every one when ``name`` is None) and delete its files."""
    with _state(state_dir) as state:
        names = sorted(state) if name is None else [name]
        if name is not None and name not in state:
            running_now = ", ".join(sorted(state)) or "none"
            raise errors.LabError(f"no lab named {name!r} is up (running: {running_now})")
        for each in names:
            _tear_down(state.pop(each))
        return names


def _refuse_or_clear(state: dict[str, LabRecord], name: str) -> None:
    if _status_of(name, state[name]).dead:
        _tear_down(state.pop(name))
        return
    raise errors.LabError(
        f"a lab named {name!r} is already up; stop it first with `diagnose lab down {name}`"
    )


def _record(run: LabRun, *, dirs: list[Path]) -> LabRecord:
    return {
        "scenario_root": str(run.scenario.root),
        "workdir": str(run.workdir),
        "offset_s": run.offset.total_seconds(),
        "trigger": run.trigger.to_dict(),
        "endpoints": {
            "prometheus_url": run.endpoints.prometheus_url,
            "kubernetes_url": run.endpoints.kubernetes_url,
            "postgres_dsn": run.endpoints.postgres_dsn,
            "repositories": run.endpoints.repositories,
        },
        "children": {name: child.to_dict() for name, child in run.children.items()},
        "dirs": [str(d) for d in dirs],
    }


def _status_of(name: str, record: LabRecord) -> LabStatus:
    children = {n: processes.Child.from_dict(c) for n, c in record["children"].items()}
    return LabStatus(
        name=name,
        endpoints=Endpoints(**record["endpoints"]),
        trigger=models.Trigger.from_dict(record["trigger"]),
        offset=timedelta(seconds=record["offset_s"]),
        workdir=Path(record["workdir"]),
        servers={n: child.alive() for n, child in children.items()},
    )


def _tear_down(record: LabRecord) -> None:
    order = [KEEPER, "sessions", "traces", "kubernetes", "prometheus", "postgres"]
    children = record["children"]
    for name in sorted(children, key=lambda n: order.index(n) if n in order else -1):
        processes.Child.from_dict(children[name]).stop()
    for folder in record["dirs"]:
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _state(state_dir: Path) -> Iterator[dict[str, LabRecord]]:
    """The state file, locked against other ``diagnose lab`` commands, saved on exit."""
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / STATE_FILE
    with (state_dir / "lab.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state: dict[str, LabRecord] = json.loads(path.read_text()) if path.is_file() else {}
        try:
            yield state
        finally:
            temporary = path.with_suffix(".tmp")
            temporary.write_text(json.dumps(state, indent=2), encoding="utf-8")
            temporary.replace(path)
