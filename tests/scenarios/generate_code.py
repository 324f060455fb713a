"""Write the scenarios whose answer is in the application's repository (docs/changes.md).

    python -m tests.scenarios.generate_code          # rewrites the three folders below

Each scenario is the orders API of namespace ``shop`` rolled out from revision 7 to 8 twelve
minutes before its latency alert, with the orders database behind it and the API's
repository as a bundle (``repositories/orders-api.bundle``). The repositories are built with
fixed authors and dates (``tests/support/gitrepos.py``), so every run writes the same commits,
and the ReplicaSets name them in ``org.opencontainers.image.revision``:

- ``code-migration-dropped-index``: an Alembic migration in the range drops
  ``ix_orders_customer_id``; the probes see ``orders.customer_id`` scanned sequentially.
- ``code-slow-query``: a commit adds a lookup of orders by coupon code, a column no index
  serves; the probes single out that very statement.
- ``code-decoy-docs-rollout``: the rollout's commits touch only documentation; the index on
  ``orders.customer_id`` was never created, long before it.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from tests.support import gitrepos

HERE = Path(__file__).parent
URL = "https://git.shop.example/shop/orders-api"
NAMESPACE = "shop"
START = datetime(2026, 4, 7, 9, 0, tzinfo=UTC)
TRIGGER = START + timedelta(minutes=60)
ROLLOUT = TRIGGER - timedelta(minutes=12)
DAY = timedelta(days=1)

QUERIES_V1 = '''"""The orders API's SQL."""

ORDERS_OF_CUSTOMER = (
    "SELECT id, status, total_cents FROM orders "
    "WHERE customer_id = %s"
)
'''

QUERIES_COUPON = (
    QUERIES_V1
    + """
ORDERS_WITH_COUPON = (
    "SELECT id, customer_id, total_cents FROM orders "
    "WHERE coupon_code = %s"
)
"""
)

CREATE_ORDERS = '''"""create orders

Revision ID: 0001
"""
from alembic import op
import sqlalchemy as sa

revision = "0001"
down_revision = None


