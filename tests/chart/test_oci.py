"""`make package`'s chart pushed to a local OCI registry and installed from it by version, as users of
`oci://` charts do (issue 22). The registry is Debian's `docker-registry` (the distribution project's
registry), started on a free port for this module; without it these tests skip and say so."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.request

import pytest
import yaml

from support.archive import safe_extract
from support.paths import REPO, helm_binary

REGISTRY = os.environ.get("DOCKER_REGISTRY") or shutil.which("docker-registry")
pytestmark = pytest.mark.skipif(
    REGISTRY is None, reason="docker-registry not found (apt-get install docker-registry): OCI install not tested"
)
VERSION = yaml.safe_load((REPO / "chart" / "Chart.yaml").read_text())["version"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = {
        "version": 0.1,
        "log": {"level": "warn"},
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    (root / "config.yml").write_text(yaml.safe_dump(config))
    with open(root / "registry.log", "w") as log:
        process = subprocess.Popen([REGISTRY, "serve", str(root / "config.yml")], stdout=log, stderr=log)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail(f"docker-registry did not answer on port {port}: {(root / 'registry.log').read_text()}")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def helm(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stdout}{result.stderr}"
    return result


@pytest.fixture(scope="module")
def pushed(registry, tmp_path_factory):
    dest = tmp_path_factory.mktemp("dist")
    env = {**os.environ, "HELM": helm_binary(), "CHART_REPOSITORY": f"oci://{registry}/charts"}
    subprocess.run([str(REPO / "hack" / "package-chart.sh"), str(dest)], env=env, check=True, capture_output=True)
    [tarball] = dest.glob("leviathan-*.tgz")
    config = tmp_path_factory.mktemp("helm-config")
    env = {**os.environ, "HELM_REGISTRY_CONFIG": str(config / "registry.json"), "HELM_CACHE_HOME": str(config)}
    push = helm("push", str(tarball), f"oci://{registry}/charts", "--plain-http", env=env)
    return registry, tarball, push, env


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
