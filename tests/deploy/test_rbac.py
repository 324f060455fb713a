"""What each ServiceAccount of the chart may do, computed from the rendered RBAC objects the way
the API server would: bindings → roles → rules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from connectors import kubernetes
from tests.deploy.conftest import NAMESPACE, VALUE_SETS, Rendered, full, iter_pod_specs, render

READ_VERBS = frozenset({"get", "list", "watch"})

OPT_IN = frozenset(
    {
        ("", "secrets"),  # rbac.readSecretMetadata or rbac.readHelmReleases
        ("argoproj.io", "applications"),  # rbac.readDeliveries, as the three below
        ("kustomize.toolkit.fluxcd.io", "kustomizations"),
        ("helm.toolkit.fluxcd.io", "helmreleases"),
        ("source.toolkit.fluxcd.io", "gitrepositories"),
    }
)
"""The reads the chart grants only on request: Secrets carry data RBAC cannot hide, and the
delivery tools may not be installed."""

AGENT_READS = (
    frozenset((r.group, r.resource) for r in kubernetes.READS if "list" in r.verbs) - OPT_IN
)
"""What connectors/kubernetes lists (its READS) and the chart grants by default."""

LOG_READS = frozenset((r.group, r.resource) for r in kubernetes.READS if r.verbs == {"get"})
"""What connectors/logs.py reads through the Kubernetes API: pod logs, with get only."""

CLUSTER_READS = frozenset((r.group, r.resource) for r in kubernetes.READS if r.scope == "cluster")
"""Cluster-scoped reads (nodes, PersistentVolumes): only a ClusterRoleBinding grants them."""


@dataclass(frozen=True)
class Grant:
    namespace: str | None  # None: every namespace
    group: str
    resource: str
    verb: str


def grants_of(rendered: Rendered, account: str, *, namespace: str = NAMESPACE) -> set[Grant]:
    """Everything the ServiceAccount may do, from every binding that names it."""
    roles = {
        (m["kind"], m["metadata"].get("namespace"), m["metadata"]["name"]): m
        for m in rendered.of_kind("ClusterRole") + rendered.of_kind("Role")
    }
    found: set[Grant] = set()
    for binding in rendered.of_kind("ClusterRoleBinding") + rendered.of_kind("RoleBinding"):
        subjects = binding.get("subjects") or []
        if not any(
            s["kind"] == "ServiceAccount" and s["name"] == account and s["namespace"] == namespace
            for s in subjects
        ):
            continue
        scope = binding["metadata"].get("namespace") if binding["kind"] == "RoleBinding" else None
        ref = binding["roleRef"]
        role_ns = None if ref["kind"] == "ClusterRole" else scope
        role = roles.get((ref["kind"], role_ns, ref["name"]))
        assert role is not None, f"{binding['metadata']['name']} binds a role the chart lacks"
        for rule in role.get("rules", []):
            assert "nonResourceURLs" not in rule
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        found.add(Grant(scope, group, resource, verb))
    return found


def every_rule_verb(rendered: Rendered) -> set[str]:
    return {
        verb
        for role in rendered.of_kind("ClusterRole") + rendered.of_kind("Role")
        for rule in role.get("rules", [])
        for verb in rule["verbs"]
    }


def test_the_default_service_account_can_get_list_watch_what_the_agent_reads_and_nothing_else(
    default_chart: Rendered,
) -> None:
    grants = grants_of(default_chart, full(""))
    assert {(g.group, g.resource) for g in grants} == AGENT_READS | LOG_READS
    assert {g.verb for g in grants} == READ_VERBS
    assert {g.namespace for g in grants} == {None}, "read access is cluster-wide by default"
    # Every resource gets exactly the three read verbs.
    for group, resource in AGENT_READS:
        assert {g.verb for g in grants if (g.group, g.resource) == (group, resource)} == READ_VERBS
    for group, resource in LOG_READS:
        assert {g.verb for g in grants if (g.group, g.resource) == (group, resource)} == {"get"}


@pytest.mark.parametrize("name", sorted(set(VALUE_SETS) - {"actions"}))
def test_without_actions_no_write_verb_is_rendered_anywhere(
    name: str, rendered_sets: dict[str, Rendered]
) -> None:
    rendered = rendered_sets[name]
    assert every_rule_verb(rendered) <= READ_VERBS
    assert full("actions") not in rendered.names("ServiceAccount")
    assert rendered.of_kind("Secret") == []
    for grant in grants_of(rendered, full("")):
        assert (grant.group, grant.resource) != ("", "secrets") or grant.verb == "list"
        assert "*" not in (grant.group, grant.resource, grant.verb)


def test_secrets_are_never_readable_by_default_and_only_listable_on_request(
    rendered_sets: dict[str, Rendered],
) -> None:
    assert not any(g.resource == "secrets" for g in grants_of(rendered_sets["default"], full("")))
    opted_in = {
        g for g in grants_of(rendered_sets["everything"], full("")) if g.resource == "secrets"
    }
    assert {g.verb for g in opted_in} == {"list"}, "metadata listing needs list, never get"


def test_extra_read_rules_add_reads_only(rendered_sets: dict[str, Rendered]) -> None:
    grants = grants_of(rendered_sets["everything"], full(""))
    hpa = {g.verb for g in grants if g.resource == "horizontalpodautoscalers"}
    assert hpa == {"get", "list"}


def test_read_access_can_be_limited_to_namespaces(rendered_sets: dict[str, Rendered]) -> None:
    """With rbac.namespaces, the namespaced reads are bound in those namespaces only; what a
    RoleBinding cannot grant (nodes, PersistentVolumes) stays cluster-wide, and only that."""
    rendered = rendered_sets["actions"]
    assert rendered.names("ClusterRoleBinding") == {f"{full('')}-read-cluster"}
    grants = grants_of(rendered, full(""))
    assert {g.namespace for g in grants} == {"shop", "payments", "ops", None}
    assert {(g.group, g.resource) for g in grants if g.namespace is None} == CLUSTER_READS
    assert {g.verb for g in grants} == READ_VERBS


WRITER_GRANTS = frozenset(
    {
        ("apps", "deployments", "patch"),  # rollback, scale, raise limits (and their dry runs)
        ("apps", "deployments", "get"),  # the writer reads the live object it patches
        ("apps", "replicasets", "get"),  # a rollback copies the old revision's pod template
        ("apps", "replicasets", "list"),
        ("", "services", "patch"),  # restore_service: a selector or targetPort set back
        ("", "services", "get"),  # …read from the live Service first
    }
)


def test_with_actions_the_write_verb_goes_to_a_separate_account_in_the_named_namespaces_only(
    rendered_sets: dict[str, Rendered],
) -> None:
    rendered = rendered_sets["actions"]
    writer = full("actions")
    assert writer in rendered.names("ServiceAccount")
    grants = grants_of(rendered, writer)
    assert {(g.group, g.resource, g.verb) for g in grants} == WRITER_GRANTS
    assert {g.namespace for g in grants} == {"shop", "payments"}, "never cluster-wide"
    # The agent's own identity stays read-only with actions on.
    assert {g.verb for g in grants_of(rendered, full(""))} == READ_VERBS
    assert every_rule_verb(rendered) - READ_VERBS == {"patch"}


def test_no_pod_runs_as_the_writer_its_token_comes_as_a_separate_kubeconfig(
    rendered_sets: dict[str, Rendered],
) -> None:
    """The write credentials are a file of their own (DIAGNOSE_KUBERNETES_WRITE_KUBECONFIG),
    never the pod's identity: dry runs happen in workers, approved fixes where runs resume."""
    rendered = rendered_sets["actions"]
    writer = full("actions")
    token = rendered.get("Secret", f"{writer}-token")
    assert token["type"] == "kubernetes.io/service-account-token"
    assert token["metadata"]["annotations"] == {"kubernetes.io/service-account.name": writer}
    assert "data" not in token and "stringData" not in token
    for manifest, spec in iter_pod_specs(rendered):
        assert spec["serviceAccountName"] == full(""), manifest["metadata"]["name"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        sources = volumes["actions"]["projected"]["sources"]
        assert sources[0]["secret"]["name"] == f"{writer}-token"
        assert sources[1]["configMap"]["name"] == f"{writer}-kubeconfig"
        container = spec["containers"][0]
        mount = next(m for m in container["volumeMounts"] if m["name"] == "actions")
        assert mount == {"name": "actions", "mountPath": "/etc/diagnose/actions", "readOnly": True}
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["DIAGNOSE_KUBERNETES_WRITE_KUBECONFIG"] == "/etc/diagnose/actions/kubeconfig"
        assert env["DIAGNOSE_KUBERNETES_WRITE_CONTEXT"] == "diagnose-actions"
        assert env["DIAGNOSE_EXECUTE"] == "false"
    for _, spec in iter_pod_specs(rendered_sets["default"]):
        assert "actions" not in {v["name"] for v in spec["volumes"]}
        names = {e["name"] for e in spec["containers"][0]["env"]}
        assert not names & {"DIAGNOSE_KUBERNETES_WRITE_KUBECONFIG", "DIAGNOSE_EXECUTE"}


def test_the_write_kubeconfig_loads_with_the_kubernetes_client(
    rendered_sets: dict[str, Rendered], tmp_path: Path
) -> None:
    """The real client's loader turns it into the writer's bearer token and the cluster CA."""
    from kubernetes import client, config

    rendered = rendered_sets["actions"]
    text = rendered.get("ConfigMap", f"{full('actions')}-kubeconfig")["data"]["kubeconfig"]
    (tmp_path / "token").write_text("writer-token-123", encoding="utf-8")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n", encoding="utf-8")
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(text.replace("/etc/diagnose/actions", str(tmp_path)), encoding="utf-8")
    configuration = client.Configuration()
    config.load_kube_config(
        config_file=str(kubeconfig), context="diagnose-actions", client_configuration=configuration
    )
    assert configuration.host == "https://kubernetes.default.svc"
    assert configuration.api_key["BearerToken"] == "Bearer writer-token-123"
    assert configuration.ssl_ca_cert == str(tmp_path / "ca.crt")


def test_execution_is_a_separate_switch() -> None:
    rendered = render({"actions": {"enabled": True, "execute": True, "namespaces": ["shop"]}})
    for _, spec in iter_pod_specs(rendered):
        env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
        assert env["DIAGNOSE_EXECUTE"] == "true"


def test_the_model_server_gets_no_kubernetes_credentials(
    rendered_sets: dict[str, Rendered],
) -> None:
    spec = rendered_sets["vllm"].get("Deployment", full("vllm"))["spec"]["template"]["spec"]
    assert spec["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in spec


def test_service_accounts_do_not_hand_out_tokens_unasked(
    rendered_sets: dict[str, Rendered],
) -> None:
    """Tokens are mounted only into the pods that call the API server, and only when
    kubernetes.enabled."""
    for account in rendered_sets["actions"].of_kind("ServiceAccount"):
        assert account["automountServiceAccountToken"] is False
    for _, spec in iter_pod_specs(rendered_sets["minimal"]):
        assert spec["automountServiceAccountToken"] is False
    for _, spec in iter_pod_specs(rendered_sets["default"]):
        assert spec["automountServiceAccountToken"] is True
