"""The operators' runbook, end to end, on a real API server. Steps run in order and share one release.

Commands in capitals are the runbook's own, run verbatim through bash.
"""

from __future__ import annotations

import json
import time

from support.paths import CHART

from .conftest import NAMESPACE, RELEASE, eventually, helm, in_cluster, kubectl, sh

CRONJOB = "leviathan-dev-scheduler"

# The runbook's commands (../shared/reference/autonomy-runbook.md), character for character.
GET_TOKEN = (
    "kubectl get secret leviathan-secrets -n leviathan -o jsonpath='{.data.LEVIATHAN_CONTROL_PLANE_TOKEN}' | base64 -d"
)
QUERY_STATUS = (
    'curl -H "Authorization: Bearer $CONTROL_PLANE_TOKEN" \\\n  http://leviathan-control-plane:8000/v1/autonomy/status'
)
EDIT_CONFIGMAP = "kubectl edit configmap leviathan-autonomy-config -n leviathan"
GREP_SWITCH = "kubectl get configmap leviathan-autonomy-config -n leviathan -o yaml | grep autonomy_enabled"
SCHEDULER_LOGS = "kubectl logs -n leviathan -l app=leviathan-dev-scheduler --tail=50"
WORKER_JOBS_SORTED = "kubectl get jobs -n leviathan -l app=leviathan-worker --sort-by=.metadata.creationTimestamp"
SUSPEND = """kubectl patch cronjob leviathan-dev-scheduler -n leviathan -p '{"spec":{"suspend":true}}'"""
UNSUSPEND = """kubectl patch cronjob leviathan-dev-scheduler -n leviathan -p '{"spec":{"suspend":false}}'"""
GET_CRONJOB = "kubectl get cronjob leviathan-dev-scheduler -n leviathan"
LIST_WORKERS = "kubectl get jobs -n leviathan -l app=leviathan-worker"
SCHEDULER_PODS = "kubectl get pods -n leviathan -l app=leviathan-dev-scheduler"
WORKER_PODS = "kubectl get pods -n leviathan -l app=leviathan-worker"
CONTROL_PLANE_VOLUMES = "kubectl get deployment leviathan-control-plane -n leviathan -o yaml | grep -A 10 volumes"
CRONJOB_VOLUMES = "kubectl get cronjob leviathan-dev-scheduler -n leviathan -o yaml | grep -A 10 volumes"
GET_CONFIGMAP = "kubectl get configmap leviathan-autonomy-config -n leviathan"

DISABLED_LINES = [
    "⚠ Autonomy disabled in configuration (autonomy_enabled: false)",
    "✓ Scheduler exiting cleanly without submitting jobs",
]
SOURCE = "configmap:/etc/leviathan/autonomy/dev.yaml"


def status(token: str) -> dict[str, object]:
    answer = in_cluster(QUERY_STATUS, env={"CONTROL_PLANE_TOKEN": token}).stdout
    return json.loads(answer)


def wait_for_status(token: str, enabled: bool) -> None:
    """kubelet (here the agent, every 5 s) delivers the ConfigMap; the control plane follows the file."""
    expected = {"autonomy_enabled": enabled, "source": SOURCE}
    eventually(lambda: status(token) == expected, timeout=60, what=f"the status API to say {expected}")


def edit_switch(old: str, new: str) -> None:
    """The runbook's `kubectl edit`, with an editor that changes the one line."""
    editor = f"sed -i 's/^    autonomy_enabled: {old}$/    autonomy_enabled: {new}/'"
    sh(EDIT_CONFIGMAP, env={"KUBE_EDITOR": editor})
    assert sh(GREP_SWITCH).stdout.strip() == f"autonomy_enabled: {new}"


def worker_jobs() -> set[str]:
    names = kubectl("get", "jobs", "-n", NAMESPACE, "-l", "app=leviathan-worker", "-o", "name").stdout
    return set(names.split())


def manual_tick(label: str) -> list[str]:
    """`kubectl create job --from=cronjob/leviathan-dev-scheduler`, waited for; its log lines."""
    name = f"e2e-{label}-{int(time.time())}"
    kubectl("create", "job", f"--from=cronjob/{CRONJOB}", name, "-n", NAMESPACE)
    done = "jsonpath={.status.succeeded}{.status.failed}"
    eventually(lambda: kubectl("get", "job", name, "-n", NAMESPACE, "-o", done).stdout, 120, f"tick {name}")
    return kubectl("logs", f"job/{name}", "-n", NAMESPACE).stdout.splitlines()


