"""The chart's read role grants every read the agent makes (connectors.kubernetes.READS), and
READS is every read the agent makes: a whole diagnosis against the lab's Kubernetes API,
through a proxy that records each path requested, asks for nothing the role does not grant."""

from __future__ import annotations

import http.client
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connectors import kubernetes
from tests.conftest import LabRunFactory
from tests.deploy.conftest import full, render
from tests.deploy.test_rbac import Grant, grants_of

EVERY_SWITCH = {"readSecretMetadata": True, "readDeliveries": True, "readHelmReleases": True}
SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
BIN = Path(sys.executable).parent


def _granted(grants: set[Grant], read: kubernetes.Read, *, namespace: str) -> bool:
    """Whether every verb of the read is granted where it is made: in ``namespace`` (or
    cluster-wide) for a namespaced read, cluster-wide for the others."""
    places = {None, namespace} if read.scope == "namespace" else {None}
    return all(
        any(Grant(place, read.group, read.resource, verb) in grants for place in places)
        for verb in read.verbs
    )


@pytest.mark.parametrize("namespaces", [[], ["shop", "flux-system"]])
def test_with_every_switch_on_each_read_is_granted_where_it_is_made(namespaces: list[str]) -> None:
    """With the opt-in switches on, every read is granted: namespaced ones in each namespace
    the role is bound in, cluster-scoped and all-namespaces lists cluster-wide even when
    ``rbac.namespaces`` limits the namespaced ones."""
    rendered = render({"rbac": {**EVERY_SWITCH, "namespaces": namespaces}})
    grants = grants_of(rendered, full(""))
    for namespace in namespaces or ["shop"]:
        missing = [r for r in kubernetes.READS if not _granted(grants, r, namespace=namespace)]
        assert missing == [], f"not granted in {namespace}: {missing}"
    cluster_wide = {(g.group, g.resource) for g in grants if g.namespace is None}
    wide_reads = {(r.group, r.resource) for r in kubernetes.READS if r.scope != "namespace"}
    assert wide_reads <= cluster_wide
    if namespaces:
        assert cluster_wide == wide_reads, "nothing namespaced is granted cluster-wide"


def test_cluster_scoped_reads_are_bound_by_a_cluster_role_binding() -> None:
    """Nodes and PersistentVolumes sit in a ClusterRole of their own bound by a
    ClusterRoleBinding: a RoleBinding cannot grant a cluster-scoped resource."""
    rendered = render({"rbac": {"namespaces": ["shop"]}})
    role = rendered.get("ClusterRole", f"{full('')}-read-cluster")
    resources = {
        (group, res)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for res in rule["resources"]
    }
    assert resources == {(r.group, r.resource) for r in kubernetes.READS if r.scope == "cluster"}
    binding = rendered.get("ClusterRoleBinding", f"{full('')}-read-cluster")
    assert binding["roleRef"]["name"] == f"{full('')}-read-cluster"


def test_every_state_and_delivery_kind_the_reader_lists_is_in_reads() -> None:
    """The reader's own tables (state kinds, delivery kinds) each have their READS entry, with
    the scope they are listed in: a state kind added without one fails here."""
    from connectors.kubernetes import _state

    scopes = {r.resource: r.scope for r in kubernetes.READS}
    for kind in _state._STATE_READERS:
        expected = "cluster" if kind in _state._CLUSTER_WIDE else "namespace"
        assert scopes.get(kind) == expected, kind
    for plural, (group, _version) in _state._DELIVERY_KINDS.items():
        assert any(
            (r.group, r.resource, r.scope) == (group, plural, "all-namespaces")
            for r in kubernetes.READS
        ), plural


# --- what a whole diagnosis asks for ----------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One request as RBAC sees it: verb, API group, resource, namespace (None: all or none)."""

    verb: str
    group: str
    resource: str
    namespace: str | None


_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)"
    r"(?:/namespaces/(?P<namespace>[^/]+))?/(?P<resource>[^/]+)(?:/(?P<name>[^/]+))?"
    r"(?:/(?P<sub>[^/]+))?$"
)


def as_request(method: str, target: str) -> Request:
    """The RBAC attributes of a request line, as the API server derives them."""
    url = urllib.parse.urlsplit(target)
    found = _PATH.match(url.path)
    assert found is not None and method == "GET", f"not a read: {method} {target}"
    resource = found["resource"] + (f"/{found['sub']}" if found["sub"] else "")
    watch = urllib.parse.parse_qs(url.query).get("watch") == ["true"]
    verb = "get" if found["name"] else ("watch" if watch else "list")
    return Request(verb, found["group"] or "", resource, found["namespace"])


