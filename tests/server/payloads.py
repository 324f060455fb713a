"""Webhook bodies as PagerDuty (V3) and Alertmanager (version 4) document them."""

from __future__ import annotations

import json
from typing import Any

from diagnose.server import signing


def incident(incident_id: str = "PGR0VU2", *, service: str = "checkout") -> dict[str, Any]:
    return {
        "id": incident_id,
        "type": "incident",
        "self": f"https://api.pagerduty.com/incidents/{incident_id}",
        "html_url": f"https://acme.pagerduty.com/incidents/{incident_id}",
        "number": 2,
        "status": "triggered",
        "incident_key": "d3640fbd41094207a1c11e58e46b1662",
        "created_at": "2026-03-01T12:00:00Z",
        "title": "checkout 5xx ratio above 5%",
        "service": {
            "id": "PF9KMXH",
            "summary": service,
            "type": "service_reference",
            "self": "https://api.pagerduty.com/services/PF9KMXH",
            "html_url": "https://acme.pagerduty.com/services/PF9KMXH",
        },
        "assignees": [],
        "urgency": "high",
        "resolve_reason": None,
    }


def event(
    event_type: str,
    data: dict[str, Any],
    *,
    event_id: str = "5ac64822-4adc",
    agent_id: str = "PLH1HKV",
) -> dict[str, Any]:
    return {
        "event": {
            "id": event_id,
            "event_type": event_type,
            "resource_type": "incident",
            "occurred_at": "2026-03-01T12:30:00.000Z",
            "agent": {"id": agent_id, "type": "user_reference", "summary": "Someone"},
            "client": {"name": "PagerDuty"},
            "data": data,
        }
    }


def note(content: str, *, incident_id: str = "PGR0VU2") -> dict[str, Any]:
    return {
        "incident": {"id": incident_id, "type": "incident_reference"},
        "id": "P2LA89X",
        "content": content,
        "trimmed": False,
        "type": "incident_note",
    }


def signed(
    body: dict[str, Any], *secrets: str, webhook_id: str = "wh-1"
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    header = ",".join(signing.sign(raw, secret=s) for s in secrets)
    return raw, {
        "X-PagerDuty-Signature": header,
        "X-Webhook-Id": webhook_id,
        "Content-Type": "application/json",
    }


def alertmanager(*alerts: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighErrorRate"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "diagnose",
        "groupLabels": {"alertname": "HighErrorRate"},
        "commonLabels": {"alertname": "HighErrorRate", "namespace": "shop"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": list(alerts),
    }


def am_alert(
    fingerprint: str, *, service: str, status: str = "firing", starts: str = "2026-03-01T12:00:00Z"
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": "HighErrorRate", "service": service},
        "annotations": {"summary": f"{service} 5xx above 5%"},
        "startsAt": starts,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": fingerprint,
    }
