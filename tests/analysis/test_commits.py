"""diagnose.analysis.commits: versions, ranges, file kinds, migrations, and ties to evidence."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from diagnose.analysis import commits
from diagnose.domain import models

SOURCE = "https://git.shop.example/shop/orders-api"
OLD, NEW = "1a2b3c4d" * 5, "9f8e7d6c" * 5
WINDOW = models.Window(
    start=datetime(2026, 4, 7, 9, 0, tzinfo=UTC), end=datetime(2026, 4, 7, 10, 5, tzinfo=UTC)
)


def _rs(revision: int, created: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": f"orders-api-{revision}",
        "namespace": "shop",
        "owner": "deployment/orders-api",
        "revision": revision,
        "created": created,
        "images": extra.pop("images", ["registry.shop.example/orders-api:2.4.0"]),
        "annotations": {},
        "template_annotations": extra.pop("template_annotations", {}),
    }


def _annotated(revision: int, created: str, sha: str) -> dict[str, Any]:
    return _rs(
        revision,
        created,
        template_annotations={
            commits.REVISION_ANNOTATION: sha,
            commits.SOURCE_ANNOTATION: SOURCE,
        },
    )


def test_the_template_annotation_names_the_commit_and_repository() -> None:
    """org.opencontainers.image.revision and .source on the pod template name the version."""
    version = commits.version_of(_annotated(8, "2026-04-07T09:50:00Z", NEW))
    assert version == commits.Version(revision=NEW, repository=SOURCE, via="annotation")


def test_an_image_tag_that_is_a_commit_names_it_but_a_build_number_does_not() -> None:
    """``app:sha-3f9c2ab`` names a commit; ``app:20260407`` (digits only) does not."""
    tagged = _rs(8, "2026-04-07T09:50:00Z", images=["reg:5000/orders-api:sha-3f9c2ab@sha256:00"])
    numbered = _rs(8, "2026-04-07T09:50:00Z", images=["reg:5000/orders-api:20260407"])
    assert commits.version_of(tagged) == commits.Version("3f9c2ab", None, "image tag")
    assert commits.version_of(numbered) is None


def test_a_rollout_in_the_window_becomes_a_range_from_the_revision_before() -> None:
    """Revision 8 made in the window is read from revision 7's commit to its own."""
    ranges, notes = commits.ranges_to_read(
        [
            _annotated(7, "2026-04-06T12:00:00Z", OLD),
            _annotated(8, "2026-04-07T09:50:00Z", NEW),
        ],
        window=WINDOW,
    )
    assert ranges == [
        commits.RangeRequest("deployment/orders-api@8", "orders-api", SOURCE, OLD, NEW)
    ]
    assert notes == []


def test_a_rollout_that_names_no_commit_is_a_note() -> None:
    """A revision without annotation or commit tag is said, with what to set."""
    ranges, notes = commits.ranges_to_read(
        [_rs(7, "2026-04-06T12:00:00Z"), _rs(8, "2026-04-07T09:50:00Z")], window=WINDOW
    )
    assert ranges == []
    assert "deployment/orders-api@8" in notes[0] and commits.REVISION_ANNOTATION in notes[0]


@pytest.mark.parametrize(
    ("path", "kind", "framework"),
    [
        ("migrations/versions/0042_drop_idx.py", "migration", "alembic"),
        ("shop/orders/migrations/0007_remove_order_idx.py", "migration", "django"),
        ("src/main/resources/db/migration/V42__drop_idx.sql", "migration", "flyway"),
        ("db/changelog/042-drop-idx.xml", "migration", "liquibase"),
        ("db/migrate/20260407093000_remove_customer_index.rb", "migration", "rails"),
        ("migrations/000042_drop_idx.up.sql", "migration", "golang-migrate"),
        ("db/migrations/042_drop_idx.sql", "migration", "sql"),
        ("queries/report.sql", "sql", None),
        ("app/orders/queries.py", "code", None),
        ("config/settings.yaml", "config", None),
        ("requirements.txt", "dependencies", None),
        ("go.sum", "dependencies", None),
        ("deploy/orders-api/deployment.yaml", "kubernetes", None),
        ("docs/runbook.md", "docs", None),
        ("README.md", "docs", None),
        ("tests/test_orders.py", "tests", None),
    ],
)
def test_changed_files_are_classified(path: str, kind: str, framework: str | None) -> None:
    """Each changed file gets its kind, and migrations their framework."""
    assert commits.classify(path).value == kind
    assert commits.migration_framework(path) == framework


