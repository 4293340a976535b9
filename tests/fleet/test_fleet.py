"""Issue 23 on a simulated fleet (`make e2e-fleet`): one brake for five real API servers, one of them frozen.

The fleet comes from `make fleet-up` (hack/fleet.sh): five local control planes with the chart in a mix
of states (on; off with a reason; on and stopped; on with releasers; off and stopped). The test brakes
them all with one `kubectl leviathan disable --all-contexts` while one API server is frozen (SIGSTOP),
proves every other one refuses worker Jobs, brakes again once it is back (the first record stays),
restores (refused where the caller is no releaser, then done by a releaser), and checks that each
cluster is back in exactly its own state.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from support.paths import REPO, VENV_BIN

KUBECONFIG = os.environ.get("LEVIATHAN_FLEET_KUBECONFIG", "")
FLEET = REPO / ".run" / "fleet"
ENV = {**os.environ, "KUBECONFIG": KUBECONFIG, "PATH": f"{VENV_BIN}:{REPO / '.tools/cluster/bin'}:{os.environ['PATH']}"}
RELEASER = ["--as", "bob", "--as-group", "release-owners"]
PROOF = re.compile(r"^\d+ ms$")

pytestmark = pytest.mark.skipif(
    not KUBECONFIG or not Path(KUBECONFIG).exists(), reason="the fleet e2e: run make e2e-fleet (it starts a fleet)"
)


def leviathan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "leviathan", *args], capture_output=True, text=True, env=ENV, timeout=120)


def kubectl(context: str, *args: str) -> str:
    result = subprocess.run(["kubectl", "--context", context, *args], capture_output=True, text=True, env=ENV)
    assert result.returncode == 0, result.stderr
    return result.stdout


def contexts() -> list[str]:
    result = subprocess.run(
        ["kubectl", "config", "get-contexts", "-o", "name"], capture_output=True, text=True, env=ENV
    )
    return result.stdout.split()


def state(context: str) -> tuple[str, str, str]:
    """The switch line, the reason line and the CronJob's suspend, as they are live."""
    text = json.loads(
        kubectl(context, "get", "configmap", "leviathan-autonomy-config", "-n", "leviathan", "-o", "json")
    )
    lines = text["data"]["dev.yaml"].splitlines()
    switch = next(line for line in lines if line.startswith("autonomy_enabled:"))
    reason = next(line for line in lines if line.startswith("reason:"))
    suspend = kubectl(context, "get", "cronjob", "leviathan-dev-scheduler", "-n", "leviathan",
                      "-o", "jsonpath={.spec.suspend}")  # fmt: skip
    return switch, reason, suspend


