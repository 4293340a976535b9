"""Helpers of the end-to-end tests (tests/e2e): commands against the cluster, the runbook's
commands from the contract data, and the two Helm binaries of the upgrade matrix.

Everything runs through the real command-line tools (kubectl, helm, bash), as an
operator would. The fixtures and pytest hooks that use these stay in tests/e2e/conftest.py.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest
import yaml

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
# (tool, brake, outcome) rows of tests/e2e/test_gitops.py, printed after the run.
GITOPS: list[tuple[str, str, str]] = []
# (helm, case, outcome) rows of the upgrade matrix, printed after the run.
MATRIX: list[tuple[str, str, str]] = []
# (identity, action, outcome) rows of the release-control module (issue 14), printed after the run.
OUTCOMES: list[tuple[str, str, str]] = []
# The contract's grep of the switch line, and the CronJob: what the matrix checks after each upgrade.
GREP = "disable.grep-configmap"
CRONJOB = CONTRACT.names["scheduler"]


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


def sh(
    command: str, check: bool = True, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """A runbook command, exactly as an operator pastes it into bash."""
    return run("bash", "-o", "pipefail", "-c", command, check=check, env={**os.environ, **(env or {})}, timeout=timeout)


def in_cluster(command: str, check: bool = True, env: dict[str, str] | None = None, timeout: float = 600):
    """A runbook command that must run inside the cluster (the curl to the Service name)."""
    if not LOCAL:
        pytest.skip("in-cluster commands run on the local control plane only (make e2e without a context)")
    exports = "".join(f"export {key}={shlex.quote(value)}; " for key, value in (env or {}).items())
    return run(str(REPO / "hack" / "cluster" / "incluster.sh"), exports + command, check=check, timeout=timeout)


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


def skip_reason() -> str | None:
    if os.environ.get("LEVIATHAN_E2E") != "1":
        return "real-cluster e2e: run make e2e (it starts a local control plane), or set LEVIATHAN_E2E=1 and a context"
    probe = subprocess.run(["kubectl", "version", "--request-timeout=5s", "-o", "json"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"real-cluster e2e: no cluster reachable from the current kube context ({probe.stderr.strip()[:200]})"
    return None


@dataclass
class Images:
    """Extra helm flags naming the images; none on the local cluster, whose node has the chart's defaults."""

    flags: list[str]


def bumped_image_tag() -> str:
    """A CI image bump: the control-plane image under a new tag, present on the node.

    On the local cluster, the chart's image tagged 0.1.1 in the node's containerd (nothing can be
    pulled there); another cluster would need that tag pushed, so the test is skipped there.
    """
    if not LOCAL:
        pytest.skip("an image bump needs a second tag of the control-plane image on the nodes")
    repository = "ghcr.io/leviathan/control-plane"
    version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    socket = str(CLUSTER_DIR / "containerd" / "containerd.sock")
    run(
        "ctr",
        "--address",
        socket,
        "-n",
        "k8s.io",
        "images",
        "tag",
        "--force",
        f"{repository}:{version}",
        f"{repository}:0.1.1",
    )
    return "0.1.1"


# helm flags for a release whose CronJob never ticks on its own during a test (1 January only), while
# not suspended: the test runs its ticks itself, and a real one at a */5 minute would add workers.
NO_SCHEDULED_TICKS = ("--set-string", "scheduler.schedule=0 0 1 1 *")


def install_args(images: Images) -> list[str]:
    """`helm upgrade --install leviathan chart -n leviathan -f values/dev.yaml`, as the README has it."""
    chart_and_values = [str(CHART), "-n", NAMESPACE, "-f", str(VALUES_DIR / "dev.yaml")]
    return ["upgrade", "--install", RELEASE, *chart_and_values, *images.flags]


