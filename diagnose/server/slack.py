"""``POST /slack/interactions``: Slack's buttons and modals, authenticated and answered in time.

Every request must carry Slack's signature (``X-Slack-Signature``, made with the app's signing
secret over ``v0:{X-Slack-Request-Timestamp}:{body}``, at most 5 minutes old): anything else is
401. The body is a form whose ``payload`` field holds the interaction as JSON.

- ``block_actions`` (Approve or Reject pressed): open the approval or rejection modal with the
  interaction's ``trigger_id``. A Slack user the approver map does not name gets a modal saying
  who may decide instead. A retried delivery (``X-Slack-Retry-Num``) opens nothing again.
- ``view_submission`` (a modal submitted): check what can be checked at once (a mapped user,
  a reason, evidence ticked, a counter-evidence item when there is one, not the same person
  approving twice) and answer Slack's documented ``response_action: errors``; otherwise queue
  the decision (``slackjobs.DECIDE``) keyed by the view, so a submission delivered twice is
  decided once, and close the modal. A worker gives the answer to the approval step.

Nothing here waits for a diagnosis: Slack wants its answer within 3 seconds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib import parse

import fastapi
from fastapi import responses
from starlette import concurrency

from diagnose.domain import errors, identities, queue
from diagnose.server import slackblocks, slackjobs
from graphs import approval
from graphs.state import DiagnosisState

if TYPE_CHECKING:
    from diagnose.server import app

PATH = "/slack/interactions"
_log = logging.getLogger(__name__)
MAX_BODY = 1_000_000
"""Interaction payloads carry a whole view; Slack keeps them well under this."""


def router() -> fastapi.APIRouter:
    """The Slack route, added to the service's application."""
    routes = fastapi.APIRouter()

    @routes.post(PATH, response_model=None)
    async def interactions(request: fastapi.Request) -> responses.Response:
        service: app.Service = request.app.state.service
        if service.slack is None or service.settings.slack.signing_secret is None:
            return _problem(404, "Slack is off: set DIAGNOSE_SLACK_BOT_TOKEN and _SIGNING_SECRET")
        body = await request.body()
        if len(body) > MAX_BODY:
            return _problem(413, f"the body is larger than {MAX_BODY} bytes")
        timestamp = request.headers.get("X-Slack-Request-Timestamp")
        signature = request.headers.get("X-Slack-Signature")
        if not service.slack.authentic(body, timestamp=timestamp, signature=signature):
            return _problem(401, "no valid Slack signature of the last 5 minutes")
        payload = _payload(body)
        if payload is None:
            return _problem(400, "the body holds no interaction payload")
        retried = request.headers.get("X-Slack-Retry-Num") is not None
        answer = await concurrency.run_in_threadpool(
            _interaction, service, payload, retried=retried
        )
        return responses.JSONResponse(answer) if answer else responses.Response(status_code=200)

    return routes


def _problem(status: int, detail: str) -> responses.JSONResponse:
    return responses.JSONResponse({"detail": detail}, status_code=status)


def _payload(body: bytes) -> Mapping[str, object] | None:
    try:
        fields = parse.parse_qs(body.decode("utf-8"), strict_parsing=False)
        found = json.loads(fields["payload"][0])
    except (UnicodeDecodeError, KeyError, IndexError, ValueError, RecursionError):
        return None
    return found if isinstance(found, dict) else None


def _interaction(
    service: app.Service, payload: Mapping[str, object], *, retried: bool
) -> dict[str, object] | None:
    kind = payload.get("type")
    if kind == "block_actions":
        if not retried:
            _open_modal(service, payload)
        return None
    if kind == "view_submission":
        return _submitted(service, payload)
    return None


def _user(payload: Mapping[str, object]) -> str:
    user = payload.get("user")
    return str(user.get("id") or "") if isinstance(user, Mapping) else ""


def _who_may(service: app.Service) -> str:
    names = sorted(set(service.settings.slack.approvers.values()))
    return ", ".join(names) or "nobody yet (DIAGNOSE_SLACK_APPROVERS is empty)"


def _open_modal(service: app.Service, payload: Mapping[str, object]) -> None:
    """Open the modal the pressed button asks for (or say why not)."""
    actions = payload.get("actions")
    action = actions[0] if isinstance(actions, list) and actions else None
    trigger = str(payload.get("trigger_id") or "")
    if not isinstance(action, Mapping) or not trigger or service.slack is None:
        return
    try:
        view = _modal_for(service, payload, action=action)
        service.slack.open_view(trigger_id=trigger, view=view)
    except errors.SourceError as exc:
        service.metrics.approvals.labels(verdict="slack", outcome="modal_failed").inc()
        _log.warning("slack: the modal was not opened (%s)", exc)


