"""The Helm chart rendered by real Helm (helm-python-sdk embeds Helm's Go library), once per
value set, and helpers to look at the manifests."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml

CHART = Path(__file__).resolve().parents[2] / "deploy" / "helm" / "diagnose"
RELEASE = "diag"
NAMESPACE = "ops"

Manifest = dict[str, Any]

VALUE_SETS: dict[str, dict[str, Any]] = {
    "default": {},
    "minimal": {
        "api": {"replicas": 1},
        "worker": {"replicas": 1, "concurrency": 1},
        "podDisruptionBudget": {"enabled": False},
        "networkPolicy": {"enabled": False},
        "kubernetes": {"enabled": False},
    },
    "vllm": {
        "vllm": {"enabled": True},
        "llm": {"apiKeySecret": {"name": "diagnose-llm", "key": "api-key"}},
        "networkPolicy": {"egress": {"allowAll": False}},
    },
    "vllm-image-weights": {
        "vllm": {
            "enabled": True,
            "tensorParallelSize": 8,
            "expertParallel": True,
            "reasoningParser": "minimax_m2_append_think",
            "weights": {
                "source": "image",
                "image": {"reference": "registry.example.com/models/minimax-m2.7:2026-04"},
            },
        },
    },
    "actions": {
        "actions": {"enabled": True, "namespaces": ["shop", "payments"]},
        "rbac": {"namespaces": ["shop", "payments", "ops"]},
    },
    "ingress": {
        "ingress": {
            "enabled": True,
            "className": "nginx",
            "annotations": {"cert-manager.io/cluster-issuer": "letsencrypt"},
            "hosts": [
                {"host": "diagnose.example.com", "paths": [{"path": "/", "pathType": "Prefix"}]}
            ],
            "tls": [{"hosts": ["diagnose.example.com"], "secretName": "diagnose-tls"}],
        },
        "approvals": {
            "tokensSecret": {"name": "diagnose-api-tokens", "key": "tokens"},
            "publicUrl": "https://diagnose.example.com",
        },
    },
    "slack-mcp": {
        "slack": {
            "enabled": True,
            "channel": "C0INCIDENTS",
            "approvers": {"U0ALICE": "alice", "U0BOB": "bob"},
            "botTokenSecret": {"name": "diagnose-slack", "key": "bot-token"},
            "signingSecret": {"name": "diagnose-slack", "key": "signing-secret"},
        },
        "mcp": {"enabled": True, "tokensSecret": {"name": "diagnose-mcp", "key": "tokens"}},
    },
    "everything": {
        "prometheus": {"url": "http://prometheus-operated.monitoring:9090"},
        "traces": {
            "tempoUrl": "http://tempo-query-frontend.tracing:3200",
            "tenant": "team-a",
            "tokenSecret": {"name": "diagnose-traces", "key": "token"},
        },
        "postgresProbes": {"dsnSecret": {"name": "diagnose-probes", "key": "dsn"}},
        "pagerduty": {
            "webhookSecret": {"name": "diagnose-pagerduty", "key": "webhook-secret"},
            "apiTokenSecret": {"name": "diagnose-pagerduty", "key": "api-token"},
            "fromEmail": "diagnose@example.com",
            "userId": "PABC123",
        },
        "alertmanager": {"tokenSecret": {"name": "diagnose-alertmanager", "key": "token"}},
        "approvals": {"tokensSecret": {"name": "diagnose-api-tokens", "key": "tokens"}},
        "naming": {
            "serviceMap": {"Checkout API": "checkout", "PF9KMXH": "cart"},
            "namespaceMap": {"checkout": "shop"},
            "defaultNamespace": "shop",
        },
        "llm": {
            "baseUrl": "https://llm.example.com/v1",
            "model": "MiniMaxAI/MiniMax-M2.7",
            "apiKeySecret": {"name": "diagnose-llm", "key": "api-key"},
        },
        "rbac": {
            "readSecretMetadata": True,
            "extraReadRules": [
                {
                    "apiGroups": ["autoscaling"],
                    "resources": ["horizontalpodautoscalers"],
                    "verbs": ["get", "list"],
                }
            ],
        },
        "extraEnv": [{"name": "DIAGNOSE_GATHER_LOOKBACK_MINUTES", "value": "90"}],
        "playbooks": {"files": {"probes.yaml": "probes: []\n"}},
    },
}
"""Named value sets; the issue asks for default, minimal, vLLM, actions and ingress."""


@dataclass(frozen=True)
class Rendered:
    """One value set rendered: every non-empty manifest, in template order."""

    values: Mapping[str, Any]
    manifests: tuple[Manifest, ...]

    def of_kind(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m["kind"] == kind]

    def get(self, kind: str, name: str) -> Manifest:
        found = [m for m in self.of_kind(kind) if m["metadata"]["name"] == name]
        assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
        return found[0]

    def names(self, kind: str) -> set[str]:
        return {m["metadata"]["name"] for m in self.of_kind(kind)}


def render(values: Mapping[str, Any] | None = None) -> Rendered:
    """Render the chart as `helm template diag deploy/helm/diagnose -n ops` would."""
    with helm.Chart.load(CHART) as chart:
        files = chart.render(
            values=dict(values or {}), name=RELEASE, namespace=NAMESPACE, is_install=True
        )
    manifests = tuple(
        doc
        for name in sorted(files)
        if name.endswith(".yaml")  # NOTES.txt is text for the person installing
        for doc in yaml.safe_load_all(files[name])
        if doc  # templates switched off render as blank
    )
    return Rendered(values=dict(values or {}), manifests=manifests)


def containers(manifest: Manifest) -> list[dict[str, Any]]:
    return list(manifest["spec"]["template"]["spec"]["containers"])


def env_of(container: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {entry["name"]: entry for entry in container.get("env", [])}


def iter_pod_specs(rendered: Rendered) -> Iterator[tuple[Manifest, dict[str, Any]]]:
    for manifest in rendered.of_kind("Deployment"):
        yield manifest, manifest["spec"]["template"]["spec"]


@pytest.fixture(scope="session")
def rendered_sets() -> dict[str, Rendered]:
    """Every value set, rendered once for the whole session."""
    return {name: render(values) for name, values in VALUE_SETS.items()}


@pytest.fixture(scope="session")
def default_chart(rendered_sets: dict[str, Rendered]) -> Rendered:
    return rendered_sets["default"]


def full(name: str) -> str:
    """A resource name as the chart builds it for the test release."""
    return f"{RELEASE}-diagnose-{name}" if name else f"{RELEASE}-diagnose"


def load_values_file() -> dict[str, Any]:
    loaded = yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded
