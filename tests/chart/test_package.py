"""`helm package` (through hack/package-chart.sh, as `make package` runs it) with the real helm."""

from __future__ import annotations

import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest

from support.archive import safe_extract
from support.paths import REPO, helm_binary

LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [str(REPO / "hack" / "package-chart.sh"), str(dest)],
        env={**os.environ, "HELM": helm_binary()},
        check=True,
        capture_output=True,
        timeout=120,
    )
    [tarball] = dest.glob("leviathan-*.tgz")
    unpacked = tmp_path_factory.mktemp("unpacked")
    with tarfile.open(tarball) as archive:
        safe_extract(archive, unpacked)
    return unpacked / "leviathan"


def relative_links(markdown: str) -> list[str]:
    return [target for target in LINK.findall(markdown) if "://" not in target and not target.startswith("mailto:")]


def test_the_docs_are_in_the_package(package):
    for name in ("RUNBOOK.md", "DECISIONS.md", "GITOPS.md"):
        assert (package / "docs" / name).read_text() == (REPO / "docs" / name).read_text()
    assert (package / "docs" / "CHANGELOG.md").read_text() == (REPO / "CHANGELOG.md").read_text()


def test_the_readme_and_notes_make_sense_outside_the_repository(package):
    readme = (package / "README.md").read_text()
    for token in (" chart -n ", "values/", "hack/", "make "):
        assert token not in readme, token
    assert "helm upgrade --install leviathan oci://ghcr.io/leviathan/charts/leviathan --version " in readme
    notes = (package / "templates" / "NOTES.txt").read_text()
    assert "Differs from the reference runbook" not in notes
    assert "Differs from the reference runbook" in (REPO / "chart" / "templates" / "NOTES.txt").read_text()


def test_every_readme_link_resolves_inside_the_package(package):
    links = relative_links((package / "README.md").read_text())
    assert "docs/RUNBOOK.md" in links
    for target in links:
        assert (package / target).resolve().is_relative_to(package.resolve()), target
        assert (package / target).is_file(), target


def test_every_readme_link_resolves_in_the_repository():
    chart = REPO / "chart"
    for target in relative_links((chart / "README.md").read_text()):
        assert (chart / target).is_file(), target


def test_notes_point_at_a_file_in_the_package(package):
    for path in re.findall(r"\bdocs/[A-Z]+\.md\b", (package / "templates" / "NOTES.txt").read_text()):
        assert (package / path).is_file(), path


def test_no_dev_files_in_the_package(package):
    files = {path.relative_to(package).as_posix() for path in package.rglob("*") if path.is_file()}
    assert not [f for f in files if f.startswith("tests/") or f.endswith(("_test.yaml", ".pyc"))]
    assert "templates/tests/test-status.yaml" in files  # `helm test` hooks stay
    assert {"Chart.yaml", "values.yaml", "values.schema.json", "README.md", ".helmignore"} <= files
