"""A real ``diagnose serve`` against slow clients on real sockets: connections that send their
request too slowly are closed within the read timeout, connections past the cap are closed at
once, and the server's file descriptors come back to where they were."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
READ_TIMEOUT_S = 2.0
MAX_CONNECTIONS = 150


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """``diagnose serve`` with a 2 s read timeout and a cap of 150 connections; (url, pid)."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIAGNOSE_")}
    env |= {"DIAGNOSE_STATE_DIR": str(tmp_path / "state"), "DIAGNOSE_KUBERNETES_ENABLED": "false"}
    args = ["serve", "--port", str(port), "--workers", "0"]
    args += ["--read-timeout", str(READ_TIMEOUT_S), "--max-connections", str(MAX_CONNECTIONS)]
    process = subprocess.Popen(
        [str(BIN / "diagnose"), *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "diagnose serve exited"
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "diagnose serve did not start"
            time.sleep(0.2)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(timeout=20)


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def _closed(sock: socket.socket) -> bool:
    """Whether the server has closed this connection (EOF or reset; a 408 may come first)."""
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except BlockingIOError:
        return False
    except OSError:
        return True


def test_slow_clients_are_cut_off_and_their_descriptors_returned(server: tuple[str, int]) -> None:
    """200 connections sending half a request: all closed within the timeout, fds back."""
    url, pid = server
    port = int(url.rsplit(":", 1)[1])
    before = _fds(pid)
    opened = []
    for n in range(200):
        sock = socket.create_connection(("127.0.0.1", port))
        # Headers begun, never finished; every tenth sends a whole header but half a body.
        if n % 10:
            sock.sendall(b"POST /webhooks/pagerduty HTTP/1.1\r\nHost: x\r\n")
        else:
            sock.sendall(
                b"POST /webhooks/pagerduty HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
            )
        sock.setblocking(False)
        opened.append(sock)
    time.sleep(0.5)
    assert _fds(pid) <= before + MAX_CONNECTIONS + 5, "connections past the cap were kept"
    deadline = time.monotonic() + READ_TIMEOUT_S + 3
    while not all(_closed(s) for s in opened) and time.monotonic() < deadline:
        time.sleep(0.1)
    still_open = sum(not _closed(s) for s in opened)
    for sock in opened:
        sock.close()
    assert still_open == 0
    time.sleep(0.5)
    assert _fds(pid) <= before + 2
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200


def test_a_client_that_sends_nothing_gets_408(server: tuple[str, int]) -> None:
    """A silent connection is answered 408 and closed after the read timeout."""
    url, _pid = server
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.settimeout(READ_TIMEOUT_S + 3)
        started = time.monotonic()
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 408")
        assert READ_TIMEOUT_S - 0.5 <= time.monotonic() - started <= READ_TIMEOUT_S + 2


def test_a_prompt_request_is_served_as_before(server: tuple[str, int]) -> None:
    """The deadline does not touch a client that sends its request at once, twice on one
    kept-alive connection."""
    url, _pid = server
    with httpx.Client(timeout=5) as client:
        assert client.get(f"{url}/healthz").status_code == 200
        time.sleep(READ_TIMEOUT_S + 0.5)  # idle past the deadline, inside keep-alive
        assert client.get(f"{url}/healthz").status_code == 200
