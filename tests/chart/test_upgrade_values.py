"""Which switch value each kind of upgrade renders with, under Helm 3 and Helm 4.

tests/support/helm-values runs install and upgrade through Helm's own action code (the
pinned helm.sh/helm/v3 and v4 modules) with in-memory release storage: no
cluster, so no `lookup`. It shows what each upgrade flag hands the chart; what
the chart then does with a live ConfigMap or CronJob is proven by the
helm-unittest suites (chart/tests/switch_test.yaml, suspend_test.yaml):

    null                  -> the live state is kept (sticky)
    false                 -> off
    true + stale confirm  -> refused while the live switch is off (nothing applied)

Together they are the offline half of the upgrade matrix; the e2e suite runs it
on a real control plane.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
from functools import cache
from typing import Any

import pytest

from support.paths import CHART, REPO, VALUES_DIR

DEV = str(VALUES_DIR / "dev.yaml")
INSTALL = {"op": "install", "files": [DEV]}
ENABLE = {
    "op": "upgrade",
    "flags": ["reset-then-reuse-values"],
    "set": ["autonomy.enabled=true", "autonomy.confirmEnable=12"],
}
DISABLE = {"op": "upgrade", "flags": ["reset-then-reuse-values"], "set": ["autonomy.enabled=false"]}
RESUME = {
    "op": "upgrade",
    "flags": ["reset-then-reuse-values"],
    "set": ["scheduler.suspend=false", "scheduler.confirmResume=3"],
}
BUMP = ["controlPlane.image.tag=v2"]

# A later routine upgrade, each way people run one.
ROUTINE = {
    "plain -f values/dev.yaml --set": {"op": "upgrade", "files": [DEV], "set": BUMP},
    "plain --set": {"op": "upgrade", "set": BUMP},
    "plain, no values": {"op": "upgrade"},
    "--reuse-values --set": {"op": "upgrade", "flags": ["reuse-values"], "set": BUMP},
    "--reset-values --set": {"op": "upgrade", "flags": ["reset-values"], "set": BUMP},
    "--reset-then-reuse-values --set": {"op": "upgrade", "flags": ["reset-then-reuse-values"], "set": BUMP},
}
REUSING = {"plain, no values", "--reuse-values --set", "--reset-then-reuse-values --set"}


@cache
def harnesses() -> dict[int, str]:
    lock = REPO / ".tools" / "helm-values.lock"
    lock.parent.mkdir(exist_ok=True)
    with lock.open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # one build at a time across xdist workers
        built = subprocess.run(
            [str(REPO / "hack" / "build-helm.sh"), "values"], capture_output=True, text=True, timeout=900, check=True
        )
    v3, v4 = built.stdout.split()
    return {3: v3, 4: v4}


def run(major: int, *steps: dict[str, Any]) -> list[dict[str, Any]]:
    """The values the chart was rendered with after each step (or the step's error)."""
    result = subprocess.run(
        [harnesses()[major], str(CHART)], input=json.dumps(list(steps)), capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def switch(outcome: dict[str, Any]) -> tuple[Any, Any]:
    assert "error" not in outcome, outcome
    autonomy = outcome["values"]["autonomy"]
    return autonomy.get("enabled"), autonomy.get("confirmEnable") or None


def suspend(outcome: dict[str, Any]) -> tuple[Any, Any]:
    assert "error" not in outcome, outcome
    scheduler = outcome["values"]["scheduler"]
    return scheduler.get("suspend"), scheduler.get("confirmResume") or None


pytestmark = pytest.mark.parametrize("major", [3, 4], ids=["helm3", "helm4"])


@pytest.mark.parametrize("routine", ROUTINE)
def test_after_a_kubectl_edit_every_routine_upgrade_keeps_the_live_switch(major, routine):
    """Installed with -f values/dev.yaml, disabled with kubectl edit: nothing pins the switch."""
    *_, after = run(major, INSTALL, ROUTINE[routine])
    assert switch(after) == (None, None)
    assert suspend(after) == (None, None)  # the same for a kubectl patch emergency stop


@pytest.mark.parametrize("routine", ROUTINE)
def test_after_a_helm_disable_no_routine_upgrade_turns_it_on(major, routine):
    *_, after = run(major, INSTALL, DISABLE, ROUTINE[routine])
    assert switch(after) == ((False, None) if routine in REUSING else (None, None))


@pytest.mark.parametrize("routine", ROUTINE)
def test_after_a_helm_enable_reusing_upgrades_carry_a_stale_confirmation(major, routine):
    """The reason for autonomy.confirmEnable: these `true`s are refused once the live switch is off again."""
    *_, enabled, after = run(major, INSTALL, ENABLE, ROUTINE[routine])
    assert switch(enabled) == (True, 12)
    assert switch(after) == ((True, 12) if routine in REUSING else (None, None))


@pytest.mark.parametrize("routine", ROUTINE)
def test_after_a_helm_resume_reusing_upgrades_carry_a_stale_confirmation(major, routine):
    *_, after = run(major, INSTALL, RESUME, ROUTINE[routine])
    assert suspend(after) == ((False, 3) if routine in REUSING else (None, None))


def test_keeping_it_off_works_under_every_flag_but_only_a_reset_unpins(major):
    """The refusal's advice: --set autonomy.enabled=false always works; =null needs --reset-then-reuse-values."""
    keep_off = [{**ROUTINE[r], "set": [*ROUTINE[r].get("set", []), "autonomy.enabled=false"]} for r in ROUTINE]
    for outcome in run(major, INSTALL, ENABLE, *keep_off)[2:]:
        assert switch(outcome)[0] is False
    unpin = {"op": "upgrade", "flags": ["reset-then-reuse-values"], "set": ["autonomy.enabled=null"]}
    assert switch(run(major, INSTALL, ENABLE, unpin)[-1])[0] is None
    # --reuse-values renders with the old release's values as chart defaults: null cannot clear the pin.
    reuse_null = {"op": "upgrade", "flags": ["reuse-values"], "set": ["autonomy.enabled=null"]}
    assert switch(run(major, INSTALL, ENABLE, reuse_null)[-1])[0] is True


def test_a_plain_upgrade_without_the_prod_file_would_render_dev(major):
    """What the rename refusal (chart/tests/rename_test.yaml) stops on a live cluster."""
    prod = {"op": "install", "files": [str(VALUES_DIR / "prod.yaml")]}
    *_, after = run(major, prod, ROUTINE["plain --set"])
    assert after["values"]["environment"] == "dev"
    assert after["values"]["controlPlane"]["replicaCount"] == 1


def test_the_harness_builds_against_the_pinned_helm(major):
    """The same Helm the e2e suite builds (hack/cluster/pins.env), so offline and e2e agree."""
    pins = dict(
        line.split("=", 1) for line in (REPO / "hack" / "cluster" / "pins.env").read_text().splitlines() if "=" in line
    )
    go_mod = (REPO / "tests" / "support" / "helm-values" / f"v{major}" / "go.mod").read_text()
    assert f"helm.sh/helm/v{major} {pins[f'HELM{major}_VERSION']}\n" in go_mod
