"""One settings tree for the whole agent, read from ``DIAGNOSE_*`` environment variables.

This is the only module that reads the environment. Every field says its unit, its default and
why; ``Settings.from_env()`` turns a bad value into a :class:`ConfigurationError` that names the
variable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Generic, Self, TypeVar, overload

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from diagnose.domain import errors

PREFIX = "DIAGNOSE_"
T = TypeVar("T")


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "diagnose"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "diagnose"


class _Flat(Generic[T]):
    """A read-only flat name for a section's field: ``Settings.llm_model`` is ``llm.model``."""

    def __init__(self, section: str, field: str) -> None:
        self.section = section
        self.field = field

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> _Flat[T]: ...
    @overload
    def __get__(self, obj: object, owner: type[Any]) -> T: ...
    def __get__(self, obj: object | None, owner: type[Any]) -> T | _Flat[T]:
        if obj is None:
            return self
        value: T = getattr(getattr(obj, self.section), self.field)
        return value

    def __set__(self, obj: object, value: T) -> None:
        raise AttributeError(f"settings are frozen: use model_copy to change {self.field}")


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GatherSettings(BaseModel):
    """How much of the world one diagnosis looks at."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lookback_minutes: float = Field(60.0, gt=0, le=7 * 24 * 60)
    """Minutes of history before the trigger to read (baseline + onset). 60: long enough for a
    robust baseline, short enough to dodge last night's deploys."""

    after_minutes: float = Field(10.0, ge=0, le=24 * 60)
    """Minutes after the trigger to read when the data reaches that far (replays, labs)."""

    points_per_series: int = Field(720, ge=60, le=11000)
    """Target resolution: the query step is the window divided by this. 720 points = 5 s steps
    over an hour; Prometheus refuses more than 11,000."""

    max_series: int = Field(20000, ge=100)
    """Hard cap on series pulled for one diagnosis; the plan says what it dropped."""


class PrometheusSettings(_Section):
    """Where the metrics come from (``DIAGNOSE_PROMETHEUS_*``)."""

    url: str | None = None
    """``DIAGNOSE_PROMETHEUS_URL``: base URL of a Prometheus-compatible API. None: no metrics
    (the report says so)."""

    timeout_s: float = Field(10.0, gt=0, le=300)
    """``DIAGNOSE_PROMETHEUS_TIMEOUT_S``: per request, seconds."""


class KubernetesSettings(_Section):
    """The Kubernetes API, read and write credentials apart (``DIAGNOSE_KUBERNETES_*``)."""

    url: str | None = None
    """``DIAGNOSE_KUBERNETES_URL``: an API server URL to use without credentials (the lab).
    None: use kubeconfig or the in-cluster service account when ``enabled``."""

    context: str | None = None
    """``DIAGNOSE_KUBERNETES_CONTEXT``: the kubeconfig context to read; None: the current one."""

    enabled: bool = True
    """``DIAGNOSE_KUBERNETES_ENABLED``: read rollouts and events at all."""

    timeout_s: float = Field(10.0, gt=0, le=300)
    """``DIAGNOSE_KUBERNETES_TIMEOUT_S``: per request, seconds."""

    write_url: str | None = None
    """``DIAGNOSE_KUBERNETES_WRITE_URL``: an API server URL for writes without credentials (the
    lab). Otherwise writes use ``write_context``; never the read credentials."""

    write_context: str | None = None
    """``DIAGNOSE_KUBERNETES_WRITE_CONTEXT``: the kubeconfig context whose user has ``patch`` on
    deployments (docs/approval.md has the role). Needed for execution; also used for the dry
    runs shown before approval, which a read-only role is refused."""

    write_kubeconfig: Path | None = None
    """``DIAGNOSE_KUBERNETES_WRITE_KUBECONFIG``: the kubeconfig file holding that context, when
    it is not in ``$KUBECONFIG`` (keep write credentials in a file of their own)."""


class ApprovalSettings(_Section):
    """Which fixes are proposed, whether approved ones are carried out, how they are watched."""

    execute: bool = False
    """``DIAGNOSE_EXECUTE``: carry out approved Kubernetes catalogue fixes (rollback, scale,
    raise limits) with the write credentials, then watch their verification query. Off:
    every approved fix is handed to a human as a command. Database fixes are never executed."""

    fix_min_confidence: float = Field(0.05, ge=0, le=1)
    """``DIAGNOSE_FIX_MIN_CONFIDENCE``: hypotheses whose computed confidence is below this get
    no proposed fix (they are still listed). 0.05 keeps fixes off changes whose component
    shows no anomaly; 0 proposes a fix for every lead that has a catalogue action."""

    verify_watch_s: float = Field(300.0, gt=0, le=6 * 3600)
    """``DIAGNOSE_VERIFY_WATCH_S``: after applying a fix, seconds to watch its verification
    query before reporting "not recovered". 300: most rollouts settle within five minutes."""

    verify_interval_s: float = Field(15.0, gt=0, le=600)
    """``DIAGNOSE_VERIFY_INTERVAL_S``: seconds between two looks at the verification query
    (the usual Prometheus scrape interval)."""


