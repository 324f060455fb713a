"""Fixtures for Slack: the Web API at the wire, and the service pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from diagnose import wiring
from diagnose.server import app, jobs, working
from diagnose.settings import Settings
from tests.server.conftest import make_settings, open_service, serving
from tests.support import slackapi

SIGNING_SECRET = "slack-signing-secret-0123"
CHANNEL = "C0INCIDENTS"
ALICE, BOB, MALLORY = "U0ALICE", "U0BOB", "U0MALLORY"


def slack_settings(state_dir: Path, *, api_url: str, **overrides: Any) -> Settings:
    """The service's test settings with Slack on, pointed at ``api_url``."""
    return make_settings(
        state_dir,
        slack_bot_token="xoxb-test-token",
        slack_signing_secret=SIGNING_SECRET,
        slack_channel=CHANNEL,
        slack_approvers=f"{ALICE}=alice,{BOB}=bob",
        slack_api_url=api_url,
        **overrides,
    )


@pytest.fixture
def slack_api() -> Iterator[slackapi.SlackApi]:
    with slackapi.serving() as api:
        yield api


@contextmanager
def slack_service(settings: Settings) -> Iterator[tuple[app.Service, str]]:
    """The service opened for real with its Slack client, served on loopback."""
    with ExitStack() as stack:
        service = stack.enter_context(open_service(settings))
        service.slack = wiring.open_slack(settings)
        url = stack.enter_context(serving(app.create_app(service)))
        yield service, url


def slack_worker(service: app.Service) -> working.Worker:
    """A worker sharing the service's agent and queue, with the Slack client."""
    tools = jobs.Tools(
        settings=service.settings,
        agent=service.agent,
        queue=service.queue,
        pagerduty=None,
        naming=service.naming,
        progress=lambda _m: None,
        chat=service.slack,
    )
    return working.Worker(name="w-slack", tools=tools, metrics=service.metrics)
