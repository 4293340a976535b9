"""The config or token cannot be read: a passing failure keeps the last good content, a bad file does not.

All against the real server process: the descriptor exhaustion is real
(the process's RLIMIT_NOFILE lowered from outside), and so are the FIFOs.
"""

from __future__ import annotations

import http.client
import json
import os
import resource
import signal
import subprocess
import time
from pathlib import Path

import pytest

from support.contract import SOURCE_ERROR, configmap_source
from support.control_plane import TOKEN, ControlPlaneServer, eventually
from support.kubelet_volume import DATA, publish
from support.paths import CONTROL_PLANE

OFF = "autonomy_enabled: false\n"
ERROR = {"autonomy_enabled": True, "source": SOURCE_ERROR}


class Connection:
    """One kept-alive connection: it keeps working while the server cannot open new descriptors."""

    def __init__(self, server: ControlPlaneServer) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)

    def get(self, path: str, token: str = TOKEN) -> tuple[int, bytes]:
        self._connection.request("GET", path, headers={"Authorization": f"Bearer {token}"})
        response = self._connection.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self._connection.close()


def stop_within(server: ControlPlaneServer, seconds: float) -> None:
    """SIGTERM, as kubelet sends it; the server must be gone well before kubelet's SIGKILL."""
    server.process.send_signal(signal.SIGTERM)
    try:
        server.process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()
        pytest.fail(f"the server ignored SIGTERM for {seconds}s:\n{server.logs()}")


class TestOutOfFileDescriptors:
    def test_the_last_good_config_and_token_stay_in_force(self, server, mount, config_path):
        publish(mount, {"dev.yaml": OFF})
        off = {"autonomy_enabled": False, "source": configmap_source(config_path)}
        server.wait_for_status(off)
        connection = Connection(server)
        assert connection.get("/readyz")[0] == 200
        pid = server.process.pid
        limits = resource.prlimit(pid, resource.RLIMIT_NOFILE)
        # Every descriptor number from 3 up is taken or over the limit: any open() is EMFILE.
        resource.prlimit(pid, resource.RLIMIT_NOFILE, (3, limits[1]))
        try:
            eventually(lambda: connection.get("/readyz")[0] == 503, timeout=3)
            status, body = connection.get("/readyz")
            assert "Too many open files" in json.loads(body)["status"]
            for _ in range(5):  # several polls while exhausted: still the truth, still authorized
                status, body = connection.get("/v1/autonomy/status")
                assert (status, json.loads(body)) == (200, off)
                time.sleep(0.2)
            metrics = connection.get("/metrics")[1].decode()
            assert 'leviathan_file_read_failing{file="config"} 1.0' in metrics
            assert 'leviathan_file_read_failing{file="token"} 1.0' in metrics
        finally:
            resource.prlimit(pid, resource.RLIMIT_NOFILE, limits)
        eventually(lambda: connection.get("/readyz")[0] == 200, timeout=3)
        metrics = connection.get("/metrics")[1].decode()
        assert 'leviathan_file_read_failing{file="config"} 0.0' in metrics
        assert 'leviathan_file_read_failures_total{file="config"} 1.0' in metrics
        connection.close()

        logs = server.logs()
        assert "Too many open files: keeping the last config read" in logs
        assert "Too many open files: keeping the last token read" in logs
        assert f"config {config_path} reads again" in logs
        # Neither a state change nor a token rotation happened, so none is logged.
        assert "rotated" not in logs
        assert "config unusable" not in logs
        assert logs.count("autonomy_enabled changed:") == 1  # true -> false, before the exhaustion


class TestNotARegularFile:
    def test_a_fifo_config_at_startup(self, mount, token_file, tmp_path):
        fifo = mount / "fifo.yaml"
        os.mkfifo(fifo)
        server = ControlPlaneServer(fifo, token_file, tmp_path / "fifo.log")
        try:
            assert server.status() == ERROR
            assert f"{fifo} is a FIFO, not a regular file" in server.logs()
        finally:
            stop_within(server, 8)

    def test_a_fifo_swapped_in_while_running(self, server, mount, config_path):
        target = mount / DATA / "dev.yaml"
        target.unlink()
        os.mkfifo(target)
        server.wait_for_status(ERROR, timeout=2)
        assert "is a FIFO, not a regular file" in server.logs()
        assert server.get("/healthz").status == 200
        stop_within(server, 8)

    def test_a_fifo_token_while_running_refuses_everyone(self, server, token_mount):
        target = token_mount / DATA / "control-plane-token"
        target.unlink()
        os.mkfifo(target)
        eventually(lambda: server.get("/v1/autonomy/status", TOKEN).status == 401, timeout=2)
        # The server logs just after it swaps the token in: under load the 401 can come first.
        line = "is a FIFO, not a regular file: every request will be refused with 401"
        eventually(lambda: line in server.logs(), timeout=2)
        stop_within(server, 8)

    @pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
    def test_serve_refuses_a_token_that_is_not_a_file(self, tmp_path: Path, kind):
        token = {"fifo": tmp_path / "token", "device": Path("/dev/zero"), "directory": tmp_path}[kind]
        if kind == "fifo":
            os.mkfifo(token)
        result = subprocess.run(
            [str(CONTROL_PLANE), "serve", "--host", "127.0.0.1", "--port", "1"],
            env={"PATH": os.environ["PATH"], "LEVIATHAN_CONTROL_PLANE_TOKEN_FILE": str(token)},
            capture_output=True,
            text=True,
            timeout=20,
        )
        assert result.returncode == 2
        described = {"fifo": "a FIFO", "device": "a character device", "directory": "a directory"}[kind]
        assert result.stderr == (
            f"leviathan-control-plane: refusing to start: token file {token} is {described}, "
            "not a regular file (LEVIATHAN_CONTROL_PLANE_TOKEN_FILE)\n"
        )
