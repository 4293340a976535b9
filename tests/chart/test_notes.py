"""NOTES.txt prints the runbook's quick-reference commands with the real names."""

from __future__ import annotations

import pytest

from support.helm import notes
from support.paths import VALUES_DIR

DEV_COMMANDS = [
    'curl -H "Authorization: Bearer $CONTROL_PLANE_TOKEN" http://leviathan-control-plane:8000/v1/autonomy/status',
    "kubectl edit configmap leviathan-autonomy-config -n leviathan",
    'kubectl patch cronjob leviathan-dev-scheduler -n leviathan -p \'{"spec":{"suspend":true}}\'',
    'kubectl patch cronjob leviathan-dev-scheduler -n leviathan -p \'{"spec":{"suspend":false}}\'',
    "kubectl logs -n leviathan -l app=leviathan-dev-scheduler --tail=50",
    "kubectl get jobs -n leviathan -l app=leviathan-worker",
    "kubectl get secret leviathan-secrets -n leviathan -o jsonpath='{.data.LEVIATHAN_CONTROL_PLANE_TOKEN}' | base64 -d",
    "helm test leviathan -n leviathan",
]


@pytest.mark.parametrize("command", DEV_COMMANDS)
def test_runbook_commands_with_real_names(command):
    assert command in notes("--values", str(VALUES_DIR / "dev.yaml"))


def test_names_follow_environment_and_existing_secret():
    text = notes("--values", str(VALUES_DIR / "prod.yaml"), "--set", "auth.existingSecret=ops-token")
    assert "kubectl patch cronjob leviathan-prod-scheduler -n leviathan" in text
    assert "kubectl get secret ops-token -n leviathan -o jsonpath='{.data.LEVIATHAN_CONTROL_PLANE_TOKEN}'" in text
    # values/prod.yaml: autonomy.enabledOnInstall false, no reason.
    assert "Autonomy is DISABLED; the scheduler CronJob is active." in text


@pytest.mark.parametrize(
    ("values", "state"),
    [
        ([], "Autonomy is ENABLED; the scheduler CronJob is active."),
        (["--set", "autonomy.enabled=false"], "Autonomy is DISABLED; the scheduler CronJob is active."),
        (["--set", "scheduler.suspend=true"], "Autonomy is ENABLED; the scheduler CronJob is SUSPENDED."),
    ],
)
def test_the_state_is_what_the_objects_carry(values, state):
    """Read back from the rendered ConfigMap and CronJob, so it stays true when the chart keeps live values."""
    assert state in notes("--values", str(VALUES_DIR / "dev.yaml"), *values)