def contract_run(
    command_id: str,
    env: dict[str, str] | None = None,
    check_expect: bool = True,
    may_fail: bool = False,
    timeout: float = 600,
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
        result = in_cluster(text, env=env, check=not may_fail, timeout=timeout)
    else:
        result = sh(text, env=env, check=not may_fail, timeout=timeout)
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
    """kubelet (every 5 s on the local node) delivers the ConfigMap; the control plane follows the file."""
    expected = {"autonomy_enabled": enabled, "source": SOURCE}
    env = {"CONTROL_PLANE_TOKEN": token()}
    answers: list[str] = []

    def answered() -> bool:
        # Right after a rollout the Service may briefly have no ready endpoint: ask again, each
        # time on a new connection, and give each try 10 s so one lost connection is not the wait.
        try:
            answer = contract_run("query-status.curl", env=env, check_expect=False, may_fail=True, timeout=10)
        except subprocess.TimeoutExpired:
            answers.append("(no answer within 10 s)")
            return False
        answers.append(answer.strip() or "(empty)")
        try:
            return json.loads(answer) == expected
        except ValueError:
            return False

    try:
        eventually(answered, timeout=60, what=f"the status API to say {expected}")
    except ComponentDied:
        raise
    except AssertionError as timed_out:
        raise AssertionError(f"{timed_out}; its answers, last 5: {answers[-5:]}\n{service_path()}") from None


def service_path() -> str:
    """Where the Service's traffic goes: the control plane's pods, endpoints and kube-proxy's rules for it."""
    lines = [kubectl("get", "pods,endpointslices", "-n", NAMESPACE, "-o", "wide", check=False).stdout]
    lines.append(kubectl("describe", "endpointslices", "-n", NAMESPACE, check=False).stdout[-3000:])
    if LOCAL and shutil.which("iptables-save"):
        rules = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
        lines.append("\n".join(line for line in rules.splitlines() if "control-plane" in line))
    return "\n".join(lines)


# ---- the two Helm binaries of the upgrade matrix ----


def built_helm(major: int) -> str:
    result = subprocess.run(
        [str(REPO / "hack" / "build-helm.sh"), f"helm{major}"], capture_output=True, text=True, check=True
    )
    return result.stdout.strip().splitlines()[-1]


class Helm:
    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.name = Path(binary).parent.name  # helm3 or helm4

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(self.binary, *args, check=check)

    def install(self) -> None:
        dev = str(VALUES_DIR / "dev.yaml")
        self("upgrade", "--install", RELEASE, str(CHART), "-n", NAMESPACE, "-f", dev, "--wait", "--timeout", "3m")

    def upgrade(self, *flags: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self("upgrade", RELEASE, str(CHART), "-n", NAMESPACE, *flags, check=check)

    def upgrade_config(self, *flags: str) -> str:
        """An upgrade that rewrites the config text after a `kubectl edit`.

        Helm 3 (three-way merge) applies it. Helm 4 applies server-side: the edit made
        `kubectl-edit` the owner of the config text, so the upgrade is refused with a
        conflict and nothing changes; `--force-conflicts` is then safe, because the render
        carries the live switch. Returns what happened, for the matrix.
        """
        if self.name == "helm3":
            self.upgrade(*flags, "--wait")
            return "applied"
        before = (switch(), configmap_version())
        refused = self.upgrade(*flags, check=False)
        if refused.returncode == 0:
            return "applied"
        assert "conflict" in refused.stderr and 'with "kubectl-edit"' in refused.stderr, refused.stderr
        assert (switch(), configmap_version()) == before
        self.upgrade(*flags, "--force-conflicts", "--wait")
        return "conflict, nothing applied; applied with --force-conflicts"

    def uninstall(self) -> None:
        self("uninstall", RELEASE, "-n", NAMESPACE, "--wait", check=False)
        eventually(lambda: not kubectl("get", "pods", "-n", NAMESPACE, "-o", "name").stdout.strip(), 120, "no pods")


def switch() -> str:
    return contract_run(GREP, check_expect=False).strip()


def suspended() -> str:
    return kubectl("get", "cronjob", CRONJOB, "-n", NAMESPACE, "-o", "jsonpath={.spec.suspend}").stdout


def record(helm: Helm, case: str, outcome: str) -> None:
    """One row of the matrix printed at the end of the run (conftest's terminal summary)."""
    MATRIX.append((helm.name, case, outcome))


def edit_switch_line(old: str, new: str) -> None:
    """`kubectl edit` with an editor that rewrites the switch line, e.g. to a value the reader refuses."""
    editor = f"sed -i 's/^    autonomy_enabled: {old}$/    autonomy_enabled: {new}/'"
    run("bash", "-c", f'KUBE_EDITOR="{editor}" kubectl edit configmap leviathan-autonomy-config -n leviathan')


def reported_source() -> str:
    answer = contract_run("query-status.curl", env={"CONTROL_PLANE_TOKEN": token()}, check_expect=False)
    return json.loads(answer)["source"]
