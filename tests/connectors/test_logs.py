"""Pod logs through the real ``kubernetes`` client against the lab's Kubernetes API, and through
Loki's HTTP API against the lab's Loki-compatible server: templates, bounds, redaction, and the
ways a source says no."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from connectors import kubernetes, logs
from diagnose.domain.models import Status, Window
from diagnose.lab import kubeapi, logapi

NS = "shop"
T0 = datetime(2026, 1, 10, 10, 0, tzinfo=UTC)
SPLIT = T0 + timedelta(minutes=10)
WINDOW = Window(start=T0, end=T0 + timedelta(minutes=20))


def _stamp(minutes: float) -> str:
    moment = T0 + timedelta(minutes=minutes)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _pod(name: str, app: str, *, restarts: int = 0) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": NS, "labels": {"app": app}},
        "spec": {"containers": [{"name": app, "image": f"{app}:1"}]},
        "status": {
            "phase": "Running",
            "containerStatuses": [{"name": app, "restartCount": restarts, "ready": True}],
        },
    }


def _write_logs(folder: Path) -> None:
    folder.mkdir()
    checkout = [(m / 4, f"INFO handled GET /cart in {m} ms") for m in range(80)]
    checkout += [
        (
            10 + m / 10,
            "ERROR payment failed: connection refused to api.bank.example:443 "
            f"password=hunter2 TraceID: {m:032x}",
        )
        for m in range(30)
    ]
    stack = "\n\tat shop.Cart.total(Cart.java:42)\n\tat shop.Checkout.pay(Checkout.java:7)"
    checkout.append((12.01, f"ERROR java.lang.NullPointerException: cart is null{stack}"))
    lines = [f"{_stamp(minute)} {text}" for minute, text in sorted(checkout)]
    (folder / "checkout-7d9f8-abcde.log").write_text("\n".join(lines) + "\n")
    (folder / "checkout-7d9f8-abcde.previous.log").write_text(f"{_stamp(1)} FATAL out of memory\n")
    (folder / "cart-5c6b7-fghij.log").write_text(
        "\n".join(f"{_stamp(m / 2)} INFO cart ok" for m in range(40)) + "\n"
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """The lab's Kubernetes API and Loki server over the same logs folder."""
    workdir = tmp_path_factory.mktemp("logs")
    _write_logs(workdir / "logs")
    objects = [
        _pod("checkout-7d9f8-abcde", "checkout", restarts=1),
        _pod("cart-5c6b7-fghij", "cart"),
    ]
    with (
        kubeapi.KubeApiServer.serve(
            objects, workdir=workdir / "kube", logs=workdir / "logs"
        ) as kube,
        logapi.LokiServer.serve(workdir / "logs", namespace=NS, workdir=workdir / "loki") as loki,
    ):
        yield kube.url, loki.url


@pytest.fixture
def cluster(lab: tuple[str, str]) -> Iterator[kubernetes.KubernetesConnector]:
    with kubernetes.KubernetesConnector(host=lab[0], timeout_s=5) as connector:
        yield connector


def _by_pod(records: list[Any]) -> dict[tuple[str, bool], dict[str, Any]]:
    return {(r.raw["pod"], r.raw["previous"]): r.raw for r in records if r.raw}


def test_pod_log_is_read_from_since_time_with_timestamps(cluster) -> None:
    """sinceTime keeps only later lines; each line keeps its timestamp; the query is kubectl."""
    read = cluster.read_pod_log(namespace=NS, pod="cart-5c6b7-fghij", since=_stamp(15))
    assert read.status is Status.OK
    assert len(read.raw) == 10
    assert all(line.startswith("2026-01-10T10:1") for line in read.raw)
    assert read.query.startswith("kubectl logs cart-5c6b7-fghij -n shop --timestamps")


def test_tail_lines_and_limit_bytes_bound_the_read(cluster) -> None:
    """tailLines gives the last lines; limitBytes cuts the answer."""
    tail = cluster.read_pod_log(namespace=NS, pod="cart-5c6b7-fghij", tail_lines=3)
    assert [line[-7:] for line in tail.raw] == ["cart ok"] * 3
    assert tail.raw[-1].startswith(_stamp(19.5)[:19])
    cut = cluster.read_pod_log(namespace=NS, pod="cart-5c6b7-fghij", limit_bytes=100)
    assert sum(len(line) + 1 for line in cut.raw) <= 101


def test_previous_of_a_container_that_never_restarted_is_empty(cluster) -> None:
    """previous=true on a container with no earlier instance is empty, not a failure."""
    read = cluster.read_pod_log(namespace=NS, pod="cart-5c6b7-fghij", previous=True)
    assert read.status is Status.EMPTY


def test_pods_become_templates_with_times_traces_and_redacted_examples(cluster) -> None:
    """Every pod read becomes templates; errors carry trace ids; secrets never survive."""
    source = logs.PodLogs(cluster)
    records = source.read_logs(
        namespace=NS, window=WINDOW, incident_from=SPLIT, services=("checkout",)
    )
    pods = _by_pod(records)
    checkout = pods[("checkout-7d9f8-abcde", False)]
    refused = next(t for t in checkout["templates"] if "refused" in t["template"])
    assert refused["error"] and len(refused["times"]) == 30
    assert refused["traces"][0] == f"{0:032x}"
    assert "hunter2" not in repr(records)
    assert records[0].raw["service"] == "checkout"  # the alerted service first


