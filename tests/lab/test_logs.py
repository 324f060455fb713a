"""The lab's log files: shifted with the scenario, read as the Kubernetes API and Loki serve
them (pure functions over the folder; the servers are exercised in tests/connectors)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from diagnose import scenario as scenario_format
from diagnose.lab import logapi, podlogs, staging

LINES = [
    "2026-01-10T10:00:00.250Z INFO started",
    "2026-01-10T10:05:00Z ERROR java.lang.IllegalStateException: boom",
    "\tat shop.Cart.total(Cart.java:42)",
    "2026-01-10T10:06:00Z INFO ok",
]


def _scenario(root: Path) -> scenario_format.Scenario:
    (root / "logs").mkdir(parents=True)
    (root / "logs" / "cart-5c6b7-fghij.log").write_text("\n".join(LINES) + "\n")
    (root / "scenario.yaml").write_text(
        "format: 1\nname: t\ntime: {start: 2026-01-10T09:00:00Z, end: 2026-01-10T10:10:00Z}\n"
        "trigger: {source: manual, title: t, service: cart, namespace: shop, "
        "at: 2026-01-10T10:07:00Z}\n"
    )
    return scenario_format.Scenario.load(root)


def test_staging_shifts_each_line_and_keeps_a_stack_trace(tmp_path: Path) -> None:
    """Every leading timestamp moves by the offset, its fraction kept; continuation lines stay."""
    staged = staging.stage(
        _scenario(tmp_path / "in"), offset=timedelta(days=1, seconds=30), root=tmp_path / "out"
    )
    assert staged.logs_dir is not None
    lines = (staged.logs_dir / "cart-5c6b7-fghij.log").read_text().splitlines()
    assert lines[0] == "2026-01-11T10:00:30.250Z INFO started"
    assert lines[2] == "\tat shop.Cart.total(Cart.java:42)"


def test_pod_log_follows_the_api_parameters(tmp_path: Path) -> None:
    """sinceTime keeps later records (a stack trace with its line), timestamps=false strips the
    stamp, tailLines keeps the last lines, previous of a pod without one is a 400."""
    folder = _scenario(tmp_path).logs_dir
    code, text = podlogs.pod_log(
        folder, pod="cart-5c6b7-fghij", params={"sinceTime": "2026-01-10T10:01:00Z"}
    )
    assert code == 200
    assert text.splitlines()[:2] == [
        "ERROR java.lang.IllegalStateException: boom",
        "\tat shop.Cart.total(Cart.java:42)",
    ]
    _, tail = podlogs.pod_log(folder, pod="cart-5c6b7-fghij", params={"tailLines": "1"})
    assert tail == "INFO ok\n"
    assert podlogs.pod_log(folder, pod="cart-5c6b7-fghij", params={"previous": "true"})[0] == 400


def test_loki_selects_streams_and_filters_lines(tmp_path: Path) -> None:
    """A stream selector and a line filter, newest first within the limit."""
    folder = _scenario(tmp_path).logs_dir
    assert folder is not None
    end = datetime(2026, 1, 10, 11, tzinfo=UTC).timestamp()
    answer = logapi.query_range(
        folder,
        namespace="shop",
        params={"query": '{namespace="shop", app=~"ca.*"} |= "INFO"', "limit": "1"},
        now=end,
    )
    (stream,) = answer["data"]["result"]
    assert stream["stream"]["app"] == "cart"
    assert [v[1] for v in stream["values"]] == ["2026-01-10T10:06:00Z INFO ok"]


@pytest.mark.parametrize("query", ["", 'rate({app="cart"}[5m])', '{app="cart"} | json'])
def test_loki_refuses_queries_outside_its_subset(query: str) -> None:
    """What the lab's Loki does not serve is a bad query, as Loki answers one."""
    with pytest.raises(logapi.BadQuery):
        logapi.parse_logql(query)
