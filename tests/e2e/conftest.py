"""End-to-end tests on a real Kubernetes API server.

`make e2e` brings up the local control plane (hack/cluster: official kube-apiserver,
controller-manager, scheduler and etcd, kwok for the node, our pod agent running the
chart's pods from .venv) and runs these against it; with LEVIATHAN_E2E_CONTEXT or
KUBECONFIG set it targets that cluster instead. Without LEVIATHAN_E2E=1 they are
skipped, and say why.

The runbook's commands run verbatim through a shell (`sh`), so the release is
`leviathan` in namespace `leviathan`, as the runbook names them.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import pytest

from support.contract import CONFIG_PATH, Command, configmap_source, load_contract
from support.paths import CHART, REPO, VALUES_DIR, helm_binary

NAMESPACE = "leviathan"
RELEASE = "leviathan"
CLUSTER_DIR = REPO / ".run" / "cluster"
LOCAL = os.environ.get("LEVIATHAN_E2E_LOCAL") == "1"
T = TypeVar("T")
CONTRACT = load_contract()
SOURCE = configmap_source(CONFIG_PATH)
# Ids of the contract commands that ran, across the whole session (the runbook module checks coverage).
RAN: set[str] = set()
# (helm, case, outcome) rows of the upgrade matrix, printed after the run.
MATRIX: list[tuple[str, str, str]] = []


class ComponentDied(AssertionError):
    pass


def check_components() -> None:
    """On the local cluster, fail at once with the last lines of any component that died."""
    if not LOCAL:
        return
    for pidfile in sorted((CLUSTER_DIR / "pids").glob("*")):
        pid = int(pidfile.read_text())
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            log = CLUSTER_DIR / "logs" / f"{pidfile.name}.log"
            tail = log.read_text(errors="replace").splitlines()[-20:] if log.exists() else ["(no log)"]
            raise ComponentDied(f"{pidfile.name} died; its last lines:\n" + "\n".join(tail)) from None


def run(*command: str, check: bool = True, timeout: float = 600, env: dict[str, str] | None = None):
    print("+", shlex.join(command), flush=True)
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    if check and result.returncode != 0:
        check_components()
        raise AssertionError(f"{shlex.join(command)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def sh(command: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A runbook command, exactly as an operator pastes it into bash."""
    return run("bash", "-o", "pipefail", "-c", command, check=check, env={**os.environ, **(env or {})})


def in_cluster(command: str, check: bool = True, env: dict[str, str] | None = None):
    """A runbook command that must run inside the cluster (the curl to the Service name)."""
    if not LOCAL:
        pytest.skip("in-cluster commands run on the local control plane only (make e2e without a context)")
    exports = "".join(f"export {key}={shlex.quote(value)}; " for key, value in (env or {}).items())
    return run(str(REPO / "hack" / "cluster" / "incluster.sh"), exports + command, check=check)


def kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run("kubectl", *args, check=check)


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return run(helm_binary(), *args, check=check)


