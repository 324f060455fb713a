"""The chart lints, renders valid Kubernetes objects for every value set, and refuses bad values
with a message that names the value."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

from diagnose.server import app as server_app
from diagnose.settings import Settings, variables
from tests.deploy.conftest import (
    CHART,
    VALUE_SETS,
    Rendered,
    containers,
    env_of,
    full,
    iter_pod_specs,
    render,
)

KUBE_VERSIONS = ("1.30.0", "1.37.0")
"""The oldest Kubernetes the chart supports that the bundled schemas cover, and the newest."""

IMAGE_VOLUMES_SINCE = "1.35.0"
"""Image volumes are beta and on by default since Kubernetes 1.35."""


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_the_chart_lints_without_errors_or_warnings(name: str) -> None:
    report = helm.lint(
        CHART, VALUE_SETS[name], strict=True, namespace="ops", kube_version="v1.33.0"
    )
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert report["errors"] == [] and problems == [], report


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_every_manifest_is_valid_against_the_kubernetes_schemas(
    name: str, rendered_sets: dict[str, Rendered]
) -> None:
    """Strict schemas: a misspelt or misplaced field is an error, not silently dropped."""
    rendered = rendered_sets[name]
    image_volumes = rendered.values.get("vllm", {}).get("weights", {}).get("source") == "image"
    versions = (IMAGE_VOLUMES_SINCE, KUBE_VERSIONS[-1]) if image_volumes else KUBE_VERSIONS
    assert rendered.manifests
    for manifest in rendered.manifests:
        for version in versions:
            try:
                kubernetes_validate.validate(manifest, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                where = "/".join(str(p) for p in exc.path)
                pytest.fail(
                    f"{manifest['kind']}/{manifest['metadata']['name']} ({version}): "
                    f"{exc.message} at {where}"
                )


def test_the_validator_is_not_a_rubber_stamp(default_chart: Rendered) -> None:
    """The same validation refuses a Deployment with a misspelt field or a wrong type."""
    deployment = default_chart.get("Deployment", full("api"))
    typo = copy.deepcopy(deployment)
    typo["spec"]["replica"] = 2
    wrong_type = copy.deepcopy(deployment)
    containers(wrong_type)[0]["securityContext"]["runAsNonRoot"] = "yes"
    for broken in (typo, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, KUBE_VERSIONS[0], strict=True)


def test_the_default_values_render_the_documented_objects(default_chart: Rendered) -> None:
    kinds = sorted(f"{m['kind']}/{m['metadata']['name']}" for m in default_chart.manifests)
    assert kinds == sorted(
        [
            f"ClusterRole/{full('read')}",
            f"ClusterRoleBinding/{full('read')}",
            f"ClusterRole/{full('read-cluster')}",
            f"ClusterRoleBinding/{full('read-cluster')}",
            f"ConfigMap/{full('playbooks')}",
            f"Deployment/{full('api')}",
            f"Deployment/{full('worker')}",
            f"NetworkPolicy/{full('api')}",
            f"NetworkPolicy/{full('worker')}",
            f"PodDisruptionBudget/{full('api')}",
            f"PodDisruptionBudget/{full('worker')}",
            f"Service/{full('')}",
            f"ServiceAccount/{full('')}",
        ]
    )


def test_the_chart_holds_no_secret_value_and_reads_every_secret_by_reference(
    rendered_sets: dict[str, Rendered],
) -> None:
    secret_settings = {
        "DIAGNOSE_DATABASE_URL",
        "DIAGNOSE_POSTGRES_URL",
        "DIAGNOSE_PAGERDUTY_WEBHOOK_SECRET",
        "DIAGNOSE_PAGERDUTY_API_TOKEN",
        "DIAGNOSE_ALERTMANAGER_TOKEN",
        "DIAGNOSE_LLM_API_KEY",
        "DIAGNOSE_TRACES_TOKEN",
        "DIAGNOSE_API_TOKENS",
        "HF_TOKEN",
        "VLLM_API_KEY",
    }
    everything = rendered_sets["everything"]
    seen = set()
    for rendered in rendered_sets.values():
        for secret in rendered.of_kind("Secret"):  # only the writer's token, filled by Kubernetes
            assert secret["type"] == "kubernetes.io/service-account-token"
            assert "data" not in secret and "stringData" not in secret
        for _, spec in iter_pod_specs(rendered):
            for container in spec["containers"]:
                for name, entry in env_of(container).items():
                    if name in secret_settings:
                        assert "value" not in entry, f"{name} is given in clear"
                        assert set(entry["valueFrom"]) == {"secretKeyRef"}
                        seen.add(name)
    api_env = env_of(containers(everything.get("Deployment", full("api")))[0])
    assert api_env["DIAGNOSE_PAGERDUTY_API_TOKEN"]["valueFrom"]["secretKeyRef"] == {
        "name": "diagnose-pagerduty",
        "key": "api-token",
    }
    assert seen >= secret_settings - {"DIAGNOSE_API_TOKENS", "HF_TOKEN"}
    # Approval tokens come as a mounted file, never in the environment.
    assert api_env["DIAGNOSE_API_TOKENS_FILE"]["value"] == "/etc/diagnose/api-tokens/tokens"


def _as_settings(container: dict[str, Any]) -> Settings:
    """The container's environment as the agent reads it, Secrets replaced by sample values."""
    env = {}
    for name, entry in env_of(container).items():
        if "valueFrom" in entry:
            ref = entry["valueFrom"]["secretKeyRef"]
            env[name] = f"postgresql://u@db/{ref['key']}" if name.endswith("_URL") else "s3cret"
        else:
            env[name] = entry["value"]
    return Settings.from_env(env)


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_the_agent_accepts_the_environment_the_chart_gives_it(
    name: str, rendered_sets: dict[str, Rendered]
) -> None:
    """Every DIAGNOSE_* variable is a real setting with a valid value (a typo would be
    silently ignored by the agent, so it is caught here)."""
    rendered = rendered_sets[name]
    known = set(variables())
    for manifest in (
        rendered.get("Deployment", full("api")),
        rendered.get("Deployment", full("worker")),
    ):
        container = containers(manifest)[0]
        for variable in env_of(container):
            if variable.startswith("DIAGNOSE_") and not variable.startswith("DIAGNOSE_GATHER_"):
                assert variable in known, f"{variable} is not a setting"
        settings = _as_settings(container)
        assert settings.database_url is not None
        assert str(settings.state_dir) == "/var/lib/diagnose"


