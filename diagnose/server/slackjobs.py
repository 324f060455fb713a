"""The Slack jobs a worker runs: post a run's findings, carry out a decision given in a modal.

- ``slack_post`` (queued by a ``diagnose`` job when Slack is on): the incident's first run
  becomes the thread's parent message; a later run of the same incident updates the parent
  (``chat.update``) and is posted as a reply in its thread. The parent's ``ts`` is kept in the
  job's result, which is how the next run finds the thread. ``diagnose run`` posts its run
  through the same :func:`post_run`, in a thread of its own.
- ``slack_decision`` (queued by ``POST /slack/interactions`` for each modal submitted): the
  answer goes to the approval step through ``Agent.resume``, the one path the CLI and the HTTP
  API take too (same validation, same audit log, same digest binding); the outcome is posted
  in the thread and the parent updated.

Slack failing never fails a run: a message not sent is logged and noted in the job's result.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Required, TypedDict

from diagnose.domain import errors, ports, queue
from diagnose.server import slackblocks
from graphs import runner

if TYPE_CHECKING:
    from diagnose.server import jobs

POST = "slack_post"
DECIDE = "slack_decision"


class PostResult(TypedDict, total=False):
    """What a ``slack_post`` job stores: where the message went, or why it did not."""

    posted: Required[bool]
    run_id: Required[str]
    channel: str
    parent: str  # the incident thread's parent message ts
    ts: str  # this run's message (the parent itself for the incident's first run)
    why: str


class DecisionResult(TypedDict, total=False):
    """What a ``slack_decision`` job stores: how the approval step took the answer."""

    run_id: Required[str]
    outcome: Required[str]  # accepted, recorded (a second approver is needed), refused
    problems: list[str]
    posted: bool
    why: str


def post_job(run_id: str, *, ordering_key: str) -> queue.NewJob:
    """The job that posts a finished run's findings to the incident's thread."""
    return queue.NewJob(
        kind=POST,
        ordering_key=ordering_key,
        dedup_key=f"slack:{run_id}",
        payload={"run_id": run_id},
    )


def post_findings(job: queue.Job, *, tools: jobs.Tools) -> PostResult:
    """Post the run to its incident's thread (start the thread for the incident's first run)."""
    run_id = str(job.payload["run_id"])
    channel = tools.settings.slack.channel
    if tools.chat is None or not channel:
        return {"posted": False, "run_id": run_id, "why": "Slack is off (docs/slack.md)"}
    parent = _parent(tools.queue, ordering_key=job.ordering_key, channel=channel)
    posted = post_run(
        tools.chat,
        tools.agent.status(run_id),
        channel=channel,
        parent=parent,
        public_url=tools.settings.public_url,
    )
    if not posted["posted"]:
        tools.progress(f"slack: findings of {run_id} not posted ({posted.get('why')})")
    return posted


def post_run(
    chat: ports.Chat,
    paused: runner.Paused,
    *,
    channel: str,
    parent: str | None,
    public_url: str | None,
    buttons: bool = True,
) -> PostResult:
    """Post a run's findings: as a thread's parent when ``parent`` is None, else update the
    parent and reply in its thread. ``buttons``: Approve and Reject while the run waits (the
    service can resume it), or else the ``diagnose approve`` commands. Slack failing is noted
    in the result, never raised: a run never fails because Slack did."""
    text, blocks = slackblocks.findings(
        paused.state,
        run_id=paused.run_id,
        public_url=public_url,
        waiting=paused.waiting,
        buttons=buttons,
    )
    found: PostResult = {"posted": True, "run_id": paused.run_id, "channel": channel}
    try:
        if parent is None:
            ts = chat.post(channel=channel, text=text, blocks=blocks, thread=None)
            return found | {"parent": ts, "ts": ts}
        chat.update(channel=channel, ts=parent, text=text, blocks=blocks)
        ts = chat.post(channel=channel, text=text, blocks=blocks, thread=parent)
    except errors.SourceError as exc:
        return {"posted": False, "run_id": paused.run_id, "why": str(exc)}
    return found | {"parent": parent, "ts": ts}


def _parent(work: queue.Queue, *, ordering_key: str, channel: str) -> str | None:
    """The incident thread's parent message, from an earlier ``slack_post`` of the incident."""
    for earlier in work.list_jobs(kind=POST, ordering_key=ordering_key):
        result = earlier.result or {}
        if earlier.state == "done" and result.get("posted") and result.get("channel") == channel:
            return str(result["parent"])
    return None


def decide(job: queue.Job, *, tools: jobs.Tools) -> DecisionResult:
    """Give the approval step the answer a modal carried; say in the thread how it went."""
    run_id = str(job.payload["run_id"])
    answer = job.payload["answer"]
    if not isinstance(answer, Mapping):
        raise TypeError(f"job {job.id}'s payload holds no answer object: {answer!r}")
    try:
        before = len(tools.agent.status(run_id).state.get("approvals") or [])
        paused = tools.agent.resume(run_id, answer)
    except (errors.RunNotFound, errors.ConfigurationError) as exc:
        told = _tell(job, tools=tools, paused=None, said=f"Not accepted: {exc}")
        return {"run_id": run_id, "outcome": "refused", "problems": [str(exc)], **told}
    problems = list(paused.state.get("approval_errors") or []) if paused.waiting else []
    if paused.waiting and len(paused.state.get("approvals") or []) == before:
        told = _tell(job, tools=tools, paused=paused, said="Not accepted: " + "; ".join(problems))
        return {"run_id": run_id, "outcome": "refused", "problems": problems, **told}
    verb = "Rejected" if answer.get("verdict") == "reject" else "Approved"
    said = f"{verb} by {answer.get('approver')} in Slack: {answer.get('reason')}"
    if paused.waiting and problems:
        said += f"\n{problems[0]}"
    told = _tell(job, tools=tools, paused=paused, said=said)
    outcome = "recorded" if paused.waiting else "accepted"
    return {"run_id": run_id, "outcome": outcome, "problems": [], **told}


class _Told(TypedDict, total=False):
    posted: bool
    why: str


def _tell(job: queue.Job, *, tools: jobs.Tools, paused: runner.Paused | None, said: str) -> _Told:
    """Reply in the thread, and show where the run now stands in the parent message."""
    channel, thread = str(job.payload.get("channel") or ""), str(job.payload.get("thread") or "")
    if tools.chat is None or not channel or not thread:
        return {"posted": False, "why": "no Slack thread to answer in"}
    block: slackblocks.Block = {"type": "section", "text": {"type": "mrkdwn", "text": said}}
    try:
        tools.chat.post(channel=channel, text=said, blocks=[block], thread=thread)
        if paused is not None:
            text, blocks = slackblocks.findings(
                paused.state,
                run_id=paused.run_id,
                public_url=tools.settings.public_url,
                waiting=paused.waiting,
            )
            tools.chat.update(channel=channel, ts=thread, text=text, blocks=blocks)
    except errors.SourceError as exc:
        tools.progress(f"slack: the outcome of job {job.id} not posted ({exc})")
        return {"posted": False, "why": str(exc)}
    return {"posted": True}
