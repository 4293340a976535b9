"""Running this checkout's Makefile the way an operator does."""

from __future__ import annotations

import os
import shlex
import subprocess

from support.paths import REPO


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`make ARGS` in the repository, its output captured; fails the test after two minutes."""
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


PLUGIN_LINE = "kubectl leviathan "


def plugin_runbook(line: str) -> list[str]:
    """The runbook lines a `kubectl leviathan ...` command line stands for (its --show-runbook output)."""
    args = shlex.split(line.removeprefix(PLUGIN_LINE))
    result = subprocess.run(
        [str(REPO / ".venv" / "bin" / "kubectl-leviathan"), *args, "--show-runbook"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return result.stdout.splitlines()


def expand_plugin_lines(lines: list[str]) -> list[str]:
    """Printed recipe lines with each plugin call replaced by the runbook commands it stands for."""
    return [shown for line in lines for shown in (plugin_runbook(line) if line.startswith(PLUGIN_LINE) else [line])]
