"""A local OCI registry (Debian's `docker-registry`, the distribution project's) and the chart pushed to it."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import yaml

from support.paths import REPO, helm_binary

REGISTRY = os.environ.get("DOCKER_REGISTRY") or shutil.which("docker-registry")
VERSION = yaml.safe_load((REPO / "chart" / "Chart.yaml").read_text())["version"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_registry(root: Path) -> Iterator[str]:
    """A registry on 127.0.0.1 and a free port, storing under `root`; yields its host:port."""
    assert REGISTRY, "docker-registry not found (apt-get install docker-registry)"
    root.mkdir(parents=True, exist_ok=True)
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
            raise RuntimeError(f"docker-registry did not answer on port {port}: {(root / 'registry.log').read_text()}")
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def package_and_push(registry: str, dest: Path) -> tuple[str, Path, subprocess.CompletedProcess[str], dict[str, str]]:
    """`make package` (hack/package-chart.sh, pointing its README at this registry) and `helm push`."""
    dest.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HELM": helm_binary(), "CHART_REPOSITORY": f"oci://{registry}/charts"}
    subprocess.run([str(REPO / "hack" / "package-chart.sh"), str(dest)], env=env, check=True, capture_output=True)
    [tarball] = dest.glob("leviathan-*.tgz")
    config = dest / "helm-config"
    config.mkdir()
    env = {**os.environ, "HELM_REGISTRY_CONFIG": str(config / "registry.json"), "HELM_CACHE_HOME": str(config)}
    push = subprocess.run([helm_binary(), "push", str(tarball), f"oci://{registry}/charts", "--plain-http"],
                          capture_output=True, text=True, timeout=120, env=env)  # fmt: skip
    assert push.returncode == 0, push.stderr
    return registry, tarball, push, env