def test_settings_from_values_reach_the_agent(rendered_sets: dict[str, Rendered]) -> None:
    settings = _as_settings(
        containers(rendered_sets["everything"].get("Deployment", full("worker")))[0]
    )
    assert settings.prometheus_url == "http://prometheus-operated.monitoring:9090"
    assert settings.tempo_url == "http://tempo-query-frontend.tracing:3200"
    assert settings.service_map == {"Checkout API": "checkout", "PF9KMXH": "cart"}
    assert settings.namespace_map == {"checkout": "shop"}
    assert settings.pagerduty_user_id == "PABC123"
    assert settings.llm_base_url == "https://llm.example.com/v1"
    assert settings.gather.lookback_minutes == 90
    minimal = _as_settings(containers(rendered_sets["minimal"].get("Deployment", full("api")))[0])
    assert minimal.kubernetes_enabled is False and minimal.llm_base_url is None


def _command_options(command: str) -> set[str]:
    import typer.main

    from diagnose import cli

    group = typer.main.get_command(cli.app)
    assert hasattr(group, "commands")
    return {opt for param in group.commands[command].params for opt in param.opts}


def test_the_containers_run_real_commands_with_real_options(default_chart: Rendered) -> None:
    for component, command in (("api", "serve"), ("worker", "worker")):
        args = containers(default_chart.get("Deployment", full(component)))[0]["args"]
        assert args[0] == command
        options = _command_options(command)
        for arg in args[1:]:
            assert arg.split("=", 1)[0] in options, f"{command} has no option {arg}"
    api_args = containers(default_chart.get("Deployment", full("api")))[0]["args"]
    assert "--workers=0" in api_args, "the API must leave jobs to the worker Deployment"