def eventually(check: Callable[[], T], timeout: float, what: str, interval: float = 1.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        check_components()
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def _skip_reason() -> str | None:
    if os.environ.get("LEVIATHAN_E2E") != "1":
        return "real-cluster e2e: run make e2e (it starts a local control plane), or set LEVIATHAN_E2E=1 and a context"
    probe = subprocess.run(["kubectl", "version", "--request-timeout=5s", "-o", "json"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"real-cluster e2e: no cluster reachable from the current kube context ({probe.stderr.strip()[:200]})"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    reason = _skip_reason()
    if reason:
        for item in items:
            if "tests/e2e" in str(item.path):
                item.add_marker(pytest.mark.skip(reason=reason))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if MATRIX:
        terminalreporter.section("kill switch under Helm: the upgrade matrix")
        for helm_name, case, outcome in MATRIX:
            terminalreporter.write_line(f"{helm_name:6} {case} -> {outcome}")


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


@dataclass
class Images:
    """Extra helm flags naming the images; none on the local cluster, whose agent runs ours from .venv."""

    flags: list[str]


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
        engine = os.environ.get("CONTAINER_ENGINE") or "docker"
        context = kubectl("config", "current-context").stdout.strip()
        tag = f"e2e-{int(time.time())}"
        repositories = {name: f"leviathan/{name}" for name in ("control-plane", "scheduler")}
        for name, repository in repositories.items():
            dockerfile = str(REPO / "images" / name / "Dockerfile")
            run(engine, "build", "-f", dockerfile, "-t", f"{repository}:{tag}", str(REPO / "images"))
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


def install_args(images: Images) -> list[str]:
    """`helm upgrade --install leviathan chart -n leviathan -f values/dev.yaml`, as the README has it."""
    chart_and_values = [str(CHART), "-n", NAMESPACE, "-f", str(VALUES_DIR / "dev.yaml")]
    return ["upgrade", "--install", RELEASE, *chart_and_values, *images.flags]


@pytest.fixture(scope="session")
def release(namespace: str, images: Images):
    """The chart installed with values/dev.yaml; uninstalled at the end if a test left it there."""
    helm(*install_args(images), "--wait", "--timeout", "3m")
    yield images
    helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", check=False)


# ---- the runbook's commands, from the contract data ----


def contract_run(
    command_id: str,
    env: dict[str, str] | None = None,
    check_expect: bool = True,
    may_fail: bool = False,
    **replace: str,
) -> str:
    """Run one contract command verbatim (placeholders replaced only where it has them); its output."""
    command: Command = CONTRACT.command(command_id)
    text = command.run
    for placeholder, value in replace.items():
        assert placeholder in command.placeholders, f"{command_id} has no placeholder {placeholder}"
        text = text.replace(placeholder, value)
    env = dict(env or {})
    if command.kube_editor:
        env["KUBE_EDITOR"] = command.kube_editor
    if command.in_cluster_network:
        result = in_cluster(text, env=env, check=not may_fail)
    else:
        result = sh(text, env=env, check=not may_fail)
    if check_expect:
        problems = command.expect.mismatches(result.stdout, CONTRACT.table_columns)
        assert not problems, f"{command_id}: {problems}\n{result.stdout}"
    RAN.add(command_id)
    return result.stdout


def configmap_version() -> str:
    """What `autonomy.confirmEnable` must name to turn autonomy on over a live `false`."""
    jsonpath = "jsonpath={.metadata.resourceVersion}"
    return kubectl("get", "configmap", CONTRACT.names["configmap"], "-n", NAMESPACE, "-o", jsonpath).stdout


def first_column(table: str) -> list[str]:
    return [line.split()[0] for line in table.splitlines()[1:] if line.strip()]


def token() -> str:
    return contract_run("unauthorized.read-secret")


def wait_for_status(enabled: bool) -> None:
    """kubelet (here the agent, every 5 s) delivers the ConfigMap; the control plane follows the file."""
    expected = {"autonomy_enabled": enabled, "source": SOURCE}
    env = {"CONTROL_PLANE_TOKEN": token()}

    def answered() -> bool:
        # Right after a rollout the Service may briefly have no ready endpoint (curl: empty reply): ask again.
        answer = contract_run("query-status.curl", env=env, check_expect=False, may_fail=True)
        try:
            return json.loads(answer) == expected
        except ValueError:
            return False

    eventually(answered, timeout=60, what=f"the status API to say {expected}")


KEEPER = "leviathan-e2e-param-informer-keeper"


@pytest.fixture(scope="session", autouse=True)
def param_informer_keeper():
    """A do-nothing admission policy with paramKind ConfigMap, bound for the whole session.

    kube-apiserver stops its ConfigMap parameter informer for good once no binding uses that
    paramKind (kubernetes/kubernetes#133827): after one module uninstalls its release, the next
    module's worker admission policy would never find its ConfigMap. This binding keeps one in use.
    It matches no request (a resource that does not exist) and allows when its parameter is absent.
    """
    if _skip_reason():
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
