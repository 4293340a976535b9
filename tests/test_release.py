"""Release hygiene (issue 22): Chart.yaml's Artifact Hub metadata, and `make release VERSION=x.y.z`
bumping the chart, the images and the packages together (hack/release.py on a copy of the repository)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from support.helm import find, pod_spec, render_chart
from support.paths import REPO, helm_binary

CHART = yaml.safe_load((REPO / "chart" / "Chart.yaml").read_text())
FILES = ["chart", "CHANGELOG.md", "hack/release.py"] + [
    f"{p}/pyproject.toml"
    for p in ("images/config-reader", "images/control-plane", "images/scheduler", "kubectl-leviathan")
]


def test_chart_metadata_for_artifact_hub():
    assert CHART["home"].startswith("https://") and CHART["sources"] and CHART["icon"].startswith("https://")
    assert CHART["icon"].endswith("/chart/icon.svg") and (REPO / "chart" / "icon.svg").is_file()
    annotations = CHART["annotations"]
    assert annotations["artifacthub.io/license"]
    changes = yaml.safe_load(annotations["artifacthub.io/changes"])
    assert changes and all(
        c["kind"] in {"added", "changed", "fixed", "removed", "deprecated", "security"} for c in changes
    )
    images = {i["name"]: i["image"] for i in yaml.safe_load(annotations["artifacthub.io/images"])}
    docs = render_chart()
    assert images == {
        "control-plane": pod_spec(find(docs, "Deployment"))["containers"][0]["image"],
        "scheduler": pod_spec(find(docs, "CronJob"))["containers"][0]["image"],
    }
    assert f"## [{CHART['version']}]" in (REPO / "CHANGELOG.md").read_text()


@pytest.fixture
def checkout(tmp_path):
    for name in FILES:
        source, target = REPO / name, tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if source.is_dir() else shutil.copy)(source, target)
    return tmp_path


def run_release(checkout, *args):
    return subprocess.run(
        ["python3", str(checkout / "hack" / "release.py"), *args, "--root", str(checkout), "--date", "2026-12-03"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_release_bumps_everything_together(checkout):
    result = run_release(checkout, "0.2.0")
    assert result.returncode == 0, result.stderr
    chart = yaml.safe_load((checkout / "chart" / "Chart.yaml").read_text())
    assert (chart["version"], chart["appVersion"]) == ("0.2.0", "0.2.0")
    images = yaml.safe_load(chart["annotations"]["artifacthub.io/images"])
    assert {i["image"].rsplit(":", 1)[1] for i in images} == {"0.2.0"}
    changelog = (checkout / "CHANGELOG.md").read_text()
    assert "## [Unreleased]\n\n## [0.2.0] - 2026-12-03\n" in changelog
    unreleased = changelog.split("## [0.2.0] - 2026-12-03\n", 1)[1].split("\n## [", 1)[0]
    changes = yaml.safe_load(chart["annotations"]["artifacthub.io/changes"])
    assert [c["description"] for c in changes] == [
        line[2:] for line in unreleased.splitlines() if line.startswith("- ")
    ]
    for pyproject in checkout.glob("**/pyproject.toml"):
        assert 'version = "0.2.0"' in pyproject.read_text(), pyproject
    # The bumped chart renders both images at the new tag.
    rendered = subprocess.run(
        [helm_binary(), "template", "leviathan", str(checkout / "chart")], capture_output=True, text=True, check=True
    ).stdout
    assert "image: ghcr.io/leviathan/control-plane:0.2.0" in rendered
    assert "image: ghcr.io/leviathan/scheduler:0.2.0" in rendered
    # A second release of the same version: refused, nothing changed.
    before = (checkout / "chart" / "Chart.yaml").read_text()
    again = run_release(checkout, "0.2.0")
    assert again.returncode == 2 and "is not above the chart's current version 0.2.0" in again.stderr
    assert (checkout / "chart" / "Chart.yaml").read_text() == before


@pytest.mark.parametrize(
    ("version", "message"),
    [("v0.2.0", "is not x.y.z"), ("0.2", "is not x.y.z"), ("0.0.9", "is not above")],
)
def test_release_refuses_a_bad_version(checkout, version, message):
    result = run_release(checkout, version)
    assert result.returncode == 2 and message in result.stderr
    assert (checkout / "chart" / "Chart.yaml").read_text() == (REPO / "chart" / "Chart.yaml").read_text()


def test_release_refuses_an_empty_unreleased_section(checkout):
    path = checkout / "CHANGELOG.md"
    text = path.read_text()
    start, end = (
        text.index("## [Unreleased]\n") + len("## [Unreleased]\n"),
        text.index("\n## [", text.index("## [Unreleased]") + 1),
    )
    path.write_text(text[:start] + text[end:])
    result = run_release(checkout, "0.2.0")
    assert result.returncode == 2 and "lists no change" in result.stderr


def test_make_release_needs_a_version():
    result = subprocess.run(["make", "-n", "release"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "make release needs VERSION=x.y.z" in result.stderr
