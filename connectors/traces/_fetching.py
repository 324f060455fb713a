"""The one HTTP client of the trace connectors: bounded reads, retries, failures translated.

:meth:`Client.get_json` is the one choke point for timeouts, retries, auth headers
(``Authorization``, Tempo's ``X-Scope-OrgID`` tenant header) and error translation. The outside
world saying no (refused, timed out, 401/403, 4xx/5xx, garbage, a body cut short or too large)
becomes a :class:`CallError` with a status and a one-line summary; a 404 becomes
:class:`NotFoundError`, which each connector words for its own API.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from connectors import _http
from diagnose.domain.models import Status

_RETRIED_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class Limits:
    """How much one call may read. Defaults suit one diagnosis on a laptop."""

    max_traces: int = 200
    """Traces in one sample, whatever ``limit_traces`` asks for."""

    max_spans: int = 50_000
    """Spans in one sample; the traces after the one that crosses it are not read."""

    max_response_bytes: int = 16 * 1024 * 1024
    """One HTTP body (decoded); a larger one is abandoned mid-stream."""

    max_total_bytes: int = 128 * 1024 * 1024
    """All bodies of one call together."""

    max_attribute_chars: int = 1024
    """Longer attribute values (a huge ``db.statement``) are cut to this many characters."""

    slices: int = 4
    """The window is searched in this many equal slices (``limit / slices`` traces each), so a
    sample covers the whole window rather than whichever end the back end scans first."""

    deadline_s: float = 60.0
    """Wall time for one call, all its requests included."""

    def __post_init__(self) -> None:
        values = (self.max_traces, self.max_spans, self.max_response_bytes, self.slices)
        if min(values) < 1 or self.max_total_bytes < self.max_response_bytes:
            raise ValueError(f"limits must be positive and total >= response bytes: {self}")


class CallError(Exception):
    """A call that ended without (usable) data: the status and the one-line summary."""

    def __init__(self, status: Status, summary: str, *, retryable: bool = False) -> None:
        super().__init__(summary)
        self.status = status
        self.summary = summary
        self.retryable = retryable


class NotFoundError(Exception):
    """The back end answered 404."""


@dataclass
class Budget:
    """Bytes and time left for one call (several requests)."""

    bytes_left: int
    deadline: float
    bytes_read: int = 0

    def take(self, count: int) -> None:
        self.bytes_read += count
        self.bytes_left -= count


class Client:
    """The choke point: one ``httpx.Client`` per back end, bounded reads, translated failures."""

    def __init__(
        self,
        url: str,
        *,
        system: str,
        timeout_s: float,
        headers: Mapping[str, str],
        limits: Limits,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.url = url.rstrip("/")
        self.system = system
        self.timeout_s = timeout_s
        self.limits = limits
        self._http = httpx.Client(
            headers=dict(headers),
            timeout=httpx.Timeout(timeout_s),
            transport=transport,
            follow_redirects=False,
        )

    def close(self) -> None:
        self._http.close()

    def budget(self) -> Budget:
        deadline = time.monotonic() + self.limits.deadline_s
        return Budget(bytes_left=self.limits.max_total_bytes, deadline=deadline)

    def full_url(self, path: str, params: Mapping[str, str | int] | None = None) -> str:
        """The exact URL a request goes to: what an engineer pastes into curl."""
        return str(httpx.URL(self.url + path, params=dict(params or {})))

    def get_json(self, path: str, *, params: Mapping[str, str | int], budget: Budget) -> Any:
        """GET and decode JSON, once more after a 502/503/504 or a refused connection, 0.2 s
        later, when the budget's deadline leaves room for the wait."""
        left_s = budget.deadline - time.monotonic()
        return _http.call_with_retries(
            lambda: self._get_json(path, params=params, budget=budget),
            policy=_http.RetryPolicy(attempts=2, backoff_s=0.2, budget_s=left_s),
            retryable=lambda exc: isinstance(exc, CallError) and exc.retryable,
        )

    def _get_json(self, path: str, *, params: Mapping[str, str | int], budget: Budget) -> Any:
        body = self._get_bytes(path, params=params, budget=budget)
        try:
            return json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CallError(
                Status.ERROR,
                f"{self.system} at {self.url} answered {path} with something that is not JSON "
                f"({brief(exc)}; {len(body):,} bytes): check that the URL points at the "
                f"{self.system} query API",
            ) from exc

    def _get_bytes(self, path: str, *, params: Mapping[str, str | int], budget: Budget) -> bytes:
        if time.monotonic() >= budget.deadline:
            raise CallError(Status.ERROR, f"gave up on {self.system}: call deadline reached")
        deadline = min(budget.deadline, time.monotonic() + self.timeout_s)
        try:
            with self._http.stream("GET", self.url + path, params=dict(params)) as response:
                self._check_status(response, path=path)
                return self._read_capped(response, budget=budget, deadline=deadline)
        except httpx.TimeoutException as exc:
            raise CallError(
                Status.ERROR,
                f"{self.system} at {self.url} did not answer {path} within {self.timeout_s:g} s; "
                "narrow the window or raise the timeout",
            ) from exc
        except httpx.ConnectError as exc:
            raise CallError(
                Status.ERROR,
                f"{self.system} at {self.url} refused the connection ({brief(exc)}); check the "
                "URL, or start the lab with `diagnose lab up`",
                retryable=True,
            ) from exc
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            raise CallError(
                Status.ERROR,
                f"{self.system} at {self.url} cut the connection in the middle of {path} "
                f"({brief(exc)}); the answer was incomplete and is not used",
            ) from exc
        except httpx.HTTPError as exc:
            raise CallError(
                Status.ERROR, f"request to {self.url}{path} failed: {brief(exc)}"
            ) from exc

    def _check_status(self, response: httpx.Response, *, path: str) -> None:
        code = response.status_code
        if code < 400:
            return
        detail = _error_detail(_read_prefix(response, 2048))
        if code == 404:
            raise NotFoundError(detail)
        if code in (401, 403):
            raise CallError(
                Status.DENIED,
                f"{self.system} at {self.url} refused {path} with HTTP {code} ({detail}): "
                "check the credentials in the connector's headers"
                + (" and the tenant (X-Scope-OrgID)" if self.system == "Tempo" else ""),
            )
        raise CallError(
            Status.ERROR,
            f"{self.system} answered {path} with HTTP {code}: {detail}",
            retryable=code in _RETRIED_STATUSES,
        )

    def _read_capped(self, response: httpx.Response, *, budget: Budget, deadline: float) -> bytes:
        cap = min(self.limits.max_response_bytes, budget.bytes_left)
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise self._too_big(int(declared), cap=cap, declared=True)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            budget.take(len(chunk))
            if size > cap:
                raise self._too_big(size, cap=cap, declared=False)
            if time.monotonic() > deadline:
                raise CallError(
                    Status.ERROR,
                    f"{self.system} at {self.url} was still sending after {self.timeout_s:g} s "
                    f"({size:,} bytes so far); stopped reading",
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_big(self, size: int, *, cap: int, declared: bool) -> CallError:
        verb = "declared" if declared else "sent more than"
        return CallError(
            Status.ERROR,
            f"{self.system} at {self.url} {verb} {size:,} bytes, over the {cap:,}-byte cap; "
            "stopped reading: narrow the window or lower limit_traces",
        )


def _read_prefix(response: httpx.Response, size: int) -> str:
    data = b""
    try:
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) >= size:
                break
    except httpx.HTTPError:
        pass  # the error status is what we report; a broken error body adds nothing
    return data[:size].decode("utf-8", "replace")


def _error_detail(text: str) -> str:
    """Tempo answers errors in plain text; Jaeger as ``{"errors": [{"code", "msg"}]}``."""
    try:
        body = json.loads(text)
    except json.JSONDecodeError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        first = body["errors"][0]
        if isinstance(first, dict) and "msg" in first:
            return str(first["msg"])[:300]
    return " ".join(text.split())[:300] or "no message"


def brief(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "…"
