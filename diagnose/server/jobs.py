"""What a worker does with each kind of job.

- ``diagnose``: enrich the trigger from PagerDuty's alerts (when a token is set), run the
  diagnosis to the approval step, or continue it from its last checkpoint when an earlier
  worker died mid-run (the run id is the checkpoint thread id), then queue the note.
- ``pagerduty_note``: post the findings on the incident, short enough to read on a phone.
- ``postmortem``: draft the postmortem (Markdown and PNG plots) from the incident's latest
  finished run (a reopened incident's second), with the resolution PagerDuty reported, the
  incident's acknowledgements and escalations from its PagerDuty log entries (stored in the
  job's result, which the timeline cites as ``queue-job:N#log-entry:ID``), and the SLO
  objectives the settings give.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Required, TypedDict

from diagnose import postmortem as postmortems
from diagnose.domain import errors, models, ports, queue
from diagnose.postmortem import drafting, wording
from diagnose.server import intake, slackjobs
from diagnose.settings import Settings
from graphs import reporting, runner
from graphs.state import DiagnosisState


@dataclass
class Tools:
    """What job handlers work with: one per worker thread."""

    settings: Settings
    agent: runner.Agent
    queue: queue.Queue
    pagerduty: ports.Pager | None
    naming: intake.Naming
    progress: Callable[[str], None]
    chat: ports.Chat | None = None  # Slack, when on (docs/slack.md)


class DiagnoseResult(TypedDict):
    """What a ``diagnose`` job stores: the run, and the gist of its result."""

    run_id: str
    waiting: bool
    incident_id: str | None
    service: str
    title: str
    abstained: bool
    hypotheses: int  # how many were ranked
    llm: Mapping[str, object]  # the result's ``llm`` block: what the model cost


class NoteResult(TypedDict, total=False):
    """What a ``pagerduty_note`` job stores: posted or not, and why not."""

    posted: Required[bool]
    why: str
    note_id: object  # PagerDuty's note id, as it answered
    run_id: str


class LogEntry(TypedDict):
    """A PagerDuty log entry as a ``postmortem`` job stores it: PagerDuty's field names, its
    values as sent."""

    id: str
    type: str
    created_at: object
    summary: object
    agent: dict[str, object]  # the agent's id, type and summary, those PagerDuty gave


class PostmortemResult(TypedDict, total=False):
    """What a ``postmortem`` job stores: the draft, and the log entries its timeline cites."""

    incident_id: Required[str]
    run_id: Required[str | None]
    markdown: Required[str]
    images: Required[list[str]]
    folder: str
    pagerduty_log_entries: list[LogEntry]


def handle(job: queue.Job, *, tools: Tools) -> Mapping[str, object]:
    """Run one job; its result is stored with it. Raises to have the job retried."""
    handlers: dict[str, Callable[..., Mapping[str, object]]] = {
        queue.DIAGNOSE: diagnose,
        intake.NOTE: post_note,
        intake.POSTMORTEM: postmortem,
        slackjobs.POST: slackjobs.post_findings,
        slackjobs.DECIDE: slackjobs.decide,
    }
    handler = handlers.get(job.kind)
    if handler is None:
        raise errors.ConfigurationError(f"job {job.id} has unknown kind {job.kind!r}")
    return handler(job, tools=tools)


def diagnose(job: queue.Job, *, tools: Tools) -> DiagnoseResult:
    """Diagnose up to the approval step (resuming a run an earlier worker left unfinished)."""
    run_id = job.run_id or runner.new_run_id()
    stored = job.payload["trigger"]
    if not isinstance(stored, Mapping):
        raise TypeError(f"job {job.id}'s payload holds no trigger object: {stored!r}")
    trigger = _enriched(models.Trigger.from_dict(stored), tools=tools)
    paused = tools.agent.start_or_resume(trigger, run_id=run_id)
    if trigger.source == "pagerduty" and trigger.incident_id and tools.pagerduty:
        note = queue.NewJob(
            kind=intake.NOTE,
            ordering_key=job.ordering_key,
            dedup_key=f"note:{run_id}",
            payload={"incident_id": trigger.incident_id, "run_id": run_id},
        )
        tools.queue.enqueue([note])
    if tools.settings.slack.active:
        tools.queue.enqueue([slackjobs.post_job(run_id, ordering_key=job.ordering_key)])
    result = reporting.result(paused.state)
    return {
        "run_id": run_id,
        "waiting": paused.waiting,
        "incident_id": trigger.incident_id,
        "service": trigger.service,
        "title": trigger.title,
        "abstained": result["abstained"],
        "hypotheses": len(result["hypotheses"]),
        "llm": result["llm"],
    }


def _enriched(trigger: models.Trigger, *, tools: Tools) -> models.Trigger:
    if tools.pagerduty is None or trigger.source != "pagerduty" or not trigger.incident_id:
        return trigger
    try:
        alerts = tools.pagerduty.list_alerts(trigger.incident_id)
    except errors.SourceError as exc:
        tools.progress(f"pagerduty: alerts of {trigger.incident_id} not read ({exc})")
        return trigger
    return intake.enrich(trigger, labels=intake.alert_labels(alerts), naming=tools.naming)


def post_note(job: queue.Job, *, tools: Tools) -> NoteResult:
    """Post the run's findings as a note on the PagerDuty incident."""
    if tools.pagerduty is None:
        return {"posted": False, "why": "no DIAGNOSE_PAGERDUTY_API_TOKEN"}
    run_id = str(job.payload["run_id"])
    paused = tools.agent.status(run_id)
    text = note_text(paused.state, run_id=run_id, public_url=tools.settings.public_url)
    note = tools.pagerduty.create_note(str(job.payload["incident_id"]), text)
    return {"posted": True, "note_id": note.get("id"), "run_id": run_id}


