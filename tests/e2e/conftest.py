"""Real-cluster end-to-end tests: only with LEVIATHAN_E2E=1 and a reachable kube context.

Run them with `make e2e`. Without a cluster they are skipped, and say why.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass

import pytest

from support.paths import CHART, REPO, VALUES_DIR, helm_binary

NAMESPACE = "leviathan-e2e"
RELEASE = "leviathan"


def run(*command: str, check: bool = True, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    print("+", " ".join(command), flush=True)
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(os.environ.get("KUBECTL", "kubectl"), *args, check=check)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(helm_binary(), *args, check=check)


def eventually(check, timeout: float, what: str, interval: float = 3.0):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _skip_reason() -> str | None:
    if os.environ.get("LEVIATHAN_E2E") != "1":
        return "real-cluster e2e: set LEVIATHAN_E2E=1 and a kube context (kind, k3d or a real cluster), or run make e2e"
    probe = subprocess.run(
        [os.environ.get("KUBECTL", "kubectl"), "version", "--request-timeout=5s", "-o", "json"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        return f"real-cluster e2e: no cluster reachable from the current kube context ({probe.stderr.strip()[:200]})"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _skip_reason()
    if reason:
        for item in items:
            if "tests/e2e" in str(item.path):
                item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class Images:
    control_plane: tuple[str, str]  # repository, tag
    scheduler: tuple[str, str]

    def helm_flags(self) -> list[str]:
        return [
            "--set", f"controlPlane.image.repository={self.control_plane[0]}",
            "--set", f"controlPlane.image.tag={self.control_plane[1]}",
            "--set", f"scheduler.image.repository={self.scheduler[0]}",
            "--set", f"scheduler.image.tag={self.scheduler[1]}",
        ]  # fmt: skip


@pytest.fixture(scope="session")
def images(request: pytest.FixtureRequest) -> Images:
    """Build both images; load them into kind, or use the ones pushed to --image-registry."""
    registry = request.config.getoption("--image-registry")
    tag = f"e2e-{int(time.time())}"
    if registry:
        return Images((f"{registry}/control-plane", "0.1.0"), (f"{registry}/scheduler", "0.1.0"))
    engine = os.environ.get("CONTAINER_ENGINE") or "docker"
    context = kubectl("config", "current-context").stdout.strip()
    built = Images(("leviathan/control-plane", tag), ("leviathan/scheduler", tag))
    for name, (repository, image_tag) in (("control-plane", built.control_plane), ("scheduler", built.scheduler)):
        run(
            engine,
            "build",
            "-f",
            str(REPO / "images" / name / "Dockerfile"),
            "-t",
            f"{repository}:{image_tag}",
            str(REPO / "images"),
        )
        if context.startswith("kind-"):
            run("kind", "load", "docker-image", f"{repository}:{image_tag}", "--name", context.removeprefix("kind-"))
        elif not context.startswith("k3d-"):
            pytest.fail(f"context {context!r} is neither kind nor k3d: push the images and pass --image-registry")
        else:
            run("k3d", "image", "import", f"{repository}:{image_tag}", "-c", context.removeprefix("k3d-"))
    return built


@pytest.fixture(scope="session")
def release(images: Images):
    """The chart installed with values/dev.yaml in a namespace of its own; uninstalled at the end."""
    helm(
        "upgrade", "--install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--create-namespace",
        "-f", str(VALUES_DIR / "dev.yaml"), *images.helm_flags(), "--wait", "--timeout", "5m",
    )  # fmt: skip
    yield images
    helm("uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", check=False)
    kubectl("delete", "namespace", NAMESPACE, "--wait=false", check=False)
