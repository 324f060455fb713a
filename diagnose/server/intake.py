"""From webhook payloads to triggers and jobs: pure functions, no I/O.

PagerDuty (V3 webhook, one event per delivery):

- ``incident.triggered`` and ``incident.reopened`` → one ``diagnose`` job. A trigger is keyed by
  incident (every copy of it collapses to one run); a reopening by the event id (a new run,
  after the earlier ones of that incident).
- ``incident.resolved`` → one ``postmortem`` job, run after the incident's diagnosis.
- ``incident.annotated`` from our own notes → ignored, as is every other event type.

Alertmanager (webhook ``version: 4``): every ``firing`` alert → one ``diagnose`` job keyed by
its fingerprint and the start of that firing, so repeated notifications collapse and the next
firing episode gets a new run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from diagnose.domain import models, queue
from graphs import runner

SERVICE_LABELS = ("service", "app_kubernetes_io_name", "app.kubernetes.io/name", "app", "job")
NAMESPACE_LABELS = ("namespace", "kubernetes_namespace", "k8s_namespace", "exported_namespace")
POSTMORTEM = "postmortem"
NOTE = "pagerduty_note"
NOTE_MARKER = "[diagnose]"
"""First token of every note we post: how our own ``incident.annotated`` events are known."""


class BadPayloadError(ValueError):
    """A body that is JSON but not the documented shape (answer 400)."""


@dataclass(frozen=True)
class Naming:
    """How outside names map to ours (from settings)."""

    service_map: Mapping[str, str] = field(default_factory=dict)
    namespace_map: Mapping[str, str] = field(default_factory=dict)
    default_namespace: str = ""
    pagerduty_user_id: str | None = None


@dataclass(frozen=True)
class Intake:
    """What one delivery asks for: jobs to enqueue, or why it is ignored."""

    jobs: tuple[queue.NewJob, ...] = ()
    ignored: str | None = None


def pagerduty_event(body: object, *, naming: Naming) -> Intake:
    """The jobs one PagerDuty V3 webhook delivery asks for."""
    event = _object(body, "event") if isinstance(body, dict) else None
    if event is None:
        raise BadPayloadError("a V3 webhook body is an object with an 'event' object")
    kind = event.get("event_type")
    if not isinstance(kind, str) or not kind:
        raise BadPayloadError("the event needs an 'event_type' string")
    if kind not in _ACTED_ON:
        return Intake(ignored=f"{kind} is not acted on")
    data = _object(event, "data")
    if data is None:
        raise BadPayloadError(f"a {kind} event needs a 'data' object (the incident)")
    if kind in ("incident.triggered", "incident.reopened"):
        return Intake(jobs=(_diagnose_job(event, data, naming=naming),))
    if kind == "incident.resolved":
        return Intake(jobs=(_postmortem_job(event, data),))
    if kind == "incident.annotated":
        agent = _object(event, "agent")
        if own_note(data, agent=agent, user_id=naming.pagerduty_user_id):
            return Intake(ignored="our own note")
        return Intake(ignored="notes by people are not acted on")
    raise AssertionError(f"{kind} is in _ACTED_ON but not handled")


_ACTED_ON = frozenset(
    ("incident.triggered", "incident.reopened", "incident.resolved", "incident.annotated")
)


def own_note(
    note: Mapping[str, object], *, agent: Mapping[str, object] | None, user_id: str | None
) -> bool:
    """Whether an ``incident.annotated`` event is about a note we posted ourselves."""
    if user_id and agent and agent.get("id") == user_id:
        return True
    return str(note.get("content") or "").lstrip().startswith(NOTE_MARKER)


def _diagnose_job(
    event: Mapping[str, object], incident: Mapping[str, object], *, naming: Naming
) -> queue.NewJob:
    trigger = pagerduty_trigger(incident, naming=naming, occurred_at=event.get("occurred_at"))
    incident_id = str(trigger.incident_id)
    dedup = f"pagerduty:{incident_id}:triggered"
    if event["event_type"] == "incident.reopened":
        dedup = f"pagerduty:{incident_id}:reopened:{_text(event, 'id')}"
    payload = {"trigger": trigger.to_dict(), "incident_url": incident.get("html_url")}
    return queue.NewJob(
        kind=queue.DIAGNOSE,
        ordering_key=f"pagerduty:{incident_id}",
        dedup_key=dedup,
        payload=payload,
        run_id=runner.new_run_id(),
    )


def _postmortem_job(event: Mapping[str, object], incident: Mapping[str, object]) -> queue.NewJob:
    incident_id = _text(incident, "id")
    payload = {
        "incident_id": incident_id,
        "title": incident.get("title"),
        "resolved_at": event.get("occurred_at"),
        "incident_url": incident.get("html_url"),
    }
    return queue.NewJob(
        kind=POSTMORTEM,
        ordering_key=f"pagerduty:{incident_id}",
        dedup_key=f"pagerduty:{incident_id}:resolved:{_text(event, 'id')}",
        payload=payload,
    )


def pagerduty_trigger(
    incident: Mapping[str, object],
    *,
    naming: Naming,
    labels: Mapping[str, str] | None = None,
    occurred_at: object = None,
) -> models.Trigger:
    """A trigger from a PagerDuty incident object (and its alerts' labels, when known). It
    fired at the incident's ``created_at``, or, when the incident omits it, at the event's
    ``occurred_at``: PagerDuty retries a delivery it sees fail, so a well-formed event is
    never refused for want of one timestamp."""
    service_ref = _object(incident, "service") or {}
    pd_service = str(service_ref.get("summary") or "")
    found = dict(labels or {})
    service = (
        naming.service_map.get(pd_service)
        or naming.service_map.get(str(service_ref.get("id") or ""))
        or _first(found, SERVICE_LABELS)
        or pd_service
    )
    if not service:
        raise BadPayloadError("the incident names no service")
    at = _fired_at(incident.get("created_at"), occurred_at)
    found |= {"pagerduty_service": pd_service, "urgency": str(incident.get("urgency") or "")}
    return models.Trigger(
        source="pagerduty",
        title=str(incident.get("title") or pd_service),
        service=service,
        namespace=_namespace(found, service=service, naming=naming),
        at=at,
        labels={k: v for k, v in found.items() if v},
        incident_id=_text(incident, "id"),
    )


def _fired_at(created_at: object, occurred_at: object) -> datetime:
    """The first of the incident's ``created_at`` and the event's ``occurred_at`` that is an
    ISO 8601 time."""
    for value in (created_at, occurred_at):
        if isinstance(value, str) and value:
            try:
                return models.parse_time(value)
            except ValueError:
                continue
    raise BadPayloadError(
        "neither the incident's created_at nor the event's occurred_at is an ISO 8601 time "
        f"(got {str(created_at)[:40]!r} and {str(occurred_at)[:40]!r})"
    )


def alert_labels(alerts: Sequence[Mapping[str, object]]) -> dict[str, str]:
    """Labels carried in PagerDuty alert bodies (PD-CEF custom details, or a ``labels``
    object inside them, as Alertmanager's PagerDuty receiver can send), first alert first."""
    found: dict[str, str] = {}
    for alert in reversed(alerts):
        body = _object(alert, "body") or {}
        cef = _object(body, "cef_details") or {}
        for details in (cef.get("details"), body.get("details")):
            if isinstance(details, dict):
                nested = details.get("labels")
                found |= _strings(details) | (_strings(nested) if isinstance(nested, dict) else {})
    return found


def enrich(trigger: models.Trigger, *, labels: Mapping[str, str], naming: Naming) -> models.Trigger:
    """The trigger with alert labels merged in: a service or namespace they name wins unless
    the settings map the PagerDuty service explicitly."""
    merged = {**labels, **trigger.labels}
    pd_service = trigger.labels.get("pagerduty_service", "")
    mapped = naming.service_map.get(pd_service)
    service = mapped or _first(labels, SERVICE_LABELS) or trigger.service
    namespace = _first(labels, NAMESPACE_LABELS) or (
        trigger.namespace
        if service == trigger.service
        else _namespace(merged, service=service, naming=naming)
    )
    return models.Trigger(
        source=trigger.source,
        title=trigger.title,
        service=service,
        namespace=namespace,
        at=trigger.at,
        labels=merged,
        incident_id=trigger.incident_id,
    )


def alertmanager_jobs(body: object, *, naming: Naming) -> Intake:
    """One diagnose job per firing alert of an Alertmanager webhook (version 4)."""
    if not isinstance(body, dict) or not isinstance(body.get("alerts"), list):
        raise BadPayloadError("an Alertmanager webhook body is an object with an 'alerts' list")
    if str(body.get("version", "4")) != "4":
        raise BadPayloadError(f"Alertmanager webhook version {body.get('version')!r}; expected '4'")
    common = _strings(body.get("commonLabels") or {})
    jobs = [
        _alert_job(alert, common=common, naming=naming)
        for alert in body["alerts"]
        if isinstance(alert, dict) and alert.get("status") == "firing"
    ]
    return Intake(jobs=tuple(jobs), ignored=None if jobs else "no firing alerts")


def _alert_job(
    alert: Mapping[str, object], *, common: Mapping[str, str], naming: Naming
) -> queue.NewJob:
    labels = {**common, **_strings(alert.get("labels") or {})}
    annotations = _strings(alert.get("annotations") or {})
    fingerprint = str(alert.get("fingerprint") or _fingerprint(labels))
    service = naming.service_map.get(labels.get("service", "")) or _first(labels, SERVICE_LABELS)
    if not service:
        raise BadPayloadError(
            f"alert {fingerprint} has none of the labels {', '.join(SERVICE_LABELS)}"
        )
    try:
        at = models.parse_time(str(alert.get("startsAt")))
    except ValueError as exc:
        raise BadPayloadError(f"alert {fingerprint}: startsAt is not an ISO 8601 time") from exc
    trigger = models.Trigger(
        source="alertmanager",
        title=annotations.get("summary") or labels.get("alertname") or "alert",
        service=service,
        namespace=_namespace(labels, service=service, naming=naming),
        at=at,
        labels=labels | {"fingerprint": fingerprint},
    )
    return queue.NewJob(
        kind=queue.DIAGNOSE,
        ordering_key=f"alertmanager:{fingerprint}",
        dedup_key=f"alertmanager:{fingerprint}:{models.format_time(at)}",
        payload={"trigger": trigger.to_dict()},
        run_id=runner.new_run_id(),
    )


def _namespace(labels: Mapping[str, str], *, service: str, naming: Naming) -> str:
    return (
        _first(labels, NAMESPACE_LABELS)
        or naming.namespace_map.get(service)
        or naming.default_namespace
    )


def _fingerprint(labels: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(labels, sort_keys=True).encode()).hexdigest()[:16]


def _first(labels: Mapping[str, str], names: tuple[str, ...]) -> str:
    return next((labels[n] for n in names if labels.get(n)), "")


def _strings(values: object) -> dict[str, str]:
    if not isinstance(values, dict):
        return {}
    return {str(k): str(v) for k, v in values.items() if isinstance(v, str | int | float)}


def _object(parent: Mapping[str, object], key: str) -> Mapping[str, object] | None:
    value = parent.get(key)
    return value if isinstance(value, dict) else None


def _text(parent: Mapping[str, object], key: str) -> str:
    value = parent.get(key)
    if not isinstance(value, str) or not value:
        raise BadPayloadError(f"'{key}' must be a non-empty string")
    return value
