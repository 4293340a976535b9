"""A release first installed by Helm 3 and then upgraded by Helm 4 keeps the kill switch.

Helm 4's `--server-side` defaults to "auto": it follows the previous release's apply method, so a
release Helm 3 installed stays on client-side apply (three-way merge) after the change of binary.
"""

from __future__ import annotations

import pytest

from support.cluster import LOCAL, Helm, built_helm, bumped_image_tag, contract_run, record, suspended, switch
from support.paths import VALUES_DIR


@pytest.mark.skipif(not LOCAL, reason="runs on the local control plane (its pods need no image registry)")
def test_a_helm3_release_upgraded_by_helm4_keeps_the_switch_and_the_stop(namespace: str):
    helm3, helm4 = Helm(built_helm(3)), Helm(built_helm(4))
    helm3.install()
    try:
        contract_run("disable.edit-configmap")
        contract_run("emergency-stop.suspend")
        helm4.upgrade(
            "-f", str(VALUES_DIR / "dev.yaml"), "--set", f"controlPlane.image.tag={bumped_image_tag()}", "--wait"
        )
        assert (switch(), suspended()) == ("autonomy_enabled: false", "true")
        record(
            helm4,
            "installed by helm3, kubectl edit off + kubectl patch stop; helm4 plain upgrade",
            "still off, stopped",
        )
    finally:
        helm4.uninstall()
