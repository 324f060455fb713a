"""Which databases the workloads use, read from their environment, and how their exporter's
series are found and queried wherever it runs."""

from __future__ import annotations

from diagnose.analysis import discovery


def test_urls_jdbc_and_host_variables_name_databases_and_hosts() -> None:
    """A PostgreSQL URL, a JDBC URL and a *_DB_HOST variable each name what they point at."""
    scope = discovery.databases_in_scope(
        [
            {"env": {"DATABASE_URL": "postgres://app@orders-db.data.svc:5432/shop"}},
            {"env": {"SPRING_DATASOURCE_URL": "jdbc:postgresql://billing-pg:5432/billing"}},
            {"env": {"CART_DB_HOST": "carts-db.shop.svc.cluster.local", "LOG_LEVEL": "info"}},
        ],
        configured="",
    )
    assert set(scope.names) == {"shop", "billing"}
    assert set(scope.hosts) == {"orders-db", "billing-pg", "carts-db"}


def test_exporter_series_are_queried_by_datname_not_by_the_namespace() -> None:
    """A pg_* metric with datname is scoped to the databases in scope, with no namespace
    matcher (its exporter runs in another namespace)."""
    scope = discovery.DatabaseScope(names=("shop",), hosts=())
    planned = discovery.plan_database_queries(
        [{"__name__": "pg_locks_count", "datname": "shop", "namespace": "monitoring"}],
        scope=scope,
    )
    assert [p.query for p in planned] == ['{__name__="pg_locks_count",datname=~"shop"}']


def test_no_database_in_scope_means_no_selector() -> None:
    """Nothing configured and nothing in the environment: no database series are searched."""
    scope = discovery.databases_in_scope([{"env": {"LOG_LEVEL": "debug"}}], configured="")
    assert discovery.database_selectors(scope, label_names=["datname", "job"]) == []
