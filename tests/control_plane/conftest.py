from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from leviathan_control_plane.app import Settings, create_app
from support.control_plane import TOKEN, ControlPlaneServer
from support.kubelet_volume import publish


@pytest.fixture
def mount(tmp_path: Path) -> Path:
    """A kubelet-style ConfigMap volume holding dev.yaml with autonomy on."""
    directory = tmp_path / "autonomy"
    publish(directory, {"dev.yaml": "autonomy_enabled: true\n"})
    return directory


@pytest.fixture
def token_mount(tmp_path: Path) -> Path:
    """A kubelet-style Secret volume holding the token."""
    directory = tmp_path / "token"
    publish(directory, {"control-plane-token": TOKEN + "\n"}, mode=0o644)
    return directory


@pytest.fixture
def config_path(mount: Path) -> Path:
    return mount / "dev.yaml"


@pytest.fixture
def token_file(token_mount: Path) -> Path:
    return token_mount / "control-plane-token"


@pytest.fixture
def client(config_path: Path, token_file: Path):
    app = create_app(Settings(config_path=str(config_path), token_file=str(token_file)))
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture
def server(config_path: Path, token_file: Path, tmp_path: Path):
    running = ControlPlaneServer(config_path, token_file, tmp_path / "server.log")
    yield running
    running.stop()
