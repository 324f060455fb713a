"""``diagnose mcp --http``: streamable HTTP behind the approval API's bearer tokens, driven by
the MCP SDK's client."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import anyio
import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from tests.mcp import support

pytestmark = pytest.mark.slow

TOKEN = "s3cret-token-for-bob"
T = TypeVar("T")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `diagnose mcp --http` process on a free port."""
    port = _free_port()
    state_dir = tmp_path_factory.mktemp("mcp-http")
    env = support.environment(state_dir, DIAGNOSE_API_TOKENS=f"bob:{TOKEN}")
    command = [*support.COMMAND, "mcp", "--http", "--port", str(port)]
    with (state_dir / "server.log").open("wb") as log:
        process = subprocess.Popen(command, env=env, cwd=support.ROOT, stderr=log)
        try:
            _wait_for(port, process)
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            process.terminate()
            process.wait(timeout=30)


def _wait_for(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "diagnose mcp --http exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("diagnose mcp --http did not listen within 60 s")


def _session(url: str, token: str, body: Callable[[Client], Awaitable[T]]) -> T:
    """Run ``body`` with the SDK's client connected over HTTP with this bearer token."""

    async def main() -> T:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx2.AsyncClient(headers=headers, timeout=120) as http:
            transport = streamable_http_client(url, http_client=http)
            async with Client(transport, read_timeout_seconds=120) as client:
                return await body(client)

    return anyio.run(main)


def test_a_client_with_the_token_lists_tools_and_runs(url: str) -> None:
    """With a token from DIAGNOSE_API_TOKENS the SDK's client lists the tools and calls one."""

    async def body(c: Client) -> tuple[set[str], dict[str, Any]]:
        tools = {t.name for t in (await c.list_tools()).tools}
        return tools, await support.call(c, "list_runs")

    tools, listed = _session(url, TOKEN, body)
    assert "start_diagnosis" in tools
    assert listed == {"runs": []}


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token-000", f"Basic {TOKEN}"])
def test_a_request_without_a_valid_bearer_token_is_refused(
    url: str, authorization: str | None
) -> None:
    """No token, a wrong one or another scheme: 401 with WWW-Authenticate: Bearer."""
    headers = {"Accept": "application/json, text/event-stream"}
    if authorization:
        headers["Authorization"] = authorization
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
    response = httpx.post(url, json=initialize, headers=headers, timeout=30)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_http_without_tokens_configured_refuses_to_start(tmp_path: Path) -> None:
    """Without DIAGNOSE_API_TOKENS the HTTP transport does not start, and says what to set."""
    done = subprocess.run(
        [*support.COMMAND, "mcp", "--http", "--port", str(_free_port())],
        env=support.environment(tmp_path),
        cwd=support.ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "DIAGNOSE_API_TOKENS" in done.stderr
