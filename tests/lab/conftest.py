"""A small scenario with every part the lab serves: metrics, Kubernetes objects, a database."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

T0 = 1_767_945_600  # 2026-01-09T08:00:00Z
TRIGGER_AT = "2026-01-09T08:50:00Z"


def write_scenario(folder: Path, *, postgres: bool = True, kubernetes: bool = True) -> Path:
    """Write the scenario ``small-lab`` into ``folder``; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "scenario.yaml").write_text(SCENARIO_YAML)
    (folder / "metrics.om").write_text(_metrics())
    if kubernetes:
        (folder / "kubernetes").mkdir(exist_ok=True)
        (folder / "kubernetes" / "shop.yaml").write_text(KUBERNETES_YAML)
    if postgres:
        (folder / "postgres").mkdir(exist_ok=True)
        (folder / "postgres" / "setup.sql").write_text(SETUP_SQL)
        (folder / "postgres" / "workload.sql").write_text(WORKLOAD_SQL)
        (folder / "postgres" / "sessions.yaml").write_text(SESSIONS_YAML)
    return folder


@pytest.fixture
def small_scenario(tmp_path: Path) -> Path:
    """A scenario with metrics, Kubernetes objects and a database with a held lock."""
    return write_scenario(tmp_path / "small-lab")


def _metrics() -> str:
    lines = ["# TYPE http_requests_total counter"]
    for minute in range(60):
        at = T0 + 60 * minute
        lines.append(f'http_requests_total{{service="checkout",code="200"}} {minute * 100} {at}')
        lines.append(f'http_requests_total{{service="checkout",code="500"}} {minute * 3} {at}')
    return "\n".join([*lines, "# EOF", ""])


SCENARIO_YAML = textwrap.dedent(
    f"""\
    format: 1
    name: small-lab
    description: a test scenario
    time: {{start: 2026-01-09T08:00:00Z, end: 2026-01-09T08:59:00Z}}
    trigger:
      source: manual
      title: "checkout: 5xx"
      service: checkout
      namespace: shop
      at: {TRIGGER_AT}
      labels: {{severity: critical}}
    postgres: {{database: shop}}
    future_field: ignored
    truth:
      root_cause: {{kind: database, component: postgres/shop}}
      fix: cancel_query
    """
)

KUBERNETES_YAML = textwrap.dedent(
    """\
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: checkout
      namespace: shop
      creationTimestamp: "2026-01-01T00:00:00Z"
      labels: {app: checkout}
      annotations: {deployment.kubernetes.io/revision: "14"}
    spec:
      replicas: 2
      selector: {matchLabels: {app: checkout}}
      template:
        metadata: {labels: {app: checkout}}
        spec: {containers: [{name: checkout, image: "shop/checkout:2.14"}]}
    ---
    apiVersion: apps/v1
    kind: ReplicaSet
    metadata:
      name: checkout-7d9f8
      namespace: shop
      creationTimestamp: "2026-01-09T08:30:00Z"
      labels: {app: checkout}
      annotations: {deployment.kubernetes.io/revision: "14"}
      ownerReferences: [{apiVersion: apps/v1, kind: Deployment, name: checkout, uid: u1}]
    spec:
      selector: {matchLabels: {app: checkout}}
      template:
        metadata: {labels: {app: checkout}}
        spec: {containers: [{name: checkout, image: "shop/checkout:2.14"}]}
    ---
    apiVersion: v1
    kind: Pod
    metadata:
      name: checkout-7d9f8-abcde
      namespace: shop
      creationTimestamp: "2026-01-09T08:30:05Z"
      labels: {app: checkout}
    spec: {containers: [{name: checkout, image: "shop/checkout:2.14"}]}
    status:
      phase: Running
      containerStatuses:
      - name: checkout
        image: shop/checkout:2.14
        imageID: ""
        ready: true
        restartCount: 1
        lastState:
          terminated:
            exitCode: 137
            reason: OOMKilled
            startedAt: "2026-01-09T08:30:06Z"
            finishedAt: "2026-01-09T08:45:00Z"
    ---
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: checkout-config
      namespace: shop
      creationTimestamp: "2026-01-02T00:00:00Z"
    data: {POOL_SIZE: "5"}
    ---
    apiVersion: v1
    kind: EventList
    items:
    - metadata: {name: checkout.1, namespace: shop}
      involvedObject: {kind: Deployment, name: checkout, namespace: shop}
      reason: ScalingReplicaSet
      message: Scaled up replica set checkout-7d9f8 to 2
      type: Normal
      firstTimestamp: "2026-01-09T08:30:00Z"
      lastTimestamp: "2026-01-09T08:30:00Z"
      count: 1
    - metadata: {name: other.1, namespace: shop}
      involvedObject: {kind: Pod, name: other, namespace: shop}
      reason: BackOff
      message: Back-off restarting failed container
      type: Warning
      eventTime: "2026-01-09T08:40:00.123456Z"
      count: 3
    """
)

SETUP_SQL = """\
CREATE TABLE orders (id serial PRIMARY KEY, customer_id int NOT NULL, total numeric NOT NULL);
INSERT INTO orders (customer_id, total) SELECT g % 100, g FROM generate_series(1, 1000) g;
"""

WORKLOAD_SQL = "SELECT count(*) FROM orders WHERE customer_id = 42;\n"

SESSIONS_YAML = """\
sessions:
  - name: migration
    sql: ["BEGIN", "LOCK TABLE orders IN ACCESS EXCLUSIVE MODE"]
  - name: blocked-reader
    sql: ["SELECT count(*) FROM orders"]
    after: migration
"""