def test_a_stack_trace_is_one_exception_record(cluster) -> None:
    """The lines of a stack trace are folded into the exception line that opened them."""
    source = logs.PodLogs(cluster)
    records = source.read_logs(namespace=NS, window=WINDOW, incident_from=SPLIT)
    checkout = _by_pod(records)[("checkout-7d9f8-abcde", False)]
    npe = next(t for t in checkout["templates"] if "NullPointerException" in t["template"])
    assert npe["exception"] and len(npe["times"]) == 1
    assert "Cart.java:42" in npe["examples"][0]


def test_a_restarted_container_is_read_with_its_previous_instance(cluster) -> None:
    """A container that restarted is read twice: running, and previous=true."""
    records = logs.PodLogs(cluster).read_logs(namespace=NS, window=WINDOW, incident_from=SPLIT)
    previous = _by_pod(records)[("checkout-7d9f8-abcde", True)]
    assert previous["templates"][0]["error"]
    assert any("--previous" in r.query for r in records)


def test_bounds_limit_pods_and_lines(cluster) -> None:
    """pods and lines_per_pod bound what is read, and what was left out is counted."""
    bounds = logs.LogBounds(pods=1, lines_per_pod=10)
    records = logs.PodLogs(cluster, bounds=bounds).read_logs(
        namespace=NS, window=WINDOW, incident_from=SPLIT, services=("cart",)
    )
    assert [r.raw["pod"] for r in records] == ["cart-5c6b7-fghij"]
    assert records[0].raw["lines"] == 20  # ten of the baseline, ten of the incident
    assert records[0].raw["dropped"] == 10


def test_forbidden_pod_logs_are_denied(answering_server) -> None:
    """A 403 on pods/log is a denied record that says what to grant."""
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403}
    server = answering_server(lambda path: (403, status | {"message": "forbidden"}))
    with kubernetes.KubernetesConnector(host=server.url, timeout_s=2) as connector:
        read = connector.read_pod_log(namespace=NS, pod="checkout-1")
    assert read.status is Status.DENIED
    assert "pods/log" in read.summary


def test_loki_streams_become_the_same_templates(lab: tuple[str, str]) -> None:
    """Loki's query_range gives the same templates per pod as the Kubernetes API."""
    source = logs.LokiLogs(lab[1], timeout_s=5)
    try:
        records = source.read_logs(
            namespace=NS, window=WINDOW, incident_from=SPLIT, services=("checkout",)
        )
    finally:
        source.close()
    pods = _by_pod(records)
    checkout = pods[("checkout-7d9f8-abcde", False)]
    refused = next(t for t in checkout["templates"] if "refused" in t["template"])
    assert len(refused["times"]) == 30
    assert records[0].query.startswith("logcli query '{namespace=\"shop\"}'")
    assert "hunter2" not in repr(records)


def test_loki_refusing_is_a_denied_record(answering_server) -> None:
    """A 401 from Loki is one denied record naming the settings to check."""
    server = answering_server(lambda path: (401, "no"))
    source = logs.LokiLogs(server.url, timeout_s=2)
    try:
        records = source.read_logs(namespace=NS, window=WINDOW, incident_from=SPLIT)
    finally:
        source.close()
    assert [r.status for r in records] == [Status.DENIED]
    assert "DIAGNOSE_LOKI" in records[0].summary


def test_a_code_location_keeps_templates_apart_while_values_are_masked() -> None:
    """``Impl#457`` and ``Impl#459`` are two lines of code and stay two templates, as two
    loggers do, however alike their messages; the values inside a message are variables."""
    texts = [
        "INFO  t.s.TravelServiceImpl#457 TraceID: {t} [getTrip][found][trip: G{n}]",
        "INFO  t.s.TravelServiceImpl#459 TraceID: {t} [getTrip][found][seat: G{n}]",
        "INFO  t.s.OrderServiceImpl#457 TraceID: {t} [getTrip][found][trip: G{n}]",
    ]
    stamp = T0.timestamp()
    lines = [
        (stamp + i, text.format(t=f"{i:032x}", n=1000 + i)) for i in range(30) for text in texts
    ]
    read = logs.LogRead(
        service="travel",
        pod="travel-1",
        container="",
        previous=False,
        query="kubectl logs travel-1",
        status=Status.OK,
        summary="",
        lines=lines,
    )
    [record] = logs.template_reads(
        [read], incident_from=SPLIT, window=WINDOW, bounds=logs.LogBounds()
    )
    templates = sorted(t["template"] for t in record.raw["templates"])
    assert len(templates) == 3
    assert [("#457" in t, "#459" in t) for t in templates].count((True, False)) == 2
    assert all("<TRACE>" in t and "G1000" not in t for t in templates)
