"""A real `leviathan-control-plane serve` on loopback, its files changed the way kubelet changes them."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from support.contract import SOURCE_ERROR, SOURCE_NOT_MOUNTED, configmap_source
from support.control_plane import TOKEN, ControlPlaneServer, eventually
from support.kubelet_volume import DATA, publish, remove
from support.paths import CONTROL_PLANE

ON = "autonomy_enabled: true\n"
OFF = "autonomy_enabled: false\n"


def configmap(path: Path, enabled: bool) -> dict:
    return {"autonomy_enabled": enabled, "source": configmap_source(path)}


NOT_MOUNTED = {"autonomy_enabled": True, "source": SOURCE_NOT_MOUNTED}
ERROR = {"autonomy_enabled": True, "source": SOURCE_ERROR}


class TestKubeletUpdates:
    def test_atomic_swap_is_followed(self, server, mount, config_path):
        assert server.status() == configmap(config_path, True)
        publish(mount, {"dev.yaml": OFF})
        server.wait_for_status(configmap(config_path, False), timeout=1.0)
        publish(mount, {"dev.yaml": ON})
        server.wait_for_status(configmap(config_path, True), timeout=1.0)
        eventually(lambda: server.logs().count("autonomy_enabled changed:") >= 2)  # logged just after it is served
        logs = server.logs()
        assert (
            f"INFO leviathan_control_plane.autonomy: autonomy_enabled changed: true -> false "
            f"(source: {configmap_source(config_path)})" in logs
        )
        assert logs.count("autonomy_enabled changed:") == 2

    def test_a_reason_is_logged_and_served_as_written(self, server, mount, config_path):
        """Any reason of the grammar (printable ASCII, no quote or backslash) reaches the log and the API as is."""
        reason = "INC-1: it's #1 {not: flow} [nor a list] & *no alias* ~ 50% off"
        publish(mount, {"dev.yaml": f'autonomy_enabled: false\nreason: "{reason}"\n'})
        server.wait_for_status(configmap(config_path, False), timeout=1.0)
        eventually(lambda: "autonomy_enabled changed: true -> false" in server.logs())
        assert (
            f"autonomy_enabled changed: true -> false (source: {configmap_source(config_path)}, reason: {reason})"
            in (server.logs())
        )
        assert server.get("/v1/autonomy", TOKEN).json()["reason"] == reason

    @pytest.mark.parametrize(
        "reason",
        [
            "INC-1\x1b[2J\r2026-01-01 00:00:00,000 INFO forged: all good\x7f",
            "INC-1\\n2026-01-01 00:00:00,000 INFO forged: all good",
        ],
        ids=["control characters", "a YAML escape"],
    )
    def test_a_reason_with_control_characters_is_refused_and_logged_escaped(self, server, mount, config_path, reason):
        """kubectl edit bypasses the chart schema. A reason with control characters or escapes is
        outside the switch grammar: the file is unusable (the default is served, the scheduler fails
        closed), and the warning quotes the line escaped, so it cannot forge or split a log line."""
        publish(mount, {"dev.yaml": f'autonomy_enabled: false\nreason: "{reason}"\n'})
        server.wait_for_status(ERROR, timeout=1.0)
        eventually(lambda: "forged" in server.logs())
        logs = server.log_path.read_bytes().decode()
        [line] = [line for line in logs.splitlines() if "forged" in line]  # inside the real line, not one of its own
        assert "WARNING leviathan_control_plane.autonomy: config unusable: " in line
        assert f"{config_path}: line 2 (" in line and "is outside the switch file's form" in line
        assert line.endswith(f"reporting the default autonomy_enabled=true (source: {SOURCE_ERROR})")
        assert all(char.isprintable() for char in logs.replace("\n", "")), logs
        detail = server.get("/v1/autonomy", TOKEN).json()
        assert (detail["reason"], detail["source"]) == ("", SOURCE_ERROR)
        assert detail["problem"].startswith(f"{config_path}: line 2 (")

    def test_a_reason_outside_ascii_is_refused_without_quoting_it(self, server, mount, config_path):
        publish(mount, {"dev.yaml": 'autonomy_enabled: false\nreason: "INC-1 \u2713 all good\u202e\u0085"\n'})
        server.wait_for_status(ERROR, timeout=1.0)
        problem = f"{config_path} has a byte outside printable ASCII at offset 39"
        eventually(lambda: problem in server.logs())
        assert server.get("/v1/autonomy", TOKEN).json()["problem"] == problem

    def test_many_swaps_without_a_wrong_answer(self, server, mount, config_path):
        for index in range(30):
            enabled = index % 2 == 1
            publish(mount, {"dev.yaml": ON if enabled else OFF})
            server.wait_for_status(configmap(config_path, enabled), timeout=1.0)

    def test_in_place_write(self, tmp_path):
        directory = tmp_path / "plain"
        directory.mkdir()
        config = directory / "dev.yaml"
        config.write_text(ON)
        token = tmp_path / "token"
        token.write_text(TOKEN)
        server = ControlPlaneServer(config, token, tmp_path / "plain.log")
        try:
            config.write_text(OFF.rstrip("\n"))  # the grammar allows the last newline out: as long as ON
            server.wait_for_status(configmap(config, False), timeout=1.0)
            with open(config, "r+") as handle:  # same size, rewritten in place
                handle.write(ON)
            assert config.read_text() == ON
            server.wait_for_status(configmap(config, True), timeout=1.0)
            config.unlink()
            server.wait_for_status(NOT_MOUNTED, timeout=1.0)
            config.write_text(OFF)
            server.wait_for_status(configmap(config, False), timeout=1.0)
        finally:
            server.stop()

    def test_mount_disappears_and_comes_back(self, server, mount, config_path):
        remove(mount)
        server.wait_for_status(NOT_MOUNTED, timeout=1.0)
        publish(mount, {"dev.yaml": OFF})
        server.wait_for_status(configmap(config_path, False), timeout=1.0)
        # The poller watches the new directory within a second.
        deadline = time.monotonic() + 2.0
        while f"watching {mount}" not in server.logs():
            assert time.monotonic() < deadline, server.logs()
            time.sleep(0.05)
        assert server.get("/readyz").status == 200
        publish(mount, {"dev.yaml": ON})
        server.wait_for_status(configmap(config_path, True), timeout=1.0)

    def test_key_removed_from_the_configmap(self, server, mount):
        publish(mount, {"other.yaml": ON})
        server.wait_for_status(NOT_MOUNTED, timeout=1.0)

    def test_permission_denied_file(self, server, mount, config_path):
        target = mount / DATA / "dev.yaml"
        target.chmod(0o000)
        try:
            server.wait_for_status(ERROR, timeout=1.5)
            assert "permission denied" in server.logs()
        finally:
            target.chmod(0o644)
        server.wait_for_status(configmap(config_path, True), timeout=1.5)

    def test_rotated_token(self, server, token_mount):
        publish(token_mount, {"control-plane-token": "rotated-token-abcdefghijklmnopqrstuvwxyz\n"})
        eventually(lambda: server.get("/v1/autonomy/status", TOKEN).status == 401)
        assert server.get("/v1/autonomy/status", "rotated-token-abcdefghijklmnopqrstuvwxyz").status == 200
        assert "rotated-token" not in server.logs()

    def test_unreadable_token_file_refuses_everyone(self, server, token_mount):
        target = token_mount / DATA / "control-plane-token"
        target.chmod(0o000)  # no directory event: the poll finds it
        try:
            eventually(lambda: server.get("/v1/autonomy/status", TOKEN).status == 401)
            assert server.get("/v1/autonomy/status", "").status == 401
            assert "permission denied" in server.logs().lower()
        finally:
            target.chmod(0o644)
        eventually(lambda: server.get("/v1/autonomy/status", TOKEN).status == 200)


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CONTROL_PLANE), *args], env={"PATH": os.environ["PATH"], **env}, capture_output=True, text=True, timeout=30
    )


class TestCheckCommand:
    @pytest.mark.parametrize(("expect", "code"), [("true", 0), ("false", 1)])
    def test_against_the_live_server(self, server, token_file, expect, code):
        url = f"{server.url}/v1/autonomy/status"
        result = run(
            "check",
            "--url",
            url,
            "--expect-enabled",
            expect,
            env={"LEVIATHAN_CONTROL_PLANE_TOKEN_FILE": str(token_file)},
        )
        assert result.returncode == code, result.stderr
        if code == 0:
            assert result.stdout.startswith("✓ autonomy_enabled is true (source: configmap:")
        else:
            assert "autonomy_enabled is true" in result.stderr
            assert "expected false" in result.stderr

    def test_waits_for_the_change_to_arrive(self, server, mount, token_file):
        url = f"{server.url}/v1/autonomy/status"
        env = {"LEVIATHAN_CONTROL_PLANE_TOKEN_FILE": str(token_file)}
        command = [str(CONTROL_PLANE), "check", "--url", url, "--expect-enabled", "false", "--timeout", "20"]
        with subprocess.Popen(
            command, env={"PATH": os.environ["PATH"], **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        ) as check:
            publish(mount, {"dev.yaml": OFF})
            out, err = check.communicate(timeout=30)
        assert check.returncode == 0, err
        assert out.startswith("✓ autonomy_enabled is false")

    def test_wrong_token(self, server):
        url = f"{server.url}/v1/autonomy/status"
        result = run("check", "--url", url, "--expect-enabled", "true", env={"LEVIATHAN_CONTROL_PLANE_TOKEN": "wrong"})
        assert result.returncode == 1
        assert "answered HTTP 401: check the token" in result.stderr

    def test_unreachable(self, token_file):
        from support.control_plane import free_port

        url = f"http://127.0.0.1:{free_port()}/v1/autonomy/status"
        result = run(
            "check",
            "--url",
            url,
            "--expect-enabled",
            "true",
            env={"LEVIATHAN_CONTROL_PLANE_TOKEN_FILE": str(token_file)},
        )
        assert result.returncode == 1
        assert "cannot reach" in result.stderr
        assert "Traceback" not in result.stderr

    def test_malformed_url(self):
        result = run(
            "check", "--url", "notaurl", "--expect-enabled", "true", env={"LEVIATHAN_CONTROL_PLANE_TOKEN": "x"}
        )
        assert result.returncode == 1
        assert result.stderr.startswith("✗ notaurl: unknown url type")
        assert "Traceback" not in result.stderr

    def test_no_token(self):
        result = run("check", "--url", "http://127.0.0.1:1/", "--expect-enabled", "true", env={})
        assert result.returncode == 2
        assert "no token" in result.stderr


class TestServeRefuses:
    @pytest.mark.parametrize(
        ("env", "message"),
        [
            ({}, "no token: set LEVIATHAN_CONTROL_PLANE_TOKEN_FILE"),
            ({"LEVIATHAN_CONTROL_PLANE_TOKEN": "   "}, "no token"),
            (
                {"LEVIATHAN_CONTROL_PLANE_TOKEN_FILE": "/nonexistent/token"},
                "token file /nonexistent/token does not exist",
            ),
            ({"LEVIATHAN_CONTROL_PLANE_TOKEN": "x", "LEVIATHAN_AUTONOMY_DEFAULT": "yes"}, "must be true or false"),
        ],
    )
    def test_without_a_usable_setup(self, env, message):
        result = run("serve", "--host", "127.0.0.1", "--port", "1", env=env)
        assert result.returncode == 2
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith("leviathan-control-plane: refusing to start: ")
        assert message in lines[0]

    @pytest.mark.parametrize("port", ["0", "99999", "http"])
    def test_bad_port(self, port):
        result = run("serve", "--port", port, env={"LEVIATHAN_CONTROL_PLANE_TOKEN": "x"})
        assert result.returncode == 2
        assert "argument --port" in result.stderr

    def test_blank_token_file(self, tmp_path):
        token = tmp_path / "token"
        token.write_text("\n")
        result = run("serve", "--port", "1", env={"LEVIATHAN_CONTROL_PLANE_TOKEN_FILE": str(token)})
        assert result.returncode == 2
        assert "is blank" in result.stderr


class TestCheckAgainstTheMountedConfig:
    """`helm test`'s first pod: the status must match the ConfigMap file the test pod mounts itself."""

    def check(self, server, token_file, expect_from: Path, source: str) -> subprocess.CompletedProcess[str]:
        return run(
            "check",
            "--url",
            f"{server.url}/v1/autonomy/status",
            "--expect-enabled-from",
            str(expect_from),
            "--expect-source",
            source,
            env={"LEVIATHAN_CONTROL_PLANE_TOKEN_FILE": str(token_file)},
        )

    def test_passes_and_says_what_it_checked(self, server, token_file, config_path):
        result = self.check(server, token_file, config_path, configmap_source(config_path))
        assert result.returncode == 0, result.stderr
        assert result.stdout == (
            f"✓ autonomy_enabled is true (source: {configmap_source(config_path)}), "
            f"as {config_path} mounted here says\n"
        )

    def test_follows_the_file_not_a_rendered_value(self, server, token_file, config_path, mount):
        publish(mount, {"dev.yaml": OFF})
        eventually(lambda: self.check(server, token_file, config_path, configmap_source(config_path)).returncode == 0)

    def test_fails_when_the_server_reads_another_file(self, server, token_file, config_path, tmp_path):
        other = tmp_path / "test-pod-mount"
        publish(other, {"dev.yaml": OFF})
        result = self.check(server, token_file, other / "dev.yaml", configmap_source(config_path))
        assert result.returncode == 1
        assert f"expected false as {other / 'dev.yaml'} mounted here says" in result.stderr

    def test_fails_on_the_wrong_source(self, server, token_file, config_path):
        prod = configmap_source("/etc/leviathan/autonomy/prod.yaml")
        result = self.check(server, token_file, config_path, prod)
        assert result.returncode == 1
        assert f"expected source {prod}" in result.stderr

    @pytest.mark.parametrize(
        ("content", "source"),
        [(None, SOURCE_NOT_MOUNTED), ("autonomy_enabled: yes\n", SOURCE_ERROR)],
    )
    def test_fails_while_the_mounted_config_is_unusable(
        self, server, token_file, config_path, tmp_path, content, source
    ):
        broken = tmp_path / "broken"
        publish(broken, {} if content is None else {"dev.yaml": content})
        result = self.check(server, token_file, broken / "dev.yaml", configmap_source(config_path))
        assert result.returncode == 1
        assert f"✗ the config mounted here is unusable ({source})" in result.stderr
        assert "Traceback" not in result.stderr