@pytest.mark.parametrize(
    "lines",
    [
        ["DROP INDEX CONCURRENTLY IF EXISTS public.ix_orders_customer_id;"],
        ['    op.drop_index(op.f("ix_orders_customer_id"), table_name="orders")'],
        ["migrations.RemoveIndex(", '    model_name="order",', '    name="ix_orders_customer_id",'],
        ["    remove_index :orders, :customer_id, name: 'ix_orders_customer_id'"],
        ['<dropIndex tableName="orders" indexName="ix_orders_customer_id"/>'],
    ],
)
def test_a_dropped_index_is_read_in_each_framework(lines: list[str]) -> None:
    """SQL, Alembic, Django, Rails and Liquibase migrations that drop an index are read as such."""
    found = commits.schema_changes(lines)
    assert [c.action for c in found] == ["drop_index"]
    assert found[0].index == "ix_orders_customer_id"


def test_a_statement_is_found_in_code_as_pg_stat_statements_normalises_it() -> None:
    """pg_stat_statements' ``$1`` text matches a driver's ``%s`` string split over lines."""
    code = [
        "    cur.execute(",
        '        "SELECT id, status, total_cents FROM orders "',
        '        "WHERE customer_id = %s ORDER BY created_at DESC LIMIT 20",',
        "        (customer,),",
    ]
    statement = (
        "SELECT id, status, total_cents FROM orders WHERE customer_id = $1 "
        "ORDER BY created_at DESC LIMIT $2"
    )
    assert commits.holds_statement(code, statement)
    assert not commits.holds_statement(code, "SELECT email FROM customers WHERE id = $1")


MISSING = {
    "kind": "missing_index",
    "table": "orders",
    "columns": ["customer_id"],
    "statement": "SELECT id FROM orders WHERE customer_id = $1",
    "evidence": ["ev-plan"],
}
REQUEST = commits.RangeRequest("deployment/orders-api@8", "orders-api", SOURCE, OLD, NEW)


def _payload(*files: tuple[str, list[str]]) -> dict[str, Any]:
    return {
        "repository": SOURCE,
        "from": OLD,
        "to": NEW,
        "commits": [
            {
                "sha": f"{i:040x}",
                "subject": f"change {i}",
                "at": "2026-04-07T09:40:00Z",
                "files": [{"path": p, "change": "modify", "added": a, "removed": []}],
            }
            for i, (p, a) in enumerate(files, start=1)
        ],
        "truncated": False,
    }


def _hypothesis(kind: str, component: str, confidence: float, **extra: Any) -> dict[str, Any]:
    return {
        "kind": kind,
        "component": component,
        "confidence": confidence,
        "summary": f"{component} is the cause",
        "evidence": extra.pop("evidence", []),
        "change": extra.pop("change", None),
    }


def test_a_migration_dropping_the_scanned_index_is_the_first_suspect() -> None:
    """The migration that drops the index on the scanned column leads the suspects."""
    reading = commits.read_range(
        _payload(
            ("docs/changes.md", ["- faster orders page"]),
            (
                "migrations/versions/0042_drop.py",
                ['op.drop_index("ix_orders_customer_id", table_name="orders")'],
            ),
            ("app/views.py", ["return render(orders)"]),
        ),
        request=REQUEST,
        findings=[MISSING],
    )
    assert [(s.sha, s.file) for s in reading.suspects] == [
        (f"{2:040x}", "migrations/versions/0042_drop.py")
    ]
    assert "drops index ix_orders_customer_id on orders" in reading.suspects[0].why


def test_the_database_hypothesis_citing_the_finding_carries_the_range() -> None:
    """A database hypothesis citing the finding carries the range with its suspect first."""
    reading = commits.read_range(
        _payload(("app/orders.py", ['q = "SELECT id FROM orders WHERE customer_id = %s"'])),
        request=REQUEST,
        findings=[MISSING],
    )
    attached = commits.attach(
        [_hypothesis("database", "postgres/shop", 0.7, evidence=["ev-plan"])], [reading]
    )
    code = attached.hypotheses[0]["code"]
    assert code["suspects"][0]["file"] == "app/orders.py"
    assert code["from"] == OLD and code["to"] == NEW
    assert attached.hypotheses[0]["confidence"] > 0.7


def test_a_rollout_touching_only_documentation_is_weakened_and_says_so() -> None:
    """A rollout whose commits change only docs loses confidence and its summary says why."""
    reading = commits.read_range(
        _payload(("README.md", ["typo"]), ("docs/api.md", ["more"])), request=REQUEST
    )
    attached = commits.attach(
        [
            _hypothesis("deploy", "orders-api", 0.6, change="deployment/orders-api@8"),
            _hypothesis("database", "postgres/shop", 0.5),
        ],
        [reading],
    )
    first, second = attached.hypotheses
    assert first["component"] == "postgres/shop"
    assert second["confidence"] == pytest.approx(0.36)
    assert "2 commits, touching only documentation or tests" in second["summary"]


