"""No routine Helm operation undoes the kill switch: the upgrade matrix on a real API server, Helm 3 and Helm 4.

Each case installs release `leviathan` with one Helm binary, turns autonomy off the way an
operator does (the runbook's `kubectl edit`, or Helm), runs the upgrades a CI pipeline or a
hurried colleague would, and checks the live ConfigMap, the CronJob and the status API.
Both binaries are built from their Go modules (hack/build-helm.sh). Runs before the runbook
module and leaves the namespace empty.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from support.contract import SOURCE_ERROR
from support.paths import CHART, REPO, VALUES_DIR

from .conftest import (
    CONTRACT,
    LOCAL,
    MATRIX,
    NAMESPACE,
    RELEASE,
    configmap_version,
    contract_run,
    eventually,
    kubectl,
    run,
    token,
    wait_for_status,
)

CRONJOB = CONTRACT.names["scheduler"]
GREP = "disable.grep-configmap"


def built_helm(major: int) -> str:
    result = subprocess.run(
        [str(REPO / "hack" / "build-helm.sh"), f"helm{major}"], capture_output=True, text=True, check=True
    )
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module", params=[3, 4], ids=["helm3", "helm4"])
def helm_bin(request: pytest.FixtureRequest, namespace: str) -> str:
    if not LOCAL:
        pytest.skip("the upgrade matrix runs on the local control plane (its pods need no image registry)")
    return built_helm(request.param)


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


@pytest.fixture(scope="module")
def helm(helm_bin: str):
    helm = Helm(helm_bin)
    helm.install()
    yield helm
    helm.uninstall()


def test_kubectl_edit_disable_survives_a_plain_upgrade_and_the_emergency_stop(helm: Helm):
    contract_run("disable.edit-configmap")
    assert switch() == "autonomy_enabled: false"
    # A CI image bump: a plain upgrade with the dev values and one --set, no reuse flag.
    helm.upgrade("-f", str(VALUES_DIR / "dev.yaml"), "--set", "controlPlane.image.tag=0.1.1", "--wait")
    assert switch() == "autonomy_enabled: false"
    wait_for_status(enabled=False)
    record(helm, "kubectl edit off; plain upgrade -f dev --set image.tag", "still off")
    # The runbook's path: jobs still appear, so the emergency stop follows. Nothing may switch it back on.
    contract_run("emergency-stop.suspend")
    for flags in (["--reuse-values"], ["--reset-then-reuse-values"], ["--set", "controlPlane.image.tag=0.1.0"]):
        applied = helm.upgrade_config(*flags)
        assert (switch(), suspended()) == ("autonomy_enabled: false", "true"), flags
        case = f"kubectl edit off + kubectl patch stop; upgrade {' '.join(flags)}"
        record(helm, case, f"{applied}; still off and stopped")
    contract_run("re-enable.unsuspend")


def test_helm_disable_survives_reset_values(helm: Helm):
    helm.upgrade_config(
        "--reset-then-reuse-values", "--set", "autonomy.enabled=false", "--set-literal", "autonomy.reason=e2e"
    )
    helm.upgrade("--reset-values", "-f", str(VALUES_DIR / "dev.yaml"))
    assert switch() == "autonomy_enabled: false"
    record(helm, "helm disable; --reset-values upgrade", "still off")


def test_enable_needs_an_explicit_confirmed_value(helm: Helm):
    before = configmap_version()
    refused = helm.upgrade("--reset-then-reuse-values", "--set", "autonomy.enabled=true", check=False)
    assert refused.returncode != 0
    assert "autonomy.confirmEnable" in refused.stderr
    assert configmap_version() == before and switch() == "autonomy_enabled: false"
    record(helm, "--set autonomy.enabled=true without the confirmation", "refused, nothing applied")
    helm.upgrade(
        "--reset-then-reuse-values", "--set", "autonomy.enabled=true", "--set", f"autonomy.confirmEnable={before}"
    )
    assert switch() == "autonomy_enabled: true"
    wait_for_status(enabled=True)
    record(helm, "--set autonomy.enabled=true with confirmEnable", "on")
    # The stored confirmation is stale for every later write: a reused `true` cannot re-enable.
    contract_run("disable.edit-configmap")
    stale = helm.upgrade("--reuse-values", check=False)
    assert stale.returncode != 0 and "autonomy.confirmEnable" in stale.stderr
    assert switch() == "autonomy_enabled: false"
    record(helm, "enabled via helm, kubectl edit off, --reuse-values upgrade", "refused, still off")


def test_rename_is_refused(helm: Helm):
    refused = helm.upgrade("--reset-then-reuse-values", "--set", "environment=prod", check=False)
    assert refused.returncode != 0 and "refusing to upgrade" in refused.stderr
    assert "-f values/dev.yaml or --set environment=dev" in refused.stderr
    assert kubectl("get", "cronjob", CRONJOB, "-n", NAMESPACE, check=False).returncode == 0
    record(helm, "upgrade that would rename the CronJob (environment=prod)", "refused")


def test_helm_test_follows_the_live_configmap(helm: Helm):
    helm("test", RELEASE, "-n", NAMESPACE, "--timeout", "2m")
    record(helm, "helm test on a good ConfigMap (off)", "passes")
    edit_switch_line("false", "maybe")
    eventually(lambda: reported_source() == SOURCE_ERROR, 60, "the control plane to see it")
    failed = helm("test", RELEASE, "-n", NAMESPACE, "--timeout", "40s", check=False)
    assert failed.returncode != 0
    logs = kubectl("logs", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=test", "--tail=20").stdout
    assert "unusable" in logs or "✗" in logs, logs
    record(helm, "helm test on a broken ConfigMap (autonomy_enabled: maybe)", "fails")
    edit_switch_line("maybe", "false")
    wait_for_status(enabled=False)
    helm("test", RELEASE, "-n", NAMESPACE, "--timeout", "2m")
    record(helm, "helm test after the ConfigMap is fixed", "passes")
