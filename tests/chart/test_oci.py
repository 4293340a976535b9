"""`make package`'s chart pushed to a local OCI registry and installed from it by version, as users of
`oci://` charts do (issue 22). The registry is Debian's `docker-registry` (the distribution project's
registry), started on a free port for this module; without it these tests skip and say so."""

from __future__ import annotations

import subprocess
import tarfile

import pytest
import yaml

from support.archive import safe_extract
from support.paths import helm_binary
from support.registry import REGISTRY, VERSION, local_registry, package_and_push

pytestmark = pytest.mark.skipif(
    REGISTRY is None, reason="docker-registry not found (apt-get install docker-registry): OCI install not tested"
)


def helm(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with local_registry(tmp_path_factory.mktemp("registry")) as address:
        yield address


@pytest.fixture(scope="module")
def pushed(registry, tmp_path_factory):
    return package_and_push(registry, tmp_path_factory.mktemp("dist"))


def test_the_package_installs_from_the_registry_by_version(pushed, tmp_path):
    registry, _, push, env = pushed
    assert f"Pushed: {registry}/charts/leviathan:{VERSION}" in push.stdout + push.stderr
    ref = f"oci://{registry}/charts/leviathan"
    shown = yaml.safe_load(helm("show", "chart", ref, "--version", VERSION, "--plain-http", env=env).stdout)
    assert (shown["version"], shown["appVersion"]) == (VERSION, VERSION)
    install = helm(
        "install",
        "leviathan",
        ref,
        "--version",
        VERSION,
        "--plain-http",
        "--namespace",
        "leviathan",
        "--dry-run=client",
        env=env,
    )
    assert "Leviathan autonomy" in install.stdout
    assert "Differs from the reference runbook" not in install.stdout  # the contract-test line stays home
    assert "kubectl patch cronjob leviathan-dev-scheduler -n leviathan" in install.stdout
    (tmp_path / "transcript.txt").write_text(push.stderr + install.stdout)


def test_an_unknown_version_is_refused(pushed):
    registry, _, _, env = pushed
    result = subprocess.run(
        [helm_binary(), "show", "chart", f"oci://{registry}/charts/leviathan", "--version", "9.9.9", "--plain-http"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert result.returncode != 0 and "9.9.9" in result.stderr


def test_the_packaged_readme_installs_from_the_registry(pushed, tmp_path):
    registry, tarball, _, _ = pushed
    with tarfile.open(tarball) as archive:
        safe_extract(archive, tmp_path)
    readme = (tmp_path / "leviathan" / "README.md").read_text()
    assert (
        f"helm upgrade --install leviathan oci://{registry}/charts/leviathan --version {VERSION} -n leviathan" in readme
    )
    for token in (" chart -n ", "values/", "hack/", "make "):
        assert token not in readme, token
