"""The Starlette application: module-level endpoints, and the wiring that hands them the app's parts.

Each endpoint takes the request and the app's parts (`ControlPlane`), so it can
be read and tested on its own. `create_app` binds the parts once, in `counted`,
which also counts the answer; the error handlers and the lifespan read the same
parts from `app.state.control_plane`.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from leviathan_config import config_path_from_env
from leviathan_control_plane.autonomy import AutonomyView
from leviathan_control_plane.cluster import (
    CONFIGMAP_ENV,
    NAMESPACE_ENV,
    POD_NAME_ENV,
    STAMP_POLICY_ENV,
    ClusterWatch,
)
from leviathan_control_plane.followed_file import FollowedFile
from leviathan_control_plane.metrics import ControlPlaneMetrics
from leviathan_control_plane.token import (
    TokenSource,
    bearer_matches,
    static_token_from_env,
    token_file_from_env,
    token_source,
)
from leviathan_control_plane.watcher import DirectoryWatcher

DEFAULT_ENV = "LEVIATHAN_AUTONOMY_DEFAULT"

log = logging.getLogger(__name__)


_UNAUTHORIZED = JSONResponse(
    {"error": "unauthorized", "detail": "a valid bearer token is required"},
    status_code=401,
    headers={"WWW-Authenticate": "Bearer"},
)


class SettingsError(Exception):
    """The environment does not describe a runnable server."""


@dataclass(frozen=True)
class Settings:
    config_path: str
    default_enabled: bool = True
    token_file: str | None = None
    static_token: bytes | None = None
    # The autonomy ConfigMap's name: set, the control plane reads and writes through the Kubernetes API.
    configmap: str | None = None
    namespace: str | None = None
    pod_name: str | None = None
    # The chart's identity stamp policy is in force: only then is switched_by reported.
    stamp_policy: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        raw_default = environ.get(DEFAULT_ENV, "true").strip().lower()
        if raw_default not in ("true", "false"):
            raise SettingsError(f"{DEFAULT_ENV} must be true or false, not {raw_default!r}")
        raw_stamp_policy = environ.get(STAMP_POLICY_ENV, "false").strip().lower() or "false"
        if raw_stamp_policy not in ("true", "false"):
            raise SettingsError(f"{STAMP_POLICY_ENV} must be true or false, not {raw_stamp_policy!r}")
        return cls(
            config_path=config_path_from_env(environ),
            default_enabled=raw_default == "true",
            token_file=token_file_from_env(environ),
            static_token=static_token_from_env(environ),
            configmap=environ.get(CONFIGMAP_ENV) or None,
            namespace=environ.get(NAMESPACE_ENV) or None,
            pod_name=environ.get(POD_NAME_ENV) or environ.get("HOSTNAME") or None,
            stamp_policy=raw_stamp_policy == "true",
        )


@dataclass(frozen=True)
class ControlPlane:
    """What the endpoints work with, kept in `app.state.control_plane`."""

    autonomy: AutonomyView
    token: TokenSource
    followed: list[FollowedFile[Any]]  # the files /readyz vouches for
    watcher: DirectoryWatcher
    metrics: ControlPlaneMetrics
    cluster: ClusterWatch  # who flipped the switch and the paused tasks, read through the API off the request path


Endpoint = Callable[[Request, ControlPlane], Awaitable[Response]]


def counted(endpoint: Endpoint, parts: ControlPlane) -> Callable[[Request], Awaitable[Response]]:
    # The parts are bound here, not looked up on request.app.state per request, and
    # the answer is counted here, not in an ASGI middleware: each of those cost
    # a tenth or more of the status throughput (make bench).
    async def counting(request: Request) -> Response:
        response = await endpoint(request, parts)
        parts.metrics.count_response(response.status_code)
        return response

    return counting


def _authorized(request: Request, parts: ControlPlane) -> bool:
    return bearer_matches(request.headers.get("authorization"), parts.token.current)


async def status(request: Request, parts: ControlPlane) -> Response:
    if not _authorized(request, parts):
        return _UNAUTHORIZED
    return parts.autonomy.current().status_response


async def detail(request: Request, parts: ControlPlane) -> Response:
    if not _authorized(request, parts):
        return _UNAUTHORIZED
    return JSONResponse(parts.autonomy.detail() | parts.cluster.fields())


async def healthz(request: Request, parts: ControlPlane) -> Response:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request, parts: ControlPlane) -> Response:
    if not parts.watcher.healthy:
        return JSONResponse({"status": "config watcher is not running"}, status_code=503)
    problems = [f.problem for f in parts.followed if f.problem]
    if problems:
        return JSONResponse({"status": "; ".join(problems) + ": serving the last content read"}, status_code=503)
    return JSONResponse({"status": "ready"})


async def metrics_endpoint(request: Request, parts: ControlPlane) -> Response:
    return Response(generate_latest(parts.metrics.registry), media_type=CONTENT_TYPE_LATEST)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    request.app.state.control_plane.metrics.count_response(exc.status_code)
    return JSONResponse({"error": exc.detail.lower()}, status_code=exc.status_code, headers=exc.headers)


async def server_error(request: Request, exc: Exception) -> Response:
    request.app.state.control_plane.metrics.count_response(500)
    return JSONResponse({"error": "internal error"}, status_code=500)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    parts: ControlPlane = app.state.control_plane
    parts.watcher.start()
    parts.cluster.start()
    # Everything start-up made (modules, the kubernetes client's among them) lives as long as the server: out of
    # the collector's sight, a full collection no longer walks it on the event loop (100-200 ms on a busy node).
    gc.freeze()
    try:
        yield
    finally:
        parts.cluster.stop()
        parts.watcher.stop()


ENDPOINTS: dict[str, Endpoint] = {
    "/v1/autonomy/status": status,
    "/v1/autonomy": detail,
    "/healthz": healthz,
    "/readyz": readyz,
    "/metrics": metrics_endpoint,
}


def read_problem_reporter(metrics: ControlPlaneMetrics, kind: str) -> Callable[[FollowedFile[Any], str], None]:
    """Logs and counts a followed file's passing read failure, and its end."""

    def report(followed: FollowedFile[Any], problem: str) -> None:
        if problem:
            log.warning("%s: keeping the last %s read; /readyz answers 503 until the file reads again", problem, kind)
        else:
            log.info("%s %s reads again", kind, followed.path)
        metrics.record_read_problem(kind, bool(problem))

    return report


def create_app(settings: Settings) -> Starlette:
    metrics = ControlPlaneMetrics(settings.config_path)
    cluster = ClusterWatch(
        metrics, settings.configmap, settings.namespace, settings.pod_name, stamp_policy=settings.stamp_policy
    )
    autonomy = AutonomyView(
        settings.config_path,
        settings.default_enabled,
        metrics,
        on_problem=read_problem_reporter(metrics, "config"),
        on_change=cluster.observe,
    )
    token = token_source(settings.token_file, settings.static_token, read_problem_reporter(metrics, "token"))
    followed = [autonomy.followed, *token.followed]

    parts = ControlPlane(autonomy, token, followed, DirectoryWatcher(followed), metrics, cluster)
    app = Starlette(
        routes=[Route(path, counted(endpoint, parts), methods=["GET"]) for path, endpoint in ENDPOINTS.items()],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    # An unknown path is a 404 like any other, not a redirect to a slash-less twin.
    app.router.redirect_slashes = False
    app.state.control_plane = parts
    # The parts tests and tools reach for by name.
    app.state.autonomy, app.state.watcher, app.state.metrics = autonomy, parts.watcher, metrics
    return app
