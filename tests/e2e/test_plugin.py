"""Issue 23 on a real API server: `kubectl leviathan` does what the runbook's commands do, and proves a brake.

Each command runs through kubectl's plugin mechanism (`kubectl leviathan ...`, the plugin on PATH
from .venv), as an operator types it. The module installs release `leviathan` itself and
uninstalls it at the end.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest

from kubectl_leviathan import runbook
from kubectl_leviathan.names import Names
from support.cluster import CONTRACT, NAMESPACE, RELEASE, contract_run, helm, install_args, kubectl
from support.paths import REPO, VENV_BIN

CONFIGMAP = CONTRACT.names["configmap"]
CRONJOB = CONTRACT.names["scheduler"]
PROOF = re.compile(r"^✓ the API server refuses new worker Jobs \(after (\d+) ms\)$", re.M)
ENV = {**os.environ, "PATH": f"{VENV_BIN}:{os.environ['PATH']}"}


def leviathan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "leviathan", *args], capture_output=True, text=True, env=ENV, timeout=120)


def config_text() -> str:
    return json.loads(kubectl("get", "configmap", CONFIGMAP, "-n", NAMESPACE, "-o", "json").stdout)["data"]["dev.yaml"]


def suspended() -> str:
    return kubectl("get", "cronjob", CRONJOB, "-n", NAMESPACE, "-o", "jsonpath={.spec.suspend}").stdout


def printed_runbook(result: subprocess.CompletedProcess[str], action: str) -> list[str]:
    shown = [line.removeprefix("runbook: ") for line in result.stdout.splitlines() if line.startswith("runbook: ")]
    assert shown == runbook.commands(action, Names()), result.stdout
    return shown


@pytest.fixture(scope="module")
def installed(namespace: str, images):
    helm(*install_args(images), "--set", "autonomy.enabled=true", "--set", "scheduler.suspend=false",
         "--set-string", f"autonomy.confirmEnable={live_version()}", "--wait", "--timeout", "3m")  # fmt: skip
    yield
    helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", check=False)


def live_version() -> str:
    found = kubectl("get", "configmap", CONFIGMAP, "-n", NAMESPACE, "-o", "jsonpath={.metadata.resourceVersion}",
                    check=False)  # fmt: skip
    return found.stdout if found.returncode == 0 else "0"


def test_disable_edits_two_lines_like_kubectl_edit_and_proves_it(installed):
    before = config_text()
    refused = leviathan("disable", "--reason", 'INC-23: it\'s runaway, "again"')
    assert refused.returncode != 0 and "without double quotes or backslashes" in refused.stderr
    assert config_text() == before, "a refused reason writes nothing"
    result = leviathan("disable", "--reason", "INC-23: it's runaway, again")
    assert result.returncode == 0, result.stderr
    printed_runbook(result, "disable")
    assert PROOF.search(result.stdout), result.stdout
    after = config_text()
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b]
    assert changed == [
        ("autonomy_enabled: true", "autonomy_enabled: false"),
        (next(line for line in before.splitlines() if line.startswith("reason:")),
         'reason: "INC-23: it\'s runaway, again"'),
    ]  # fmt: skip
    # The runbook's own check of step 2, verbatim, sees what its kubectl edit would have left.
    contract_run("disable.grep-configmap")


def test_stop_is_the_runbooks_patch_and_shows_the_cronjob(installed):
    result = leviathan("stop")
    assert result.returncode == 0, result.stderr
    printed_runbook(result, "stop")
    assert suspended() == "true"
    # The API server's table, as `kubectl get cronjob` prints it (the contract's expectation of step 2).
    table = result.stdout.split(f"✓ CronJob {CRONJOB} suspended\n", 1)[1].split("\n✓ ", 1)[0]
    assert not CONTRACT.command("emergency-stop.get-cronjob").expect.mismatches(table, CONTRACT.table_columns)
    assert PROOF.search(result.stdout), result.stdout


def test_status_and_who_say_what_the_api_server_holds(installed):
    result = leviathan("status")
    assert result.returncode == 0, result.stderr
    printed_runbook(result, "status")
    assert 'autonomy: off (reason "INC-23: it\'s runaway, again") in ConfigMap' in result.stdout
    assert f"scheduler: CronJob {CRONJOB} suspended" in result.stdout
    assert "new worker Jobs: refused by the API server (dry run)" in result.stdout
    who = leviathan("who")
    assert who.returncode == 0, who.stderr
    stamp = kubectl("get", "configmap", CONFIGMAP, "-n", NAMESPACE, "-o",
                    "jsonpath={.metadata.annotations.autonomy\\.leviathan\\.io/switched-by}").stdout  # fmt: skip
    assert who.stdout.splitlines()[-1] == f"switched by: {stamp}"
    assert leviathan("status", "--expect", "off").returncode == 0
    expect_on = leviathan("status", "--expect", "on")
    assert expect_on.returncode == 1 and "✗ autonomy is off, not on" in expect_on.stderr


def test_enable_and_resume_give_it_back(installed):
    result = leviathan("enable", "--reason", "INC-23 resolved")
    assert result.returncode == 0, result.stderr
    printed_runbook(result, "enable")
    assert config_text().startswith("autonomy_enabled: true\n")
    assert 'reason: "INC-23 resolved"' in config_text()
    assert "stays suspended: kubectl leviathan resume" in result.stdout
    resumed = leviathan("resume")
    assert resumed.returncode == 0, resumed.stderr
    printed_runbook(resumed, "resume")
    assert suspended() == "false"


def test_a_brake_that_leaves_worker_jobs_admitted_says_so_loudly(installed):
    """A stop or a worker halt alone, with autonomy on: the API server still admits worker Jobs."""
    manifest = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "plugin-long-run", "labels": {"app": "leviathan-worker"}},
        "spec": {"completions": 100, "template": {"spec": {"restartPolicy": "Never",
                 "containers": [{"name": "w", "image": "busybox:1.37.0"}]}}},
    }  # fmt: skip
    created = subprocess.run(["kubectl", "create", "-n", NAMESPACE, "-f", "-"], input=json.dumps(manifest), text=True,
                             capture_output=True)  # fmt: skip
    assert created.returncode == 0, created.stderr
    halted = leviathan("halt-workers")
    assert halted.returncode == 3, halted.stdout + halted.stderr
    printed_runbook(halted, "halt-workers")
    assert "✗ the API server does NOT refuse new worker Jobs: autonomy is on" in halted.stderr
    job = kubectl("get", "job", "plugin-long-run", "-n", NAMESPACE, "-o", "jsonpath={.spec.suspend}").stdout
    assert job == "true"
    resumed = leviathan("resume-workers")
    assert resumed.returncode == 0, resumed.stderr
    printed_runbook(resumed, "resume-workers")
    assert kubectl("get", "job", "plugin-long-run", "-n", NAMESPACE, "-o", "jsonpath={.spec.suspend}").stdout == "false"
    kubectl("delete", "job", "plugin-long-run", "-n", NAMESPACE, "--wait=false")
    stopped = leviathan("stop")
    assert stopped.returncode == 3
    assert "does NOT refuse new worker Jobs" in stopped.stderr
    assert leviathan("resume").returncode == 0


def test_the_make_targets_run_the_plugin(installed):
    result = subprocess.run(["make", "-s", "-C", str(REPO), "kubectl-disable", "REASON=INC-23 via make"],
                            capture_output=True, text=True, env=ENV)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert PROOF.search(result.stdout)
    assert 'reason: "INC-23 via make"' in config_text()
    again = subprocess.run(["make", "-s", "-C", str(REPO), "kubectl-enable", "REASON=INC-23 done"],
                           capture_output=True, text=True, env=ENV)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert config_text().startswith("autonomy_enabled: true\n")
    paused = subprocess.run(["make", "-s", "-C", str(REPO), "paused-tasks"], capture_output=True, text=True, env=ENV)
    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.splitlines()[-1] == "no task paused in the last tick's log" or "⏸" in paused.stdout


@pytest.mark.parametrize(
    ("flags", "cause"),
    [
        (["--namespace", "nowhere"], "no ConfigMap leviathan-autonomy-config in namespace nowhere: release leviathan"),
        (["--context", "no-such-context"], "cannot use this context:"),
        (["--as", "nobody@example.com"], 'forbidden: configmaps "leviathan-autonomy-config" is forbidden'),
        (["--release", "other"], "no ConfigMap other-leviathan-autonomy-config in namespace leviathan"),
    ],
    ids=["no-chart", "unknown-context", "no-rbac", "other-release"],
)
def test_bad_targets_get_one_line_and_change_nothing(installed, flags, cause):
    before = config_text()
    result = leviathan("disable", "--reason", "x", *flags)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert cause in line
    assert "Traceback" not in result.stderr
    assert config_text() == before
