"""End-to-end tests on a real Kubernetes API server.

`make e2e` brings up the local cluster (hack/cluster: official kube-apiserver,
controller-manager, scheduler and etcd; a real node of kubelet, containerd, kube-proxy and
CoreDNS running the chart's pods from the images `make images` built; kwok faking worker
pods) and runs these against it; with LEVIATHAN_E2E_CONTEXT or
KUBECONFIG set it targets that cluster instead. Without LEVIATHAN_E2E=1 they are
skipped, and say why.

The helpers live in tests/support/cluster.py. The runbook's commands run verbatim
through a shell (`sh`), so the release is
`leviathan` in namespace `leviathan`, as the runbook names them.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from support.cluster import (
    GITOPS,
    LOCAL,
    MATRIX,
    NAMESPACE,
    OUTCOMES,
    RELEASE,
    Images,
    check_components,
    helm,
    install_args,
    kubectl,
    run,
    skip_reason,
)
from support.paths import REPO


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = skip_reason()
    if reason:
        for item in items:
            if "tests/e2e" in str(item.path):
                item.add_marker(pytest.mark.skip(reason=reason))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if MATRIX:
        terminalreporter.section("kill switch under Helm: the upgrade matrix")
        for helm_name, case, outcome in MATRIX:
            terminalreporter.write_line(f"{helm_name:6} {case} -> {outcome}")
    if GITOPS:
        terminalreporter.section("the brake under GitOps: tool x brake -> next sync")
        for tool, brake, outcome in GITOPS:
            terminalreporter.write_line(f"{tool:54} {brake:55} -> {outcome}")
    if OUTCOMES:
        terminalreporter.section("release control: identity x action -> outcome")
        for who, action, outcome in OUTCOMES:
            terminalreporter.write_line(f"{who:14} {action:58} -> {outcome}")


@pytest.fixture(autouse=True)
def components_alive():
    check_components()
    yield
    check_components()


@pytest.fixture(scope="session")
def namespace() -> str:
    """The runbook's namespace, under the restricted Pod Security Standard."""
    existing = kubectl("get", "namespace", NAMESPACE, check=False)
    if existing.returncode == 0 and not LOCAL:
        releases = helm("list", "-n", NAMESPACE, "-q").stdout.split()
        if releases:
            pytest.fail(f"namespace {NAMESPACE} already holds releases {releases}: e2e needs it to itself")
    if existing.returncode != 0:
        kubectl("create", "namespace", NAMESPACE)
    kubectl("label", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=restricted", "--overwrite")
    return NAMESPACE


@pytest.fixture(scope="session")
def images(request: pytest.FixtureRequest) -> Images:
    """Local cluster: the chart's own image names. Elsewhere: build both images and load them
    into kind or k3d, or use the ones pushed to --image-registry."""
    if LOCAL:
        return Images([])
    registry = request.config.getoption("--image-registry")
    if registry:
        repositories = {name: f"{registry}/{name}" for name in ("control-plane", "scheduler")}
        tag = "0.1.0"
    else:
        context = kubectl("config", "current-context").stdout.strip()
        tag = f"e2e-{int(time.time())}"
        repositories = {name: f"leviathan/{name}" for name in ("control-plane", "scheduler")}
        # As make images builds them: its engine, base and pip settings.
        build = REPO / "hack" / "container_images.py"
        run(sys.executable, str(build), "build", "--registry=leviathan", f"--version={tag}", timeout=1800)
        for repository in repositories.values():
            if context.startswith("kind-"):
                run("kind", "load", "docker-image", f"{repository}:{tag}", "--name", context.removeprefix("kind-"))
            elif context.startswith("k3d-"):
                run("k3d", "image", "import", f"{repository}:{tag}", "-c", context.removeprefix("k3d-"))
            else:
                pytest.fail(f"context {context!r} is neither kind nor k3d: push the images and pass --image-registry")
    flags = []
    for name, key in (("control-plane", "controlPlane"), ("scheduler", "scheduler")):
        flags += ["--set", f"{key}.image.repository={repositories[name]}", "--set", f"{key}.image.tag={tag}"]
    return Images(flags)


@pytest.fixture(scope="session")
def release(namespace: str, images: Images):
    """The chart installed with values/dev.yaml; uninstalled at the end if a test left it there."""
    helm(*install_args(images), "--wait", "--timeout", "3m")
    yield images
    helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", check=False)


KEEPER = "leviathan-e2e-param-informer-keeper"


@pytest.fixture(scope="session", autouse=True)
def param_informer_keeper():
    """A do-nothing admission policy with paramKind ConfigMap, bound for the whole session.

    kube-apiserver stops its ConfigMap parameter informer for good once no binding uses that
    paramKind (kubernetes/kubernetes#133827): after one module uninstalls its release, the next
    module's worker admission policy would never find its ConfigMap. This binding keeps one in use.
    It matches no request (a resource that does not exist) and allows when its parameter is absent.
    """
    if skip_reason():
        yield
        return
    policy = f"""
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {{name: {KEEPER}}}
spec:
  paramKind: {{apiVersion: v1, kind: ConfigMap}}
  matchConstraints:
    resourceRules:
      - {{apiGroups: [leviathan.io], apiVersions: [v1], operations: [CREATE], resources: [no-such-objects]}}
  validations:
    - expression: "true"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {{name: {KEEPER}}}
spec:
  policyName: {KEEPER}
  validationActions: [Deny]
  paramRef: {{name: {KEEPER}, namespace: default, parameterNotFoundAction: Allow}}
"""
    subprocess.run(["kubectl", "apply", "-f", "-"], input=policy, text=True, capture_output=True, check=False)
    yield
    kubectl("delete", "validatingadmissionpolicybinding,validatingadmissionpolicy", KEEPER, check=False)
