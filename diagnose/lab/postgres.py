"""A throwaway PostgreSQL cluster: initdb, start on a free loopback port, stop and delete.

Built for speed, not durability (``fsync=off``): a cluster is up in about a second. Local and
loopback connections are trusted, ``pg_stat_statements`` is preloaded. PostgreSQL refuses to run
as root, so when the lab runs as root the cluster runs as the ``postgres`` OS user, in a
directory of its own under the system temp dir (the lab's own folder may not be reachable by
that user); ``stop`` deletes it either way.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import tempfile
import time
from pathlib import Path

import psycopg
from psycopg import sql

from diagnose.domain import errors
from diagnose.lab import processes

INSTALL_HINT = "apt-get update && apt-get install -y postgresql postgresql-contrib"
READY_TIMEOUT_S = 30.0
OS_USER = "postgres"
_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_preload_libraries": "'pg_stat_statements'",
    "pg_stat_statements.track": "all",
    "max_connections": "200",
    "log_min_messages": "warning",
}


def find_bin_dir() -> Path:
    """The newest PostgreSQL binaries, from PATH or ``/usr/lib/postgresql/*/bin``."""
    candidates = [Path(d) for d in Path("/usr/lib/postgresql").glob("*/bin")]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    usable = [d for d in candidates if (d / "initdb").is_file() and (d / "postgres").is_file()]
    if not usable:
        raise errors.MissingTool(
            "PostgreSQL server binaries (initdb, postgres) not found on PATH or in "
            f"/usr/lib/postgresql/*/bin. Install them (Debian/Ubuntu): {INSTALL_HINT}"
        )
    return max(usable, key=_version_of)


def _version_of(bin_dir: Path) -> tuple[int, ...]:
    done = processes.run_tool([str(bin_dir / "postgres"), "--version"], timeout=10)
    found = re.search(r"(\d+)(?:\.(\d+))?", done.stdout)
    return tuple(int(part) for part in found.groups(default="0")) if found else (0,)


class PostgresCluster(processes.Server):
    """A running throwaway cluster. Use as a context manager, or call ``stop``."""

    def __init__(self, child: processes.Child, *, port: int, data_dir: Path, bin_dir: Path) -> None:
        self.child = child
        self.port = port
        self.data_dir = data_dir
        self.bin_dir = bin_dir

    @classmethod
    def start(cls, *, workdir: Path) -> PostgresCluster:
        """initdb and start a cluster; logs go to ``workdir/postgres.log``."""
        bin_dir = find_bin_dir()
        workdir.mkdir(parents=True, exist_ok=True)
        data_dir = _make_data_dir(workdir)
        try:
            _initdb(bin_dir, data_dir=data_dir)
            port = processes.free_port()
            _configure(data_dir, port=port)
            child, _ = processes.spawn(
                _as_owner([str(bin_dir / "postgres"), "-D", str(data_dir / "data")]),
                log=workdir / "postgres.log",
                stop_signal=signal.SIGQUIT,  # what `pg_ctl stop -m immediate` sends
            )
        except BaseException:
            shutil.rmtree(data_dir, ignore_errors=True)
            raise
        cluster = cls(child, port=port, data_dir=data_dir, bin_dir=bin_dir)
        cluster._wait_ready(log=workdir / "postgres.log")
        return cluster

    def dsn(self, database: str = "postgres", *, user: str = "postgres") -> str:
        """A libpq URI over loopback TCP, for the superuser ``postgres`` unless ``user``."""
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> None:
        """Create a database unless it exists."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))

    def run_sql_file(self, path: Path, *, database: str) -> None:
        """Run a SQL file with ``psql`` (so ``COPY FROM stdin`` and meta-commands work)."""
        argv = [str(self.bin_dir / "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"]
        done = processes.run_tool([*argv, "-d", self.dsn(database), "-f", str(path)])
        if done.returncode != 0:
            raise errors.LabError(f"{path} failed in database {database!r}:\n{done.stderr.strip()}")

    def stop(self) -> None:
        """Stop immediately (no checkpoint) and delete the cluster's files."""
        self.child.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _wait_ready(self, *, log: Path) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if not self.child.alive():
                self.stop()
                raise errors.LabError("postgres exited while starting:\n" + processes.tail(log))
            with contextlib.suppress(psycopg.OperationalError):
                psycopg.connect(self.dsn(), connect_timeout=2).close()
                return
            time.sleep(0.05)
        self.stop()
        raise errors.LabError(
            f"postgres did not accept connections in time:\n{processes.tail(log)}"
        )


def _make_data_dir(workdir: Path) -> Path:
    """A folder for the cluster (data and socket), owned by the user the server runs as."""
    if os.geteuid() != 0:
        path = workdir / "pg"
        path.mkdir()
        return path
    path = Path(tempfile.mkdtemp(prefix="diagnose-pg-"))
    owner = pwd.getpwnam(OS_USER)
    os.chown(path, owner.pw_uid, owner.pw_gid)
    return path


def _initdb(bin_dir: Path, *, data_dir: Path) -> None:
    argv = [str(bin_dir / "initdb"), "-D", str(data_dir / "data"), "-U", "postgres"]
    argv += ["--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"]
    done = processes.run_tool(_as_owner(argv))
    if done.returncode != 0:
        raise errors.LabError(f"initdb failed:\n{done.stderr.strip() or done.stdout.strip()}")


def _configure(data_dir: Path, *, port: int) -> None:
    settings = {**_SETTINGS, "port": str(port), "unix_socket_directories": f"'{data_dir}'"}
    lines = [f"{key} = {value}" for key, value in settings.items()]
    with (data_dir / "data" / "postgresql.conf").open("a", encoding="utf-8") as conf:
        conf.write("\n# diagnose lab\n" + "\n".join(lines) + "\n")


def _as_owner(argv: list[str]) -> list[str]:
    """Run as the ``postgres`` OS user when we are root (PostgreSQL refuses root)."""
    if os.geteuid() != 0:
        return argv
    try:
        pwd.getpwnam(OS_USER)
    except KeyError as exc:
        raise errors.MissingTool(
            f"running as root, the lab needs an OS user {OS_USER!r} to run PostgreSQL; "
            f"install the server package ({INSTALL_HINT}) or run as another user"
        ) from exc
    # Changing the user clears the parent-death signal processes.spawn asked for: keep it.
    drop = ["setpriv", f"--reuid={OS_USER}", f"--regid={OS_USER}", "--init-groups"]
    drop += ["--pdeathsig=keep", "--"]
    # A parent killed between the change of user and setpriv asking for the signal again
    # sends nothing: the guard, run once the signal is back, ends the child then.
    return [*drop, "/bin/sh", "-c", _PARENT_GUARD, str(os.getpid()), *argv]


_PARENT_GUARD = 'test "$PPID" = "$0" || exit 70; exec "$@"'
"""Run the command only if the process that started this one (``$0``) is still its parent."""
