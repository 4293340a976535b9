"""`make run` and `make local-disable`: the local stand-in for a pod, driven end to end."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request

from support.contract import DISABLED_LINE, configmap_source
from support.control_plane import free_port
from support.paths import PYTHON, REPO, helm_binary


def status(port: int, token: str) -> bytes:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/autonomy/status", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.read()


def test_run_serves_the_chart_config_and_follows_local_toggles(tmp_path):
    port = free_port()
    env = {**os.environ, "HELM": helm_binary(), "LEVIATHAN_RUN_DIR": str(tmp_path)}
    script = str(REPO / "hack" / "local_run.py")
    run = subprocess.Popen(
        [str(PYTHON), script, "serve", "--port", str(port), "--tick-seconds", "0.5"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        token_file = tmp_path / "token"
        deadline = time.monotonic() + 20
        while True:
            try:
                answer = status(port, token_file.read_text().strip())
                break
            except OSError:
                assert time.monotonic() < deadline, "make run did not come up"
                time.sleep(0.1)
        config = tmp_path / "autonomy" / "dev.yaml"
        assert answer == f'{{"autonomy_enabled": true, "source": "{configmap_source(config)}"}}'.encode()
        assert (tmp_path / "autonomy" / "..data").is_symlink()
        assert token_file.stat().st_mode & 0o077 == 0

        flip = [str(PYTHON), script, "set", "--enabled", "false", "--reason", "INC-9, testing"]
        subprocess.run(flip, env=env, check=True, capture_output=True)
        deadline = time.monotonic() + 2
        while b'"autonomy_enabled": false' not in status(port, token_file.read_text().strip()):
            assert time.monotonic() < deadline, "the local toggle did not reach the control plane"
            time.sleep(0.05)
        time.sleep(1.5)  # a dry-run tick or two
    finally:
        run.send_signal(signal.SIGINT)
        output, _ = run.communicate(timeout=20)
    assert run.returncode == 0, output
    assert f'curl -H "Authorization: Bearer $(cat {os.path.relpath(token_file)})" http://127.0.0.1:{port}' in output
    assert "✓ Would submit job leviathan-worker-" in output
    assert DISABLED_LINE in output
    assert "Reason: INC-9, testing" in output
    assert "autonomy_enabled changed: true -> false" in output
