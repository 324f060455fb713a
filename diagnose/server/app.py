"""The HTTP routes: webhooks in, approvals in, health and metrics out.

Webhook handlers only read (at most ``webhook_max_bytes``), verify, map and enqueue: one short
database transaction, then 202. Diagnoses run in workers, never in a request.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Required, TypedDict

import fastapi
from fastapi import responses
from pydantic import BaseModel, ConfigDict, Field
from starlette import concurrency
from starlette import requests as starlette_requests

from diagnose.domain import errors, ports, queue
from diagnose.server import auth, intake, jobs, signing, slack, telemetry
from diagnose.settings import Settings
from graphs import approval, reporting, runner

API = "/api/v1"


@dataclass
class Service:
    """What the routes work with, opened by ``diagnose serve`` (or a test)."""

    settings: Settings
    queue: queue.Queue
    agent: runner.Agent
    metrics: telemetry.Metrics
    naming: intake.Naming
    tokens: Mapping[str, str]
    agent_lock: threading.Lock = field(default_factory=threading.Lock)
    slack: ports.Chat | None = None  # Slack's Web API, when on (docs/slack.md)


class ApproveBody(BaseModel):
    """Approve one proposed fix. The approver is whoever the token belongs to."""

    model_config = ConfigDict(extra="forbid")
    fix: str = Field(min_length=1)
    checked_evidence: list[str] = Field(default_factory=list)
    reason: str = Field(min_length=1)
    fix_digest: str | None = None  # the digest of the fix read; refused if it changed since


class RejectBody(BaseModel):
    """Reject every proposed fix."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1)


class QueuedJob(TypedDict):
    """One job a webhook delivery asked for: its id, and False when an earlier delivery had
    already queued it."""

    id: int
    created: bool


class WebhookAnswer(TypedDict, total=False):
    """The body of a webhook's 202 answer."""

    status: Required[str]  # queued, deduplicated, duplicate or ignored
    reason: str | None  # why it is ignored
    jobs: list[QueuedJob]


class RunSummary(TypedDict):
    """One run waiting for a decision, in ``GET /api/v1/runs``."""

    run_id: str
    incident_id: str | None
    service: str | None
    title: str | None
    leading_hypothesis: str | None
    fixes: list[str]  # the proposed fixes' ids


class PendingRuns(TypedDict):
    """The body of ``GET /api/v1/runs``."""

    pending: list[RunSummary]
    user: str


