"""The chart's Slack settings and Secrets, and the optional MCP server (docs/slack.md,
docs/mcp.md), rendered by real Helm."""

from __future__ import annotations

from diagnose.settings import Settings
from tests.deploy.conftest import Rendered, containers, env_of, full, render

API_FROM = {"kubernetes.io/metadata.name": "ingress-nginx"}


def test_slack_secrets_are_read_by_reference_and_the_signing_secret_only_by_the_api(
    rendered_sets: dict[str, Rendered],
) -> None:
    """Workers post (bot token); only the API checks interaction signatures."""
    chart = rendered_sets["slack-mcp"]
    (api,) = containers(chart.get("Deployment", full("api")))
    (worker,) = [
        c for c in containers(chart.get("Deployment", full("worker"))) if c["name"] == "worker"
    ]
    for container in (api, worker):
        token = env_of(container)["DIAGNOSE_SLACK_BOT_TOKEN"]["valueFrom"]["secretKeyRef"]
        assert token == {"name": "diagnose-slack", "key": "bot-token"}
    secret = env_of(api)["DIAGNOSE_SLACK_SIGNING_SECRET"]["valueFrom"]["secretKeyRef"]
    assert secret == {"name": "diagnose-slack", "key": "signing-secret"}
    assert "DIAGNOSE_SLACK_SIGNING_SECRET" not in env_of(worker)


def test_the_slack_values_reach_the_agents_settings(rendered_sets: dict[str, Rendered]) -> None:
    """The plain Slack environment the chart gives the API is what the settings read."""
    (api,) = containers(rendered_sets["slack-mcp"].get("Deployment", full("api")))
    plain = {k: v["value"] for k, v in env_of(api).items() if "value" in v}
    settings = Settings.from_env(plain | {"DIAGNOSE_SLACK_BOT_TOKEN": "xoxb-x"})
    assert settings.slack.active and settings.slack_channel == "C0INCIDENTS"
    assert settings.slack_approvers == {"U0ALICE": "alice", "U0BOB": "bob"}


def test_slack_is_off_by_default(default_chart: Rendered) -> None:
    for manifest in default_chart.of_kind("Deployment"):
        for container in containers(manifest):
            assert not [k for k in env_of(container) if k.startswith("DIAGNOSE_SLACK_")]


def test_the_mcp_server_is_not_run_by_default(default_chart: Rendered) -> None:
    assert full("mcp") not in default_chart.names("Deployment")
    assert full("mcp") not in default_chart.names("Service")


def test_the_mcp_server_serves_http_with_its_own_bearer_tokens(
    rendered_sets: dict[str, Rendered],
) -> None:
    """`diagnose mcp --http` behind a Service on its port; its tokens file is its Secret's."""
    chart = rendered_sets["slack-mcp"]
    deployment = chart.get("Deployment", full("mcp"))
    (mcp,) = containers(deployment)
    assert mcp["args"][:2] == ["mcp", "--http"] and "--port=8765" in mcp["args"]
    tokens = env_of(mcp)["DIAGNOSE_API_TOKENS_FILE"]["value"]
    (mount,) = [m for m in mcp["volumeMounts"] if m["name"] == "mcp-tokens"]
    assert tokens == f"{mount['mountPath']}/tokens"
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["mcp-tokens"]["secret"]["secretName"] == "diagnose-mcp"
    assert not [k for k in env_of(mcp) if k.startswith("DIAGNOSE_SLACK_")]
    service = chart.get("Service", full("mcp"))
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert all(labels[k] == v for k, v in service["spec"]["selector"].items())
    assert service["spec"]["ports"][0]["port"] == 8765


def test_the_mcp_pods_accept_only_their_port_from_where_the_api_is_reachable(
    rendered_sets: dict[str, Rendered],
) -> None:
    """The MCP server's NetworkPolicy selects its pods and admits its port from apiFrom only."""
    chart = render(
        {
            "mcp": {"enabled": True, "tokensSecret": {"name": "diagnose-mcp", "key": "tokens"}},
            "networkPolicy": {"apiFrom": [{"namespaceSelector": {"matchLabels": API_FROM}}]},
        }
    )
    labels = chart.get("Deployment", full("mcp"))["spec"]["template"]["metadata"]["labels"]
    policy = chart.get("NetworkPolicy", full("mcp"))["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert policy["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "mcp"
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    assert policy["ingress"] == [
        {
            "ports": [{"port": "mcp", "protocol": "TCP"}],
            "from": [{"namespaceSelector": {"matchLabels": API_FROM}}],
        }
    ]
    api = chart.get("NetworkPolicy", full("api"))["spec"]["ingress"][0]["from"]
    assert policy["ingress"][0]["from"] == api
    (port,) = containers(chart.get("Deployment", full("mcp")))[0]["ports"]
    assert port["name"] == "mcp"
    assert full("mcp") in rendered_sets["slack-mcp"].names("NetworkPolicy")


def test_no_mcp_network_policy_without_the_mcp_server(default_chart: Rendered) -> None:
    assert full("mcp") not in default_chart.names("NetworkPolicy")


def test_the_model_server_admits_the_mcp_pods_when_they_run() -> None:
    """Runs started through MCP ask the chart's model server too."""
    chart = render({"mcp": {"enabled": True}, "vllm": {"enabled": True}})
    (rule,) = chart.get("NetworkPolicy", full("vllm"))["spec"]["ingress"]
    (components,) = [
        e
        for e in rule["from"][0]["podSelector"]["matchExpressions"]
        if e["key"] == "app.kubernetes.io/component"
    ]
    assert components["values"] == ["api", "worker", "mcp"]
