"""The optional vLLM serving MiniMax M2.7: the flags of vLLM's MiniMax-M2 recipe, the GPUs they
imply, the weights, the probes, and the agent pointed at it."""

from __future__ import annotations

from typing import Any

from tests.deploy.conftest import Rendered, containers, env_of, full, render

RECIPE_FLAGS = (
    "--enable-auto-tool-choice",
    "--tool-call-parser=minimax_m2",
    "--trust-remote-code",
)


def _vllm(rendered: Rendered) -> dict[str, Any]:
    return rendered.get("Deployment", full("vllm"))


def _args(rendered: Rendered) -> list[str]:
    return list(containers(_vllm(rendered))[0]["args"])


def test_vllm_is_off_by_default(rendered_sets: dict[str, Rendered]) -> None:
    default = rendered_sets["default"]
    assert full("vllm") not in default.names("Deployment")
    assert default.of_kind("PersistentVolumeClaim") == []
    assert "DIAGNOSE_LLM_BASE_URL" not in env_of(
        containers(default.get("Deployment", full("api")))[0]
    )


def test_vllm_serves_minimax_m2_7_with_the_recipe_flags(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["vllm"]
    container = containers(_vllm(rendered))[0]
    assert container["command"] == ["vllm", "serve"]
    args = _args(rendered)
    assert args[0] == "MiniMaxAI/MiniMax-M2.7"
    for flag in (
        *RECIPE_FLAGS,
        "--tensor-parallel-size=4",
        "--reasoning-parser=minimax_m2",
        "--max-model-len=131072",
        "--served-model-name=MiniMaxAI/MiniMax-M2.7",
    ):
        assert flag in args
    assert "--enable-expert-parallel" not in args
    assert container["image"] == "vllm/vllm-openai:v0.22.1"


def test_one_gpu_per_tensor_parallel_rank(rendered_sets: dict[str, Rendered]) -> None:
    for name, gpus in (("vllm", 4), ("vllm-image-weights", 8)):
        resources = containers(_vllm(rendered_sets[name]))[0]["resources"]
        assert resources["requests"]["nvidia.com/gpu"] == gpus
        assert resources["limits"]["nvidia.com/gpu"] == gpus
        assert f"--tensor-parallel-size={gpus}" in _args(rendered_sets[name])
    assert "--enable-expert-parallel" in _args(rendered_sets["vllm-image-weights"])
    assert "--reasoning-parser=minimax_m2_append_think" in _args(
        rendered_sets["vllm-image-weights"]
    )


def test_ready_only_when_health_answers(rendered_sets: dict[str, Rendered]) -> None:
    container = containers(_vllm(rendered_sets["vllm"]))[0]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/health", "port": "http"}
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 3600, "weights load slowly"
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]


def test_the_agent_talks_to_the_releases_vllm_by_its_service(
    rendered_sets: dict[str, Rendered],
) -> None:
    rendered = rendered_sets["vllm"]
    service = rendered.get("Service", full("vllm"))
    port = service["spec"]["ports"][0]
    assert port["targetPort"] == "http"
    vllm_labels = _vllm(rendered)["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= vllm_labels.items()
    served = next(a for a in _args(rendered) if a.startswith("--served-model-name="))
    for component in ("api", "worker"):
        env = env_of(containers(rendered.get("Deployment", full(component)))[0])
        assert env["DIAGNOSE_LLM_BASE_URL"]["value"] == f"http://{full('vllm')}:{port['port']}/v1"
        assert env["DIAGNOSE_LLM_MODEL"]["value"] == served.split("=", 1)[1]
        assert env["DIAGNOSE_LLM_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "diagnose-llm"
    vllm_env = env_of(containers(_vllm(rendered))[0])
    assert vllm_env["VLLM_API_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "diagnose-llm",
        "key": "api-key",
    }


def test_weights_are_downloaded_once_into_a_kept_volume(rendered_sets: dict[str, Rendered]) -> None:
    rendered = rendered_sets["vllm"]
    claim = rendered.get("PersistentVolumeClaim", full("vllm-weights"))
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert claim["spec"]["resources"]["requests"]["storage"] == "500Gi"
    deployment = _vllm(rendered)
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    spec = deployment["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["weights"]["persistentVolumeClaim"]["claimName"] == full("vllm-weights")
    assert volumes["shm"]["emptyDir"]["medium"] == "Memory"
    env = env_of(spec["containers"][0])
    assert env["HF_HOME"]["value"].startswith("/models/")
    assert "HF_HUB_OFFLINE" not in env
    assert "--download-dir=/models/huggingface/hub" in spec["containers"][0]["args"]


def test_an_existing_claim_is_used_as_is_and_offline() -> None:
    rendered = render(
        {
            "vllm": {
                "enabled": True,
                "weights": {"existingClaim": "minimax-weights", "offline": True},
            }
        }
    )
    assert rendered.of_kind("PersistentVolumeClaim") == []
    spec = _vllm(rendered)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["weights"]["persistentVolumeClaim"]["claimName"] == "minimax-weights"
    assert env_of(spec["containers"][0])["HF_HUB_OFFLINE"]["value"] == "1"


def test_weights_from_an_image_volume_are_read_only_and_never_downloaded(
    rendered_sets: dict[str, Rendered],
) -> None:
    rendered = rendered_sets["vllm-image-weights"]
    assert rendered.of_kind("PersistentVolumeClaim") == []
    spec = _vllm(rendered)["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert (
        volumes["weights"]["image"]["reference"]
        == "registry.example.com/models/minimax-m2.7:2026-04"
    )
    container = spec["containers"][0]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "weights")
    assert mount["readOnly"] is True
    assert container["args"][0] == f"{mount['mountPath']}/model"
    assert "--served-model-name=MiniMaxAI/MiniMax-M2.7" in container["args"]
    assert env_of(container)["HF_HUB_OFFLINE"]["value"] == "1"


def test_the_model_server_runs_unprivileged_with_writable_caches_only(
    rendered_sets: dict[str, Rendered],
) -> None:
    spec = _vllm(rendered_sets["vllm"])["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    context = spec["containers"][0]["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    assert context["readOnlyRootFilesystem"] is True
    env = env_of(spec["containers"][0])
    mounts = {m["mountPath"] for m in spec["containers"][0]["volumeMounts"]}
    for variable in ("HOME", "XDG_CACHE_HOME", "VLLM_CACHE_ROOT", "TRITON_CACHE_DIR", "HF_HOME"):
        path = env[variable]["value"]
        assert any(path == m or path.startswith(m + "/") for m in mounts), f"{variable}={path}"


def test_only_the_agent_may_call_the_model_server(rendered_sets: dict[str, Rendered]) -> None:
    policy = rendered_sets["vllm"].get("NetworkPolicy", full("vllm"))["spec"]
    assert policy["policyTypes"] == ["Ingress"]
    (rule,) = policy["ingress"]
    expressions = {
        e["key"]: e["values"] for e in rule["from"][0]["podSelector"]["matchExpressions"]
    }
    assert expressions == {
        "app.kubernetes.io/instance": ["diag"],
        "app.kubernetes.io/component": ["api", "worker"],
    }
