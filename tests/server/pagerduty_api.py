"""A local server answering as PagerDuty's REST API v2 documents: wrapped entities, error
objects, classic pagination (``limit``/``offset``/``more``/``total``) and 429 with rate-limit
headers (PagerDuty's developer docs: "Pagination", "Errors", "Rate Limits")."""

from __future__ import annotations

from typing import Any

import fastapi
from fastapi import responses

TOKEN = "y_NbAkKc66ryYTWUXYEu"
MAX_LIMIT = 100


def log_entry(
    entry_id: str, kind: str, at: str, *, summary: str, agent: str | None = None
) -> dict[str, Any]:
    """One incident log entry as ``GET /incidents/{id}/log_entries`` returns it."""
    who = agent or "Laura Haley"
    return {
        "id": entry_id,
        "type": kind,
        "summary": summary,
        "self": f"https://api.pagerduty.com/log_entries/{entry_id}",
        "html_url": None,
        "created_at": at,
        "agent": {
            "id": "P553OPV",
            "type": "user_reference",
            "summary": who,
            "self": "https://api.pagerduty.com/users/P553OPV",
            "html_url": "https://acme.pagerduty.com/users/P553OPV",
        },
        "channel": {"type": "web_ui"},
        "incident": {"id": "PGR0VU2", "type": "incident_reference"},
        "teams": [],
        "contexts": [],
    }


class FakePagerDuty:
    """Records requests; fails the first ``busy`` note attempts and the first ``busy_log``
    log-entry pages with 429; serves ``log_entries`` newest first, as PagerDuty lists them."""

    def __init__(
        self,
        *,
        busy: int = 0,
        log_entries: list[dict[str, Any]] | None = None,
        busy_log: int = 0,
        retry_after: str = "0",
    ) -> None:
        self.busy = busy
        self.busy_log = busy_log
        self.retry_after = retry_after
        self.log_entries = sorted(
            log_entries or [], key=lambda e: str(e["created_at"]), reverse=True
        )
        self.requests: list[dict[str, Any]] = []
        self.app = fastapi.FastAPI()
        self.app.get("/incidents/{incident_id}/alerts")(self.alerts)
        self.app.get("/incidents/{incident_id}/log_entries")(self.list_log_entries)
        self.app.post("/incidents/{incident_id}/notes")(self.notes)

    def _auth(self, request: fastapi.Request) -> responses.JSONResponse | None:
        if request.headers.get("authorization") != f"Token token={TOKEN}":
            error = {"message": "Authentication failed", "code": 2006}
            return responses.JSONResponse({"error": error}, status_code=401)
        return None

    async def alerts(self, incident_id: str, request: fastapi.Request) -> Any:
        self.requests.append({"path": request.url.path, "headers": dict(request.headers)})
        alert = {
            "id": "PT4KHLK",
            "type": "alert",
            "status": "triggered",
            "body": {
                "type": "alert_body",
                "contexts": [],
                "details": {"labels": {"service": "cart", "namespace": "shop"}},
            },
        }
        return self._auth(request) or {
            "alerts": [alert],
            "limit": 25,
            "offset": 0,
            "more": False,
            "total": None,
        }

    async def list_log_entries(self, incident_id: str, request: fastapi.Request) -> Any:
        self.requests.append(
            {
                "path": request.url.path,
                "headers": dict(request.headers),
                "params": dict(request.query_params),
            }
        )
        if self.busy_log:
            self.busy_log -= 1
            error = {"message": "Rate Limit Exceeded", "code": 2020}
            headers = {"Retry-After": self.retry_after}
            return responses.JSONResponse({"error": error}, status_code=429, headers=headers)
        refused = self._auth(request)
        if refused is not None:
            return refused
        try:
            limit = int(request.query_params.get("limit", "25"))
            offset = int(request.query_params.get("offset", "0"))
        except ValueError:
            limit = offset = -1
        if not 0 < limit <= MAX_LIMIT or offset < 0 or offset + limit > 10_000:
            error = {"message": "Invalid Input Provided", "code": 2001, "errors": ["limit"]}
            return responses.JSONResponse({"error": error}, status_code=400)
        page = self.log_entries[offset : offset + limit]
        total = len(self.log_entries) if request.query_params.get("total") == "true" else None
        more = offset + limit < len(self.log_entries)
        return {"log_entries": page, "limit": limit, "offset": offset, "more": more, "total": total}

    async def notes(self, incident_id: str, request: fastapi.Request) -> Any:
        body = await request.json()
        self.requests.append(
            {"path": request.url.path, "headers": dict(request.headers), "body": body}
        )
        if self.busy:
            self.busy -= 1
            error = {"message": "Rate Limit Exceeded", "code": 2020}
            return responses.JSONResponse(
                {"error": error}, status_code=429, headers={"ratelimit-reset": "0"}
            )
        if not request.headers.get("from"):
            error = {
                "message": "Invalid Input Provided",
                "code": 2001,
                "errors": ["Requester User Not Found"],
            }
            return responses.JSONResponse({"error": error}, status_code=400)
        note = {
            "id": "PWL7QXS",
            "content": body["note"]["content"],
            "created_at": "2026-03-01T12:05:00Z",
            "user": {"id": "PBOT123"},
        }
        return self._auth(request) or responses.JSONResponse({"note": note}, status_code=201)
