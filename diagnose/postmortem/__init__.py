"""Postmortem drafts on disk: collect a run's stored data, draft, plot, write.

Used by ``diagnose postmortem RUN_ID`` and by the service's ``postmortem`` job (PagerDuty's
``incident.resolved``). The drafting itself is pure (:mod:`diagnose.analysis.drafting`); this
module does the reading and the writing around it, and :mod:`diagnose.plotting` draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from diagnose import plotting
from diagnose.analysis import drafting
from diagnose.settings import Settings
from graphs import runner

MARKDOWN = "postmortem.md"


@dataclass(frozen=True)
class Written:
    """Where a draft went: the Markdown file and the images beside it."""

    markdown: Path
    images: tuple[Path, ...]
    text: str


def collect(agent: runner.Agent, run_id: str) -> drafting.RunRecord:
    """A run's checkpointed state, its evidence bundle and its audit-log entries."""
    state = agent.status(run_id).state
    evidence = agent.context.store.load(run_id)
    log = agent.context.audit
    entries = log.entries(run_id) if log is not None else []
    return drafting.RunRecord(state=dict(state), evidence=evidence, audit=entries)


@dataclass(frozen=True)
class Objectives:
    """The SLOs the settings give a run's alerting service: its own (``DIAGNOSE_SLO_TARGETS``),
    which wins over a Sloth objective in the evidence, and the default (``DIAGNOSE_SLO_TARGET``),
    which does not."""

    service: drafting.Slo | None = None
    default: drafting.Slo | None = None


def objectives(settings: Settings, record: drafting.RunRecord) -> Objectives:
    """The configured objectives for ``record``'s alerting service."""
    trigger = record.state.get("trigger") or {}
    service = str(trigger.get("service") or "")
    days = settings.slo_window_days
    own = settings.slo_targets.get(service)
    return Objectives(
        service=drafting.Slo(own, days, f"DIAGNOSE_SLO_TARGETS {service}") if own else None,
        default=(
            drafting.Slo(settings.slo_target, days, "DIAGNOSE_SLO_TARGET")
            if settings.slo_target
            else None
        ),
    )


def write(
    record: drafting.RunRecord,
    *,
    folder: Path,
    slo: drafting.Slo | None = None,
    default_slo: drafting.Slo | None = None,
    resolution: drafting.Resolution | None = None,
    title: str | None = None,
    incident_log: Sequence[drafting.IncidentEvent] = (),
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
    text = drafting.markdown(draft, images=images)
    path = folder / MARKDOWN
    path.write_text(text, encoding="utf-8")
    return Written(
        markdown=path, images=tuple(folder / name for name in images.values()), text=text
    )