def _modal_for(
    service: app.Service, payload: Mapping[str, object], *, action: Mapping[str, object]
) -> slackblocks.Block:
    name = service.settings.slack.approvers.get(_user(payload))
    if name is None:
        text = f"You are not an approver here. Those who may decide: {_who_may(service)}."
        return slackblocks.notice_view(title="Not an approver", text=text)
    try:
        asked = json.loads(str(action.get("value") or ""))
        run_id = str(asked["run_id"])
        with service.agent_lock:
            paused = service.agent.status(run_id)
    except (ValueError, KeyError, TypeError, errors.RunNotFound):
        return slackblocks.notice_view(title="Unknown run", text="This run is not stored here.")
    if not paused.waiting:
        text = f"Run `{run_id}` is not waiting for a decision any more."
        return slackblocks.notice_view(title="Already decided", text=text)
    where = _where(payload, run_id=run_id, fix=asked.get("fix"), state=paused.state)
    if action.get("action_id") == slackblocks.APPROVE and where["fix"]:
        return slackblocks.approve_view(paused.state, where=where, approver=name)
    return slackblocks.reject_view(where=where, rejecter=name)


def _where(
    payload: Mapping[str, object], *, run_id: str, fix: object, state: DiagnosisState
) -> slackblocks.Where:
    container = payload.get("container")
    channel = payload.get("channel")
    message = payload.get("message")
    place = container if isinstance(container, Mapping) else {}
    said = message if isinstance(message, Mapping) else {}
    thread = said.get("thread_ts") or place.get("message_ts") or said.get("ts") or ""
    chosen = next((f for f in state.get("fixes", []) if f["id"] == fix), None)
    return {
        "run_id": run_id,
        "fix": chosen["id"] if chosen else None,
        "digest": approval.digest(chosen, run_id=run_id) if chosen else None,
        "channel": str(channel.get("id") or "") if isinstance(channel, Mapping) else "",
        "thread": str(thread),
    }


def _submitted(service: app.Service, payload: Mapping[str, object]) -> dict[str, object] | None:
    """Check the submitted modal; queue its decision, or answer Slack with what to correct."""
    found = payload.get("view")
    view: Mapping[str, object] = found if isinstance(found, Mapping) else {}
    where = slackblocks.read_where(view)
    callback = view.get("callback_id")
    if where is None or callback not in (slackblocks.APPROVE, slackblocks.REJECT):
        return None
    verdict = "approve" if callback == slackblocks.APPROVE else "reject"
    answer: approval.Answer = {
        "verdict": verdict,
        "approver": service.settings.slack.approvers.get(_user(payload), ""),
        "reason": slackblocks.typed(view, slackblocks.REASON),
        "fix": where["fix"] if verdict == "approve" else None,
        "checked_evidence": slackblocks.ticked(view, slackblocks.CHECKED)
        + slackblocks.ticked(view, slackblocks.COUNTER),
        "fix_digest": where["digest"] if verdict == "approve" else None,
        "via": "slack",
    }
    problems = _problems(service, view, answer=answer, run_id=where["run_id"])
    if problems:
        return {"response_action": "errors", "errors": problems}
    job = queue.NewJob(
        kind=slackjobs.DECIDE,
        ordering_key=f"slack:{where['run_id']}",
        dedup_key=f"slack:view:{view.get('id')}:{view.get('hash')}",
        payload={
            "run_id": where["run_id"],
            "answer": dict(answer),
            "channel": where["channel"],
            "thread": where["thread"],
        },
    )
    service.queue.enqueue([job])
    return {"response_action": "clear"}


def _problems(
    service: app.Service, view: Mapping[str, object], *, answer: approval.Answer, run_id: str
) -> dict[str, str]:
    """What the modal must correct, by block id (Slack shows each under its block)."""
    if not answer["approver"]:
        return {slackblocks.REASON: f"You are not an approver here; ask {_who_may(service)}."}
    problems: dict[str, str] = {}
    if not answer["reason"]:
        problems[slackblocks.REASON] = "Say why."
    if answer["verdict"] == "reject":
        return problems
    if not slackblocks.ticked(view, slackblocks.CHECKED):
        problems[slackblocks.CHECKED] = "Tick the evidence you checked yourself."
    if slackblocks.has_block(view, slackblocks.COUNTER) and not slackblocks.ticked(
        view, slackblocks.COUNTER
    ):
        problems[slackblocks.COUNTER] = "Tick at least one counter-evidence item you checked."
    if _already_approved(service, run_id=run_id, answer=answer):
        problems[slackblocks.REASON] = (
            f"You ({answer['approver']}) already approved {answer.get('fix')}: a different "
            "person must give the second approval."
        )
    return problems


def _already_approved(service: app.Service, *, run_id: str, answer: approval.Answer) -> bool:
    try:
        with service.agent_lock:
            state = service.agent.status(run_id).state
    except errors.RunNotFound:
        return False
    mine = identities.normalise(answer["approver"])
    return any(
        a.get("fix") == answer.get("fix") and identities.normalise(a["approver"]) == mine
        for a in state.get("approvals") or []
    )
