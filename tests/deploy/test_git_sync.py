"""The chart's optional git-sync sidecars: one per repository in the worker pods, the clones
mounted read-only into the agent and named in DIAGNOSE_REPOSITORIES (docs/changes.md)."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest

from diagnose.settings import Settings
from tests.deploy.conftest import CHART, containers, env_of, full, render

ORDERS = "https://git.shop.example/shop/orders-api"
CART = "git@git.shop.example:shop/cart.git"
VALUES: dict[str, Any] = {
    "repositories": {
        "items": [
            {
                "name": "orders-api",
                "url": ORDERS,
                "ref": "main",
                "credentialsSecret": {
                    "name": "orders-git",
                    "usernameKey": "user",
                    "passwordKey": "token",
                },
            },
            {"name": "cart", "url": CART},
        ]
    }
}


@pytest.fixture(scope="module")
def worker() -> dict[str, Any]:
    spec: dict[str, Any] = render(VALUES).get("Deployment", full("worker"))["spec"]["template"][
        "spec"
    ]
    return spec


def test_each_repository_gets_a_git_sync_sidecar_following_its_ref(worker: dict[str, Any]) -> None:
    """One git-sync container per repository, cloning its URL and ref under its own root."""
    sidecars = {c["name"]: c for c in worker["containers"][1:]}
    assert set(sidecars) == {"git-sync-orders-api", "git-sync-cart"}
    orders = sidecars["git-sync-orders-api"]
    assert "git-sync" in orders["image"]
    assert {f"--repo={ORDERS}", "--ref=main", "--root=/repositories/orders-api"} <= set(
        orders["args"]
    )
    assert not any(a.startswith("--ref=") for a in sidecars["git-sync-cart"]["args"])


def test_the_agent_reads_each_clone_read_only_where_the_setting_says(
    worker: dict[str, Any],
) -> None:
    """DIAGNOSE_REPOSITORIES maps each URL to the folder git-sync writes, mounted read-only
    into the worker, and the agent accepts it."""
    agent = containers({"spec": {"template": {"spec": worker}}})[0]
    settings = Settings.from_env(
        {"DIAGNOSE_REPOSITORIES": env_of(agent)["DIAGNOSE_REPOSITORIES"]["value"]}
    )
    mounts = {m["name"]: m for m in agent["volumeMounts"]}
    assert mounts["repositories"]["readOnly"] is True
    sidecar = next(c for c in worker["containers"] if c["name"] == "git-sync-cart")
    written = next(m for m in sidecar["volumeMounts"] if m["name"] == "repositories")
    assert "readOnly" not in written
    for url, name in ((ORDERS, "orders-api"), (CART, "cart")):
        clone = settings.code.repositories[url]
        assert clone == PurePosixPath(mounts["repositories"]["mountPath"]) / name
    volumes = {v["name"]: v for v in worker["volumes"]}
    assert "emptyDir" in volumes["repositories"]


def test_the_sidecars_are_locked_down_and_read_credentials_by_reference(
    worker: dict[str, Any],
) -> None:
    """No privilege, a read-only root, every capability dropped, requests set, and the Git
    token only through a secretKeyRef."""
    for sidecar in worker["containers"][1:]:
        context = sidecar["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["readOnlyRootFilesystem"] is True
        assert context["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= set(sidecar["resources"]["requests"])
        for entry in sidecar["env"]:
            assert "value" in entry or set(entry["valueFrom"]) == {"secretKeyRef"}
    orders = env_of(worker["containers"][1])
    assert orders["GITSYNC_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "orders-git",
        "key": "token",
    }


def test_without_repositories_nothing_is_added() -> None:
    """The default values render no sidecar, no clone volume and no DIAGNOSE_REPOSITORIES."""
    spec = render({}).get("Deployment", full("worker"))["spec"]["template"]["spec"]
    assert [c["name"] for c in spec["containers"]] == ["worker"]
    assert "repositories" not in {v["name"] for v in spec["volumes"]}
    assert "DIAGNOSE_REPOSITORIES" not in env_of(spec["containers"][0])


def test_the_api_pods_get_no_clone() -> None:
    """Only the workers run diagnoses: the API pods carry no sidecar and no setting."""
    api = render(VALUES).get("Deployment", full("api"))["spec"]["template"]["spec"]
    assert len(api["containers"]) == 1
    assert "DIAGNOSE_REPOSITORIES" not in env_of(api["containers"][0])


def test_the_chart_with_repositories_lints_and_validates() -> None:
    """helm lint --strict passes and every manifest is valid against the Kubernetes schemas."""
    report = helm.lint(CHART, VALUES, strict=True, namespace="ops", kube_version="v1.33.0")
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == []
    for manifest in render(VALUES).manifests:
        kubernetes_validate.validate(manifest, "1.33.0", strict=True)


@pytest.mark.parametrize(
    "item",
    [{"name": "Orders_API", "url": ORDERS}, {"name": "orders", "url": "file:///etc"}],
    ids=["not a DNS label", "a local path"],
)
def test_the_schema_refuses_a_bad_repository_entry(item: dict[str, str]) -> None:
    """A name that is not a DNS label, or a URL that is not a remote, is refused by the schema."""
    with pytest.raises(helm.HelmValuesError, match="repositories"):
        render({"repositories": {"items": [item]}})