def note_text(state: DiagnosisState, *, run_id: str, public_url: str | None) -> str:
    """The note: the leading hypothesis, the fix waiting for approval, where to see more."""
    result = reporting.result(state)
    lines = [f"{intake.NOTE_MARKER} diagnosis {run_id}"]
    hypotheses = result["hypotheses"]
    if result["abstained"] or not hypotheses:
        lines.append("No confident root cause: the evidence is too weak to name one.")
    for rank, hypothesis in enumerate(hypotheses[:2], start=1):
        if result["abstained"]:
            label = "Best lead, not confident" if rank == 1 else "Another lead"
        else:
            label = "Likely cause" if rank == 1 else "Also possible"
        lines.append(f"{label} ({hypothesis['confidence']:.0%}): {hypothesis['summary']}")
        if rank == 1 and hypothesis.get("evidence"):
            lines.append("Evidence: " + ", ".join(hypothesis["evidence"][:4]))
        if rank == 1 and (follow_up := wording.code_follow_up(hypothesis.get("code"))):
            lines.append(f"Code: {follow_up}")
    for fix in result["fixes"][:1]:
        lines.append(
            f"Proposed fix {fix['id']}: {fix['kind']} {fix['target']} "
            "(needs approval; nothing was changed)"
            + (f" [{fix['outside_playbook']}]" if fix.get("outside_playbook") else "")
        )
    lines += [f"Note: {note}" for note in result["notes"][:3]]
    where = f"{public_url.rstrip('/')}/api/v1/runs/{run_id}" if public_url else None
    lines.append(f"Details and approval: {where or f'diagnose show {run_id}'}")
    return "\n".join(lines)


def postmortem(job: queue.Job, *, tools: Tools) -> PostmortemResult:
    """Draft the postmortem (Markdown and plots) from the incident's latest finished run."""
    incident_id = str(job.payload["incident_id"])
    runs = [
        j
        for j in tools.queue.list_jobs(kind=queue.DIAGNOSE, ordering_key=job.ordering_key)
        if j.run_id and j.state == "done"
    ]
    folder = postmortem_folder(tools.settings, incident_id=incident_id)
    if not runs:
        markdown = _without_run(job.payload)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / postmortems.MARKDOWN).write_text(markdown, encoding="utf-8")
        return {"incident_id": incident_id, "run_id": None, "markdown": markdown, "images": []}
    run_id = str(runs[0].run_id)
    record = postmortems.collect(tools.agent, run_id)
    slos = postmortems.objectives(tools.settings, record)
    entries, missing = _log_entries(incident_id, tools=tools)
    events = incident_events(entries, job_ref=f"queue-job:{job.id}")
    resolved = [e for e in events if e.kind == "resolved"]
    resolution = _resolution(job)
    if resolved:  # the latest resolution, now with who resolved it
        last = resolved[-1]
        events.remove(last)
        resolution = drafting.Resolution(at=last.at, ref=last.ref, detail=last.what)
    written = postmortems.write(
        record,
        folder=folder,
        slo=slos.service,
        default_slo=slos.default,
        resolution=resolution,
        title=_title(job.payload),
        incident_log=events,
        incident_log_missing=missing,
    )
    return {
        "incident_id": incident_id,
        "run_id": run_id,
        "markdown": written.text,
        "folder": str(folder),
        "images": [p.name for p in written.images],
        "pagerduty_log_entries": entries,
    }


