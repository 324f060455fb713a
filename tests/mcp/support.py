"""Driving ``diagnose mcp`` with the MCP SDK's own client, over stdio or streamable HTTP."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import anyio
from mcp import Client
from mcp.client.stdio import StdioServerParameters

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = ROOT / "tests" / "scenarios"
# The command line of this checkout (not whichever `diagnose` is first on PATH).
COMMAND = [sys.executable, "-c", "from diagnose.cli import main; main()"]

T = TypeVar("T")


def environment(state_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    return env | {"DIAGNOSE_STATE_DIR": str(state_dir), "NO_COLOR": "1", **extra}


def stdio(state_dir: Path, *args: str, env: dict[str, str] | None = None) -> Client:
    """A client that starts ``diagnose mcp ARGS`` and talks to it over stdin and stdout."""
    server = StdioServerParameters(
        command=COMMAND[0],
        args=[*COMMAND[1:], "mcp", *args],
        env=environment(state_dir, **(env or {})),
        cwd=str(ROOT),
    )
    return Client(server, read_timeout_seconds=120)


def session(client: Client, body: Callable[[Client], Awaitable[T]]) -> T:
    """Run ``body`` with the client connected; its result."""

    async def main() -> T:
        async with client:
            return await body(client)

    return anyio.run(main)


def answer(result: Any) -> dict[str, Any]:
    """A tool's JSON answer (its one text item), or its error text as ``{"error": …}``."""
    text = "".join(getattr(item, "text", "") for item in result.content)
    if result.is_error:
        return {"error": text}
    return dict(json.loads(text))


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    return answer(await client.call_tool(tool, arguments))


async def read(client: Client, uri: str) -> str:
    found = await client.read_resource(uri)
    return "".join(getattr(item, "text", "") for item in found.contents)


def json_of(text: str) -> dict[str, Any]:
    return dict(json.loads(text))
