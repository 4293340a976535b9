"""The HTTP contract, through Starlette's TestClient."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from leviathan_control_plane.app import Settings, create_app
from support.config_cases import INVALID
from support.contract import SOURCE_ERROR, SOURCE_NOT_MOUNTED, configmap_source
from support.control_plane import TOKEN, bearer, eventually, status_becomes
from support.kubelet_volume import publish, remove


class TestStatus:
    @pytest.mark.parametrize(
        ("body", "enabled"),
        [
            ("autonomy_enabled: true", True),
            ("autonomy_enabled: false\n", False),
            ('autonomy_enabled: true\nreason: "INC-1: back on"\n', True),
            ('autonomy_enabled: false\nreason: "INC-1 # not a comment"\nreview_by: "2026-12-01T09:00:00Z"\n', False),
        ],
    )
    def test_reads_the_mounted_file(self, client, mount, config_path, body, enabled):
        publish(mount, {"dev.yaml": body})
        status_becomes(client, {"autonomy_enabled": enabled, "source": configmap_source(config_path)})
        response = client.get("/v1/autonomy/status", headers=bearer())
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        # This very file was read (not the fixture's `autonomy_enabled: true`).
        eventually(
            lambda: (
                client.get("/v1/autonomy", headers=bearer()).json()["config_sha256"]
                == hashlib.sha256(body.encode()).hexdigest()
            )
        )

    def test_exactly_the_two_runbook_fields(self, client):
        assert list(client.get("/v1/autonomy/status", headers=bearer()).json()) == ["autonomy_enabled", "source"]

    def test_missing_mount_reports_the_default(self, client, mount):
        remove(mount)
        status_becomes(client, {"autonomy_enabled": True, "source": SOURCE_NOT_MOUNTED})

    @pytest.mark.parametrize(("content", "problem"), INVALID.values(), ids=INVALID.keys())
    def test_unusable_config_reports_the_default_and_warns_once(self, client, mount, caplog, content, problem):
        caplog.set_level(logging.INFO)
        publish(mount, {"dev.yaml": content})
        status_becomes(client, {"autonomy_enabled": True, "source": SOURCE_ERROR})
        for _ in range(3):
            answer = client.get("/v1/autonomy/status", headers=bearer()).json()
            assert answer == {"autonomy_enabled": True, "source": SOURCE_ERROR}
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1, warnings
        assert problem in warnings[0]

    def test_config_path_that_is_a_directory(self, mount, token_file):
        app = create_app(Settings(config_path=str(mount), token_file=str(token_file)))
        with TestClient(app) as client:
            assert client.get("/v1/autonomy/status", headers=bearer()).json()["source"] == SOURCE_ERROR

    @pytest.mark.parametrize("default", [True, False])
    def test_default_is_configurable(self, mount, token_file, monkeypatch, default):
        monkeypatch.setenv("LEVIATHAN_AUTONOMY_CONFIG", str(mount / "missing.yaml"))
        monkeypatch.setenv("LEVIATHAN_CONTROL_PLANE_TOKEN_FILE", str(token_file))
        monkeypatch.setenv("LEVIATHAN_AUTONOMY_DEFAULT", str(default).lower())
        with TestClient(create_app(Settings.from_env())) as client:
            answer = client.get("/v1/autonomy/status", headers=bearer()).json()
        assert answer == {"autonomy_enabled": default, "source": SOURCE_NOT_MOUNTED}


class TestAuth:
    @pytest.mark.parametrize(
        "headers",
        [
            {},
            {"Authorization": ""},
            {"Authorization": "Bearer"},
            {"Authorization": "Bearer "},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Bearer {TOKEN[:-1]}"},
            {"Authorization": f"Bearer {TOKEN}x"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": TOKEN},
            {"Authorization": f"Token {TOKEN}"},
        ],
        ids=["none", "empty", "scheme-only", "scheme-space", "wrong", "prefix", "suffix", "basic", "bare", "token"],
    )
    @pytest.mark.parametrize("path", ["/v1/autonomy/status", "/v1/autonomy"])
    def test_refused_with_401(self, client, headers, path):
        response = client.get(path, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json() == {"error": "unauthorized", "detail": "a valid bearer token is required"}
        assert TOKEN not in response.text

    @pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
    def test_scheme_is_case_insensitive(self, client, scheme):
        assert client.get("/v1/autonomy/status", headers={"Authorization": f"{scheme} {TOKEN}"}).status_code == 200

    def test_rotated_token_applies_without_restart(self, client, token_mount):
        publish(token_mount, {"control-plane-token": "rotated-token-abcdefghijklmnopqrstuvwxyz"})
        eventually(lambda: client.get("/v1/autonomy/status", headers=bearer()).status_code == 401)
        rotated = bearer("rotated-token-abcdefghijklmnopqrstuvwxyz")
        assert client.get("/v1/autonomy/status", headers=rotated).status_code == 200

    @pytest.mark.parametrize("content", ["", "  \n", "\n"])
    def test_blank_token_file_locks_everyone_out(self, client, token_mount, content, caplog):
        publish(token_mount, {"control-plane-token": content})
        eventually(lambda: client.get("/v1/autonomy/status", headers=bearer()).status_code == 401)
        for token in (TOKEN, "", " "):
            assert client.get("/v1/autonomy/status", headers=bearer(token)).status_code == 401
        assert any("blank" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)

    def test_missing_token_file_locks_everyone_out(self, client, token_mount):
        remove(token_mount)
        eventually(lambda: client.get("/v1/autonomy/status", headers=bearer()).status_code == 401)

    def test_static_token_from_env(self, config_path):
        app = create_app(Settings(config_path=str(config_path), static_token=b"local-token"))
        with TestClient(app) as client:
            assert client.get("/v1/autonomy/status", headers=bearer("local-token")).status_code == 200
            assert client.get("/v1/autonomy/status", headers=bearer(TOKEN)).status_code == 401

    def test_token_and_header_never_logged(self, client, token_mount, mount, caplog):
        caplog.set_level(logging.DEBUG)
        client.get("/v1/autonomy/status", headers=bearer())
        client.get("/v1/autonomy/status", headers=bearer("wrong-guess-12345"))
        publish(token_mount, {"control-plane-token": "rotated-token-abcdefghijklmnopqrstuvwxyz"})
        publish(mount, {"dev.yaml": "autonomy_enabled: false\n"})
        status_becomes(
            client,
            {"autonomy_enabled": False, "source": configmap_source(mount / "dev.yaml")},
            token="rotated-token-abcdefghijklmnopqrstuvwxyz",
        )
        text = "\n".join(r.getMessage() for r in caplog.records)
        assert "autonomy_enabled changed: true -> false" in text
        for secret in (TOKEN, "wrong-guess-12345", "rotated-token", "Bearer"):
            assert secret not in text


class TestOtherRoutes:
    def test_health_is_open_and_tiny(self, client):
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready"}

    def test_readiness_fails_when_the_watcher_is_dead(self, client):
        client.app.state.watcher.stop()
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.json() == {"status": "config watcher is not running"}

    def test_unknown_path_is_404_json(self, client):
        response = client.get("/v1/autonomy/nope", headers=bearer())
        assert response.status_code == 404
        assert response.json() == {"error": "not found"}

    def test_trailing_slash_is_404_not_a_redirect(self, client):
        response = client.get("/v1/autonomy/status/", headers=bearer(), follow_redirects=False)
        assert response.status_code == 404
        assert response.json() == {"error": "not found"}

    @pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
    def test_wrong_method_is_405_json(self, client, method):
        response = client.request(method, "/v1/autonomy/status", headers=bearer())
        assert response.status_code == 405
        assert response.json() == {"error": "method not allowed"}
        assert "GET" in response.headers["allow"]

    def test_detail_says_why_and_when(self, client, mount, config_path):
        publish(mount, {"dev.yaml": 'autonomy_enabled: false\nreason: "INC-123: runaway retries"\n'})
        eventually(lambda: client.get("/v1/autonomy", headers=bearer()).json()["reason"] != "")
        detail = client.get("/v1/autonomy", headers=bearer()).json()
        assert detail["autonomy_enabled"] is False
        assert detail["source"] == configmap_source(config_path)
        assert detail["reason"] == "INC-123: runaway retries"
        assert detail["config_changed_at"].endswith("Z")
        assert detail["state_changed_at"].endswith("Z")
        assert len(detail["config_sha256"]) == 64
        assert detail["problem"] is None

    def test_detail_names_the_problem(self, client, mount):
        publish(mount, {"dev.yaml": "autonomy_enabled: maybe\n"})
        status_becomes(client, {"autonomy_enabled": True, "source": SOURCE_ERROR})
        detail = client.get("/v1/autonomy", headers=bearer()).json()
        assert detail["source"] == SOURCE_ERROR
        assert detail["problem"].startswith(
            f"{mount / 'dev.yaml'}: line 1 ('autonomy_enabled: maybe') is outside the switch file's form: "
            "expected autonomy_enabled: true or autonomy_enabled: false"
        )
        assert detail["reason"] == ""

    def test_metrics(self, client, mount, config_path):
        client.get("/v1/autonomy/status", headers=bearer())
        client.get("/v1/autonomy/status")
        client.get("/nope")
        client.post("/v1/autonomy/status")
        publish(mount, {"dev.yaml": "autonomy_enabled: false\n"})
        status_becomes(client, {"autonomy_enabled": False, "source": configmap_source(config_path)})
        publish(mount, {"dev.yaml": "autonomy_enabled: [\n"})
        status_becomes(client, {"autonomy_enabled": True, "source": SOURCE_ERROR})
        text = client.get("/metrics").text
        samples = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
        assert samples["leviathan_autonomy_enabled"] == "1.0"  # the default, while the file is broken
        assert samples[f'leviathan_autonomy_config_source{{source="{configmap_source(config_path)}"}}'] == "0.0"
        assert samples[f'leviathan_autonomy_config_source{{source="{SOURCE_ERROR}"}}'] == "1.0"
        assert samples[f'leviathan_autonomy_config_source{{source="{SOURCE_NOT_MOUNTED}"}}'] == "0.0"
        assert float(samples["leviathan_autonomy_config_reloads_total"]) >= 2
        assert float(samples["leviathan_autonomy_config_errors_total"]) == 1
        assert float(samples['leviathan_http_requests_total{code="200"}']) >= 3
        assert float(samples['leviathan_http_requests_total{code="401"}']) == 1
        assert float(samples['leviathan_http_requests_total{code="404"}']) == 1
        assert float(samples['leviathan_http_requests_total{code="405"}']) == 1
        assert float(samples["leviathan_autonomy_state_changed_timestamp_seconds"]) > 1.7e9


def test_settings_refuse_a_bad_default(monkeypatch, tmp_path: Path):
    from leviathan_control_plane.app import SettingsError

    monkeypatch.setenv("LEVIATHAN_AUTONOMY_DEFAULT", "maybe")
    with pytest.raises(SettingsError, match="LEVIATHAN_AUTONOMY_DEFAULT must be true or false"):
        Settings.from_env()