def test_the_probes_ask_endpoints_the_api_serves(default_chart: Rendered) -> None:
    paths = {getattr(route, "path", "") for route in server_app._operations().routes}
    api = containers(default_chart.get("Deployment", full("api")))[0]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert api[probe]["httpGet"]["path"] in paths
    assert api["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert api["ports"][0]["containerPort"] == 8080


def test_the_worker_liveness_probe_checks_the_heartbeat_the_worker_writes(
    default_chart: Rendered, tmp_path: Path
) -> None:
    """The probe's command is a real option, and with the pod's settings it passes on a fresh
    heartbeat and fails without one; disabled, there is no probe."""
    import os
    import subprocess
    import sys

    from diagnose.server import heartbeat

    worker = containers(default_chart.get("Deployment", full("worker")))[0]
    probe = worker["livenessProbe"]
    command = probe["exec"]["command"]
    assert command[:2] == ["diagnose", "worker"]
    assert command[2].split("=", 1)[0] in _command_options("worker")
    assert probe["timeoutSeconds"] >= 5 and probe["periodSeconds"] >= 10
    settings = _as_settings(worker)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    env |= {"DIAGNOSE_STATE_DIR": str(tmp_path)}  # the pod's /var/lib/diagnose, here

    def check() -> int:
        argv = [str(Path(sys.executable).parent / command[0]), *command[1:]]
        return subprocess.run(argv, env=env, capture_output=True, timeout=60).returncode

    assert check() == 1
    heartbeat.write(tmp_path / settings.heartbeat_path.name, threads=2)
    assert check() == 0
    off = render({"worker": {"livenessProbe": {"enabled": False}}})
    assert "livenessProbe" not in containers(off.get("Deployment", full("worker")))[0]


def test_workers_are_scaled_apart_from_the_api() -> None:
    rendered = render({"api": {"replicas": 3}, "worker": {"replicas": 7, "concurrency": 4}})
    assert rendered.get("Deployment", full("api"))["spec"]["replicas"] == 3
    worker = rendered.get("Deployment", full("worker"))
    assert worker["spec"]["replicas"] == 7
    assert "--concurrency=4" in containers(worker)[0]["args"]
    no_workers = render({"worker": {"replicas": 0}})
    assert full("worker") not in no_workers.names("Deployment")
    assert full("worker") not in no_workers.names("PodDisruptionBudget")


def test_every_agent_container_is_locked_down(rendered_sets: dict[str, Rendered]) -> None:
    for rendered in rendered_sets.values():
        for manifest in (
            rendered.get("Deployment", full("api")),
            rendered.get("Deployment", full("worker")),
        ):
            spec = manifest["spec"]["template"]["spec"]
            assert spec["securityContext"]["runAsNonRoot"] is True
            assert spec["securityContext"]["runAsUser"] != 0
            assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
            container = spec["containers"][0]
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            assert "add" not in context["capabilities"]
            # The places it writes are emptyDirs.
            volumes = {v["name"]: v for v in spec["volumes"]}
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            for path in ("/tmp", "/var/lib/diagnose"):
                assert "emptyDir" in volumes[mounts[path]]
            assert {"cpu", "memory"} <= set(container["resources"]["requests"])


def test_the_service_pdbs_and_policies_select_the_right_pods(default_chart: Rendered) -> None:
    def pods_of(component: str) -> dict[str, str]:
        labels = default_chart.get("Deployment", full(component))["spec"]["template"]["metadata"][
            "labels"
        ]
        return dict(labels)

    api, worker = pods_of("api"), pods_of("worker")
    selector = default_chart.get("Service", full(""))["spec"]["selector"]
    assert selector.items() <= api.items() and not selector.items() <= worker.items()
    for component, labels in (("api", api), ("worker", worker)):
        pdb = default_chart.get("PodDisruptionBudget", full(component))["spec"]
        assert pdb["selector"]["matchLabels"].items() <= labels.items()
        policy = default_chart.get("NetworkPolicy", full(component))["spec"]
        assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert default_chart.get("NetworkPolicy", full("worker"))["spec"]["ingress"] == []
    api_ingress = default_chart.get("NetworkPolicy", full("api"))["spec"]["ingress"]
    assert api_ingress == [{"ports": [{"port": "http", "protocol": "TCP"}]}]


def test_a_closed_egress_still_allows_dns_and_the_model_server(
    rendered_sets: dict[str, Rendered],
) -> None:
    rendered = rendered_sets["vllm"]
    egress = rendered.get("NetworkPolicy", full("worker"))["spec"]["egress"]
    assert {} not in egress, "allowAll=false must not allow everything"
    assert {"port": 53, "protocol": "UDP"} in egress[0]["ports"]
    vllm_labels = rendered.get("Deployment", full("vllm"))["spec"]["template"]["metadata"]["labels"]
    to_vllm = [rule for rule in egress if "to" in rule]
    assert (
        to_vllm and to_vllm[0]["to"][0]["podSelector"]["matchLabels"].items() <= vllm_labels.items()
    )


def test_the_ingress_routes_to_the_api_service(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["ingress"]
    ingress = rendered.get("Ingress", full(""))["spec"]
    assert ingress["ingressClassName"] == "nginx"
    assert ingress["tls"] == [{"hosts": ["diagnose.example.com"], "secretName": "diagnose-tls"}]
    backend = ingress["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": full(""), "port": {"name": "http"}}
    assert full("") in rendered.names("Service")
    assert rendered_sets["default"].of_kind("Ingress") == []


def test_the_playbooks_configmap_carries_the_repository_playbooks_verbatim(
    default_chart: Rendered,
) -> None:
    """files/playbooks links to the repository's playbooks/, so the two cannot drift."""
    repo_playbooks = CHART.parents[2] / "playbooks"
    data = default_chart.get("ConfigMap", full("playbooks"))["data"]
    expected = {
        p.name: p.read_text(encoding="utf-8") for p in sorted(repo_playbooks.glob("*.yaml"))
    }
    assert "probes.yaml" in expected
    assert {name: text.rstrip("\n") for name, text in data.items()} == {
        name: text.rstrip("\n") for name, text in expected.items()
    }


def test_the_packaged_chart_carries_the_playbooks(tmp_path: Path) -> None:
    """`helm package` resolves the link: the archive renders the same ConfigMap."""
    archive = helm.package(CHART, destination=tmp_path)
    with helm.Chart.load(archive) as packaged:
        files = packaged.render(name="diag", namespace="ops", is_install=True)
    configmap = yaml.safe_load(files["diagnose/templates/playbooks-configmap.yaml"])
    assert configmap["data"] == render().get("ConfigMap", full("playbooks"))["data"]


def test_the_playbooks_configmap_is_a_usable_catalogue_and_is_mounted(
    default_chart: Rendered, tmp_path: Path
) -> None:
    from sandbox import catalogue

    data = default_chart.get("ConfigMap", full("playbooks"))["data"]
    (tmp_path / "probes.yaml").write_text(data["probes.yaml"], encoding="utf-8")
    assert catalogue.load(tmp_path / "probes.yaml").entries
    for component in ("api", "worker"):
        spec = default_chart.get("Deployment", full(component))["spec"]["template"]["spec"]
        volume = next(v for v in spec["volumes"] if v["name"] == "playbooks")
        assert volume["configMap"]["name"] == full("playbooks")
        mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "playbooks")
        assert mount["mountPath"] == "/etc/diagnose/playbooks" and mount["readOnly"] is True


def test_own_playbooks_replace_the_bundled_ones(rendered_sets: dict[str, Rendered]) -> None:
    data = rendered_sets["everything"].get("ConfigMap", full("playbooks"))["data"]
    assert yaml.safe_load(data["probes.yaml"]) == {"probes": []}
    mine = render({"playbooks": {"existingConfigMap": "my-playbooks"}})
    assert mine.of_kind("ConfigMap") == []
    volume = next(
        v
        for v in mine.get("Deployment", full("api"))["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "playbooks"
    )
    assert volume["configMap"]["name"] == "my-playbooks"


# --- values the schema refuses -------------------------------------------------------------

REJECTED: list[tuple[str, dict[str, Any], str]] = [
    ("negative workers", {"worker": {"replicas": -1}}, "at '/worker/replicas': minimum"),
    ("no API replica", {"api": {"replicas": 0}}, "at '/api/replicas': minimum"),
    ("replicas as text", {"worker": {"replicas": "two"}}, "at '/worker/replicas'"),
    (
        "misspelt top-level key",
        {"workers": {"replicas": 2}},
        "additional properties 'workers' not allowed",
    ),
    ("misspelt nested key", {"api": {"replica": 2}}, "additional properties 'replica' not allowed"),
    (
        "no queue database",
        {"database": {"dsnSecret": {"name": ""}}},
        "at '/database/dsnSecret/name': minLength",
    ),
    (
        "Secret name not a DNS name",
        {"pagerduty": {"webhookSecret": {"name": "PD_Secret"}}},
        "at '/pagerduty/webhookSecret/name'",
    ),
    ("URL without a scheme", {"prometheus": {"url": "prometheus:9090"}}, "at '/prometheus/url'"),
    (
        "write verb in the read role",
        {
            "rbac": {
                "extraReadRules": [
                    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["delete"]}
                ]
            }
        },
        "at '/rbac/extraReadRules/0/verbs/0': value must be one of 'get', 'list', 'watch'",
    ),
    (
        "secrets through the extra read rules",
        {
            "rbac": {
                "extraReadRules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
            }
        },
        "at '/rbac/extraReadRules/0/resources/0'",
    ),
    (
        "actions with nowhere to act",
        {"actions": {"enabled": True}},
        "at '/actions/namespaces': minItems",
    ),
    (
        "a namespace that cannot exist",
        {"rbac": {"namespaces": ["Shop"]}},
        "at '/rbac/namespaces/0'",
    ),
    (
        "root allowed",
        {"podSecurityContext": {"runAsNonRoot": False}},
        "at '/podSecurityContext/runAsNonRoot': value must be true",
    ),
    (
        "privilege escalation",
        {"securityContext": {"allowPrivilegeEscalation": True}},
        "at '/securityContext/allowPrivilegeEscalation': value must be false",
    ),
    (
        "three GPUs",
        {"vllm": {"enabled": True, "tensorParallelSize": 3}},
        "at '/vllm/tensorParallelSize': value must be one of 1, 2, 4, 8",
    ),
    (
        "pure TP8",
        {"vllm": {"enabled": True, "tensorParallelSize": 8}},
        "at '/vllm/expertParallel': value must be true",
    ),
    (
        "context beyond the model",
        {"vllm": {"maxModelLen": 1_000_000}},
        "at '/vllm/maxModelLen': maximum",
    ),
    ("an unknown tool parser", {"vllm": {"toolCallParser": "hermes"}}, "at '/vllm/toolCallParser'"),
    (
        "ingress with no host",
        {"ingress": {"enabled": True, "hosts": []}},
        "at '/ingress/hosts': minItems",
    ),
    (
        "a bad path type",
        {
            "ingress": {
                "enabled": True,
                "hosts": [{"host": "a.example.com", "paths": [{"path": "/", "pathType": "Regex"}]}],
            }
        },
        "at '/ingress/hosts/0/paths/0/pathType'",
    ),
    (
        "environment name with a space",
        {"extraEnv": [{"name": "MY VAR", "value": "1"}]},
        "at '/extraEnv/0/name'",
    ),
]


@pytest.mark.parametrize(
    ("values", "message"), [(v, m) for _, v, m in REJECTED], ids=[r[0] for r in REJECTED]
)
def test_the_schema_rejects_bad_values_naming_the_value(
    values: dict[str, Any], message: str
) -> None:
    with pytest.raises(helm.HelmValuesError) as caught:
        render(values)
    assert "values don't meet the specifications of the schema" in str(caught.value)
    assert message in str(caught.value)
    with helm.Chart.load(CHART) as chart, pytest.raises(helm.HelmValuesError):
        chart.validate_schema(chart.merge_values(values))


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"vllm": {"enabled": True}, "llm": {"baseUrl": "https://llm.example.com/v1"}},
            "llm.baseUrl and vllm.enabled are both set",
        ),
        (
            {"actions": {"enabled": True, "namespaces": ["shop"]}, "rbac": {"create": False}},
            "actions.enabled needs rbac.create=true",
        ),
        (
            {"vllm": {"enabled": True, "weights": {"source": "image"}}},
            "vllm.weights.source=image needs vllm.weights.image.reference",
        ),
    ],
    ids=["two model endpoints", "actions without rbac", "image weights without an image"],
)
def test_contradicting_values_fail_with_a_sentence(values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=message):
        render(values)


