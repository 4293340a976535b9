"""The Python the setup accepts, and the pins that must install on it (issue 11: Debian 12's python3 is 3.11.2)."""

from __future__ import annotations

import os
import subprocess
from importlib.metadata import distributions
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet

from support.paths import REPO

OLDEST = "3.11.0"  # what the README promises, and what `make check-python` enforces
DEBIAN_12 = Path("/usr/bin/python3")
PYENV = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"


def check_python(python: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "check-python", f"PYTHON={python}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def version_of(python: Path) -> str:
    return subprocess.check_output([str(python), "-c", "import platform; print(platform.python_version())"], text=True)


@pytest.mark.parametrize("python", [DEBIAN_12, PYENV / "3.11.7" / "bin" / "python3"], ids=["system", "pyenv-3.11.7"])
def test_every_3_11_python_is_accepted(python):
    if not python.exists():
        pytest.skip(f"{python} is not installed here")
    assert version_of(python).startswith("3.11.")
    result = check_python(python)
    assert (result.returncode, result.stderr) == (0, ""), result.stderr


@pytest.mark.parametrize("python", sorted(PYENV.glob("3.10.*/bin/python3")) or [None])
def test_an_older_python_is_refused_in_one_line(python):
    if python is None:
        pytest.skip("no Python 3.10 installed here")
    result = check_python(python)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert f"needs Python 3.11 or later, but {python} is 3.10." in line
    assert "run make PYTHON=" in line


def test_a_missing_python_is_named():
    result = check_python("/nonexistent/python3")
    assert result.returncode == 2
    assert "but /nonexistent/python3 is not found" in result.stderr


@pytest.mark.parametrize("venv", [".venv", ".tools/checkov"])
def test_every_installed_pin_supports_the_oldest_python(venv):
    """soupsieve 3+ needs 3.11.5 (broken possessive quantifiers in re before that): pinned to 2.10."""
    site_packages = sorted((REPO / venv / "lib").glob("python3.*/site-packages"))
    if not site_packages:
        pytest.skip(f"{venv} is not installed (make test installs it)")
    too_new = {
        f"{dist.metadata['Name']}=={dist.version} requires Python {dist.metadata['Requires-Python']}"
        for dist in distributions(path=[str(path) for path in site_packages])
        if dist.metadata["Requires-Python"]
        and not SpecifierSet(dist.metadata["Requires-Python"]).contains(OLDEST, prereleases=True)
    }
    assert too_new == set()
