"""The composition root: settings → connectors → graph.

The only place that knows both the graph and the concrete connectors. Entry points (CLI,
server, lab) ask it for an :class:`Agent`; everything below sees ports only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from connectors import bundle, kubernetes, postgres, prometheus
from diagnose.domain import errors
from diagnose.settings import Settings
from graphs import checkpoints, runner
from graphs.state import Context, GatherPolicy


@contextmanager
def open_checkpointer(settings: Settings) -> Iterator[Any]:
    """SQLite in the state directory, or PostgreSQL when ``database_url`` is set."""
    if settings.database_url:
        with postgres.checkpoint_connection(settings.database_url) as conn:
            yield checkpoints.postgres_saver(conn)
        return
    with checkpoints.sqlite_saver(settings.checkpoint_path) as saver:
        yield saver


def make_context(settings: Settings, *, progress: Callable[[str], None]) -> Context:
    """Build the ports one run uses from the settings."""
    metrics = None
    if settings.prometheus_url:
        metrics = prometheus.PrometheusConnector(
            settings.prometheus_url,
            timeout_s=settings.prometheus_timeout_s,
            max_series=settings.gather.max_series,
        )
    cluster = None
    if settings.kubernetes_url:
        cluster = kubernetes.KubernetesConnector(
            host=settings.kubernetes_url, timeout_s=settings.kubernetes_timeout_s
        )
    elif settings.kubernetes_enabled:
        cluster = _cluster_from_environment(settings, progress=progress)
    policy = GatherPolicy(
        lookback_s=settings.gather.lookback_minutes * 60,
        after_s=settings.gather.after_minutes * 60,
        points_per_series=settings.gather.points_per_series,
        max_series=settings.gather.max_series,
    )
    store = bundle.FileEvidenceStore(settings.bundles_dir)
    return Context(store=store, metrics=metrics, cluster=cluster, policy=policy, progress=progress)


def _cluster_from_environment(
    settings: Settings, *, progress: Callable[[str], None]
) -> kubernetes.KubernetesConnector | None:
    try:
        return kubernetes.KubernetesConnector.from_environment(
            context=settings.kubernetes_context, timeout_s=settings.kubernetes_timeout_s
        )
    except errors.ConfigurationError as exc:
        progress(f"kubernetes: skipped ({exc})")
        return None


@contextmanager
def open_agent(settings: Settings, *, progress: Callable[[str], None]) -> Iterator[runner.Agent]:
    """An agent wired from settings, its checkpointer closed on exit."""
    context = make_context(settings, progress=progress)
    with open_checkpointer(settings) as saver:
        yield runner.Agent(context=context, checkpointer=saver)
