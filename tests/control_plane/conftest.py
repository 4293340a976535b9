from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from kubelet_volume import publish
from leviathan_control_plane.app import Settings, create_app
from support.control_plane import TOKEN, ControlPlaneServer


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
