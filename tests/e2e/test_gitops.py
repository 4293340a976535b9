"""The brake under GitOps (issue 22), each tool simulated with its own apply on the real API server.

Argo CD (gitops: true) renders with `helm template` and applies with server-side apply as field manager
`argocd-controller`, forcing conflicts; self-heal re-applies the render. With `ignoreDifferences` and
`RespectIgnoreDifferences=true` it first sets the ignored fields of the render to their live values.
Flux's helm-controller runs a real `helm upgrade` (client-side, Helm 3 semantics: the chart's `lookup`
sees the live switch); with `driftDetection.mode: enabled` it puts the live objects back to the last
release's manifest, except the `ignore` paths, which keep their live values.

Each case: the kubectl brake (the runbook's `kubectl edit` and `kubectl patch`), then the tool's next sync,
then what the switch and the stop say. The rows are printed at the end of the run (docs/GITOPS.md's table).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator

import pytest
import yaml

from support.cluster import GITOPS, NAMESPACE, contract_run, helm, kubectl, suspended, switch
from support.paths import CHART

TOKEN = "gitops-e2e-token-0123456789-abcdefghijkl"
ARGO_VALUES = ["--set", "gitops=true", "--set", f"auth.token={TOKEN}", "--set", "autonomy.enabled=true",
               "--set", "scheduler.suspend=false", "--set", "metrics.serviceMonitor.enabled=false"]  # fmt: skip
CONFIGMAP, CRONJOB, KEY = "leviathan-autonomy-config", "leviathan-dev-scheduler", "dev.yaml"


def row(tool: str, brake: str, outcome: str) -> None:
    GITOPS.append((tool, brake, outcome))


def state() -> tuple[str, str]:
    return switch(), suspended()


def kubectl_brake() -> None:
    contract_run("disable.edit-configmap")
    contract_run("emergency-stop.suspend")
    assert state() == ("autonomy_enabled: false", "true")


def namespaced(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] in {"ConfigMap", "CronJob", "Secret", "Service", "Deployment"}]


def server_side_apply(docs: list[dict], manager: str) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as manifest:
        yaml.safe_dump_all(docs, manifest)
        manifest.flush()
        kubectl("apply", "--server-side", f"--field-manager={manager}", "--force-conflicts", "-n", NAMESPACE,
                "-f", manifest.name)  # fmt: skip


def live(kind: str, name: str) -> dict:
    return json.loads(kubectl("get", kind, name, "-n", NAMESPACE, "-o", "json").stdout)


def keep_live_fields(docs: list[dict]) -> list[dict]:
    """What RespectIgnoreDifferences (Argo CD) and driftDetection.ignore (Flux) do to the ignored paths:
    the applied object carries the live value, so the sync does not change it."""
    for doc in docs:
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == CONFIGMAP:
            doc["data"][KEY] = live("configmap", CONFIGMAP)["data"][KEY]
        if doc["kind"] == "CronJob" and doc["metadata"]["name"] == CRONJOB:
            doc["spec"]["suspend"] = live("cronjob", CRONJOB)["spec"]["suspend"]
    return docs


def argo_render() -> list[dict]:
    rendered = helm("template", "leviathan", str(CHART), "-n", NAMESPACE, *ARGO_VALUES).stdout
    return namespaced([d for d in yaml.safe_load_all(rendered) if d])


@pytest.fixture
def argo(namespace: str) -> Iterator[None]:
    server_side_apply(argo_render(), "argocd-controller")  # the first sync
    assert state() == ("autonomy_enabled: true", "false")
    yield
    for doc in argo_render():
        kubectl("delete", doc["kind"], doc["metadata"]["name"], "-n", NAMESPACE, "--ignore-not-found")


def test_argo_self_heal_reverts_a_kubectl_brake_without_ignore_differences(argo):
    kubectl_brake()
    server_side_apply(argo_render(), "argocd-controller")  # self-heal
    assert state() == ("autonomy_enabled: true", "false")
    row("Argo CD, gitops: true, self-heal", "kubectl disable + emergency stop", "reverted: on, not suspended")


def test_argo_self_heal_keeps_a_kubectl_brake_with_respect_ignore_differences(argo):
    kubectl_brake()
    server_side_apply(keep_live_fields(argo_render()), "argocd-controller")
    assert state() == ("autonomy_enabled: false", "true")
    # And a later sync that changes something else (a new label) keeps it too.
    docs = keep_live_fields(argo_render())
    for doc in docs:
        doc["metadata"].setdefault("labels", {})["example.com/synced"] = "again"
    server_side_apply(docs, "argocd-controller")
    assert state() == ("autonomy_enabled: false", "true")
    row("Argo CD, ignoreDifferences + RespectIgnoreDifferences", "kubectl disable + emergency stop", "kept")


def test_argo_brake_as_a_commit(argo):
    committed = [*ARGO_VALUES, "--set", "autonomy.enabled=false", "--set", "scheduler.suspend=true"]
    rendered = helm("template", "leviathan", str(CHART), "-n", NAMESPACE, *committed).stdout
    server_side_apply(namespaced([d for d in yaml.safe_load_all(rendered) if d]), "argocd-controller")
    assert state() == ("autonomy_enabled: false", "true")
    row("Argo CD, gitops: true, self-heal", "commit autonomy.enabled=false, scheduler.suspend=true", "applied")


@pytest.fixture
def flux(namespace: str) -> Iterator[list[str]]:
    # helm-controller is Helm 3 SDK: client-side apply. The HelmRelease's values leave the switch null.
    values = ["--server-side=false", "--set", "metrics.serviceMonitor.enabled=false"]
    helm("install", "leviathan", str(CHART), "-n", NAMESPACE, *values)
    assert state() == ("autonomy_enabled: true", "false")
    yield values
    helm("uninstall", "leviathan", "-n", NAMESPACE, "--wait", check=False)


def flux_reconcile(values: list[str]) -> None:
    helm("upgrade", "leviathan", str(CHART), "-n", NAMESPACE, *values, "--set", "controlPlane.podLabels.rev=next")


def drift_correction(ignore: bool) -> None:
    manifest = helm("get", "manifest", "leviathan", "-n", NAMESPACE).stdout
    docs = namespaced([d for d in yaml.safe_load_all(manifest) if d])
    server_side_apply(keep_live_fields(docs) if ignore else docs, "helm-controller")


def test_flux_upgrade_keeps_a_kubectl_brake(flux):
    kubectl_brake()
    flux_reconcile(flux)
    assert state() == ("autonomy_enabled: false", "true")
    row("Flux, gitops: false, drift detection off", "kubectl disable + emergency stop", "kept")


def test_flux_upgrade_keeps_a_helm_disable(flux):
    helm("upgrade", "leviathan", str(CHART), "-n", NAMESPACE, "--reset-then-reuse-values",
         "--set", "autonomy.enabled=false")  # fmt: skip
    flux_reconcile(flux)  # Flux's own values: autonomy.enabled stays null
    drift_correction(ignore=False)  # the manifest now says false itself
    assert switch() == "autonomy_enabled: false"
    row("Flux, gitops: false, drift detection on or off", "helm disable", "kept")


def test_flux_drift_correction_reverts_a_kubectl_brake_without_ignore(flux):
    kubectl_brake()
    drift_correction(ignore=False)
    assert state() == ("autonomy_enabled: true", "false")
    row("Flux, driftDetection enabled, no ignore", "kubectl disable + emergency stop", "reverted: on, not suspended")


def test_flux_drift_correction_keeps_a_kubectl_brake_with_ignore(flux):
    kubectl_brake()
    drift_correction(ignore=True)
    assert state() == ("autonomy_enabled: false", "true")
    flux_reconcile(flux)
    assert state() == ("autonomy_enabled: false", "true")
    row("Flux, driftDetection enabled, the docs' ignore", "kubectl disable + emergency stop", "kept")


def test_the_sync_is_argo_cds_field_manager(argo):
    configmap = kubectl("get", "configmap", CONFIGMAP, "-n", NAMESPACE, "-o", "json", "--show-managed-fields").stdout
    managers = {m["manager"] for m in json.loads(configmap)["metadata"]["managedFields"]}
    assert "argocd-controller" in managers
