"""The HTTP server's limits, against the real `leviathan-control-plane serve` on loopback.

Each test is an attack a client could make without a token: a huge request
head, a head that trickles in, a connection that never speaks, and more
connections than the server should hold.
"""

from __future__ import annotations

import contextlib
import http.client
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest

from support.control_plane import TOKEN, ControlPlaneServer
from support.paths import CONTROL_PLANE

MiB = 1024 * 1024


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM)."""
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024


def connect(server: ControlPlaneServer, timeout: float = 10) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    sock.settimeout(timeout)
    return sock


def read_answer(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def status_line(answer: bytes) -> str:
    return answer.split(b"\r\n", 1)[0].decode()


@pytest.fixture
def limited(config_path: Path, token_file: Path, tmp_path: Path):
    """A server with small limits, so the tests need neither many sockets nor long waits."""
    args = ("--max-connections", "4", "--header-timeout", "1", "--keep-alive-timeout", "1")
    running = ControlPlaneServer(config_path, token_file, tmp_path / "limited.log", args=args)
    yield running
    running.stop()


def test_a_huge_header_is_refused_without_buffering_it(server):
    """32 MiB in one header, no token: the default limits answer 431 and memory stays flat."""
    before = peak_rss_mib(server.process.pid)
    sock = connect(server)
    try:
        sock.sendall(b"GET /v1/autonomy/status HTTP/1.1\r\nHost: x\r\nX-Filler: ")
        chunk = b"a" * MiB
        for _ in range(32):
            sock.sendall(chunk)
        sock.sendall(b"\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server stopped reading, as it should
    answer = read_answer(sock)
    sock.close()
    growth = peak_rss_mib(server.process.pid) - before
    assert growth < 8, f"peak RSS grew by {growth:.1f} MiB during the request"
    assert status_line(answer) == "HTTP/1.1 431 Request Header Fields Too Large"
    # The server still answers everyone else.
    assert server.status()["autonomy_enabled"] is True


def test_many_headers_count_together(server):
    headers = "".join(f"X-Filler-{index}: {'b' * 1000}\r\n" for index in range(40))
    sock = connect(server)
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        sock.sendall(f"GET /v1/autonomy/status HTTP/1.1\r\nHost: x\r\n{headers}\r\n".encode())
    assert status_line(read_answer(sock)) == "HTTP/1.1 431 Request Header Fields Too Large"
    sock.close()


def test_a_request_under_the_limit_is_served(server):
    answer = server.get("/v1/autonomy/status", TOKEN, headers={"X-Filler": "c" * 8000})
    assert answer.status == 200


def test_a_trickling_head_is_cut_off(limited):
    """Slowloris: one byte of header at a time, each well within any idle timeout."""
    sock = connect(limited)
    sock.sendall(b"GET /v1/autonomy/status HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    answer = b""
    try:
        for _ in range(40):  # 4 s of trickling if nothing stops it
            sock.sendall(b"X")
            time.sleep(0.1)
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer = read_answer(sock)
    sock.close()
    assert status_line(answer) == "HTTP/1.1 408 Request Timeout"
    assert time.monotonic() - started < 3


def test_a_silent_connection_is_closed(limited):
    sock = connect(limited)
    started = time.monotonic()
    answer = read_answer(sock)
    sock.close()
    assert status_line(answer) == "HTTP/1.1 408 Request Timeout"
    assert time.monotonic() - started < 3


def test_an_idle_keep_alive_connection_is_closed(limited):
    connection = http.client.HTTPConnection("127.0.0.1", limited.port, timeout=10)
    for _ in range(2):  # the connection is kept alive between requests...
        connection.request("GET", "/v1/autonomy/status", headers={"Authorization": f"Bearer {TOKEN}"})
        response = connection.getresponse()
        assert response.status == 200
        response.read()
    started = time.monotonic()
    assert read_answer(connection.sock) == b""  # ...then closed, quietly, once idle
    assert time.monotonic() - started < 3
    connection.close()


def test_connections_over_the_cap_get_503(limited):
    held = [connect(limited) for _ in range(4)]
    try:
        time.sleep(0.2)  # let the server accept all four
        extra = connect(limited)
        answer = read_answer(extra)
        extra.close()
        assert status_line(answer) == "HTTP/1.1 503 Service Unavailable"
        assert b"too many connections" in answer
    finally:
        for sock in held:
            sock.close()
    # Slots free up as soon as connections close.
    deadline = time.monotonic() + 5
    while limited.get("/healthz").status != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--max-connections", "0"),
        ("--max-header-bytes", "-1"),
        ("--header-timeout", "nan"),
        ("--keep-alive-timeout", "inf"),
        ("--header-timeout", "0"),
    ],
)
def test_limits_must_be_sensible(flag, value):
    result = subprocess.run(
        [str(CONTROL_PLANE), "serve", flag, value], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 2
    assert f"argument {flag}: {value!r} is not" in result.stderr
    assert "Traceback" not in result.stderr
