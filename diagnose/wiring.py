"""The composition root: settings → connectors → graph.

The only place that knows both the graph and the concrete connectors, and the only importer
of ``connectors`` (a contract). Entry points (CLI, server, lab) ask it for an :class:`Agent`,
and for whatever else they open (the job queue, the PagerDuty client, the audit log, a saved
bundle); everything below sees ports only.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from connectors import (
    audit,
    bundle,
    kubernetes,
    llm,
    logs,
    pagerduty,
    postgres,
    prometheus,
    queue,
    repository,
    slack,
    traces,
)
from connectors import memory as memory_store
from diagnose import playbook, telemetry
from diagnose import settings as config
from diagnose.domain import errors, models, reasoning
from diagnose.settings import Settings
from graphs import checkpoints, runner
from graphs.state import Context, ExecutionPolicy, GatherPolicy
from sandbox import catalogue, probing


@contextmanager
def open_checkpointer(settings: Settings) -> Iterator[Any]:
    """SQLite in the state directory, or PostgreSQL when ``database_url`` is set."""
    if settings.database_url:
        with postgres.checkpoint_connection(settings.database_url) as conn:
            with postgres.schema_lock(conn, store="checkpoints"):
                saver = checkpoints.postgres_saver(conn)
            yield saver
        return
    with checkpoints.sqlite_saver(settings.checkpoint_path) as saver:
        yield saver


def make_context(settings: Settings, *, progress: Callable[[str], None]) -> Context:
    """Build the ports one run uses from the settings."""
    metrics = prometheus.PrometheusConnector.from_settings(
        settings.prometheus, max_series=settings.gather.max_series
    )
    cluster = None
    if settings.kubernetes.url:
        cluster = kubernetes.KubernetesConnector(
            host=settings.kubernetes.url, timeout_s=settings.kubernetes.timeout_s
        )
    elif settings.kubernetes.enabled:
        cluster = _cluster_from_environment(settings.kubernetes, progress=progress)
    policy = GatherPolicy(
        trace_sample=settings.traces.max_traces,
        trace_services=settings.traces.max_services,
        stop_checks=settings.traces.stop_checks,
        lookback_s=settings.gather.lookback_minutes * 60,
        after_s=settings.gather.after_minutes * 60,
        points_per_series=settings.gather.points_per_series,
        max_series=settings.gather.max_series,
        code_ranges=settings.code.max_ranges,
    )
    store = bundle.FileEvidenceStore(settings.bundles_dir)
    return Context(
        playbooks=tuple(load_playbooks(settings)),
        store=store,
        metrics=metrics,
        cluster=cluster,
        traces=_trace_source(settings.traces),
        logs=_log_source(settings.logs, cluster=cluster),
        repositories=(
            repository.LocalRepositories.of(settings.code.repositories)
            if settings.code.repositories
            else None
        ),
        database=postgres.PostgresProbes.from_settings(
            settings.postgres, sandbox=probing.Sandbox()
        ),
        database_name=postgres.database_of(settings.postgres.url) if settings.postgres.url else "",
        reasoner=llm.OpenAIReasoner.from_settings(settings.llm),
        budget=llm.budget_from_settings(settings.llm),
        policy=policy,
        progress=progress,
        dry_runner=_writer(settings.kubernetes, dry_run_only=True, read_path=cluster is not None),
        executor=_writer(settings.kubernetes, dry_run_only=False) if settings.execute else None,
        fix_min_confidence=settings.fix_min_confidence,
        execution=ExecutionPolicy(
            enabled=settings.execute,
            watch_s=settings.verify_watch_s,
            interval_s=settings.verify_interval_s,
        ),
    )


def _writer(
    settings: config.KubernetesSettings, *, dry_run_only: bool, read_path: bool = False
) -> kubernetes.KubernetesWriter | None:
    """Kubernetes writes through the write credentials, never the read ones. Dry runs fall back
    to the read credentials (``read_path``) when no write credentials are set: a least-privilege
    read role is refused, and the dry run shows that refusal."""
    timeout = settings.timeout_s
    if settings.write_url:
        return kubernetes.KubernetesWriter(
            host=settings.write_url, timeout_s=timeout, dry_run_only=dry_run_only
        )
    if settings.write_context or settings.write_kubeconfig:
        kubeconfig = settings.write_kubeconfig
        return kubernetes.KubernetesWriter.from_environment(
            context=settings.write_context,
            config_file=str(kubeconfig) if kubeconfig else None,
            timeout_s=timeout,
            dry_run_only=dry_run_only,
        )
    if not dry_run_only:
        raise errors.ConfigurationError(
            "DIAGNOSE_EXECUTE=true needs write credentials of their own: set "
            "DIAGNOSE_KUBERNETES_WRITE_CONTEXT (and DIAGNOSE_KUBERNETES_WRITE_KUBECONFIG), see "
            "docs/approval.md; the read credentials are never used to write"
        )
    if not read_path:
        return None
    if settings.url:
        return kubernetes.KubernetesWriter(host=settings.url, timeout_s=timeout, dry_run_only=True)
    return kubernetes.KubernetesWriter.from_environment(
        context=settings.context, timeout_s=timeout, dry_run_only=True
    )


def load_playbooks(settings: Settings) -> list[playbook.Loaded]:
    """The playbooks named by the settings (the shipped ones by default), checked against the
    probe catalogue; a bad file stops here with its file and line."""
    paths = settings.playbooks or [playbook.DEFAULT_DIR]
    names = [entry.probe.name for entry in catalogue.load().entries]
    return playbook.load(paths, probe_names=names)


def _trace_source(
    settings: config.TracesSettings,
) -> traces.TempoConnector | traces.JaegerConnector | None:
    headers = {"Authorization": f"Bearer {settings.token}"} if settings.token else {}
    timeout_s, tenant = settings.timeout_s, settings.tenant
    if settings.tempo_url:
        return traces.TempoConnector(
            settings.tempo_url, timeout_s=timeout_s, headers=headers, tenant=tenant
        )
    if settings.jaeger_url:
        return traces.JaegerConnector(
            settings.jaeger_url, timeout_s=timeout_s, headers=headers, tenant=tenant
        )
    return None


def _log_source(
    settings: config.LogsSettings, *, cluster: kubernetes.KubernetesConnector | None
) -> logs.LokiLogs | logs.PodLogs | None:
    """Loki when its URL is set, else the Kubernetes API's pods/log (docs/logs.md)."""
    if not settings.enabled:
        return None
    bounds = logs.LogBounds(
        lines_per_pod=settings.lines_per_pod,
        bytes_per_pod=settings.bytes_per_pod,
        pods_per_service=settings.pods_per_service,
        pods=settings.pods,
        total_bytes=settings.total_bytes,
    )
    if settings.loki_url:
        token = settings.loki_token.get_secret_value() if settings.loki_token else None
        return logs.LokiLogs(
            settings.loki_url,
            bounds=bounds,
            timeout_s=settings.timeout_s,
            tenant=settings.loki_tenant,
            token=token,
        )
    return logs.PodLogs(cluster, bounds=bounds) if cluster is not None else None


