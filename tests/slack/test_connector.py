"""The Slack connector against the Web API at the wire: rate limits and an absent Slack."""

from __future__ import annotations

import time

import pytest

from connectors import slack
from diagnose.domain import errors
from tests.support import slackapi


def test_a_429_is_repeated_after_the_wait_slack_asked_for(slack_api: slackapi.SlackApi) -> None:
    """Slack answers 429 with Retry-After: 1; the message is posted on the second try."""
    slack_api.busy, slack_api.retry_after_s = 1, 1
    client = slack.SlackClient(token="xoxb-t", signing_secret=None, base_url=slack_api.url)
    began = time.monotonic()
    ts = client.post(channel="C1", text="hello", blocks=[], thread=None)
    assert ts and len(slack_api.called("chat.postMessage")) == 2
    assert time.monotonic() - began >= 1.0


def test_a_rate_limit_that_outlasts_the_retries_is_unavailable(
    slack_api: slackapi.SlackApi,
) -> None:
    """Past its retries the client says Slack is unavailable, to try later."""
    slack_api.busy, slack_api.retry_after_s = 5, 0
    client = slack.SlackClient(
        token="xoxb-t", signing_secret=None, base_url=slack_api.url, rate_limit_retries=1
    )
    with pytest.raises(errors.SourceUnavailable, match="429"):
        client.update(channel="C1", ts="1.1", text="x", blocks=[])
    assert len(slack_api.called("chat.update")) == 2


def test_an_unreachable_slack_is_unavailable_and_names_the_setting() -> None:
    client = slack.SlackClient(
        token="xoxb-t", signing_secret=None, base_url="http://127.0.0.1:9/api/"
    )
    with pytest.raises(errors.SourceUnavailable, match="DIAGNOSE_SLACK_API_URL"):
        client.post(channel="C1", text="x", blocks=[], thread=None)


def test_the_token_never_appears_in_an_error(slack_api: slackapi.SlackApi) -> None:
    """A refused call's message names the setting to check, not the token."""
    slack_api.busy, slack_api.retry_after_s = 5, 0
    client = slack.SlackClient(
        token="xoxb-very-secret", signing_secret=None, base_url=slack_api.url, rate_limit_retries=0
    )
    with pytest.raises(errors.SourceError) as caught:
        client.open_view(trigger_id="t", view={"type": "modal"})
    assert "xoxb-very-secret" not in str(caught.value)
