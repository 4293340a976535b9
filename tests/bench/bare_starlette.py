"""Benchmark baseline: a bare Starlette route returning constant JSON, served with the
control plane's own uvicorn settings (same host, loop, HTTP protocol and limits, logging)."""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from leviathan_config import DEFAULT_CONFIG_PATH, configmap_source
from leviathan_control_plane.server import uvicorn_settings

ANSWER = {"autonomy_enabled": True, "source": configmap_source(DEFAULT_CONFIG_PATH)}


async def constant(request: Request) -> JSONResponse:
    return JSONResponse(ANSWER)


app = Starlette(routes=[Route("/v1/autonomy/status", constant, methods=["GET"])])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", **uvicorn_settings())
