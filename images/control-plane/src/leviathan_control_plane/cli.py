"""`leviathan-control-plane serve | check`."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from leviathan_config import DEFAULT_CONFIG_PATH, ConfigState, configmap_source, printable, read_autonomy_config
from leviathan_control_plane.server import ServerLimits, uvicorn_settings
from leviathan_control_plane.token import TOKEN_ENV, TokenConfigError, initial_token

log = logging.getLogger("leviathan_control_plane")

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_CONFIG = 2

DEFAULT_LIMITS = ServerLimits()


class PrintableFormatter(logging.Formatter):
    """Escapes control characters in every message (a `reason` may hold newlines or ANSI
    escapes), so no log line can be forged or split and nothing raw reaches a terminal."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="leviathan-control-plane", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="serve the status API")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=_port, default=8000)
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    # One flag per ServerLimits field: --max-connections sets max_connections.
    limits = (
        ("max_connections", _at_least_one, "open connections allowed; one more is answered 503 and closed"),
        ("max_header_bytes", _at_least_one, "largest request head (request line and headers); larger is answered 431"),
        ("header_timeout", _seconds, "seconds a client has to send a whole request head; then 408"),
        ("keep_alive_timeout", _seconds, "seconds an idle keep-alive connection stays open"),
    )
    for field, kind, text in limits:
        default = getattr(DEFAULT_LIMITS, field)
        serve.add_argument(
            "--" + field.replace("_", "-"), type=kind, default=default, help=f"{text} (default %(default)s)"
        )

    check = commands.add_parser("check", help="query the status API and exit 0 only if autonomy_enabled is as expected")
    check.add_argument("--url", required=True, help="e.g. http://leviathan-control-plane:8000/v1/autonomy/status")
    expected = check.add_mutually_exclusive_group(required=True)
    expected.add_argument("--expect-enabled", choices=["true", "false"])
    expected.add_argument(
        "--expect-enabled-from",
        metavar="CONFIG",
        help="expect what this config file says, read with the shared reader (helm test mounts the live ConfigMap); "
        "fails while the file is missing or invalid",
    )
    check.add_argument("--expect-source", help=f"also require this source ({configmap_source(DEFAULT_CONFIG_PATH)})")
    check.add_argument(
        "--timeout",
        type=float,
        default=0,
        help="keep asking for up to this many seconds (kubelet can take a minute to deliver a ConfigMap change)",
    )

    args = parser.parse_args(argv)
    if args.command == "serve":
        chosen = ServerLimits(**{field: getattr(args, field) for field, _, _ in limits})
        return _serve(args.host, args.port, args.log_level, chosen)
    expectation = Expectation(
        enabled=None if args.expect_enabled is None else args.expect_enabled == "true",
        config_path=args.expect_enabled_from,
        source=args.expect_source,
    )
    return _check(args.url, expectation, args.timeout)


@dataclass(frozen=True)
class Expectation:
    """What the status must say: a fixed switch, or the one a config file holds; and maybe the source."""

    enabled: bool | None = None
    config_path: str | None = None
    source: str | None = None

    def resolve(self) -> tuple[bool | None, str]:
        """The switch to expect now, and how it was found; None (with the problem) when the file is unusable."""
        if self.config_path is None:
            return self.enabled, ""
        config = read_autonomy_config(self.config_path)
        if config.state is not ConfigState.LOADED:
            return None, f"the config mounted here is unusable ({config.source}): {config.problem}"
        return config.autonomy_enabled, f"as {self.config_path} mounted here says"


def _port(text: str) -> int:
    port = int(text)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text} is not a TCP port (1-65535)")
    return port


def _at_least_one(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return number


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of seconds above 0")
    return seconds


def _serve(host: str, port: int, log_level: str, limits: ServerLimits) -> int:
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(PrintableFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=log_level.upper(), handlers=[handler])
    from leviathan_control_plane.app import Settings, SettingsError, create_app

    try:
        settings = Settings.from_env()
        # Refuse to start without a usable token rather than serve an API nobody can use.
        initial_token()
    except (SettingsError, TokenConfigError) as exc:
        print(f"leviathan-control-plane: refusing to start: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    import uvicorn

    log.info(
        "serving on %s:%d; config %s; token from %s",
        host,
        port,
        settings.config_path,
        "file " + settings.token_file if settings.token_file else TOKEN_ENV,
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level, **uvicorn_settings(limits))
    return EXIT_OK


def _check(url: str, expectation: Expectation, timeout: float) -> int:
    try:
        token = initial_token(os.environ)
    except TokenConfigError as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return EXIT_CONFIG
    deadline = time.monotonic() + timeout
    while True:
        ok, message = _check_once(url, token, expectation)
        message = printable(message)  # it quotes what the server answered
        if ok:
            print(f"✓ {message}")
            return EXIT_OK
        if time.monotonic() >= deadline:
            print(f"✗ {message}", file=sys.stderr)
            return EXIT_MISMATCH
        print(f"… {message}; retrying", file=sys.stderr)
        time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))


def _check_once(url: str, token: bytes, expectation: Expectation) -> tuple[bool, str]:
    expected, found_by = expectation.resolve()
    if expected is None:
        return False, found_by
    headers = {"Authorization": "Bearer " + token.decode("latin-1")}
    try:
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 - operator-given URL
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - operator-given URL
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        hint = ": check the token" if exc.code == 401 else ""
        return False, f"{url} answered HTTP {exc.code}{hint}"
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return False, f"cannot reach {url}: {reason}"
    except ValueError as exc:  # a malformed URL, or an answer that is not JSON
        return False, f"{url}: {exc}"[:300]
    enabled = body.get("autonomy_enabled") if isinstance(body, dict) else None
    source = body.get("source") if isinstance(body, dict) else None
    if not isinstance(enabled, bool):
        return False, f"{url} answered without a boolean autonomy_enabled"
    state = f"autonomy_enabled is {str(enabled).lower()} (source: {source})"
    if expectation.source is not None and source != expectation.source:
        return False, f"{state}, expected source {expectation.source}"
    if enabled != expected:
        return False, f"{state}, expected {str(expected).lower()}{' ' + found_by if found_by else ''}"
    return True, f"{state}{', ' + found_by if found_by else ''}"


if __name__ == "__main__":
    sys.exit(main())
