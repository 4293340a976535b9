"""Run the real `leviathan-control-plane` on loopback, and ask it things."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from support.paths import CONTROL_PLANE

if TYPE_CHECKING:
    from starlette.testclient import TestClient

TOKEN = "test-token-0123456789abcdefghijklmnop"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def without_dac_override() -> list[str]:
    """As root, run the server without the capabilities that ignore file permissions.

    Otherwise a chmod 000 file would still be readable and the permission
    tests would prove nothing.
    """
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    assert setpriv, "setpriv (util-linux) is needed to test permission errors as root"
    drop = "-dac_override,-dac_read_search"
    return [setpriv, f"--inh-caps={drop}", f"--bounding-set={drop}"]


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)


class ControlPlaneServer:
    def __init__(
        self,
        config_path: Path,
        token_file: Path,
        log_path: Path,
        extra_env: dict[str, str] | None = None,
        args: tuple[str, ...] = (),
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {
            "PATH": os.environ["PATH"],
            "LEVIATHAN_AUTONOMY_CONFIG": str(config_path),
            "LEVIATHAN_CONTROL_PLANE_TOKEN_FILE": str(token_file),
            **(extra_env or {}),
        }
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        command = [str(CONTROL_PLANE), "serve", "--host", "127.0.0.1", "--port", str(self.port), *args]
        self.process = subprocess.Popen(
            [*without_dac_override(), *command], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )
        try:
            self._wait_until_up()
        except AssertionError:
            self.stop()  # a server that never came up must not outlive the test
            raise

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited early:\n{self.logs()}")
            try:
                if self.get("/readyz").status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server did not become ready:\n{self.logs()}")

    def get(self, path: str, token: str | None = None, headers: dict[str, str] | None = None) -> Answer:
        request = urllib.request.Request(self.url + path, headers=dict(headers or {}))
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return Answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), error.read())

    def status(self, token: str = TOKEN) -> dict:
        answer = self.get("/v1/autonomy/status", token)
        assert answer.status == 200, answer
        return answer.json()

    def wait_for_status(self, expected: dict, timeout: float = 2.0) -> float:
        """Seconds until /v1/autonomy/status answers `expected`; fails after `timeout`."""
        start = time.monotonic()
        while True:
            current = self.status()
            if current == expected:
                return time.monotonic() - start
            if time.monotonic() - start > timeout:
                raise AssertionError(f"still {current} after {timeout}s, expected {expected}\n{self.logs()}")
            time.sleep(0.01)

    def logs(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def bearer(token: str = TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def eventually(check: Callable[[], bool], timeout: float = 1.5) -> None:
    """Wait for a change to be picked up: events take milliseconds, the poll at most half a second."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not true within {timeout}s"
        time.sleep(0.005)


def status_becomes(client: TestClient, expected: dict, token: str = TOKEN) -> None:
    eventually(lambda: client.get("/v1/autonomy/status", headers=bearer(token)).json() == expected)