def _cluster_from_environment(
    settings: config.KubernetesSettings, *, progress: Callable[[str], None]
) -> kubernetes.KubernetesConnector | None:
    try:
        return kubernetes.KubernetesConnector.from_environment(
            context=settings.context, timeout_s=settings.timeout_s
        )
    except errors.ConfigurationError as exc:
        progress(f"kubernetes: skipped ({exc})")
        return None


def with_endpoints(settings: Settings, endpoints: Any) -> Settings:
    """Point the settings at the lab's servers (``endpoints`` as ``diagnose.lab`` reports
    them), and only at them: a source the scenario lacks is switched off."""
    return settings.model_copy(
        update={
            "prometheus_url": endpoints.prometheus_url,
            "kubernetes_url": endpoints.kubernetes_url,
            "kubernetes_enabled": endpoints.kubernetes_url is not None,
            "kubernetes_write_url": endpoints.kubernetes_url if settings.execute else None,
            "tempo_url": endpoints.tempo_url,
            "jaeger_url": None if endpoints.tempo_url else endpoints.jaeger_url,
            "postgres_url": endpoints.postgres_dsn,
            "loki_url": None,  # the lab serves logs through its Kubernetes API
            "repositories": dict(getattr(endpoints, "repositories", None) or {}),
        }
    )