class TracesSettings(_Section):
    """The trace back end: Tempo or Jaeger (``DIAGNOSE_TEMPO_URL``, ``DIAGNOSE_TRACES_*``)."""

    tempo_url: str | None = None
    """``DIAGNOSE_TEMPO_URL``: Grafana Tempo's query frontend (``http://tempo:3200``)."""

    jaeger_url: str | None = None
    """``DIAGNOSE_JAEGER_URL``: Jaeger's query service (``http://jaeger-query:16686``). Used
    when no Tempo URL is set. Neither: no traces (the report says so)."""

    tenant: str | None = None
    """``DIAGNOSE_TRACES_TENANT``: sent as ``X-Scope-OrgID`` to Tempo (``x-tenant`` to Jaeger)
    on multi-tenant set-ups."""

    token: str | None = None
    """``DIAGNOSE_TRACES_TOKEN``: sent as ``Authorization: Bearer`` to the trace back end."""

    timeout_s: float = Field(10.0, gt=0, le=300)
    """``DIAGNOSE_TRACES_TIMEOUT_S``: per request, seconds."""

    max_traces: int = Field(150, ge=1, le=5000)
    """``DIAGNOSE_TRACES_MAX_TRACES``: traces sampled per window (baseline and incident)."""

    max_services: int = Field(12, ge=0, le=1000)
    """``DIAGNOSE_TRACES_MAX_SERVICES``: services besides the alerted one whose traces are
    sampled too, in the order the back end lists them (0: the alerted service only). They share
    ``max_traces``; the report names how many listed services were left out."""

    stop_checks: int = Field(4, ge=0, le=50)
    """``DIAGNOSE_TRACES_STOP_CHECKS``: services whose stopped log statements are checked
    against the back end (their lines' traces read for the operation, its requests counted
    while they logged and since: ``docs/logs.md``); 0: none, the logs alone judge them."""


class LogsSettings(_Section):
    """Pod logs (docs/logs.md): through the Kubernetes API, or Loki when ``DIAGNOSE_LOKI_URL``
    is set; the bounds on what is read."""

    enabled: bool = True
    """``DIAGNOSE_LOGS_ENABLED``: read pod logs at all (false: the report says they were not)."""

    loki_url: str | None = None
    """``DIAGNOSE_LOKI_URL``: Loki's query frontend (``http://loki-gateway.logging``); unset:
    logs come from the Kubernetes API's ``pods/log``."""

    loki_tenant: str | None = None
    """``DIAGNOSE_LOKI_TENANT``: sent as ``X-Scope-OrgID`` on multi-tenant Loki."""

    loki_token: SecretStr | None = None
    """``DIAGNOSE_LOKI_TOKEN``: sent as ``Authorization: Bearer`` to Loki."""

    timeout_s: float = Field(10.0, gt=0, le=300)
    """``DIAGNOSE_LOGS_TIMEOUT_S``: per Loki request, seconds."""

    lines_per_pod: int = Field(2000, ge=10, le=100_000)
    """``DIAGNOSE_LOGS_LINES_PER_POD``: lines per pod and window (baseline, incident)."""

    bytes_per_pod: int = Field(1_000_000, ge=1000, le=100_000_000)
    """``DIAGNOSE_LOGS_BYTES_PER_POD``: bytes per pod and request (``limitBytes``)."""

    pods_per_service: int = Field(2, ge=1, le=50)
    """``DIAGNOSE_LOGS_PODS_PER_SERVICE``: pods read per workload (those that restarted first)."""

    pods: int = Field(60, ge=1, le=1000)
    """``DIAGNOSE_LOGS_PODS``: pod reads in all, the alerted service first."""

    total_bytes: int = Field(16_000_000, ge=1000, le=1_000_000_000)
    """``DIAGNOSE_LOGS_TOTAL_BYTES``: bytes read in all; pods past it are left out."""


class PostgresSettings(_Section):
    """The application database the read-only probes look at (``DIAGNOSE_POSTGRES_*``)."""

    url: str | None = None
    """``DIAGNOSE_POSTGRES_URL``: the application database to probe, read-only, as a libpq URI
    for the least-privilege role of ``deploy/sql/diagnose-role.sql``. None: no probes."""

    timeout_s: float = Field(10.0, gt=0, le=120)
    """``DIAGNOSE_POSTGRES_TIMEOUT_S``: per probe, seconds (the server gives up first)."""


class StorageSettings(_Section):
    """Where the agent keeps what it must remember: checkpoints, audit log, bundles, caches."""

    database_url: str | None = None
    """``DIAGNOSE_DATABASE_URL``: PostgreSQL DSN for checkpoints (runs survive restarts and
    move between replicas). None: SQLite in the state directory (one user, one machine)."""

    state_dir: Path = Field(default_factory=_default_state_dir)
    """``DIAGNOSE_STATE_DIR``: where runs, evidence bundles and the lab's state live.
    Default: ``$XDG_STATE_HOME/diagnose`` (``~/.local/state/diagnose``)."""

    cache_dir: Path = Field(default_factory=_default_cache_dir)
    """``DIAGNOSE_CACHE_DIR``: what can be rebuilt at will, such as the datasets that
    ``diagnose eval`` extracts from archives.
    Default: ``$XDG_CACHE_HOME/diagnose`` (``~/.cache/diagnose``)."""


