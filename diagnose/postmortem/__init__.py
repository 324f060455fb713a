"""The postmortem writer: collect a run's stored data, draft, plot, write.

Used by ``diagnose postmortem RUN_ID`` and by the service's ``postmortem`` job (PagerDuty's
``incident.resolved``). This module does the reading and the writing; the drafting itself is
pure, split by concern:

- :mod:`~diagnose.postmortem.facts`: what the run found, read into typed records, and what the
  caller adds (:class:`Slo`, :class:`Resolution`, :class:`IncidentEvent`);
- :mod:`~diagnose.postmortem.impact`: onset, end, failed requests, error budget, from the series;
- :mod:`~diagnose.postmortem.timeline`: the moments, each citing a stored record;
- :mod:`~diagnose.postmortem.plots`: which series to plot, with their markers;
- :mod:`~diagnose.postmortem.drafting`: the draft and its narrative sections;
- :mod:`~diagnose.postmortem.markdown`: the draft as Markdown (with
  :mod:`~diagnose.postmortem.wording`, its words and links);
- :mod:`~diagnose.postmortem.plotting`: the PNGs, the only importer of matplotlib.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from diagnose.postmortem import drafting, facts, plotting
from diagnose.postmortem import markdown as markdown_
from diagnose.postmortem.facts import IncidentEvent, Resolution, RunRecord, Slo
from diagnose.settings import Settings
from graphs import runner

__all__ = [
    "MARKDOWN",
    "IncidentEvent",
    "Objectives",
    "Resolution",
    "RunRecord",
    "Slo",
    "Written",
    "collect",
    "objectives",
    "write",
]

MARKDOWN = "postmortem.md"


@dataclass(frozen=True)
class Written:
    """Where a draft went: the Markdown file and the images beside it."""

    markdown: Path
    images: tuple[Path, ...]
    text: str


def collect(agent: runner.Agent, run_id: str) -> RunRecord:
    """A run's checkpointed state, its evidence bundle and its audit-log entries."""
    state = agent.status(run_id).state
    evidence = agent.context.store.load(run_id)
    log = agent.context.audit
    entries = log.entries(run_id) if log is not None else []
    return RunRecord(state=dict(state), evidence=evidence, audit=entries)


@dataclass(frozen=True)
class Objectives:
    """The SLOs the settings give a run's alerting service: its own (``DIAGNOSE_SLO_TARGETS``),
    which wins over a Sloth objective in the evidence, and the default (``DIAGNOSE_SLO_TARGET``),
    which does not."""

    service: Slo | None = None
    default: Slo | None = None


def objectives(settings: Settings, record: RunRecord) -> Objectives:
    """The configured objectives for ``record``'s alerting service."""
    service = facts.Trigger.of(record.state.get("trigger") or {}).service
    days = settings.slo_window_days
    own = settings.slo_targets.get(service)
    return Objectives(
        service=Slo(own, days, f"DIAGNOSE_SLO_TARGETS {service}") if own else None,
        default=(
            Slo(settings.slo_target, days, "DIAGNOSE_SLO_TARGET") if settings.slo_target else None
        ),
    )


def write(
    record: RunRecord,
    *,
    folder: Path,
    slo: Slo | None = None,
    default_slo: Slo | None = None,
    resolution: Resolution | None = None,
    title: str | None = None,
    incident_log: Sequence[IncidentEvent] = (),
    incident_log_missing: str | None = None,
) -> Written:
    """Draft the postmortem of ``record`` into ``folder`` (``postmortem.md`` and its PNGs)."""
    draft = drafting.draft(
        record,
        slo=slo,
        default_slo=default_slo,
        resolution=resolution,
        title=title,
        incident_log=incident_log,
        incident_log_missing=incident_log_missing,
    )
    folder.mkdir(parents=True, exist_ok=True)
    images = plotting.write_plots(draft.plots, folder=folder)
    text = markdown_.markdown(draft, images=images)
    path = folder / MARKDOWN
    path.write_text(text, encoding="utf-8")
    return Written(
        markdown=path, images=tuple(folder / name for name in images.values()), text=text
    )
