"""The read role's delivery rules (docs/changes.md): Argo CD, Flux and Helm, read-only and
opt-in, resolved as the API server would (bindings → roles → rules)."""

from __future__ import annotations

import helm_python as helm
import kubernetes_validate

from tests.deploy.conftest import CHART, full, render
from tests.deploy.test_rbac import READ_VERBS, grants_of

DELIVERY_READS = frozenset(
    {
        ("argoproj.io", "applications"),
        ("kustomize.toolkit.fluxcd.io", "kustomizations"),
        ("helm.toolkit.fluxcd.io", "helmreleases"),
        ("source.toolkit.fluxcd.io", "gitrepositories"),
    }
)


def test_delivery_reads_are_get_list_watch_on_exactly_the_tools_resources() -> None:
    """rbac.readDeliveries adds the four custom resources with the three read verbs, and no
    Secret."""
    before = grants_of(render({}), full(""))
    after = grants_of(render({"rbac": {"readDeliveries": True}}), full(""))
    added = after - before
    assert {(g.group, g.resource) for g in added} == DELIVERY_READS
    for group, resource in DELIVERY_READS:
        assert {g.verb for g in added if (g.group, g.resource) == (group, resource)} == READ_VERBS


def test_helm_history_needs_its_own_switch_and_gets_list_only() -> None:
    """Helm's release Secrets are read only with rbac.readHelmReleases, and only listed."""
    assert not any(
        g.resource == "secrets"
        for g in grants_of(render({"rbac": {"readDeliveries": True}}), full(""))
    )
    helm_grants = {
        g
        for g in grants_of(render({"rbac": {"readHelmReleases": True}}), full(""))
        if g.resource == "secrets"
    }
    assert {(g.group, g.verb) for g in helm_grants} == {("", "list")}


def test_the_chart_with_delivery_reads_lints_and_validates() -> None:
    """helm lint --strict passes and the role is a valid ClusterRole."""
    values = {"rbac": {"readDeliveries": True, "readHelmReleases": True}}
    report = helm.lint(CHART, values, strict=True, namespace="ops", kube_version="v1.33.0")
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == []
    for manifest in render(values).of_kind("ClusterRole"):
        kubernetes_validate.validate(manifest, "1.33.0", strict=True)
