"""Where the bearer token comes from, and how a request's token is checked.

The chart mounts the Secret as a file (LEVIATHAN_CONTROL_PLANE_TOKEN_FILE):
env vars leak into child processes and crash dumps, and a mounted Secret is
rotated by kubelet without a restart. LEVIATHAN_CONTROL_PLANE_TOKEN is for
local runs. The token itself is never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from leviathan_config import NotARegularFile, is_transient, read_mounted_file
from leviathan_control_plane.followed_file import FollowedFile

log = logging.getLogger(__name__)

TOKEN_FILE_ENV = "LEVIATHAN_CONTROL_PLANE_TOKEN_FILE"  # noqa: S105 - a variable name
TOKEN_ENV = "LEVIATHAN_CONTROL_PLANE_TOKEN"  # noqa: S105 - a variable name
MAX_TOKEN_BYTES = 4096


class TokenConfigError(Exception):
    """No usable token: the server must not start."""


@dataclass(frozen=True)
class TokenRead:
    # repr=False keeps the token out of any log line or traceback.
    token: bytes | None = field(repr=False)
    problem: str = ""
    # The read failed for a passing reason (leviathan_config.is_transient), not because of the file.
    transient: bool = False


def read_token_file(path: str) -> TokenRead:
    try:
        raw = read_mounted_file(path, MAX_TOKEN_BYTES)  # retries kubelet's swap race, like the config
    except FileNotFoundError:
        return TokenRead(None, f"token file {path} does not exist")
    except NotARegularFile as exc:
        return TokenRead(None, f"token file {path} is {exc.strerror}, not a regular file")
    except (OSError, MemoryError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        return TokenRead(None, f"cannot read token file {path}: {reason}", transient=is_transient(exc))
    if len(raw) > MAX_TOKEN_BYTES:
        return TokenRead(None, f"token file {path} is larger than {MAX_TOKEN_BYTES} bytes")
    token = raw.strip()
    if not token:
        return TokenRead(None, f"token file {path} is blank")
    return TokenRead(token)


def log_token_change(previous: TokenRead | None, current: TokenRead) -> None:
    if current.problem:
        log.warning("%s: every request will be refused with 401", current.problem)
    elif previous is not None and previous.problem:
        log.info("control-plane token file is usable again; requests with the token are accepted")
    elif previous is not None:
        log.info("control-plane token changed (rotated Secret); now using the new one")


def static_token_from_env(environ: Mapping[str, str]) -> bytes | None:
    token = environ.get(TOKEN_ENV, "").strip()
    return token.encode() if token else None


def token_file_from_env(environ: Mapping[str, str]) -> str | None:
    return environ.get(TOKEN_FILE_ENV) or None


@dataclass(frozen=True)
class TokenSource:
    """Where the server takes the expected token from on each request."""

    current: Callable[[], bytes | None]
    # The token file to keep current, when the token comes from one.
    followed: tuple[FollowedFile[TokenRead], ...] = ()


def token_source(
    token_file: str | None,
    static_token: bytes | None,
    on_problem: Callable[[FollowedFile[Any], str], None] | None = None,
) -> TokenSource:
    """The mounted token file, followed live, when one is named; else the static (local-run) token."""
    if not token_file:
        return TokenSource(lambda: static_token)
    followed = FollowedFile(
        token_file,
        lambda path, _: read_token_file(path),
        log_token_change,
        lambda read: read.problem if read.transient else "",
        on_problem,
    )
    return TokenSource(lambda: followed.get().token, (followed,))


def initial_token(environ: Mapping[str, str] = os.environ) -> bytes:
    """The token a client or server starts with; TokenConfigError if none."""
    path = token_file_from_env(environ)
    if path:
        read = read_token_file(path)
        if read.token is None:
            raise TokenConfigError(f"{read.problem} ({TOKEN_FILE_ENV})")
        return read.token
    token = static_token_from_env(environ)
    if token is None:
        raise TokenConfigError(f"no token: set {TOKEN_FILE_ENV} to the mounted Secret file, or {TOKEN_ENV}")
    return token


def bearer_matches(authorization: str | None, expected: Callable[[], bytes | None]) -> bool:
    """True only for `Bearer <token>` with the current, non-blank token.

    Both sides are hashed first, so the comparison takes the same time
    whatever the lengths are.
    """
    if not authorization:
        return False
    scheme, _, credentials = authorization.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        return False
    token = expected()
    if not token:
        return False
    offered = hashlib.sha256(credentials.encode("latin-1", "replace")).digest()
    return hmac.compare_digest(offered, hashlib.sha256(token).digest())
