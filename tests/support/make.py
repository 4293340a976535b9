"""Running this checkout's Makefile the way an operator does."""

from __future__ import annotations

import os
import subprocess

from support.paths import REPO


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`make ARGS` in the repository, its output captured; fails the test after two minutes."""
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
