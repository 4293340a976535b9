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


HELM_UPGRADE_LINE = "hack/helm-upgrade.sh "


def expand_plugin_lines(lines: list[str]) -> list[str]:
    """Printed recipe lines with each plugin call replaced by the runbook commands it stands for, and
    hack/helm-upgrade.sh by the `helm upgrade` it runs first (tests/test_helm_upgrade_wrapper.py)."""
    return [
        shown
        for line in lines
        for shown in (
            plugin_runbook(line)
            if line.startswith(PLUGIN_LINE)
            else ["helm upgrade " + line.removeprefix(HELM_UPGRADE_LINE)]
            if line.startswith(HELM_UPGRADE_LINE)
            else [line]
        )
    ]
