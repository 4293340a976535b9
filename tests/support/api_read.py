"""Waiting for a real control plane's first (or next) read through the Kubernetes API."""

from __future__ import annotations

import time

from support.control_plane import TOKEN, ControlPlaneServer


def detail(server: ControlPlaneServer) -> dict:
    answer = server.get("/v1/autonomy", TOKEN)
    assert answer.status == 200, answer
    return answer.json()


def detail_after_api_read(server: ControlPlaneServer, since: str | None = None, timeout: float = 10.0) -> dict:
    """GET /v1/autonomy once the control plane has read the API (after `since`, a kubernetes_api_read_at)."""
    deadline = time.monotonic() + timeout
    while True:
        body = detail(server)
        read_at = body["kubernetes_api_read_at"]
        if read_at is not None and (since is None or read_at > since):
            return body
        assert time.monotonic() < deadline, f"no API read within {timeout}s: {body}\n{server.logs()}"
        time.sleep(0.05)
