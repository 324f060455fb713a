"""Scenario folders → the evidence the graph would gather, for analysis tests.

Metrics come through the OpenMetrics reader (one evidence record per metric name, sampled on a
step grid as ``query_range`` returns them); Kubernetes objects through :mod:`kubeobjects`, in
the payload shapes of ``diagnose.domain.ports``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from diagnose.domain import models
from tests.support import kubeobjects, openmetrics


@dataclass(frozen=True)
class Loaded:
    name: str
    trigger: models.Trigger
    window: models.Window
    now: models.datetime
    metrics: list[models.Evidence]
    cluster: list[models.Evidence]
    truth: dict[str, Any]


def load(folder: Path, *, step: float = 5.0, lookback_s: float = 3600.0) -> Loaded:
    """A scenario as the graph would see it with the default gather policy."""
    spec = yaml.safe_load((folder / "scenario.yaml").read_text())
    trigger = models.Trigger.from_dict({"incident_id": None, **spec["trigger"]})
    end = models.parse_time(spec["time"]["end"])
    now = min(end, trigger.at + timedelta(minutes=10))
    window = models.Window(trigger.at - timedelta(seconds=lookback_s), now)
    metrics: list[models.Evidence] = []
    om_file = folder / "metrics.om"
    if om_file.exists():
        _, series = openmetrics.read(om_file)
        metrics = openmetrics.metric_evidence(series, window=window, step=step)
    cluster = kubeobjects.cluster_evidence(
        sorted((folder / "kubernetes").glob("*.yaml")), namespace=trigger.namespace, window=window
    )
    truth = (spec.get("truth") or {}).get("root_cause") or {}
    return Loaded(folder.name, trigger, window, now, metrics, cluster, truth)
