"""PagerDuty's REST API: read an incident's alerts and log entries, post our findings as a note.

The one choke point for PagerDuty: every request carries ``Authorization: Token token=…`` and
``Accept: application/vnd.pagerduty+json;version=2``; writes carry ``From`` (the user the note
is posted as). 429 and 5xx answers, and connections that fail, are retried with exponential
backoff, waiting at least what ``Retry-After`` or ``ratelimit-reset`` asks for; other 4xx
answers are final (PagerDuty's REST API "Errors" and "Rate Limits" pages).

Errors leave as :class:`SourceUnavailable` (try again later) or :class:`SourceRejected` (the
request or the credentials need fixing), chained to the httpx error.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from connectors import _http
from diagnose import settings as config
from diagnose.domain import errors

ACCEPT = "application/vnd.pagerduty+json;version=2"
MAX_NOTE_CHARS = 25_000
"""PagerDuty caps a note's content; ours stay far below, this is the guard."""
PAGE_LIMIT = 100
"""The most a classic-pagination index returns at once (PagerDuty's "Pagination" page)."""
MAX_RECORDS = 10_000
"""Classic pagination refuses ``offset + limit`` beyond this."""


RETRY = _http.RetryPolicy(attempts=4, backoff_s=0.5, budget_s=math.inf, max_wait_s=30.0)
"""How often to repeat a request PagerDuty asked us to repeat, and how long to wait: no time
budget, since a rate limit may ask for a wait longer than any timeout."""


class _Busy(Exception):
    """PagerDuty answered 429 or 5xx: worth another try, after the wait it may ask for."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


class PagerDutyClient:
    """A small client for the three calls the agent makes."""

    def __init__(
        self,
        *,
        token: str,
        base_url: str = "https://api.pagerduty.com",
        from_email: str | None = None,
        timeout_s: float = 10.0,
        retry: _http.RetryPolicy = RETRY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.from_email = from_email
        self.retry = retry
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=timeout_s,
            headers={"Authorization": f"Token token={token}", "Accept": ACCEPT},
        )

    @classmethod
    def from_settings(cls, settings: config.PagerDutySettings) -> PagerDutyClient | None:
        """The client the settings describe, or None when no API token is set."""
        if settings.api_token is None:
            return None
        return cls(
            token=settings.api_token.get_secret_value(),
            base_url=settings.api_url,
            from_email=settings.from_email,
            timeout_s=settings.timeout_s,
        )

    def list_alerts(self, incident_id: str, *, limit: int = 25) -> list[Mapping[str, object]]:
        """The incident's alerts (first page, newest PagerDuty returns), bodies included."""
        answer = self._request("GET", f"/incidents/{incident_id}/alerts", params={"limit": limit})
        alerts = answer.get("alerts")
        if not isinstance(alerts, list):
            raise errors.SourceRejected("PagerDuty answered alerts without an 'alerts' list")
        return [a for a in alerts if isinstance(a, dict)]

    def list_log_entries(
        self, incident_id: str, *, max_entries: int = 1000
    ) -> list[Mapping[str, object]]:
        """The incident's log entries (acknowledgements, escalations, resolution, …), every
        page, at most ``max_entries``, in the order PagerDuty returns them."""
        path = f"/incidents/{incident_id}/log_entries"
        entries: list[Mapping[str, object]] = []
        offset = 0
        while len(entries) < max_entries:
            limit = min(PAGE_LIMIT, max_entries - len(entries), MAX_RECORDS - offset)
            if limit <= 0:
                break
            params = {"limit": limit, "offset": offset, "time_zone": "UTC"}
            answer = self._request("GET", path, params=params)
            page = answer.get("log_entries")
            if not isinstance(page, list):
                raise errors.SourceRejected(
                    "PagerDuty answered log entries without a 'log_entries' list"
                )
            entries += [e for e in page if isinstance(e, dict)]
            if answer.get("more") is not True or not page:
                break
            offset += len(page)
        return entries[:max_entries]

    def create_note(self, incident_id: str, content: str) -> Mapping[str, object]:
        """Add a note to the incident as ``from_email``; returns PagerDuty's note object."""
        if not self.from_email:
            raise errors.ConfigurationError(
                "PagerDuty needs a From address to post notes; set DIAGNOSE_PAGERDUTY_FROM_EMAIL"
            )
        body = {"note": {"content": content[:MAX_NOTE_CHARS]}}
        answer = self._request(
            "POST",
            f"/incidents/{incident_id}/notes",
            json=body,
            headers={"From": self.from_email},
        )
        note = answer.get("note")
        return note if isinstance(note, dict) else {}

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> Mapping[str, object]:
        def attempt() -> httpx.Response:
            response = self._http.request(method, path, **kwargs)
            if _retryable(response.status_code):
                raise _Busy(response)
            return response

        try:
            response = _http.call_with_retries(
                attempt,
                policy=self.retry,
                retryable=lambda exc: isinstance(exc, _Busy | httpx.TransportError),
                asked_s=_asked_wait_s,
                sleep=self._sleep,
            )
        except httpx.TransportError as exc:
            raise errors.SourceUnavailable(f"PagerDuty {method} {path}: {exc}") from exc
        except _Busy as busy:
            response = busy.response
        return _decode(response, method=method, path=path)


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def _asked_wait_s(exc: Exception) -> float | None:
    return _http.asked_wait_s(exc.response.headers) if isinstance(exc, _Busy) else None


def _decode(response: httpx.Response, *, method: str, path: str) -> Mapping[str, object]:
    where = f"PagerDuty {method} {path}"
    if _retryable(response.status_code):
        raise errors.SourceUnavailable(f"{where}: HTTP {response.status_code} after retries")
    if response.status_code >= 400:
        raise errors.SourceRejected(
            f"{where}: HTTP {response.status_code}: {_message(response)}"
            + _hint(response.status_code)
        )
    try:
        data = response.json()
    except ValueError as exc:
        raise errors.SourceRejected(f"{where}: the answer is not JSON") from exc
    return data if isinstance(data, dict) else {}


def _message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        return response.text[:200]
    details = "; ".join(str(e) for e in error.get("errors") or [])
    return " ".join(part for part in (str(error.get("message", "")), details) if part)


def _hint(status: int) -> str:
    if status == 401:
        return " (check DIAGNOSE_PAGERDUTY_API_TOKEN)"
    if status in (400, 403):
        return " (the token needs write access; DIAGNOSE_PAGERDUTY_FROM_EMAIL must be a user)"
    return ""