def table(result: subprocess.CompletedProcess[str]) -> dict[str, dict[str, str]]:
    """The fleet table by cluster, cut at the header's columns."""
    lines = [line for line in result.stdout.splitlines() if not line.startswith(("runbook: ", "fleet time-to-safe"))]
    header = lines[0]
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=\s\s))\S", header)]
    names = [header[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
    rows = {}
    for line in lines[1:]:
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows[cells[0]] = dict(zip(names, cells, strict=True))
    return rows


def apiserver_pid(context: str) -> int:
    index = context.rsplit("-", 1)[1]
    return int((FLEET / f"c{index}" / "pids" / "kube-apiserver").read_text())


@pytest.fixture(scope="module")
def fleet() -> dict[str, tuple[str, str, str]]:
    names = contexts()
    assert len(names) >= 5, names
    return {name: state(name) for name in names}


def test_one_brake_for_the_fleet_with_one_cluster_frozen(fleet):
    names = list(fleet)
    frozen = names[2]  # on and stopped: its prior state must come back too
    os.kill(apiserver_pid(frozen), signal.SIGSTOP)
    try:
        braked = leviathan("disable", "--all-contexts", "--reason", "INC-500: fleet brake", "--request-timeout", "4")
    finally:
        os.kill(apiserver_pid(frozen), signal.SIGCONT)
    print(braked.stdout, braked.stderr)
    assert braked.returncode == 1
    rows = table(braked)
    assert sorted(rows) == sorted(names)  # none left out
    assert rows[frozen]["PROOF"] == "-"
    assert re.search(r"cannot reach the API server|no answer within", rows[frozen]["ERROR"]), rows[frozen]
    assert f"✗ {frozen}: " in braked.stderr
    assert "✗ 1 of 5 clusters NOT proven safe" in braked.stderr
    for name in names:
        if name != frozen:
            assert PROOF.match(rows[name]["PROOF"]), rows[name]
            assert rows[name]["RECORD"] == "new"
            assert state(name)[0] == "autonomy_enabled: false"
            assert rows[name]["ERROR"] == ""

    again = leviathan("disable", "--all-contexts", "--reason", "INC-500: again, all of them")
    print(again.stdout, again.stderr)
    assert again.returncode == 0, again.stderr
    rows = table(again)
    assert rows[frozen]["RECORD"] == "new"
    assert all(rows[name]["RECORD"].startswith("kept ") for name in names if name != frozen)
    assert all(PROOF.match(row["PROOF"]) for row in rows.values())
    assert re.search(r"^fleet time-to-safe: \d+ ms \(5 of 5 clusters proven\)$", again.stdout, flags=re.M)
    for name, (switch, _reason, suspend) in fleet.items():
        jsonpath = "jsonpath={.data.prior\\.json}"
        record = json.loads(
            kubectl(name, "get", "configmap", "leviathan-fleet-brake", "-n", "leviathan", "-o", jsonpath)
        )
        assert (record["switch_line"], str(record["suspended"]).lower()) == (switch, suspend), name


def test_the_restore_gives_each_cluster_its_own_state_only_as_a_releaser(fleet):
    names = list(fleet)
    with_releasers = names[3]
    restored = leviathan("enable", "--fleet-restore", "--all-contexts", "--reason", "INC-500 resolved")
    print(restored.stdout, restored.stderr)
    assert restored.returncode == 1
    rows = table(restored)
    assert "not restored: the API server refuses it to you (not a releaser here?)" in rows[with_releasers]["ERROR"]
    assert state(with_releasers)[0] == "autonomy_enabled: false"  # nothing of it changed
    for name in names:
        if name != with_releasers:
            assert rows[name]["ERROR"] == "", rows[name]
    by_releaser = leviathan(
        "enable", "--fleet-restore", "--contexts", with_releasers, *RELEASER, "--reason", "INC-500 resolved"
    )
    assert by_releaser.returncode == 0, by_releaser.stdout + by_releaser.stderr
    for name, (switch, reason, suspend) in fleet.items():
        now = state(name)
        assert (now[0], now[2]) == (switch, suspend), name  # the switch and the stop, exactly
        if switch == "autonomy_enabled: true" and reason in ("reason: null", 'reason: ""'):
            assert now[1] == 'reason: "INC-500 resolved"', name  # turning on needs a reason: the caller's
        else:
            assert now[1] == reason, name
        assert kubectl(name, "get", "configmap", "-n", "leviathan", "-o", "name").count("leviathan-fleet-brake") == 0


def test_a_restore_without_a_record_changes_nothing_and_says_so(fleet):
    before = {name: state(name) for name in fleet}
    again = leviathan("enable", "--fleet-restore", "--all-contexts", *RELEASER, "--reason", "twice")
    assert again.returncode == 1
    assert all(row["ERROR"] == "no fleet brake record here: nothing restored" for row in table(again).values())
    assert {name: state(name) for name in fleet} == before


def test_status_names_the_clusters_that_have_not_applied_a_brake(fleet):
    result = leviathan("status", "--all-contexts", "--expect", "off")
    on = [name for name, (switch, _, _) in fleet.items() if switch == "autonomy_enabled: true"]
    assert result.returncode == 1
    for name in on:
        assert f"✗ {name}: autonomy is on, not off (not applied yet?)" in result.stderr
    assert len(result.stderr.splitlines()) == len(on)
