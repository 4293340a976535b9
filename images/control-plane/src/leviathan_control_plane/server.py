"""The limits uvicorn's HTTP server lacks, for a pod with a 128Mi memory limit.

uvicorn picks httptools here (it is installed), and with httptools it
enforces no limit on a request head: one request with a header of tens of
MiB is buffered whole (the h11 implementation stops at 16 KiB, but costs
throughput). It also has no timeout for a head that trickles in, nor for a
connection that never sends one, and no cap on connections. This protocol
adds the four, each answered with a plain status line before closing:

  431  more than max_header_bytes arrived before a request head ended
  408  no complete request head within header_timeout seconds of the
       connection opening or of the previous response
  503  max_connections are already open (the new one is closed at once)

and keep-alive connections close after keep_alive_timeout idle seconds
(uvicorn's own timer). The control plane takes no request bodies, so any
bytes between two request heads count against max_header_bytes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


@dataclass(frozen=True)
class ServerLimits:
    max_connections: int = 100
    max_header_bytes: int = 16 * 1024
    header_timeout: float = 10.0
    keep_alive_timeout: float = 5.0


def _answer(status: str, text: str) -> bytes:
    body = text.encode() + b"\n"
    head = f"HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {len(body)}\r\n"
    return head.encode() + b"connection: close\r\n\r\n" + body


TOO_LARGE = _answer("431 Request Header Fields Too Large", "request head too large")
TOO_SLOW = _answer("408 Request Timeout", "request head not received in time")
TOO_MANY = _answer("503 Service Unavailable", "too many connections")


class BoundedHttpToolsProtocol(HttpToolsProtocol):
    limits: ClassVar[ServerLimits] = ServerLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_bytes = 0
        self._head_timer: asyncio.TimerHandle | None = None
        self._turned_away = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._turned_away = True
            transport.write(TOO_MANY)  # type: ignore[attr-defined]
            transport.close()
            return
        super().connection_made(transport)  # type: ignore[arg-type]
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._turned_away:
            return
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        room = self.limits.max_header_bytes - self._head_bytes
        if len(data) <= room:  # the usual case: a whole small request
            self._head_bytes += len(data)
            super().data_received(data)
            return
        # Feed no more than the limit allows, so the parser never buffers past it.
        view = memoryview(data)
        while view and not self.transport.is_closing():
            room = self.limits.max_header_bytes - self._head_bytes
            if room <= 0:
                self._close_with(TOO_LARGE)
                return
            piece, view = view[:room], view[room:]
            self._head_bytes += len(piece)
            super().data_received(bytes(piece))

    def on_headers_complete(self) -> None:
        self._head_bytes = 0
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        pipelined = bool(self.pipeline)  # the next head is already in: no timer while it is served
        super().on_response_complete()
        if not pipelined and not self.transport.is_closing():
            self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        self._cancel_head_timer()
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._close_with, TOO_SLOW)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _close_with(self, answer: bytes) -> None:
        self._cancel_head_timer()
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()


def uvicorn_settings(limits: ServerLimits | None = None) -> dict[str, Any]:
    """Keyword arguments for uvicorn.run(), shared with the benchmark's bare-Starlette baseline.

    No access log: /metrics counts requests, and the log line per request costs throughput.
    """
    limits = limits or ServerLimits()
    protocol = type("BoundedHttpToolsProtocol", (BoundedHttpToolsProtocol,), {"limits": limits})
    return {
        "log_config": None,
        "access_log": False,
        "server_header": False,
        "timeout_graceful_shutdown": 5,
        "http": protocol,
        "timeout_keep_alive": limits.keep_alive_timeout,
    }