class LLMSettings(_Section):
    """The language model: where it is, how long to wait, what one diagnosis may spend
    (``DIAGNOSE_LLM_*``)."""

    base_url: str | None = None
    """``DIAGNOSE_LLM_BASE_URL``: an OpenAI-compatible API including its ``/v1`` (vLLM:
    ``http://vllm:8000/v1``). None: no LLM; the deterministic diagnosis stands alone, labelled."""

    model: str = "MiniMaxAI/MiniMax-M2.7"
    """``DIAGNOSE_LLM_MODEL``: the model name the server knows (vLLM: its ``--served-model-name``,
    by default the Hugging Face id it serves)."""

    api_key: SecretStr | None = None
    """``DIAGNOSE_LLM_API_KEY``: sent as ``Authorization: Bearer``; vLLM checks it when started
    with ``--api-key``. Never logged or shown."""

    timeout_s: float = Field(120.0, gt=0, le=3600)
    """``DIAGNOSE_LLM_TIMEOUT_S``: seconds to wait for one answer. 120: a reasoning model thinks
    before it answers, and answers are not streamed."""

    connect_timeout_s: float = Field(5.0, gt=0, le=300)
    """``DIAGNOSE_LLM_CONNECT_TIMEOUT_S``: seconds to wait for the server to accept a connection."""

    retries: int = Field(2, ge=0, le=10)
    """``DIAGNOSE_LLM_RETRIES``: repeats of a request refused, or answered 429/5xx. A request that
    timed out is not repeated: it already cost a whole timeout."""

    digest_interleave: bool = False
    """``DIAGNOSE_LLM_DIGEST_INTERLEAVE``: order the digest's evidence round-robin across the
    candidates (each one's first piece, then each one's second, …) instead of all of the
    leader's first. When the prompt budget trims the digest, interleaving keeps evidence for
    the alternatives in front of the model; ``diagnose tune`` can try it."""

    max_steps: int = Field(8, ge=1, le=100)
    """``DIAGNOSE_LLM_MAX_STEPS``: chat requests in one diagnosis (tool turns, the answer and its
    one repair)."""

    max_tokens: int = Field(60_000, ge=1)
    """``DIAGNOSE_LLM_MAX_TOKENS``: prompt plus completion tokens in one diagnosis, as the server
    counts them."""

    max_seconds: float = Field(300.0, gt=0, le=3600)
    """``DIAGNOSE_LLM_MAX_SECONDS``: wall time for the LLM's part of one diagnosis."""

    max_completion_tokens: int = Field(4096, ge=16)
    """``DIAGNOSE_LLM_MAX_COMPLETION_TOKENS``: cap on one answer (thinking included)."""

    max_prompt_tokens: int = Field(16_000, ge=1)
    """``DIAGNOSE_LLM_MAX_PROMPT_TOKENS``: prompt tokens per diagnosis, summed over requests
    (each request re-sends the conversation); the digest takes at most 15% of it."""

    max_session_completion_tokens: int = Field(16_000, ge=1)
    """``DIAGNOSE_LLM_MAX_SESSION_COMPLETION_TOKENS``: completion tokens per diagnosis, summed."""

    temperature: float = Field(1.0, ge=0, le=2)
    """``DIAGNOSE_LLM_TEMPERATURE``: 1.0, as MiniMax recommends for M2.x."""

    top_p: float = Field(0.95, gt=0, le=1)
    """``DIAGNOSE_LLM_TOP_P``: 0.95, as MiniMax recommends for M2.x."""

    top_k: int | None = Field(40, ge=1)
    """``DIAGNOSE_LLM_TOP_K``: 40, as MiniMax recommends; sent as a top-level ``top_k`` (what the
    OpenAI SDK's ``extra_body`` does). None leaves it out, for servers that refuse unknown
    fields."""


class PagerDutySettings(_Section):
    """PagerDuty: the webhook's signing secret and the REST API (``DIAGNOSE_PAGERDUTY_*``)."""

    webhook_secret: SecretStr | None = None
    """``DIAGNOSE_PAGERDUTY_WEBHOOK_SECRET``: the signing secret of the PagerDuty V3 webhook
    subscription (several, comma-separated, while you rotate it). None: ``POST
    /webhooks/pagerduty`` answers 404, since an unsigned webhook must never start a run."""

    api_token: SecretStr | None = None
    """``DIAGNOSE_PAGERDUTY_API_TOKEN``: a REST API key, to read an incident's alerts and post
    the findings as a note. None: no enrichment and no write-back."""

    from_email: str | None = None
    """``DIAGNOSE_PAGERDUTY_FROM_EMAIL``: the PagerDuty user notes are posted as (the ``From``
    header PagerDuty requires on writes). None: no notes are posted."""

    user_id: str | None = None
    """``DIAGNOSE_PAGERDUTY_USER_ID``: that user's id (``P…``), so ``incident.annotated``
    events caused by our own notes are recognised even if someone edits the marker away."""

    api_url: str = "https://api.pagerduty.com"
    """``DIAGNOSE_PAGERDUTY_API_URL``: the REST API's base URL (EU accounts use another)."""

    timeout_s: float = Field(10.0, gt=0, le=120)
    """``DIAGNOSE_PAGERDUTY_TIMEOUT_S``: per request, seconds."""