def test_the_values_file_documents_every_key_the_schema_knows() -> None:
    """values.yaml and values.schema.json describe the same tree (no undocumented knobs)."""
    import json

    schema = json.loads((CHART / "values.schema.json").read_text(encoding="utf-8"))
    values = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))

    def walk(node: dict[str, Any], value: Any, path: str) -> None:
        props = node.get("properties")
        if not props or node.get("additionalProperties") is not False:
            return
        assert isinstance(value, dict), path
        assert set(value) <= set(props), f"{path}: {set(value) - set(props)} not in the schema"
        missing = set(props) - set(value) - {"global"}
        assert not missing, f"{path}: {missing} in the schema but not in values.yaml"
        for key, child in props.items():
            if key in value:
                walk(child, value[key], f"{path}.{key}")

    walk(schema, values, "values")


def test_what_authenticates_callers_reaches_the_api_pods_only(
    rendered_sets: dict[str, Rendered],
) -> None:
    """Workers answer no request: they get no webhook secret and no approval tokens."""
    inbound = {
        "DIAGNOSE_PAGERDUTY_WEBHOOK_SECRET",
        "DIAGNOSE_ALERTMANAGER_TOKEN",
        "DIAGNOSE_API_TOKENS_FILE",
    }
    rendered = rendered_sets["everything"]
    api = rendered.get("Deployment", full("api"))["spec"]["template"]["spec"]
    worker = rendered.get("Deployment", full("worker"))["spec"]["template"]["spec"]
    assert inbound <= set(env_of(api["containers"][0]))
    assert not inbound & set(env_of(worker["containers"][0]))
    assert "api-tokens" in {v["name"] for v in api["volumes"]}
    assert "api-tokens" not in {v["name"] for v in worker["volumes"]}
    # What workers call out with, they keep: PagerDuty notes, the model, the probes.
    for name in ("DIAGNOSE_PAGERDUTY_API_TOKEN", "DIAGNOSE_LLM_API_KEY", "DIAGNOSE_POSTGRES_URL"):
        assert name in env_of(worker["containers"][0])
