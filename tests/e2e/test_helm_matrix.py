"""No routine Helm operation undoes the kill switch: the upgrade matrix on a real API server, Helm 3 and Helm 4.

Each case installs release `leviathan` with one Helm binary, turns autonomy off the way an
operator does (the runbook's `kubectl edit`, or Helm), runs the upgrades a CI pipeline or a
hurried colleague would, and checks the live ConfigMap, the CronJob and the status API.
Both binaries are built from their Go modules (hack/build-helm.sh). Runs before the runbook
module and leaves the namespace empty.
"""

from __future__ import annotations

import pytest

from support.cluster import (
    CRONJOB,
    LOCAL,
    NAMESPACE,
    RELEASE,
    Helm,
    built_helm,
    bumped_image_tag,
    configmap_version,
    contract_run,
    edit_switch_line,
    eventually,
    kubectl,
    record,
    reported_source,
    suspended,
    switch,
    wait_for_status,
)
from support.contract import SOURCE_ERROR
from support.paths import VALUES_DIR


@pytest.fixture(scope="module", params=[3, 4], ids=["helm3", "helm4"])
def helm_bin(request: pytest.FixtureRequest, namespace: str) -> str:
    if not LOCAL:
        pytest.skip("the upgrade matrix runs on the local control plane (its pods need no image registry)")
    return built_helm(request.param)


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
    helm.upgrade("-f", str(VALUES_DIR / "dev.yaml"), "--set", f"controlPlane.image.tag={bumped_image_tag()}", "--wait")
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
