from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "chart"
VALUES_DIR = REPO / "values"
VENV_BIN = REPO / ".venv" / "bin"
CONTROL_PLANE = VENV_BIN / "leviathan-control-plane"
SCHEDULER = VENV_BIN / "leviathan-scheduler"
PYTHON = VENV_BIN / "python"


@cache
def helm_binary() -> str:
    """The helm `make test` chose, or the same choice made here."""
    return os.environ.get("HELM") or subprocess.check_output([str(REPO / "hack" / "ensure-helm.sh")], text=True).strip()


def values_files() -> list[Path]:
    return sorted(VALUES_DIR.glob("*.yaml"))
