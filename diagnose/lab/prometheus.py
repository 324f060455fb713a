"""A real Prometheus serving a scenario's recorded metrics.

``promtool tsdb create-blocks-from openmetrics`` turns ``metrics.om`` into TSDB blocks (it needs
each metric family's samples together, as OpenMetrics requires, and time-ordered per series; it
cuts blocks at 2 h boundaries by itself), then ``prometheus`` serves them with nothing to scrape
and a retention long enough that recordings from years ago are not deleted on start.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from diagnose.domain import errors
from diagnose.lab import processes

INSTALL_HINT = "apt-get update && apt-get install -y prometheus"
READY_TIMEOUT_S = 60.0
_CONFIG = "global:\n  scrape_interval: 1h\nscrape_configs: []\n"


def find_tools(*, search_path: str | None = None) -> tuple[Path, Path]:
    """Paths of ``prometheus`` and ``promtool`` on PATH (or on ``search_path``)."""
    names = ("prometheus", "promtool")
    found = [shutil.which(name, path=search_path) for name in names]
    missing = [name for name, path in zip(names, found, strict=True) if not path]
    if missing:
        raise errors.MissingTool(
            f"{' and '.join(missing)} not found on PATH; the lab serves metrics with a real "
            f"Prometheus. Install it (Debian/Ubuntu): {INSTALL_HINT}"
        )
    return Path(str(found[0])), Path(str(found[1]))


def backfill(om_file: Path, *, data_dir: Path, promtool: Path) -> tuple[float, float]:
    """Write TSDB blocks for an OpenMetrics file; returns the (min, max) sample time in seconds."""
    data_dir.mkdir(parents=True, exist_ok=True)
    done = processes.run_tool(
        [str(promtool), "tsdb", "create-blocks-from", "openmetrics", str(om_file), str(data_dir)]
    )
    if done.returncode != 0:
        raise errors.LabError(f"promtool could not backfill {om_file}:\n{done.stderr.strip()}")
    return _time_range(data_dir)


def _time_range(data_dir: Path) -> tuple[float, float]:
    metas = [json.loads(p.read_text()) for p in data_dir.glob("*/meta.json")]
    if not metas:
        raise errors.LabError(
            f"promtool wrote no block into {data_dir}: is the metrics file empty?"
        )
    return min(m["minTime"] for m in metas) / 1000, max(m["maxTime"] for m in metas) / 1000


class PrometheusServer(processes.Server):
    """A running Prometheus over backfilled data. Use as a context manager, or call ``stop``."""

    def __init__(
        self, child: processes.Child, *, url: str, workdir: Path, span: tuple[float, float]
    ) -> None:
        self.child = child
        self.url = url
        self.workdir = workdir
        self.span = span  # (first, last) sample time in unix seconds

    @classmethod
    def from_openmetrics(cls, om_file: Path, *, workdir: Path) -> PrometheusServer:
        """Backfill ``om_file`` into ``workdir`` and serve it on a free port of 127.0.0.1."""
        prometheus, promtool = find_tools()
        workdir.mkdir(parents=True, exist_ok=True)
        span = backfill(om_file, data_dir=workdir / "data", promtool=promtool)
        return cls.serve(workdir, span=span, prometheus=prometheus)

    @classmethod
    def serve(
        cls, workdir: Path, *, span: tuple[float, float], prometheus: Path
    ) -> PrometheusServer:
        """Start Prometheus over the blocks already in ``workdir/data``."""
        (workdir / "prometheus.yml").write_text(_CONFIG, encoding="utf-8")
        port = processes.free_port()
        child, _ = processes.spawn(
            _argv(prometheus, workdir=workdir, port=port),
            log=workdir / "prometheus.log",
            stop_signal=signal.SIGTERM,
            env=os.environ,
        )
        server = cls(child, url=f"http://127.0.0.1:{port}", workdir=workdir, span=span)
        try:
            server.wait_ready()
        except BaseException:
            server.stop()
            raise
        return server

    def wait_ready(self, *, timeout: float = READY_TIMEOUT_S) -> None:
        """Wait until Prometheus is ready and a query at the last sample returns data."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.child.alive():
                raise errors.LabError(
                    "prometheus exited while starting:\n"
                    + processes.tail(self.workdir / "prometheus.log")
                )
            if self._serves_data():
                return
            time.sleep(0.1)
        raise errors.LabError(
            f"prometheus at {self.url} did not serve the data within {timeout:.0f}s; log:\n"
            + processes.tail(self.workdir / "prometheus.log")
        )

    def _serves_data(self) -> bool:
        query = urllib.parse.urlencode({"query": 'count({__name__!=""})', "time": self.span[1]})
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/query?{query}", timeout=2) as answer:
                body = json.load(answer)
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            return False
        return bool(body.get("data", {}).get("result"))

    def stop(self) -> None:
        self.child.stop()


def _argv(prometheus: Path, *, workdir: Path, port: int) -> list[str]:
    return [
        str(prometheus),
        f"--config.file={workdir / 'prometheus.yml'}",
        f"--storage.tsdb.path={workdir / 'data'}",
        "--storage.tsdb.retention.time=100y",
        f"--web.listen-address=127.0.0.1:{port}",
        "--web.enable-admin-api",
        "--log.level=warn",
    ]
