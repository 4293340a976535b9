"""Flipping the switch touches only the ConfigMap; suspending touches only the CronJob."""

from __future__ import annotations

import base64

import pytest

from support.helm import render_chart
from support.paths import VALUES_DIR


def by_identity(values: dict) -> dict[tuple[str, str], dict]:
    """Rendered objects keyed by kind and name, with the generated token set aside.

    Under `helm template` the token is random (no `lookup`); on a live upgrade
    it is carried over from the cluster.
    """
    objects = {}
    for doc in render_chart(values, values_files=[VALUES_DIR / "dev.yaml"]):
        if "helm.sh/hook" in doc["metadata"].get("annotations", {}):
            continue  # `helm test` pods are created by `helm test`, not by the upgrade
        if doc["kind"] == "Secret":
            token = base64.b64decode(doc["data"]["LEVIATHAN_CONTROL_PLANE_TOKEN"])
            assert len(token) >= 32
            doc["data"]["LEVIATHAN_CONTROL_PLANE_TOKEN"] = "<generated>"
        objects[(doc["kind"], doc["metadata"]["name"])] = doc
    return objects


def changed(before: dict, after: dict) -> list[tuple[str, str]]:
    assert before.keys() == after.keys()
    return sorted(key for key in before if before[key] != after[key])


@pytest.mark.parametrize("enabled", [True, False])
def test_autonomy_toggle_changes_only_the_configmap(enabled):
    before = by_identity({"autonomy": {"enabled": enabled}})
    after = by_identity({"autonomy": {"enabled": not enabled}})
    assert changed(before, after) == [("ConfigMap", "leviathan-autonomy-config")]
    old, new = before[("ConfigMap", "leviathan-autonomy-config")], after[("ConfigMap", "leviathan-autonomy-config")]
    assert old["data"] != new["data"]
    assert old["metadata"] == new["metadata"]


@pytest.mark.parametrize("suspend", [True, False])
def test_suspend_toggle_changes_only_the_cronjob(suspend):
    before = by_identity({"scheduler": {"suspend": suspend}})
    after = by_identity({"scheduler": {"suspend": not suspend}})
    assert changed(before, after) == [("CronJob", "leviathan-dev-scheduler")]
    cronjob = after[("CronJob", "leviathan-dev-scheduler")]
    cronjob["spec"]["suspend"] = suspend
    assert cronjob == before[("CronJob", "leviathan-dev-scheduler")]