def upgrade():
    op.create_table(
        "orders",
        sa.Column("id", sa.BigInteger, primary_key=True),
        sa.Column("customer_id", sa.BigInteger, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("total_cents", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_orders_customer_id", "orders", ["customer_id"])
'''

TIDY_INDEXES = '''"""tidy order indexes

Revision ID: 0042
"""
from alembic import op

revision = "0042"
down_revision = "0041"


def upgrade():
    op.drop_index("ix_orders_customer_id", table_name="orders")
    op.create_index("ix_orders_status", "orders", ["status"])
'''

ADD_COUPON = '''"""orders: coupon code

Revision ID: 0043
"""
from alembic import op
import sqlalchemy as sa

revision = "0043"
down_revision = "0042"


def upgrade():
    op.add_column("orders", sa.Column("coupon_code", sa.Text, nullable=True))
'''

VIEWS_V1 = """from orders import queries


def orders_of(db, customer):
    return db.fetch(queries.ORDERS_OF_CUSTOMER, (customer,))
"""

VIEWS_TOTALS = (
    VIEWS_V1
    + """

def total_of(order):
    return order["total_cents"] / 100
"""
)

VIEWS_COUPON = (
    VIEWS_V1
    + """

def orders_with_coupon(db, code):
    return db.fetch(queries.ORDERS_WITH_COUPON, (code,))
"""
)

BASE: dict[str, str | None] = {
    "README.md": "# orders-api\n\nThe shop's orders service.\n",
    "requirements.txt": "psycopg[binary]==3.2.1\nalembic==1.13.2\n",
    "orders/queries.py": QUERIES_V1,
    "orders/views.py": VIEWS_V1,
    "migrations/versions/0001_create_orders.py": CREATE_ORDERS,
}


@dataclass(frozen=True)
class Story:
    name: str
    description: str
    steps_before: Sequence[tuple[str, Mapping[str, str | None]]]  # up to revision 7
    steps_after: Sequence[tuple[str, Mapping[str, str | None]]]  # revision 8's range
    setup: str
    workload: str
    truth: dict[str, Any]
    delivery: str = ""  # "": CI annotates the pod template; "argocd" | "flux": a GitOps sync


SETUP_HEAD = """-- The orders of 20,000 customers: big enough that a sequential scan hurts.
CREATE TABLE customers (id bigint PRIMARY KEY, email text NOT NULL);
INSERT INTO customers
SELECT g, 'customer' || g || '@example.com' FROM generate_series(1, 20000) AS g;

CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers (id),
    status text NOT NULL,
    total_cents integer NOT NULL,
    coupon_code text,
    created_at timestamptz NOT NULL
);
INSERT INTO orders (customer_id, status, total_cents, coupon_code, created_at)
SELECT 1 + (g * 7919) % 20000, (ARRAY['paid', 'shipped', 'refunded'])[1 + g % 3],
       100 + (g * 31) % 90000, 'C' || (g % 5000), now() - (g || ' seconds')::interval
FROM generate_series(1, 200000) AS g;
CREATE INDEX ix_orders_status ON orders (status);
"""

BY_CUSTOMER = """-- The orders page of one customer.
SELECT id, status, total_cents FROM orders WHERE customer_id = 4242;
SELECT id, status, total_cents FROM orders WHERE customer_id = 17;
SELECT email FROM customers WHERE id = 4242;
"""

BY_COUPON = """-- The coupon report, new in revision 8.
SELECT id, customer_id, total_cents FROM orders WHERE coupon_code = 'C4242';
SELECT id, customer_id, total_cents FROM orders WHERE coupon_code = 'C17';
"""

DATABASE_TRUTH = {"kind": "database", "component": "postgres/shop"}
ALSO_DEPLOY = [{"kind": "deploy", "component": "orders-api"}]

STORIES = (
    Story(
        name="code-migration-dropped-index",
        description=(
            "orders-api 2.5.0 ships a migration that drops the index on orders.customer_id; "
            "the orders page of each customer now scans 200k rows."
        ),
        steps_before=[
            ("Bump psycopg", {"requirements.txt": "psycopg[binary]==3.2.3\nalembic==1.13.2\n"})
        ],
        steps_after=[
            (
                "Tidy up order indexes",
                {"migrations/versions/0042_tidy_order_indexes.py": TIDY_INDEXES},
            ),
            ("Document the orders endpoints", {"docs/orders.md": "# Orders\n\nGET /orders\n"}),
            ("Show order totals in euros", {"orders/views.py": VIEWS_TOTALS}),
        ],
        setup=SETUP_HEAD + "ANALYZE customers;\nANALYZE orders;\n",
        workload=BY_CUSTOMER,
        truth={
            "root_cause": DATABASE_TRUTH
            | {
                "detail": "migration 0042_tidy_order_indexes.py (commit 'Tidy up order "
                "indexes') drops ix_orders_customer_id"
            },
            "fix": "create_index",
            "also_accept": ALSO_DEPLOY,
        },
    ),
    Story(
        name="code-slow-query",
        description=(
            "orders-api 2.5.0 adds a lookup of orders by coupon code, a column no index "
            "serves; each call scans 200k rows."
        ),
        steps_before=[
            ("Bump psycopg", {"requirements.txt": "psycopg[binary]==3.2.3\nalembic==1.13.2\n"})
        ],
        steps_after=[
            ("Orders: coupon code column", {"migrations/versions/0043_add_coupon.py": ADD_COUPON}),
            (
                "Look orders up by coupon code",
                {"orders/queries.py": QUERIES_COUPON, "orders/views.py": VIEWS_COUPON},
            ),
            ("Changelog for 2.5.0", {"CHANGELOG.md": "## 2.5.0\n\n- Orders by coupon code\n"}),
        ],
        setup=SETUP_HEAD
        + "CREATE INDEX ix_orders_customer_id ON orders (customer_id);\n"
        + "ANALYZE customers;\nANALYZE orders;\n",
        workload=BY_CUSTOMER + BY_COUPON,
        truth={
            "root_cause": DATABASE_TRUTH
            | {
                "detail": "commit 'Look orders up by coupon code' adds a query on "
                "orders.coupon_code in orders/queries.py, which no index serves"
            },
            "fix": "create_index",
            "also_accept": ALSO_DEPLOY,
        },
    ),
    Story(
        name="code-decoy-docs-rollout",
        description=(
            "orders-api is rolled out with documentation changes only; the orders page was "
            "slow all along (no index on orders.customer_id, ever), and the alert fires now."
        ),
        steps_before=[
            ("Bump psycopg", {"requirements.txt": "psycopg[binary]==3.2.3\nalembic==1.13.2\n"}),
            (
                "Drop the unused customer index",
                {"migrations/versions/0042_tidy_order_indexes.py": TIDY_INDEXES},
            ),
        ],
        steps_after=[
            (
                "Runbook: slow orders page",
                {"docs/runbook.md": "# Runbook\n\nCheck the database.\n"},
            ),
            ("README: how to run locally", {"README.md": BASE["README.md"] + "\nmake run\n"}),
        ],
        setup=SETUP_HEAD + "ANALYZE customers;\nANALYZE orders;\n",
        workload=BY_CUSTOMER,
        truth={
            "root_cause": DATABASE_TRUTH
            | {"detail": "orders.customer_id has had no index since an older release"},
            "fix": "create_index",
        },
    ),
)


STORIES = (
    *STORIES,
    dataclasses.replace(
        STORIES[0],
        name="code-argocd-sync",
        description=(
            "Argo CD syncs orders-api 2.5.0 from its repository; the release ships a migration "
            "that drops the index on orders.customer_id."
        ),
        delivery="argocd",
    ),
    dataclasses.replace(
        STORIES[1],
        name="code-flux-kustomization",
        description=(
            "Flux applies a new revision of the orders-api repository: 2.5.0 looks orders up "
            "by coupon code, a column no index serves."
        ),
        delivery="flux",
    ),
    dataclasses.replace(
        STORIES[1],
        name="code-helm-upgrade",
        description=(
            "helm upgrade orders-api sets image.tag to 2.5.0, which looks orders up by coupon "
            "code, a column no index serves."
        ),
        delivery="helm",
    ),
)


def build_repository(story: Story, *, folder: Path) -> tuple[str, str]:
    """The story's repository as a bundle under ``folder``; the commits of revisions 7 and 8."""
    steps = [gitrepos.Step("Orders API", START - 30 * DAY, BASE)]
    at = START - 2 * DAY
    for message, files in story.steps_before:
        steps.append(gitrepos.Step(message, at, files))
        at += timedelta(hours=3)
    before = len(steps) - 1
    at = ROLLOUT - timedelta(hours=6)
    for message, files in story.steps_after:
        steps.append(gitrepos.Step(message, at, files))
        at += timedelta(minutes=40)
    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch) / "orders-api.git"
        shas = gitrepos.build(repo, steps)
        gitrepos.write_bundle(repo, folder / "repositories" / "orders-api.bundle")
    return shas[before], shas[-1]


def write(story: Story) -> Path:
    folder = HERE / story.name
    bundle = folder / "repositories" / "orders-api.bundle"
    kept = bundle.read_bytes() if bundle.is_file() else None
    shutil.rmtree(folder, ignore_errors=True)
    old, new = build_repository(story, folder=folder)
    if kept is not None and gitrepos.bundle_heads(kept) == gitrepos.bundle_heads(
        bundle.read_bytes()
    ):
        bundle.write_bytes(kept)  # same commits: keep the bytes (packing order varies by run)
    annotated = story.delivery in ("", "helm")  # Helm names no commit: CI's annotations do
    sha = {7: old, 8: new} if annotated else {7: "", 8: ""}
    _dump(folder / "scenario.yaml", [_scenario(story)])
    _dump(folder / "kubernetes" / "deployments.yaml", [_deployment(sha[8])])
    _dump(
        folder / "kubernetes" / "replicasets.yaml",
        [
            _replicaset(7, sha[7], START - 2 * DAY, replicas=0),
            _replicaset(8, sha[8], ROLLOUT, replicas=2),
        ],
    )
    _dump(folder / "kubernetes" / "pods.yaml", [_pod(i, sha[8]) for i in range(2)])
    _dump(folder / "kubernetes" / "events.yaml", [_event()])
    if story.delivery:
        _dump(folder / "kubernetes" / "deliveries.yaml", DELIVERIES[story.delivery](old, new))
    (folder / "postgres").mkdir(parents=True, exist_ok=True)
    (folder / "postgres" / "setup.sql").write_text(story.setup)
    (folder / "postgres" / "workload.sql").write_text(story.workload)
    return folder


def _scenario(story: Story) -> dict[str, Any]:
    return {
        "format": 1,
        "name": story.name,
        "description": story.description,
        "time": {"start": _t(START), "end": _t(TRIGGER + timedelta(minutes=3))},
        "trigger": {
            "source": "pagerduty",
            "title": "orders-api: p95 latency above 800ms for 5m",
            "service": "orders-api",
            "namespace": NAMESPACE,
            "at": _t(TRIGGER),
            "labels": {"severity": "critical"},
        },
        "postgres": {"database": "shop"},
        "repositories": [
            {"name": "orders-api", "url": URL, "bundle": "repositories/orders-api.bundle"}
        ],
        "truth": story.truth,
    }


def _argocd(old: str, new: str) -> list[dict[str, Any]]:
    """The Application that syncs the repository's deploy/ folder into shop."""
    return [
        {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "shop-orders", "namespace": "argocd"},
            "spec": {
                "project": "shop",
                "source": {"repoURL": URL, "path": "deploy", "targetRevision": "main"},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": NAMESPACE},
            },
            "status": {
                "sync": {"status": "Synced", "revision": new},
                "health": {"status": "Healthy"},
                "history": [
                    {
                        "id": 11,
                        "revision": old,
                        "deployedAt": _t(START - 2 * DAY - timedelta(minutes=1)),
                    },
                    {"id": 12, "revision": new, "deployedAt": _t(ROLLOUT - timedelta(seconds=40))},
                ],
                "resources": [
                    {
                        "group": "apps",
                        "version": "v1",
                        "kind": "Deployment",
                        "namespace": NAMESPACE,
                        "name": "orders-api",
                    }
                ],
            },
        }
    ]


def _flux(old: str, new: str) -> list[dict[str, Any]]:
    """The GitRepository and Kustomization that apply the repository's deploy/ folder."""
    return [
        {
            "apiVersion": "source.toolkit.fluxcd.io/v1",
            "kind": "GitRepository",
            "metadata": {"name": "orders-api", "namespace": "flux-system"},
            "spec": {"url": URL, "interval": "1m", "ref": {"branch": "main"}},
        },
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": "shop-orders", "namespace": "flux-system"},
            "spec": {
                "sourceRef": {"kind": "GitRepository", "name": "orders-api"},
                "path": "./deploy",
                "targetNamespace": NAMESPACE,
                "interval": "5m",
            },
            "status": {
                "lastAppliedRevision": f"main@sha1:{new}",
                "history": [
                    {
                        "digest": f"sha256:{new}",
                        "firstReconciled": _t(ROLLOUT - timedelta(seconds=50)),
                        "lastReconciled": _t(ROLLOUT - timedelta(seconds=50)),
                        "lastReconciledStatus": "ReconciliationSucceeded",
                        "totalReconciliations": 1,
                        "metadata": {"revision": f"main@sha1:{new}"},
                    },
                    {
                        "digest": f"sha256:{old}",
                        "firstReconciled": _t(START - 2 * DAY - timedelta(minutes=1)),
                        "lastReconciled": _t(ROLLOUT - timedelta(minutes=5)),
                        "lastReconciledStatus": "ReconciliationSucceeded",
                        "totalReconciliations": 300,
                        "metadata": {"revision": f"main@sha1:{old}"},
                    },
                ],
                "inventory": {
                    "entries": [{"id": f"{NAMESPACE}_orders-api_apps_Deployment", "v": "v1"}]
                },
            },
        },
        _flux_event(new, at=ROLLOUT - timedelta(seconds=48)),
    ]


def _flux_event(new: str, *, at: datetime) -> dict[str, Any]:
    """The kustomize-controller's event on its Kustomization, in flux-system where the
    Kustomization lives (not in the namespace it deploys to)."""
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": "shop-orders.reconciled",
            "namespace": "flux-system",
            "creationTimestamp": _t(at),
        },
        "involvedObject": {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "name": "shop-orders",
            "namespace": "flux-system",
        },
        "reason": "ReconciliationSucceeded",
        "message": f"Reconciliation finished in 1.8s, next run in 5m0s (main@sha1:{new})",
        "source": {"component": "kustomize-controller"},
        "firstTimestamp": _t(at),
        "lastTimestamp": _t(at),
        "count": 1,
        "type": "Normal",
    }


def _helm(old: str, new: str) -> list[dict[str, Any]]:
    """Helm's release Secrets: revision 2 (the upgrade) changed one value key, image.tag."""
    values = {
        "image": {"repository": "registry.shop.example/orders-api", "tag": "2.4.0"},
        "replicaCount": 2,
        "database": {"host": "postgres.shop", "password": "not-a-real-password"},
    }
    upgraded = values | {"image": values["image"] | {"tag": "2.5.0"}}
    return [
        _helm_secret(1, values, at=START - 2 * DAY - timedelta(seconds=20), status="superseded"),
        _helm_secret(2, upgraded, at=ROLLOUT - timedelta(seconds=20), status="deployed"),
    ]


def _helm_secret(
    version: int, values: dict[str, Any], *, at: datetime, status: str
) -> dict[str, Any]:
    manifest = yaml.safe_dump_all(
        [
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "orders-api"}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "orders-api"}},
        ]
    )
    release = {
        "name": "orders-api",
        "namespace": NAMESPACE,
        "version": version,
        "info": {"first_deployed": _t(START - 30 * DAY), "last_deployed": _t(at), "status": status},
        "chart": {
            "metadata": {
                "name": "orders-api",
                "version": f"1.{version + 1}.0",
                "appVersion": "2.5.0",
            }
        },
        "config": values,
        "manifest": manifest,
    }
    packed = base64.b64encode(gzip.compress(json.dumps(release).encode(), mtime=0)).decode()
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "helm.sh/release.v1",
        "metadata": {
            "name": f"sh.helm.release.v1.orders-api.v{version}",
            "namespace": NAMESPACE,
            "creationTimestamp": _t(at),
            "labels": {
                "owner": "helm",
                "name": "orders-api",
                "status": status,
                "version": str(version),
            },
        },
        "data": {"release": base64.b64encode(packed.encode()).decode()},
    }


DELIVERIES = {"argocd": _argocd, "flux": _flux, "helm": _helm}


def _template(sha: str, revision: int) -> dict[str, Any]:
    """The pod template; CI's OCI annotations only when ``sha`` is given."""
    annotations = (
        {"org.opencontainers.image.revision": sha, "org.opencontainers.image.source": URL}
        if sha
        else {}
    )
    return {
        "metadata": {
            "labels": {"app": "orders-api", "pod-template-hash": f"hash{revision}"},
            "annotations": annotations,
        },
        "spec": {
            "containers": [
                {
                    "name": "orders-api",
                    "image": f"registry.shop.example/orders-api:2.{revision - 3}.0",
                    "env": [{"name": "DATABASE_HOST", "value": "postgres.shop"}],
                }
            ]
        },
    }


def _deployment(sha: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "orders-api",
            "namespace": NAMESPACE,
            "creationTimestamp": _t(START - 90 * DAY),
            "labels": {"app": "orders-api"},
            "annotations": {"deployment.kubernetes.io/revision": "8"},
        },
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "orders-api"}},
            "template": _template(sha, 8),
        },
        "status": {"replicas": 2, "readyReplicas": 2, "availableReplicas": 2},
    }


def _replicaset(revision: int, sha: str, at: datetime, *, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": f"orders-api-hash{revision}",
            "namespace": NAMESPACE,
            "creationTimestamp": _t(at),
            "labels": {"app": "orders-api", "pod-template-hash": f"hash{revision}"},
            "annotations": {"deployment.kubernetes.io/revision": str(revision)},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "orders-api",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "replicas": replicas,
            "selector": {
                "matchLabels": {"app": "orders-api", "pod-template-hash": f"hash{revision}"}
            },
            "template": _template(sha, revision),
        },
        "status": {"replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas},
    }


def _pod(index: int, sha: str) -> dict[str, Any]:
    started = ROLLOUT + timedelta(seconds=20 + 15 * index)
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"orders-api-hash8-{index}",
            "namespace": NAMESPACE,
            "creationTimestamp": _t(ROLLOUT + timedelta(seconds=5 * index)),
            "labels": {"app": "orders-api", "pod-template-hash": "hash8"},
            "annotations": {"org.opencontainers.image.revision": sha} if sha else {},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "orders-api-hash8",
                    "controller": True,
                }
            ],
        },
        "spec": {
            "nodeName": "node-1",
            "containers": _template(sha, 8)["spec"]["containers"],
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {
                    "name": "orders-api",
                    "ready": True,
                    "restartCount": 0,
                    "image": _template(sha, 8)["spec"]["containers"][0]["image"],
                    "state": {"running": {"startedAt": _t(started)}},
                }
            ],
        },
    }


def _event() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": "orders-api.rollout",
            "namespace": NAMESPACE,
            "creationTimestamp": _t(ROLLOUT),
        },
        "involvedObject": {
            "kind": "Deployment",
            "name": "orders-api",
            "namespace": NAMESPACE,
            "apiVersion": "apps/v1",
        },
        "reason": "ScalingReplicaSet",
        "message": "Scaled up replica set orders-api-hash8 to 2",
        "source": {"component": "deployment-controller"},
        "firstTimestamp": _t(ROLLOUT),
        "lastTimestamp": _t(ROLLOUT),
        "count": 1,
        "type": "Normal",
    }


def _t(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _dump(path: Path, documents: Sequence[Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        yaml.safe_dump_all(documents, out, sort_keys=False, allow_unicode=True)


def main() -> None:
    for story in STORIES:
        print(write(story))


if __name__ == "__main__":
    main()