LOGGED = {
    "acknowledge_log_entry": ("acknowledged", "acknowledged"),
    "unacknowledge_log_entry": ("unacknowledged", "unacknowledged"),
    "escalate_log_entry": ("escalated", "escalated"),
    "resolve_log_entry": ("resolved", "resolved"),
}
"""PagerDuty log entry types the timeline shows: kind, and the verb when the entry has no
summary. Triggers are the alert line already; notifications and notes would drown it."""


def _title(payload: Mapping[str, object]) -> str | None:
    title = payload.get("title")
    return str(title) if title is not None else None


def _log_entries(incident_id: str, *, tools: Tools) -> tuple[list[LogEntry], str | None]:
    """The incident's log entries as stored (compact), or why they could not be read."""
    if tools.pagerduty is None:
        return [], None
    try:
        found = tools.pagerduty.list_log_entries(incident_id)
    except errors.SourceError as exc:
        tools.progress(f"pagerduty: log entries of {incident_id} not read ({exc})")
        return [], f"PagerDuty: {exc}"
    return [_compact(e) for e in found], None


def _compact(entry: Mapping[str, object]) -> LogEntry:
    found = entry.get("agent")
    agent: Mapping[str, object] = found if isinstance(found, Mapping) else {}
    return {
        "id": str(entry.get("id") or ""),
        "type": str(entry.get("type") or ""),
        "created_at": entry.get("created_at"),
        "summary": entry.get("summary"),
        "agent": {k: agent.get(k) for k in ("id", "type", "summary") if agent.get(k)},
    }


def incident_events(
    entries: Sequence[Mapping[str, object]], *, job_ref: str
) -> list[drafting.IncidentEvent]:
    """Timeline moments from stored PagerDuty log entries, oldest first; each cites its entry
    in the job's result (``{job_ref}#log-entry:ID``)."""
    events = []
    for entry in entries:
        shown = LOGGED.get(str(entry.get("type")))
        if shown is None or not entry.get("id"):
            continue
        try:
            at = models.parse_time(str(entry.get("created_at")))
        except ValueError:
            continue
        kind, verb = shown
        by = entry.get("agent")
        agent = by.get("summary") if isinstance(by, Mapping) else None
        said = " ".join(str(entry.get("summary") or "").split())[:200]
        what = said or (f"{verb} by {agent}" if agent else verb)
        ref = f"{job_ref}#log-entry:{entry['id']}"
        stored = f"PagerDuty log entry {entry['id']} ({entry['type']}), stored with {job_ref}"
        events.append(drafting.IncidentEvent(at, f"PagerDuty: {what}", ref, kind, stored))
    return sorted(events, key=lambda e: e.at)


def _resolution(job: queue.Job) -> drafting.Resolution | None:
    """The resolution as PagerDuty reported it; this job (its stored payload) is the record."""
    resolved_at = job.payload.get("resolved_at")
    if not resolved_at:
        return None
    try:
        at = models.parse_time(str(resolved_at))
    except ValueError:
        return None
    detail = "incident resolved (PagerDuty incident.resolved)"
    return drafting.Resolution(at=at, ref=f"queue-job:{job.id}", detail=detail)


def postmortem_folder(settings: Settings, *, incident_id: str) -> Path:
    safe = "".join(c for c in incident_id if c.isalnum() or c in "-_") or "incident"
    return settings.state_dir / "postmortems" / safe


def _without_run(incident: Mapping[str, object]) -> str:
    """No diagnosis ran for the incident: say so, with what PagerDuty told us."""
    title = incident.get("title") or incident.get("incident_id")
    return (
        f"# Postmortem draft: {title}\n\n"
        "No diagnosis ran for this incident, so there is no stored evidence to draft from.\n\n"
        f"- Resolved: {incident.get('resolved_at') or 'unknown'}\n"
        f"- Incident: {incident.get('incident_url') or incident.get('incident_id')}\n"
    )