class ServerSettings(_Section):
    """The HTTP service: who may call it, what it accepts, where people reach it."""

    alertmanager_token: SecretStr | None = None
    """``DIAGNOSE_ALERTMANAGER_TOKEN``: the bearer token Alertmanager sends
    (``http_config.authorization``). None: ``POST /webhooks/alertmanager`` answers 404."""

    api_tokens: SecretStr | None = None
    """``DIAGNOSE_API_TOKENS``: who may use the approval API, as ``user:token`` pairs separated
    by commas (``alice:s3cret,bob:0ther``). The approver recorded is the token's user."""

    api_tokens_file: Path | None = None
    """``DIAGNOSE_API_TOKENS_FILE``: the same pairs, one ``user:token`` per line (``#``
    comments allowed); read at start-up, so secrets stay out of the environment."""

    public_url: str | None = None
    """``DIAGNOSE_PUBLIC_URL``: where people reach this service (``https://diagnose.example``);
    notes link to ``{public_url}/api/v1/runs/RUN_ID``. None: notes name the run id only."""

    webhook_max_bytes: int = Field(262_144, ge=1024, le=16 * 1024 * 1024)
    """``DIAGNOSE_WEBHOOK_MAX_BYTES``: larger webhook bodies are refused with 413. 256 KiB:
    PagerDuty drops every webhook above that size, so nothing genuine is bigger."""


class SlackSettings(_Section):
    """Slack (docs/slack.md): findings in the incident's thread, approvals in a modal
    (``DIAGNOSE_SLACK_*``). Tokens and secrets are never logged or shown."""

    enabled: bool = True
    """``DIAGNOSE_SLACK_ENABLED``: post findings and answer interactions when the bot token,
    signing secret and channel are set. False switches Slack off without removing them."""

    bot_token: SecretStr | None = None
    """``DIAGNOSE_SLACK_BOT_TOKEN``: the app's bot token (``xoxb-…``, scope ``chat:write``).
    None: nothing is posted."""

    signing_secret: SecretStr | None = None
    """``DIAGNOSE_SLACK_SIGNING_SECRET``: the app's signing secret; every request to ``POST
    /slack/interactions`` must carry its signature. None: that route answers 404."""

    channel: str | None = None
    """``DIAGNOSE_SLACK_CHANNEL``: the channel id (``C0…``) the findings go to, one thread per
    incident."""

    approvers: dict[str, str] = Field(default_factory=dict)
    """``DIAGNOSE_SLACK_APPROVERS``: Slack user id to approver name, ``U123=alice,U456=bob`` or
    a JSON object. Only these users may approve or reject in Slack; the name is the approver
    recorded, so the two-person rule counts them as it counts any approver."""

    api_url: str = "https://slack.com/api/"
    """``DIAGNOSE_SLACK_API_URL``: the Web API's base URL (a test server, or a proxy)."""

    timeout_s: float = Field(10.0, gt=0, le=120)
    """``DIAGNOSE_SLACK_TIMEOUT_S``: per request, seconds."""

    rate_limit_retries: int = Field(2, ge=0, le=10)
    """``DIAGNOSE_SLACK_RATE_LIMIT_RETRIES``: repeats of a request Slack answered 429, each
    after the ``Retry-After`` it asked for."""

    @field_validator("approvers", mode="before")
    @classmethod
    def _approvers(cls, value: object) -> object:
        """``U1=alice,U2=bob`` or ``{"U1": "alice"}`` from the environment; a mapping as given."""
        if isinstance(value, str) and value.lstrip().startswith("{"):
            return json.loads(value)
        return _pairs(value)

    @property
    def active(self) -> bool:
        """Whether findings are posted: enabled, with a bot token and a channel."""
        return self.enabled and self.bot_token is not None and bool(self.channel)


class IntakeSettings(_Section):
    """How an alert names what to diagnose: the service our metrics use, its namespace."""

    service_map: dict[str, str] = Field(default_factory=dict)
    """``DIAGNOSE_SERVICE_MAP``: PagerDuty service name or id to the service name our metrics
    use, ``PagerDuty name=checkout,PF9KMXH=cart``. Unmapped: alert labels, then the PagerDuty
    service name as written."""

    namespace_map: dict[str, str] = Field(default_factory=dict)
    """``DIAGNOSE_NAMESPACE_MAP``: service to Kubernetes namespace, ``checkout=shop``. Used when
    the alert's labels name no namespace."""

    default_namespace: str = ""
    """``DIAGNOSE_DEFAULT_NAMESPACE``: the namespace when neither labels nor the map name one."""

    @field_validator("service_map", "namespace_map", mode="before")
    @classmethod
    def _pairs(cls, value: object) -> object:
        """``a=b,c=d`` from the environment; a mapping as given."""
        return _pairs(value)


