"""Slack's Web API and its request signatures, through the official ``slack-sdk``.

The one choke point for Slack: ``chat.postMessage``, ``chat.update`` and ``views.open`` with the
bot token, and the check of ``X-Slack-Signature`` on interaction requests (``v0=`` HMAC-SHA256
of ``v0:{timestamp}:{body}`` under the signing secret, constant-time, refused past 5 minutes:
the SDK's ``SignatureVerifier``). A 429 is repeated after the ``Retry-After`` Slack asks for
(the SDK's ``RateLimitErrorRetryHandler``); a refused connection is tried once more.

Errors leave as :class:`SourceUnavailable` (Slack is down, slow or still rate-limiting) or
:class:`SourceRejected` (Slack said no: a bad token, an unknown channel, an expired
``trigger_id``), chained to the SDK's error. Tokens never appear in either.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib import error as urlerror

from slack_sdk import WebClient
from slack_sdk import errors as slack_errors
from slack_sdk.http_retry import builtin_handlers
from slack_sdk.signature import SignatureVerifier

from diagnose import settings as config
from diagnose.domain import errors
from diagnose.domain.models import JSON


class SlackClient:
    """The four things the service asks of Slack (the ``ports.Chat`` port)."""

    def __init__(
        self,
        *,
        token: str,
        signing_secret: str | None,
        base_url: str = "https://slack.com/api/",
        timeout_s: float = 10.0,
        rate_limit_retries: int = 2,
    ) -> None:
        handlers = [
            builtin_handlers.RateLimitErrorRetryHandler(max_retry_count=rate_limit_retries),
            builtin_handlers.ConnectionErrorRetryHandler(max_retry_count=1),
        ]
        self._web = WebClient(
            token=token,
            base_url=base_url,
            timeout=max(1, math.ceil(timeout_s)),
            retry_handlers=list(handlers),
        )
        self._verifier = SignatureVerifier(signing_secret) if signing_secret else None

    @classmethod
    def from_settings(cls, settings: config.SlackSettings) -> SlackClient | None:
        """The client the settings describe, or None when Slack is off or has no bot token."""
        if not settings.enabled or settings.bot_token is None:
            return None
        secret = settings.signing_secret
        return cls(
            token=settings.bot_token.get_secret_value(),
            signing_secret=secret.get_secret_value() if secret is not None else None,
            base_url=settings.api_url,
            timeout_s=settings.timeout_s,
            rate_limit_retries=settings.rate_limit_retries,
        )

    def post(
        self, *, channel: str, text: str, blocks: Sequence[Mapping[str, JSON]], thread: str | None
    ) -> str:
        answer = self._call(
            "chat.postMessage",
            lambda: self._web.chat_postMessage(
                channel=channel, text=text, blocks=[dict(b) for b in blocks], thread_ts=thread
            ),
        )
        ts = answer.get("ts")
        if not isinstance(ts, str):
            raise errors.SourceRejected("Slack answered chat.postMessage without a message ts")
        return ts

    def update(
        self, *, channel: str, ts: str, text: str, blocks: Sequence[Mapping[str, JSON]]
    ) -> None:
        self._call(
            "chat.update",
            lambda: self._web.chat_update(
                channel=channel, ts=ts, text=text, blocks=[dict(b) for b in blocks]
            ),
        )

    def open_view(self, *, trigger_id: str, view: Mapping[str, JSON]) -> None:
        self._call(
            "views.open", lambda: self._web.views_open(trigger_id=trigger_id, view=dict(view))
        )

    def authentic(self, body: bytes, *, timestamp: str | None, signature: str | None) -> bool:
        if self._verifier is None:
            return False
        try:
            return self._verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
        except ValueError:  # a timestamp that is not a number
            return False

    def close(self) -> None:
        """Nothing to close: the SDK opens one connection per request."""

    def _call(self, method: str, call: Any) -> Mapping[str, Any]:
        try:
            response = call()
        except slack_errors.SlackApiError as exc:
            status = exc.response.status_code
            said = exc.response.get("error") if isinstance(exc.response.data, dict) else None
            detail = f"Slack refused {method} (HTTP {status}: {said or 'no error given'})"
            if status == 429 or status >= 500:
                raise errors.SourceUnavailable(detail + "; try again later") from exc
            raise errors.SourceRejected(
                detail + ": check DIAGNOSE_SLACK_BOT_TOKEN, the app's scopes (chat:write) and "
                "that the bot is in DIAGNOSE_SLACK_CHANNEL"
            ) from exc
        except (urlerror.URLError, OSError) as exc:
            raise errors.SourceUnavailable(
                f"Slack's Web API did not answer {method} ({exc}): check DIAGNOSE_SLACK_API_URL "
                "and the network path to it"
            ) from exc
        data = response.data
        return data if isinstance(data, dict) else {}