def cronjob_ticks() -> set[str]:
    """Jobs the CronJob controller made (owned by the CronJob), not the manual ones."""
    jobs = json.loads(kubectl("get", "jobs", "-n", NAMESPACE, "-o", "json").stdout)["items"]
    return {
        job["metadata"]["name"]
        for job in jobs
        if any(owner.get("kind") == "CronJob" for owner in job["metadata"].get("ownerReferences", []))
        and job["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "scheduler"
        and not job["metadata"]["name"].startswith("e2e-")
    }


def column(table: str, name: str) -> str:
    """A column of `kubectl get`'s one-row table, by the header's position (SCHEDULE has spaces)."""
    header, row = table.splitlines()[:2]
    start = header.index(name)
    return row[start:].split()[0]


def upgrade(*flags: str) -> None:
    helm("upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--reset-then-reuse-values", *flags)


def test_01_install_and_helm_test(release):
    pods = kubectl("get", "pods", "-n", NAMESPACE, "-l", "app=leviathan-control-plane", "-o", "json").stdout
    assert [pod["status"]["phase"] for pod in json.loads(pods)["items"]] == ["Running"]
    helm("test", RELEASE, "-n", NAMESPACE, "--timeout", "3m")
    assert sh(GET_CONFIGMAP).returncode == 0
    assert "autonomy-config" in sh(CONTROL_PLANE_VOLUMES).stdout
    assert "autonomy-config" in sh(CRONJOB_VOLUMES).stdout


def test_02_status_through_the_service(release):
    token = sh(GET_TOKEN).stdout
    assert len(token) >= 32
    assert status(token) == {"autonomy_enabled": True, "source": SOURCE}
    refused = in_cluster(QUERY_STATUS + ' -s -o /dev/null -w "%{http_code}"', env={"CONTROL_PLANE_TOKEN": "wrong"})
    assert refused.stdout == "401"


def test_03_disable_via_helm(release):
    # Every minute from here on, so the CronJob controller's own ticks can be watched.
    upgrade(
        "--set", "autonomy.enabled=false", "--set-literal", "autonomy.reason=e2e: disabled through helm",
        "--set", "scheduler.schedule=* * * * *",
    )  # fmt: skip
    assert sh(GREP_SWITCH).stdout.strip() == "autonomy_enabled: false"
    wait_for_status(sh(GET_TOKEN).stdout, enabled=False)
    before = worker_jobs()
    lines = manual_tick("helm-disabled")
    assert lines[:2] == DISABLED_LINES, lines
    assert worker_jobs() == before


def test_04_disable_by_kubectl_edit(release):
    upgrade("--set", "autonomy.enabled=true", "--set-literal", "autonomy.reason=")
    token = sh(GET_TOKEN).stdout
    wait_for_status(token, enabled=True)
    edit_switch("true", "false")
    wait_for_status(token, enabled=False)
    before = worker_jobs()
    lines = manual_tick("edit-disabled")
    assert lines[:2] == DISABLED_LINES, lines
    logs = sh(SCHEDULER_LOGS).stdout.splitlines()
    assert all(line in logs for line in DISABLED_LINES), logs
    assert worker_jobs() == before
    assert sh(WORKER_JOBS_SORTED).returncode == 0


def test_05_emergency_stop_holds_across_a_scheduled_minute(release):
    # The CronJob controller does fire while not suspended (every minute, set above).
    seen = cronjob_ticks()
    eventually(lambda: cronjob_ticks() - seen, timeout=90, what="a tick made by the CronJob controller")
    sh(SUSPEND)
    table = sh(GET_CRONJOB).stdout
    # 1.30+ servers add TIMEZONE; the runbook's table shows the columns of older ones.
    assert table.split()[:5] in (
        ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE"],
        ["NAME", "SCHEDULE", "SUSPEND", "ACTIVE", "LAST"],
    )
    assert column(table, "SUSPEND") == "True"
    suspended = cronjob_ticks()
    # Past the next minute boundary, plus the controller's slack: nothing new.
    time.sleep(75 - time.time() % 60)
    assert cronjob_ticks() == suspended
    active = [line for line in sh(SCHEDULER_PODS).stdout.splitlines()[1:] if "Running" in line]
    assert active == []
    assert sh(LIST_WORKERS).returncode == 0
    assert sh(WORKER_PODS).returncode == 0


def test_06_reenable_config_first_then_unsuspend(release):
    token = sh(GET_TOKEN).stdout
    edit_switch("false", "true")
    wait_for_status(token, enabled=True)
    before = worker_jobs()
    sh(UNSUSPEND)
    assert column(sh(GET_CRONJOB).stdout, "SUSPEND") == "False"
    new = eventually(lambda: worker_jobs() - before, timeout=120, what="a worker Job from the CronJob's next tick")
    assert all(name.startswith("job.batch/leviathan-worker-") for name in new)
    listed = sh(WORKER_JOBS_SORTED).stdout
    assert all(name.removeprefix("job.batch/") in listed for name in new)
    logs = sh(SCHEDULER_LOGS).stdout
    assert "✓ Submitted job leviathan-worker-" in logs


def test_07_uninstall_leaves_nothing(release):
    helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait")
    kinds = "deployments,services,configmaps,secrets,cronjobs,jobs,pods,serviceaccounts,roles,rolebindings"
    kinds += ",networkpolicies,poddisruptionbudgets"

    left: list[str] = []

    def nothing_left() -> bool:
        ours = kubectl("get", kinds, "-n", NAMESPACE, "-l", f"app.kubernetes.io/instance={RELEASE}", "-o", "name")
        workers = kubectl("get", "jobs,pods", "-n", NAMESPACE, "-l", "app=leviathan-worker", "-o", "name")
        left[:] = ours.stdout.split() + workers.stdout.split()
        return not left

    # Worker Jobs are owned by the CronJob: the garbage collector removes them with it.
    try:
        eventually(nothing_left, timeout=120, what="the release's objects, worker Jobs and pods to be gone")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; still there: {left}") from None