class CodeSettings(_Section):
    """The applications' repositories, read from local clones (docs/changes.md)."""

    repositories: dict[str, Path] = Field(default_factory=dict)
    """``DIAGNOSE_REPOSITORIES``: repository URL to the path of a local clone,
    ``https://git.example/shop/orders-api=/var/lib/git/orders-api,…``; any spelling of the URL
    (https, ssh, ``git@host:path``) finds it. Empty: no commits are read (a rollout's range is a
    note). The chart's ``git-sync`` sidecar keeps such a clone fresh in a cluster."""

    max_ranges: int = Field(3, ge=0, le=20)
    """``DIAGNOSE_CODE_MAX_RANGES``: rollouts in the window whose commits are read, newest
    first. 3: the suspects of an incident are its last few rollouts."""

    @field_validator("repositories", mode="before")
    @classmethod
    def _pairs(cls, value: object) -> object:
        """``url=path,url=path`` from the environment; a mapping as given."""
        return _pairs(value)


class QueueSettings(_Section):
    """The service's job queue and its workers."""

    max_concurrent_runs: int = Field(4, ge=1, le=256)
    """``DIAGNOSE_MAX_CONCURRENT_RUNS``: diagnoses running at once across every worker. Each
    one loads Prometheus and the Kubernetes API; an alert storm must not become a query storm."""

    job_lease_s: float = Field(60.0, ge=1, le=3600)
    """``DIAGNOSE_JOB_LEASE_S``: how long a worker owns a job without renewing (it renews every
    third of this). A worker that dies loses its jobs to another after at most this long."""

    job_max_attempts: int = Field(3, ge=1, le=20)
    """``DIAGNOSE_JOB_MAX_ATTEMPTS``: a job that failed or lost its worker this often is marked
    failed instead of being tried again (a poison incident must not take every worker down)."""

    worker_heartbeat_file: Path | None = None
    """``DIAGNOSE_WORKER_HEARTBEAT_FILE``: the file ``diagnose worker`` rewrites while all its
    job threads are alive and coming back to the queue; ``diagnose worker --check-heartbeat``
    reads it (a liveness probe). None: ``worker.heartbeat`` in the state directory."""


class SloSettings(_Section):
    """The objectives postmortem drafts measure the error budget against (``DIAGNOSE_SLO_*``)."""

    target: float | None = Field(None, gt=0, lt=1)
    """``DIAGNOSE_SLO_TARGET``: the request-success objective postmortem drafts measure the
    error budget against, as a ratio (``0.999`` for 99.9%), for services without an entry in
    ``targets`` or a Sloth objective in the evidence. None: the budget stays unknown."""

    targets: dict[str, float] = Field(default_factory=dict)
    """``DIAGNOSE_SLO_TARGETS``: per-service objectives, ``checkout=0.999,cart=0.995``; they
    win over a Sloth objective in the evidence and over ``target``."""

    window_days: float = Field(30.0, gt=0, le=366)
    """``DIAGNOSE_SLO_WINDOW_DAYS``: the objectives' window in days (the budget's length)."""

    @field_validator("target", mode="before")
    @classmethod
    def _ratio(cls, value: object) -> object:
        """A percentage (99.9) is a common slip: say what to write instead."""
        return _objective(value)

    @field_validator("targets", mode="before")
    @classmethod
    def _objectives(cls, value: object) -> object:
        """``svc=0.999,…`` from the environment; each value a ratio between 0 and 1."""
        pairs = _pairs(value)
        if not isinstance(pairs, Mapping):
            return pairs
        return {str(k): _objective(v, service=str(k)) for k, v in pairs.items()}


class TelemetrySettings(_Section):
    """The agent's own spans and logs."""

    otlp_endpoint: str | None = None
    """``DIAGNOSE_OTLP_ENDPOINT`` (or the standard ``OTEL_EXPORTER_OTLP_ENDPOINT``): base URL of
    an OTLP/HTTP receiver (``http://otel-collector:4318``); the agent's own spans go to
    ``/v1/traces`` under it (docs/service.md, Telemetry). Unset: no spans are recorded."""

    log_json: bool = False
    """``DIAGNOSE_LOG_JSON``: write the agent's log records to stderr as JSON lines carrying the
    current ``trace_id``, ``span_id`` and ``run_id``. Off: the usual progress lines only."""