class _Recorder(http.server.ThreadingHTTPServer):
    """Forwards each request to the lab's API and records its method and path."""

    def __init__(self, upstream: str) -> None:
        super().__init__(("127.0.0.1", 0), _Forward)
        self.upstream = urllib.parse.urlsplit(upstream)
        self.seen: list[tuple[str, str]] = []
        self.lock = threading.Lock()


class _Forward(http.server.BaseHTTPRequestHandler):
    server: _Recorder

    def do_GET(self) -> None:
        self._forward()

    def do_PATCH(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def _forward(self) -> None:
        with self.server.lock:
            self.server.seen.append((self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        upstream = http.client.HTTPConnection(
            self.server.upstream.hostname or "", self.server.upstream.port, timeout=30
        )
        headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
        upstream.request(self.command, self.path, body=body, headers=headers)
        answer = upstream.getresponse()
        data = answer.read()
        self.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in {"transfer-encoding", "connection", "content-length"}:
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        upstream.close()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the requests are recorded, not printed."""


@pytest.fixture
def recorder() -> Iterator[Callable[[str], _Recorder]]:
    """Start recorders in front of an API server; shut down after the test."""
    servers: list[_Recorder] = []

    def start(upstream: str) -> _Recorder:
        server = _Recorder(upstream)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _diagnose_live(
    lab_run: LabRunFactory, scenario: str, *, recorder: Callable[[str], _Recorder], tmp_path: Path
) -> list[tuple[str, str]]:
    """Stand the scenario up, run ``diagnose run`` live against it through the recorder, and
    return every request the agent sent to the Kubernetes API."""
    run = lab_run(SCENARIOS / scenario)
    assert run.endpoints.kubernetes_url is not None
    proxy = recorder(run.endpoints.kubernetes_url)
    trigger = run.trigger
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    env |= {
        "DIAGNOSE_STATE_DIR": str(tmp_path / scenario),
        "DIAGNOSE_KUBERNETES_URL": f"http://127.0.0.1:{proxy.server_address[1]}",
        # The writer's dry runs use credentials of their own (the chart's actions account):
        # straight to the lab, not through the recorder.
        "DIAGNOSE_KUBERNETES_WRITE_URL": run.endpoints.kubernetes_url,
        "NO_COLOR": "1",
    }
    if run.endpoints.prometheus_url:
        env["DIAGNOSE_PROMETHEUS_URL"] = run.endpoints.prometheus_url
    done = subprocess.run(
        [
            str(BIN / "diagnose"),
            "run",
            "--service",
            trigger.service,
            "-n",
            trigger.namespace,
            "--since",
            "90m",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["hypotheses"], "the run diagnosed something"
    return list(proxy.seen)


def _allowed(request: Request, *, grants: set[Grant]) -> bool:
    """Whether the grants allow the request where it is made."""
    places = {None} if request.namespace is None else {None, request.namespace}
    return any(
        Grant(place, request.group, request.resource, request.verb) in grants for place in places
    )


@pytest.mark.slow
@pytest.mark.lab
def test_a_whole_diagnosis_reads_exactly_what_reads_lists_and_the_role_grants(
    lab_run: LabRunFactory, recorder: Callable[[str], _Recorder], tmp_path: Path
) -> None:
    """Every request two live diagnoses (a Flux delivery, pod logs) send to the Kubernetes API
    is a read READS lists (group, resource, scope, verb), every entry of READS is requested,
    and the chart with every switch on, bound to shop and flux-system only, grants them all."""
    seen = [
        request
        for scenario in ("code-flux-kustomization", "logs-exception-after-rollout")
        for request in _diagnose_live(lab_run, scenario, recorder=recorder, tmp_path=tmp_path)
    ]
    requests = {as_request(method, path) for method, path in seen}
    reads = {(r.group, r.resource): r for r in kubernetes.READS}
    for request in requests:
        read = reads.get((request.group, request.resource))
        assert read is not None, f"READS lacks {request}"
        assert request.verb in read.verbs, request
        assert (request.namespace is None) == (read.scope != "namespace"), (request, read)
    assert {(r.group, r.resource) for r in requests} == set(reads), "READS names an unread one"
    rendered = render({"rbac": {**EVERY_SWITCH, "namespaces": ["shop", "flux-system"]}})
    grants = grants_of(rendered, full(""))
    denied = sorted(str(r) for r in requests if not _allowed(r, grants=grants))
    assert denied == []