class ApiError(Exception):
    """An HTTP error with a message for the caller."""

    def __init__(self, status: int, detail: str, *, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


def create_app(service: Service) -> fastapi.FastAPI:
    """The FastAPI application over an opened service."""
    app = fastapi.FastAPI(title="diagnose", docs_url=None, redoc_url=None)
    app.state.service = service
    app.add_exception_handler(ApiError, _problem)  # type: ignore[arg-type]
    app.include_router(_webhooks())
    app.include_router(_operations())
    app.include_router(_approvals())
    app.include_router(slack.router())
    return app


async def _problem(_request: fastapi.Request, exc: ApiError) -> responses.JSONResponse:
    return responses.JSONResponse(
        {"detail": exc.detail}, status_code=exc.status, headers=exc.headers
    )


def _service(request: fastapi.Request) -> Service:
    found: Service = request.app.state.service
    return found


def _webhooks() -> fastapi.APIRouter:
    router = fastapi.APIRouter()

    @router.post("/webhooks/pagerduty", status_code=202, response_model=None)
    async def pagerduty_webhook(request: fastapi.Request) -> WebhookAnswer:
        service = _service(request)
        try:
            body = await _verified_pagerduty_body(request, service=service)
            found = intake.pagerduty_event(_json(body), naming=service.naming)
        except ApiError as problem:
            service.metrics.webhook("pagerduty", outcome=str(problem.status))
            raise
        except intake.BadPayloadError as exc:
            service.metrics.webhook("pagerduty", outcome="400")
            raise ApiError(400, str(exc)) from exc
        delivery = request.headers.get("X-Webhook-Id")
        return await _enqueue(
            service, "pagerduty", found, delivery=f"pagerduty:{delivery}" if delivery else None
        )

    @router.post("/webhooks/alertmanager", status_code=202, response_model=None)
    async def alertmanager_webhook(request: fastapi.Request) -> WebhookAnswer:
        service = _service(request)
        try:
            _check_alertmanager_token(request, service=service)
            body = await _read_limited(request, limit=service.settings.webhook_max_bytes)
            found = intake.alertmanager_jobs(_json(body), naming=service.naming)
        except ApiError as problem:
            service.metrics.webhook("alertmanager", outcome=str(problem.status))
            raise
        except intake.BadPayloadError as exc:
            service.metrics.webhook("alertmanager", outcome="400")
            raise ApiError(400, str(exc)) from exc
        return await _enqueue(service, "alertmanager", found, delivery=None)

    return router


async def _verified_pagerduty_body(request: fastapi.Request, *, service: Service) -> bytes:
    secret = service.settings.pagerduty_webhook_secret
    if secret is None:
        raise ApiError(404, "PagerDuty webhooks are off: set DIAGNOSE_PAGERDUTY_WEBHOOK_SECRET")
    body = await _read_limited(request, limit=service.settings.webhook_max_bytes)
    secrets = [s.strip() for s in secret.get_secret_value().split(",") if s.strip()]
    try:
        valid = signing.verify(body, header=request.headers.get(signing.HEADER), secrets=secrets)
    except signing.MalformedSignatureError as exc:
        raise ApiError(400, str(exc)) from exc
    if not valid:
        raise ApiError(403, "no signature matches: check the subscription's signing secret")
    return body


def _check_alertmanager_token(request: fastapi.Request, *, service: Service) -> None:
    expected = service.settings.alertmanager_token
    if expected is None:
        raise ApiError(404, "Alertmanager webhooks are off: set DIAGNOSE_ALERTMANAGER_TOKEN")
    given = _bearer(request)
    if given is None or not auth.user_for(given, tokens={expected.get_secret_value(): "am"}):
        raise ApiError(
            401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )


async def _read_limited(request: fastapi.Request, *, limit: int) -> bytes:
    """The raw body, refused with 413 past ``limit`` bytes (declared or actually sent)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the body is larger than {limit} bytes")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise ApiError(413, f"the body is larger than {limit} bytes")
            chunks.append(chunk)
    except starlette_requests.ClientDisconnect as exc:
        # The client left, or was cut off for sending too slowly (``limits``): nobody to answer.
        raise ApiError(400, "the client disconnected before sending the whole body") from exc
    return b"".join(chunks)


def _json(body: bytes) -> object:
    """The body as JSON; 400 when it is not, or nests deeper than any webhook does."""
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, f"the body is not JSON: {exc}") from exc
    except RecursionError as exc:
        # The parser recurses once per bracket: a few thousand nested ones exhaust the stack.
        raise ApiError(400, "the body nests too deeply to be a webhook") from exc


async def _enqueue(
    service: Service, source: str, found: intake.Intake, *, delivery: str | None
) -> WebhookAnswer:
    if not found.jobs:
        service.metrics.webhook(source, outcome="ignored")
        return {"status": "ignored", "reason": found.ignored}
    accepted = await concurrency.run_in_threadpool(
        service.queue.enqueue, found.jobs, delivery=delivery
    )
    if accepted.duplicate:
        service.metrics.webhook(source, outcome="duplicate")
        return {"status": "duplicate", "jobs": []}
    outcome = "queued" if any(created for _, created in accepted.jobs) else "deduplicated"
    service.metrics.webhook(source, outcome=outcome)
    jobs_out = [QueuedJob(id=job_id, created=created) for job_id, created in accepted.jobs]
    return {"status": outcome, "jobs": jobs_out}


def _operations() -> fastapi.APIRouter:
    router = fastapi.APIRouter()

    @router.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    def readyz(request: fastapi.Request) -> responses.JSONResponse:
        try:
            _service(request).queue.ping()
        except errors.SourceError as exc:
            return responses.JSONResponse({"status": "unready", "detail": str(exc)}, 503)
        return responses.JSONResponse({"status": "ready"})

    @router.get("/metrics")
    def metrics(request: fastapi.Request) -> responses.Response:
        body = _service(request).metrics.render()
        return responses.Response(body, media_type="text/plain; version=0.0.4; charset=utf-8")

    return router


def _bearer(request: fastapi.Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _user(request: fastapi.Request) -> str:
    """The authenticated user of an API request (401 otherwise)."""
    token = _bearer(request)
    user = auth.user_for(token, tokens=_service(request).tokens) if token else None
    if user is None:
        raise ApiError(
            401,
            "a valid API token is required (Authorization: Bearer TOKEN)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


User = Annotated[str, fastapi.Depends(_user)]


def _approvals() -> fastapi.APIRouter:
    router = fastapi.APIRouter(prefix=API)

    @router.get("/runs", response_model=None)
    def list_pending(request: fastapi.Request, user: User) -> PendingRuns:
        """Runs waiting for a decision, newest first."""
        return {"pending": pending_runs(_service(request)), "user": user}

    @router.get("/runs/{run_id}")
    def show_run(request: fastapi.Request, run_id: str, user: User) -> Mapping[str, object]:
        paused = _status(_service(request), run_id)
        return _run_view(paused)

    @router.post("/runs/{run_id}/approve")
    def approve(
        request: fastapi.Request, run_id: str, body: ApproveBody, user: User
    ) -> Mapping[str, object]:
        answer: approval.Answer = {
            "verdict": "approve",
            "approver": user,
            "reason": body.reason,
            "fix": body.fix,
            "checked_evidence": body.checked_evidence,
            "fix_digest": body.fix_digest,
            "via": "api",
        }
        return _answer(_service(request), run_id, answer)

    @router.post("/runs/{run_id}/reject")
    def reject(
        request: fastapi.Request, run_id: str, body: RejectBody, user: User
    ) -> Mapping[str, object]:
        answer: approval.Answer = {
            "verdict": "reject",
            "approver": user,
            "reason": body.reason,
            "fix": None,
            "checked_evidence": [],
            "via": "api",
        }
        return _answer(_service(request), run_id, answer)

    @router.get("/incidents/{incident_id}/postmortem")
    def postmortem(
        request: fastapi.Request, incident_id: str, user: User
    ) -> responses.PlainTextResponse:
        found = _service(request).queue.list_jobs(
            kind=intake.POSTMORTEM, ordering_key=f"pagerduty:{incident_id}"
        )
        done = [j for j in found if j.state == "done" and j.result]
        if not done:
            raise ApiError(404, f"no postmortem draft for incident {incident_id} yet")
        markdown = str((done[0].result or {}).get("markdown", ""))
        return responses.PlainTextResponse(markdown, media_type="text/markdown")

    return router


def pending_runs(service: Service, *, limit: int = 200) -> list[RunSummary]:
    """Diagnosed runs whose checkpoint still waits at the approval step."""
    found, seen = [], set()
    for job in service.queue.list_jobs(kind=queue.DIAGNOSE, limit=limit):
        if job.state != "done" or not job.run_id or job.run_id in seen:
            continue
        seen.add(job.run_id)
        paused = _status(service, job.run_id)
        if paused.waiting:
            found.append(_run_summary(paused))
    return found


def _status(service: Service, run_id: str) -> runner.Paused:
    try:
        with service.agent_lock:
            return service.agent.status(run_id)
    except errors.RunNotFound as exc:
        raise ApiError(404, str(exc)) from exc


def _answer(service: Service, run_id: str, answer: approval.Answer) -> Mapping[str, object]:
    verdict = answer["verdict"]
    try:
        with service.agent_lock:
            paused = service.agent.resume(run_id, answer)
    except errors.RunNotFound as exc:
        raise ApiError(404, str(exc)) from exc
    except errors.ConfigurationError as exc:
        service.metrics.approvals.labels(verdict=verdict, outcome="conflict").inc()
        raise ApiError(409, str(exc)) from exc
    if paused.waiting:
        service.metrics.approvals.labels(verdict=verdict, outcome="refused").inc()
        problems = paused.state.get("approval_errors") or []
        raise ApiError(422, "not accepted: " + "; ".join(problems))
    service.metrics.approvals.labels(verdict=verdict, outcome="accepted").inc()
    return _run_view(paused)


def _run_summary(paused: runner.Paused) -> RunSummary:
    trigger = paused.state.get("trigger")
    result = reporting.result(paused.state)
    top = result["hypotheses"][0] if result["hypotheses"] else None
    return {
        "run_id": paused.run_id,
        "incident_id": trigger["incident_id"] if trigger else None,
        "service": trigger["service"] if trigger else None,
        "title": trigger["title"] if trigger else None,
        "leading_hypothesis": top["summary"] if top else None,
        "fixes": [f["id"] for f in result["fixes"]],
    }


def _run_view(paused: runner.Paused) -> Mapping[str, object]:
    """The result object, with where the run stands and the note posted for it."""
    view = reporting.result(paused.state)
    return view | {
        "waiting": paused.waiting,
        "question": paused.question,
        "trigger": paused.state.get("trigger"),
        "report": paused.state.get("report"),
        "note": jobs.note_text(paused.state, run_id=paused.run_id, public_url=None),
    }