class Settings(BaseModel):
    """Everything the agent can be configured with, one small section per concern. Each
    connector is given its own section only (``settings.llm``, ``settings.prometheus``, …).

    The environment's flat names (``DIAGNOSE_LLM_MODEL``) are also read-only attributes
    (``settings.llm_model`` is ``settings.llm.model``), accepted by the constructor, by
    :meth:`from_env`'s overrides and by :meth:`model_copy`'s ``update``; the table of them
    below is the one list of ``DIAGNOSE_*`` names.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    prometheus: PrometheusSettings = Field(
        default_factory=lambda: PrometheusSettings.model_validate({})
    )
    kubernetes: KubernetesSettings = Field(
        default_factory=lambda: KubernetesSettings.model_validate({})
    )
    approval: ApprovalSettings = Field(default_factory=lambda: ApprovalSettings.model_validate({}))
    traces: TracesSettings = Field(default_factory=lambda: TracesSettings.model_validate({}))
    postgres: PostgresSettings = Field(default_factory=lambda: PostgresSettings.model_validate({}))
    logs: LogsSettings = Field(default_factory=lambda: LogsSettings.model_validate({}))
    storage: StorageSettings = Field(default_factory=lambda: StorageSettings.model_validate({}))
    gather: GatherSettings = Field(default_factory=lambda: GatherSettings.model_validate({}))
    """``DIAGNOSE_GATHER_LOOKBACK_MINUTES`` and friends."""
    llm: LLMSettings = Field(default_factory=lambda: LLMSettings.model_validate({}))
    pagerduty: PagerDutySettings = Field(
        default_factory=lambda: PagerDutySettings.model_validate({})
    )
    server: ServerSettings = Field(default_factory=lambda: ServerSettings.model_validate({}))
    intake: IntakeSettings = Field(default_factory=lambda: IntakeSettings.model_validate({}))
    slack: SlackSettings = Field(default_factory=lambda: SlackSettings.model_validate({}))
    queue: QueueSettings = Field(default_factory=lambda: QueueSettings.model_validate({}))
    code: CodeSettings = Field(default_factory=lambda: CodeSettings.model_validate({}))
    slo: SloSettings = Field(default_factory=lambda: SloSettings.model_validate({}))
    telemetry: TelemetrySettings = Field(
        default_factory=lambda: TelemetrySettings.model_validate({})
    )

    playbooks: list[Path] = Field(default_factory=list)
    """``DIAGNOSE_PLAYBOOKS``: playbook files or folders, separated by ``:`` (docs/playbooks.md).
    Empty: the playbooks shipped in ``playbooks/``. A file that does not validate stops the run
    with its file and line."""

    # --- the environment's names: DIAGNOSE_ + the attribute's name in capitals ---------------

    prometheus_url: ClassVar[_Flat[str | None]] = _Flat("prometheus", "url")
    prometheus_timeout_s: ClassVar[_Flat[float]] = _Flat("prometheus", "timeout_s")
    kubernetes_url: ClassVar[_Flat[str | None]] = _Flat("kubernetes", "url")
    kubernetes_context: ClassVar[_Flat[str | None]] = _Flat("kubernetes", "context")
    kubernetes_enabled: ClassVar[_Flat[bool]] = _Flat("kubernetes", "enabled")
    kubernetes_timeout_s: ClassVar[_Flat[float]] = _Flat("kubernetes", "timeout_s")
    kubernetes_write_url: ClassVar[_Flat[str | None]] = _Flat("kubernetes", "write_url")
    kubernetes_write_context: ClassVar[_Flat[str | None]] = _Flat("kubernetes", "write_context")
    kubernetes_write_kubeconfig: ClassVar[_Flat[Path | None]] = _Flat(
        "kubernetes", "write_kubeconfig"
    )
    execute: ClassVar[_Flat[bool]] = _Flat("approval", "execute")
    fix_min_confidence: ClassVar[_Flat[float]] = _Flat("approval", "fix_min_confidence")
    verify_watch_s: ClassVar[_Flat[float]] = _Flat("approval", "verify_watch_s")
    verify_interval_s: ClassVar[_Flat[float]] = _Flat("approval", "verify_interval_s")
    tempo_url: ClassVar[_Flat[str | None]] = _Flat("traces", "tempo_url")
    jaeger_url: ClassVar[_Flat[str | None]] = _Flat("traces", "jaeger_url")
    traces_tenant: ClassVar[_Flat[str | None]] = _Flat("traces", "tenant")
    traces_token: ClassVar[_Flat[str | None]] = _Flat("traces", "token")
    traces_timeout_s: ClassVar[_Flat[float]] = _Flat("traces", "timeout_s")
    traces_max_traces: ClassVar[_Flat[int]] = _Flat("traces", "max_traces")
    traces_max_services: ClassVar[_Flat[int]] = _Flat("traces", "max_services")
    traces_stop_checks: ClassVar[_Flat[int]] = _Flat("traces", "stop_checks")
    logs_enabled: ClassVar[_Flat[bool]] = _Flat("logs", "enabled")
    loki_url: ClassVar[_Flat[str | None]] = _Flat("logs", "loki_url")
    loki_tenant: ClassVar[_Flat[str | None]] = _Flat("logs", "loki_tenant")
    loki_token: ClassVar[_Flat[SecretStr | None]] = _Flat("logs", "loki_token")
    logs_timeout_s: ClassVar[_Flat[float]] = _Flat("logs", "timeout_s")
    logs_lines_per_pod: ClassVar[_Flat[int]] = _Flat("logs", "lines_per_pod")
    logs_bytes_per_pod: ClassVar[_Flat[int]] = _Flat("logs", "bytes_per_pod")
    logs_pods_per_service: ClassVar[_Flat[int]] = _Flat("logs", "pods_per_service")
    logs_pods: ClassVar[_Flat[int]] = _Flat("logs", "pods")
    logs_total_bytes: ClassVar[_Flat[int]] = _Flat("logs", "total_bytes")
    postgres_url: ClassVar[_Flat[str | None]] = _Flat("postgres", "url")
    postgres_timeout_s: ClassVar[_Flat[float]] = _Flat("postgres", "timeout_s")
    database_url: ClassVar[_Flat[str | None]] = _Flat("storage", "database_url")
    state_dir: ClassVar[_Flat[Path]] = _Flat("storage", "state_dir")
    cache_dir: ClassVar[_Flat[Path]] = _Flat("storage", "cache_dir")
    llm_base_url: ClassVar[_Flat[str | None]] = _Flat("llm", "base_url")
    llm_model: ClassVar[_Flat[str]] = _Flat("llm", "model")
    llm_api_key: ClassVar[_Flat[SecretStr | None]] = _Flat("llm", "api_key")
    llm_timeout_s: ClassVar[_Flat[float]] = _Flat("llm", "timeout_s")
    llm_connect_timeout_s: ClassVar[_Flat[float]] = _Flat("llm", "connect_timeout_s")
    llm_retries: ClassVar[_Flat[int]] = _Flat("llm", "retries")
    llm_digest_interleave: ClassVar[_Flat[bool]] = _Flat("llm", "digest_interleave")
    llm_max_steps: ClassVar[_Flat[int]] = _Flat("llm", "max_steps")
    llm_max_tokens: ClassVar[_Flat[int]] = _Flat("llm", "max_tokens")
    llm_max_seconds: ClassVar[_Flat[float]] = _Flat("llm", "max_seconds")
    llm_max_completion_tokens: ClassVar[_Flat[int]] = _Flat("llm", "max_completion_tokens")
    llm_max_prompt_tokens: ClassVar[_Flat[int]] = _Flat("llm", "max_prompt_tokens")
    llm_max_session_completion_tokens: ClassVar[_Flat[int]] = _Flat(
        "llm", "max_session_completion_tokens"
    )
    llm_temperature: ClassVar[_Flat[float]] = _Flat("llm", "temperature")
    llm_top_p: ClassVar[_Flat[float]] = _Flat("llm", "top_p")
    llm_top_k: ClassVar[_Flat[int | None]] = _Flat("llm", "top_k")
    pagerduty_webhook_secret: ClassVar[_Flat[SecretStr | None]] = _Flat(
        "pagerduty", "webhook_secret"
    )
    pagerduty_api_token: ClassVar[_Flat[SecretStr | None]] = _Flat("pagerduty", "api_token")
    pagerduty_from_email: ClassVar[_Flat[str | None]] = _Flat("pagerduty", "from_email")
    pagerduty_user_id: ClassVar[_Flat[str | None]] = _Flat("pagerduty", "user_id")
    pagerduty_api_url: ClassVar[_Flat[str]] = _Flat("pagerduty", "api_url")
    pagerduty_timeout_s: ClassVar[_Flat[float]] = _Flat("pagerduty", "timeout_s")
    alertmanager_token: ClassVar[_Flat[SecretStr | None]] = _Flat("server", "alertmanager_token")
    api_tokens: ClassVar[_Flat[SecretStr | None]] = _Flat("server", "api_tokens")
    api_tokens_file: ClassVar[_Flat[Path | None]] = _Flat("server", "api_tokens_file")
    public_url: ClassVar[_Flat[str | None]] = _Flat("server", "public_url")
    webhook_max_bytes: ClassVar[_Flat[int]] = _Flat("server", "webhook_max_bytes")
    slack_enabled: ClassVar[_Flat[bool]] = _Flat("slack", "enabled")
    slack_bot_token: ClassVar[_Flat[SecretStr | None]] = _Flat("slack", "bot_token")
    slack_signing_secret: ClassVar[_Flat[SecretStr | None]] = _Flat("slack", "signing_secret")
    slack_channel: ClassVar[_Flat[str | None]] = _Flat("slack", "channel")
    slack_approvers: ClassVar[_Flat[dict[str, str]]] = _Flat("slack", "approvers")
    slack_api_url: ClassVar[_Flat[str]] = _Flat("slack", "api_url")
    slack_timeout_s: ClassVar[_Flat[float]] = _Flat("slack", "timeout_s")
    slack_rate_limit_retries: ClassVar[_Flat[int]] = _Flat("slack", "rate_limit_retries")
    service_map: ClassVar[_Flat[dict[str, str]]] = _Flat("intake", "service_map")
    namespace_map: ClassVar[_Flat[dict[str, str]]] = _Flat("intake", "namespace_map")
    default_namespace: ClassVar[_Flat[str]] = _Flat("intake", "default_namespace")
    repositories: ClassVar[_Flat[dict[str, Path]]] = _Flat("code", "repositories")
    code_max_ranges: ClassVar[_Flat[int]] = _Flat("code", "max_ranges")
    max_concurrent_runs: ClassVar[_Flat[int]] = _Flat("queue", "max_concurrent_runs")
    job_lease_s: ClassVar[_Flat[float]] = _Flat("queue", "job_lease_s")
    job_max_attempts: ClassVar[_Flat[int]] = _Flat("queue", "job_max_attempts")
    worker_heartbeat_file: ClassVar[_Flat[Path | None]] = _Flat("queue", "worker_heartbeat_file")
    slo_target: ClassVar[_Flat[float | None]] = _Flat("slo", "target")
    slo_targets: ClassVar[_Flat[dict[str, float]]] = _Flat("slo", "targets")
    slo_window_days: ClassVar[_Flat[float]] = _Flat("slo", "window_days")
    otlp_endpoint: ClassVar[_Flat[str | None]] = _Flat("telemetry", "otlp_endpoint")
    log_json: ClassVar[_Flat[bool]] = _Flat("telemetry", "log_json")

    @field_validator("playbooks", mode="before")
    @classmethod
    def _paths(cls, value: object) -> object:
        """``a:b`` from the environment; a list as given."""
        if isinstance(value, str):
            return [item for item in value.split(":") if item.strip()]
        return value

    @model_validator(mode="before")
    @classmethod
    def _nest(cls, data: object) -> object:
        """Flat names (``llm_model``, as the environment spells them) go to their section."""
        if not isinstance(data, Mapping):
            return data
        nested, updates = _split(data)
        for section, fields in updates.items():
            given = nested.get(section)
            base = given.model_dump() if isinstance(given, BaseModel) else dict(given or {})
            nested[section] = {**base, **fields}
        return nested

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy with ``update`` applied (unvalidated, as pydantic's); a flat name
        (``prometheus_url``) updates its section."""
        if update:
            nested, updates = _split(update)
            for section, fields in updates.items():
                given = nested.get(section, getattr(self, section))
                nested[section] = given.model_copy(update=fields)
            update = nested
        return super().model_copy(update=update, deep=deep)

    @property
    def heartbeat_path(self) -> Path:
        return self.queue.worker_heartbeat_file or self.storage.state_dir / "worker.heartbeat"

    @property
    def checkpoint_path(self) -> Path:
        return self.storage.state_dir / "runs.sqlite"

    @property
    def bundles_dir(self) -> Path:
        return self.storage.state_dir / "bundles"

    @property
    def lab_dir(self) -> Path:
        return self.storage.state_dir / "lab"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Read ``DIAGNOSE_*`` variables (and explicit overrides, which win)."""
        source = os.environ if env is None else env
        values: dict[str, object] = {}
        gather: dict[str, object] = {}
        for key, value in source.items():
            if not key.startswith(PREFIX) or value == "":
                continue
            name = key[len(PREFIX) :].lower()
            if name.startswith("gather_"):
                gather[name[len("gather_") :]] = value
            elif name in _FLAT or name == "playbooks":
                values[name] = value
        if gather:
            values["gather"] = gather
        if "otlp_endpoint" not in values and source.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            values["otlp_endpoint"] = source["OTEL_EXPORTER_OTLP_ENDPOINT"]
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            raise errors.ConfigurationError(_explain(exc)) from exc


_FLAT: dict[str, tuple[str, str]] = {
    name: (alias.section, alias.field)
    for name, alias in vars(Settings).items()
    if isinstance(alias, _Flat)
}
"""Each flat name (``llm_model``) and the section field it names (``("llm", "model")``)."""
_ENV_NAME = {place: name for name, place in _FLAT.items()}


def variables() -> list[str]:
    """Every ``DIAGNOSE_*`` variable the agent reads."""
    names = [*_FLAT, "playbooks", *(f"gather_{f}" for f in GatherSettings.model_fields)]
    return sorted(f"{PREFIX}{name.upper()}" for name in names)


def _split(data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """``data`` without its flat names, and the fields those name, by section."""
    nested = {k: v for k, v in data.items() if k not in _FLAT}
    updates: dict[str, dict[str, Any]] = {}
    for name, value in data.items():
        if name in _FLAT:
            section, field = _FLAT[name]
            updates.setdefault(section, {})[field] = value
    return nested, updates


def _pairs(value: object) -> object:
    """``a=b,c=d`` from the environment; a mapping as given."""
    if not isinstance(value, str):
        return value
    pairs = [item.split("=", 1) for item in value.split(",") if item.strip()]
    if any(len(pair) != 2 for pair in pairs):
        raise ValueError("expected key=value pairs separated by commas")
    return {key.strip(): val.strip() for key, val in pairs}


def _objective(value: object, *, service: str | None = None) -> object:
    """An SLO objective as a ratio strictly between 0 and 1, or a message saying how."""
    if value is None or isinstance(value, bool):
        return value
    try:
        ratio = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        if service is None:
            return value  # pydantic names the type error
        raise ValueError(f"the SLO objective for {service} is not a number: {value!r}") from None
    if not 0.0 < ratio < 1.0:
        whose = f" for {service}" if service else ""
        hint = f" ({ratio / 100:g} for {ratio:g}%)" if 1.0 < ratio < 100.0 else ""
        raise ValueError(
            f"an SLO objective{whose} is a ratio strictly between 0 and 1{hint}, not {value}"
        )
    return ratio


def _explain(exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        if loc[:2] in _ENV_NAME:
            loc = (_ENV_NAME[(loc[0], loc[1])], *loc[2:])
        path = "_".join(loc).upper()
        lines.append(f"{PREFIX}{path}: {error['msg']}")
    return "invalid settings: " + "; ".join(lines)
