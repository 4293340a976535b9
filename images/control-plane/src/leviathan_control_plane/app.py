"""The Starlette application: routes, auth and the watcher's lifespan."""

from __future__ import annotations

import contextlib
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
from leviathan_control_plane.followed_file import FollowedFile
from leviathan_control_plane.metrics import ControlPlaneMetrics
from leviathan_control_plane.token import (
    TokenRead,
    bearer_matches,
    log_token_change,
    read_token_file,
    static_token_from_env,
    token_file_from_env,
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

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Settings:
        raw_default = environ.get(DEFAULT_ENV, "true").strip().lower()
        if raw_default not in ("true", "false"):
            raise SettingsError(f"{DEFAULT_ENV} must be true or false, not {raw_default!r}")
        return cls(
            config_path=config_path_from_env(environ),
            default_enabled=raw_default == "true",
            token_file=token_file_from_env(environ),
            static_token=static_token_from_env(environ),
        )


def create_app(settings: Settings) -> Starlette:
    metrics = ControlPlaneMetrics(settings.config_path)

    def read_problem_reporter(kind: str) -> Callable[[FollowedFile[Any], str], None]:
        def report(followed: FollowedFile[Any], problem: str) -> None:
            if problem:
                log.warning(
                    "%s: keeping the last %s read; /readyz answers 503 until the file reads again",
                    problem,
                    kind,
                )
            else:
                log.info("%s %s reads again", kind, followed.path)
            metrics.record_read_problem(kind, bool(problem))

        return report

    autonomy = AutonomyView(
        settings.config_path, settings.default_enabled, metrics, on_problem=read_problem_reporter("config")
    )
    followed: list[FollowedFile[Any]] = [autonomy.followed]
    current_token: Callable[[], bytes | None]
    if settings.token_file:
        token_file = FollowedFile(
            settings.token_file,
            lambda path, _: read_token_file(path),
            log_token_change,
            lambda read: read.problem if read.transient else "",
            read_problem_reporter("token"),
        )
        followed.append(token_file)

        def current_token() -> bytes | None:
            read: TokenRead = token_file.get()
            return read.token
    else:

        def current_token() -> bytes | None:
            return settings.static_token

    watcher = DirectoryWatcher(followed)

    def authorized(request: Request) -> bool:
        return bearer_matches(request.headers.get("authorization"), current_token)

    async def status(request: Request) -> Response:
        if not authorized(request):
            return _UNAUTHORIZED
        return autonomy.current().status_response

    async def detail(request: Request) -> Response:
        if not authorized(request):
            return _UNAUTHORIZED
        return JSONResponse(autonomy.detail())

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if not watcher.healthy:
            return JSONResponse({"status": "config watcher is not running"}, status_code=503)
        problems = [f.problem for f in followed if f.problem]
        if problems:
            detail = "; ".join(problems) + ": serving the last content read"
            return JSONResponse({"status": detail}, status_code=503)
        return JSONResponse({"status": "ready"})

    async def metrics_endpoint(request: Request) -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def counted(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        # Counting here rather than in an ASGI middleware: a middleware layer cost
        # about a tenth of the status throughput (make bench).
        async def counting(request: Request) -> Response:
            response = await endpoint(request)
            metrics.count_response(response.status_code)
            return response

        return counting

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        metrics.count_response(exc.status_code)
        return JSONResponse({"error": exc.detail.lower()}, status_code=exc.status_code, headers=exc.headers)

    async def server_error(request: Request, exc: Exception) -> Response:
        metrics.count_response(500)
        return JSONResponse({"error": "internal error"}, status_code=500)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        watcher.start()
        try:
            yield
        finally:
            watcher.stop()

    app = Starlette(
        routes=[
            Route("/v1/autonomy/status", counted(status), methods=["GET"]),
            Route("/v1/autonomy", counted(detail), methods=["GET"]),
            Route("/healthz", counted(healthz), methods=["GET"]),
            Route("/readyz", counted(readyz), methods=["GET"]),
            Route("/metrics", counted(metrics_endpoint), methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )
    # An unknown path is a 404 like any other, not a redirect to a slash-less twin.
    app.router.redirect_slashes = False
    app.state.autonomy = autonomy
    app.state.watcher = watcher
    app.state.metrics = metrics
    return app
