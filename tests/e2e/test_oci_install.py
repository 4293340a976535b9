"""`helm install oci://<registry>/charts/leviathan --version X` on the real API server, as users of OCI
charts install it (issue 22): the package `make package` builds, pushed to a local docker-registry."""

from __future__ import annotations

import pytest

from support.cluster import NAMESPACE, helm, kubectl, switch
from support.registry import REGISTRY, VERSION, local_registry, package_and_push

pytestmark = pytest.mark.skipif(REGISTRY is None, reason="docker-registry not found (apt-get install docker-registry)")


def test_install_from_the_oci_registry_by_version(namespace: str, tmp_path, capsys):
    with local_registry(tmp_path / "registry") as registry:
        _, _, push, _env = package_and_push(registry, tmp_path / "dist")
        ref = f"oci://{registry}/charts/leviathan"
        result = helm("install", "leviathan", ref, "--version", VERSION, "--plain-http", "-n", NAMESPACE,
                      "--set", "metrics.serviceMonitor.enabled=false")  # fmt: skip
    try:
        assert f"Pulled: {registry}/charts/leviathan:{VERSION}" in result.stderr + result.stdout
        assert "STATUS: deployed" in result.stdout
        assert "Differs from the reference runbook" not in result.stdout
        listed = helm("list", "-n", NAMESPACE, "-o", "json").stdout
        assert f'"chart":"leviathan-{VERSION}"' in listed.replace(" ", "")
        assert switch() == "autonomy_enabled: true"
        assert kubectl("get", "cronjob", "leviathan-dev-scheduler", "-n", NAMESPACE).returncode == 0
        with capsys.disabled():
            print(f"\n--- OCI install transcript ---\n{push.stderr}$ helm install leviathan {ref} --version {VERSION} "
                  f"--plain-http -n {NAMESPACE}\n{result.stderr}{result.stdout}")  # fmt: skip
    finally:
        helm("uninstall", "leviathan", "-n", NAMESPACE, "--wait", check=False)
