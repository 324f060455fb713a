"""Postmortem drafts on disk: collect a run's stored data, draft, plot, write.

Used by ``diagnose postmortem RUN_ID`` and by the service's ``postmortem`` job (PagerDuty's
``incident.resolved``). The drafting itself is pure (:mod:`diagnose.analysis.drafting`); this
module does the reading and the writing around it, and :mod:`diagnose.plotting` draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from diagnose import plotting
from diagnose.analysis import drafting
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


def write(
    record: drafting.RunRecord,
    *,
    folder: Path,
    slo: drafting.Slo | None = None,
    resolution: drafting.Resolution | None = None,
    title: str | None = None,
) -> Written:
    """Draft the postmortem of ``record`` into ``folder`` (``postmortem.md`` and its PNGs)."""
    draft = drafting.draft(record, slo=slo, resolution=resolution, title=title)
    folder.mkdir(parents=True, exist_ok=True)
    images = plotting.write_plots(draft.plots, folder=folder)
    text = drafting.markdown(draft, images=images)
    path = folder / MARKDOWN
    path.write_text(text, encoding="utf-8")
    return Written(
        markdown=path, images=tuple(folder / name for name in images.values()), text=text
    )