def test_a_rollout_touching_none_of_the_scanned_tables_says_so() -> None:
    """With a finding on orders and a range that never mentions it, the summary names that."""
    reading = commits.read_range(
        _payload(("app/payments.py", ["charge(card)"])), request=REQUEST, findings=[MISSING]
    )
    attached = commits.attach(
        [_hypothesis("deploy", "orders-api", 0.6, change="deployment/orders-api@8")], [reading]
    )
    assert "1 commit, none touching orders' queries" in attached.hypotheses[0]["summary"]
    assert attached.hypotheses[0]["confidence"] < 0.6


GITOPS = "https://git.shop.example/shop/deploy"
SYNC_OLD, SYNC_NEW = "aaaabbbb" * 5, "ccccdddd" * 5


def _argo(workloads: list[str], *, synced_at: str) -> dict[str, Any]:
    return {
        "tool": "argocd",
        "name": "shop",
        "namespace": "argocd",
        "target_namespace": "shop",
        "repository": GITOPS,
        "path": "shop",
        "status": "Synced/Degraded",
        "workloads": workloads,
        "syncs": [
            {"revision": SYNC_OLD, "commit": SYNC_OLD, "at": "2026-04-06T10:00:00Z", "id": "4"},
            {"revision": SYNC_NEW, "commit": SYNC_NEW, "at": synced_at, "id": "5"},
        ],
        "changed_keys": [],
    }


def test_a_gitops_sync_names_the_range_before_the_annotations_do() -> None:
    """An Argo CD sync of the workload just before its rollout gives the range (its repository
    and commits), though the pod template names other commits."""
    replicasets = [
        _annotated(7, "2026-04-06T12:00:00Z", OLD),
        _annotated(8, "2026-04-07T09:50:00Z", NEW),
    ]
    ranges, _ = commits.ranges_to_read(
        replicasets,
        window=WINDOW,
        deliveries=[_argo(["deployment/orders-api"], synced_at="2026-04-07T09:49:30Z")],
    )
    assert ranges == [
        commits.RangeRequest("deployment/orders-api@8", "orders-api", GITOPS, SYNC_OLD, SYNC_NEW)
    ]


def test_a_sync_of_other_workloads_or_long_before_leaves_the_annotations() -> None:
    """A sync managing other workloads, or an hour before the rollout, is not its cause."""
    replicasets = [
        _annotated(7, "2026-04-06T12:00:00Z", OLD),
        _annotated(8, "2026-04-07T09:50:00Z", NEW),
    ]
    for found in (
        _argo(["deployment/cart"], synced_at="2026-04-07T09:49:30Z"),
        _argo(["deployment/orders-api"], synced_at="2026-04-07T08:40:00Z"),
    ):
        ranges, _ = commits.ranges_to_read(replicasets, window=WINDOW, deliveries=[found])
        assert [(r.since, r.until, r.repository) for r in ranges] == [(OLD, NEW, SOURCE)]


def test_a_helm_upgrade_that_applied_the_rollout_is_named_with_its_changed_key() -> None:
    """Each rollout is matched to the Helm revision just before it; the rollout hypothesis
    says which and the value key it changed; a hypothesis on another change is left alone."""
    helm = {
        "tool": "helm",
        "name": "orders-api",
        "namespace": "shop",
        "target_namespace": "shop",
        "repository": None,
        "path": "orders-api-1.3.0",
        "status": "deployed",
        "workloads": ["deployment/orders-api"],
        "syncs": [
            {"revision": "1.2.0", "commit": None, "at": "2026-04-06T10:00:00Z", "id": "1"},
            {"revision": "1.3.0", "commit": None, "at": "2026-04-07T09:49:40Z", "id": "2"},
        ],
        "changed_keys": ["image.tag"],
    }
    delivered = commits.delivered_by(
        [_rs(7, "2026-04-06T10:00:20Z"), _rs(8, "2026-04-07T09:50:00Z")], deliveries=[helm]
    )
    assert set(delivered) == {"deployment/orders-api@7", "deployment/orders-api@8"}
    assert delivered["deployment/orders-api@7"].changed_keys == ()  # the latest revision's only
    marked = commits.mark_delivered(
        [
            _hypothesis("deploy", "orders-api", 0.6, change="deployment/orders-api@8"),
            _hypothesis("config", "cart", 0.3, change="configmap/cart"),
        ],
        delivered,
    )
    assert marked[0]["summary"].endswith(
        "delivered by helm orders-api 2 (chart 1.3.0), which changed values image.tag"
    )
    assert marked[0]["delivery"]["changed_keys"] == ["image.tag"]
    assert "delivery" not in marked[1]