@contextmanager
def open_agent(
    settings: Settings, *, progress: Callable[[str], None], remember: bool = True
) -> Iterator[runner.Agent]:
    """An agent wired from settings, its checkpointer closed on exit. ``remember=False``: its
    runs neither recall past incidents nor are kept as one (evaluation runs)."""
    telemetry.configure(otlp_endpoint=settings.otlp_endpoint)
    if settings.log_json:
        telemetry.log_json_lines()
    log = open_audit(settings)
    memory = open_memory(settings) if remember else None
    context = dataclasses.replace(
        make_context(settings, progress=progress), audit=log, memory=memory
    )
    try:
        with open_checkpointer(settings) as saver:
            yield runner.Agent(context=context, checkpointer=saver)
    finally:
        log.close()
        if memory is not None:
            memory.close()
        _close_ports(context)


def _close_ports(context: Context) -> None:
    """Close every client the context opened (HTTP pools, the Kubernetes API clients, the
    database pools before their event loop goes): sockets left to the garbage collector are
    closed at some random later moment, with a ResourceWarning."""
    ports: tuple[object, ...] = (
        context.reasoner,
        context.database,
        context.metrics,
        context.cluster,
        context.traces,
        context.logs,
        context.dry_runner,
        context.executor,
    )
    for port in ports:
        close = getattr(port, "close", None)
        if callable(close):
            close()


def open_memory(settings: Settings) -> memory_store.SqliteMemory | memory_store.PostgresMemory:
    """Past incidents next to the audit log: PostgreSQL when configured, else SQLite."""
    if settings.database_url:
        return memory_store.PostgresMemory(settings.database_url)
    return memory_store.SqliteMemory(settings.state_dir / "memory.sqlite")


def open_audit(settings: Settings) -> audit.SqliteAudit | audit.PostgresAudit:
    """The audit log next to the checkpoints: PostgreSQL when configured, else SQLite."""
    if settings.database_url:
        return audit.PostgresAudit(settings.database_url)
    return audit.SqliteAudit(settings.state_dir / "audit.sqlite")


def open_queue(settings: Settings) -> queue.PostgresQueue | queue.SqliteQueue:
    """The service's job queue: PostgreSQL when ``database_url`` is set; SQLite in the state
    directory otherwise."""
    if settings.database_url:
        return queue.PostgresQueue(settings.database_url, max_attempts=settings.job_max_attempts)
    return queue.SqliteQueue(
        settings.state_dir / "queue.sqlite", max_attempts=settings.job_max_attempts
    )


def open_pagerduty(settings: Settings) -> pagerduty.PagerDutyClient | None:
    """A PagerDuty client when an API token is set (traced when telemetry is on)."""
    client = pagerduty.PagerDutyClient.from_settings(settings.pagerduty)
    return None if client is None else telemetry.traced(client, port="pagerduty")


def open_slack(settings: Settings) -> slack.SlackClient | None:
    """A Slack client when Slack is enabled with a bot token (docs/slack.md); None otherwise."""
    client = slack.SlackClient.from_settings(settings.slack)
    return None if client is None else telemetry.traced(client, port="slack")


def open_model(settings: Settings) -> tuple[reasoning.Reasoner | None, reasoning.Budget]:
    """The model client and its session budget from the settings' model section (no client
    when no base URL is set); close the client when done (it holds an HTTP pool)."""
    return llm.OpenAIReasoner.from_settings(settings.llm), llm.budget_from_settings(settings.llm)


def read_bundle(folder: Path) -> tuple[dict[str, object], list[models.Evidence]]:
    """A saved evidence bundle (its manifest and evidence), to replay with no server."""
    return bundle.read_manifest(folder), bundle.read_evidence(folder)
