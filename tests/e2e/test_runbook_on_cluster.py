"""The operators' runbook, end to end, on a real API server. Steps run in order and share one release.

Every runbook command comes from the contract data (tests/contract/runbook.yaml) and runs
verbatim through bash; its output is compared with the contract's expected output. The
last test checks that every cluster command of the contract ran.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from support.cluster import (
    CLUSTER_DIR,
    CONTRACT,
    LOCAL,
    NAMESPACE,
    RAN,
    RELEASE,
    SOURCE,
    configmap_version,
    contract_run,
    eventually,
    first_column,
    helm,
    in_cluster,
    kubectl,
    run,
    sh,
    token,
    wait_for_status,
)
from support.paths import CHART, REPO

CRONJOB = CONTRACT.names["scheduler"]
SCHEDULE = CONTRACT.names["schedule"]
DISABLED_LINES = [CONTRACT.log_lines["disabled"], CONTRACT.log_lines["exiting"]]
# Commands that cannot run as written anywhere: ops/k8s/control-plane.yaml is not part of this
# project (docs/RUNBOOK.md marks the deviation and gives the helm command instead).
NOT_RUNNABLE = {"not-mounted.apply-manifests"}
CHART_VERSION = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]


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
    """Jobs the CronJob controller made, not the manual ones."""
    jobs = json.loads(kubectl("get", "jobs", "-n", NAMESPACE, "-o", "json").stdout)["items"]
    return {
        job["metadata"]["name"]
        for job in jobs
        if any(owner.get("kind") == "CronJob" for owner in job["metadata"].get("ownerReferences", []))
        and job["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "scheduler"
        and not job["metadata"]["name"].startswith("e2e-")
    }


def set_schedule(schedule: str) -> None:
    """Every minute while a test watches the CronJob controller; the runbook's table shows the chart's."""
    kubectl("patch", "cronjob", CRONJOB, "-n", NAMESPACE, "-p", json.dumps({"spec": {"schedule": schedule}}))


def upgrade(*flags: str) -> None:
    helm("upgrade", RELEASE, str(CHART), "-n", NAMESPACE, "--reset-then-reuse-values", *flags)


def test_01_install_and_helm_test(release):
    pods = kubectl("get", "pods", "-n", NAMESPACE, "-l", "app=leviathan-control-plane", "-o", "json").stdout
    assert [pod["status"]["phase"] for pod in json.loads(pods)["items"]] == ["Running"]
    helm("test", RELEASE, "-n", NAMESPACE, "--timeout", "3m")
    contract_run("not-mounted.deployment-volumes")
    contract_run("not-mounted.get-configmap")
    contract_run("config-errors.cronjob-volumes")
    contract_run("config-errors.get-configmap-yaml")


def test_01_the_control_plane_runs_from_its_image_on_the_real_node(release):
    """kubelet runs it: on the real node, from the image make images built, in a containerd
    container whose process the kernel runs as 10001 with a read-only root filesystem."""
    if not LOCAL:
        pytest.skip("the local cluster's node and container runtime only")
    print(kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide").stdout)
    [pod] = json.loads(
        kubectl("get", "pods", "-n", NAMESPACE, "-l", "app=leviathan-control-plane", "-o", "json").stdout
    )["items"]
    node = json.loads(kubectl("get", "node", pod["spec"]["nodeName"], "-o", "json").stdout)
    assert node["metadata"]["labels"].get("type") == "real", node["metadata"]["name"]
    [status] = pod["status"]["containerStatuses"]
    assert status["image"] == f"ghcr.io/leviathan/control-plane:{CHART_VERSION}"
    runtime, container_id = status["containerID"].split("://")
    assert runtime == "containerd"
    crictl = [
        str(CLUSTER_DIR / "bin" / "crictl"),
        "--runtime-endpoint",
        f"unix://{CLUSTER_DIR}/containerd/containerd.sock",
    ]
    listed = json.loads(run(*crictl, "ps", "-o", "json").stdout)["containers"]
    [container] = [c for c in listed if c["id"] == container_id]
    assert container["state"] == "CONTAINER_RUNNING"
    assert container["labels"]["io.kubernetes.pod.name"] == pod["metadata"]["name"]
    pid = json.loads(run(*crictl, "inspect", container_id).stdout)["info"]["pid"]
    uid = next(
        line.split()[1:] for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("Uid:")
    )
    assert uid == ["10001"] * 4
    root = next(
        line.split() for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines() if line.split()[4] == "/"
    )
    assert "ro" in root[5].split(","), root


def test_02_status_through_the_service(release):
    env = {"CONTROL_PLANE_TOKEN": token()}
    assert len(env["CONTROL_PLANE_TOKEN"]) >= 32
    contract_run("query-status.curl", env=env)
    # The quick reference's own variable: set, it answers like the procedures' one.
    assert json.loads(contract_run("quick-reference.query-status", env={"TOKEN": env["CONTROL_PLANE_TOKEN"]})) == {
        "autonomy_enabled": True,
        "source": SOURCE,
    }
    refused = in_cluster(CONTRACT.command("query-status.curl").run + ' -s -o /dev/null -w "%{http_code}"')
    assert refused.stdout == "401"
    # From an operator's machine: `make status` reads the Secret and goes through kubectl port-forward.
    answer = run("make", "-s", "-C", str(REPO), "status").stdout.strip().splitlines()[-1]
    assert json.loads(answer) == {"autonomy_enabled": True, "source": SOURCE}
    # An enabled tick names the config it read, and submits.
    lines = manual_tick("enabled")
    # A manual tick names its Jobs after the current minute: when the CronJob ticked in the
    # same minute, they already exist, and the tick says so instead of submitting twice.
    submitted = ("✓ Submitted job leviathan-worker-", "✓ Job leviathan-worker-")
    assert any(line.startswith(submitted) for line in lines), lines
    contract_run("still-creating.scheduler-logs")


def test_03_disable_via_helm(release):
    upgrade("--set", "autonomy.enabled=false", "--set-literal", "autonomy.reason=e2e: disabled through helm")
    contract_run("still-creating.grep-configmap")
    assert sh(CONTRACT.command("disable.grep-configmap").run).stdout.strip() == "autonomy_enabled: false"
    wait_for_status(enabled=False)
    before = worker_jobs()
    lines = manual_tick("helm-disabled")
    assert all(line in lines for line in DISABLED_LINES), lines
    assert worker_jobs() == before


def test_04_disable_by_kubectl_edit(release):
    upgrade("--set", "autonomy.enabled=true", "--set", f"autonomy.confirmEnable={configmap_version()}")
    wait_for_status(enabled=True)
    contract_run("disable.edit-configmap")
    contract_run("disable.grep-configmap")
    wait_for_status(enabled=False)
    jobs_before = contract_run("disable.worker-jobs")
    before = worker_jobs()
    lines = manual_tick("edit-disabled")
    assert all(line in lines for line in DISABLED_LINES), lines
    contract_run("disable.scheduler-logs")
    assert worker_jobs() == before
    # No new rows (AGE moves on; the names must not).
    assert first_column(contract_run("disable.worker-jobs")) == first_column(jobs_before)
    contract_run("disable.curl", env={"CONTROL_PLANE_TOKEN": token()})
    # grep exits 1 when no line says "error": a healthy answer here.
    assert "error" not in contract_run("config-errors.grep-errors", may_fail=True).lower()


def test_05_emergency_stop_holds_across_a_scheduled_minute(release):
    set_schedule("* * * * *")
    try:
        seen = cronjob_ticks()
        eventually(lambda: cronjob_ticks() - seen, timeout=90, what="a tick made by the CronJob controller")
        contract_run("emergency-stop.suspend")
        suspended = cronjob_ticks()
        # Past the next minute boundary, plus the controller's slack: nothing new. (Old ticks may
        # go: the controller still trims its history while suspended.)
        time.sleep(75 - time.time() % 60)
        assert cronjob_ticks() - suspended == set()
    finally:
        set_schedule(SCHEDULE)
    contract_run("emergency-stop.get-cronjob")
    contract_run("suspended-by-accident.get-cronjob", check_expect=False)
    workers = contract_run("emergency-stop.list-workers")
    first = workers.splitlines()[1].split()[0]
    contract_run("emergency-stop.delete-worker", **{"<job-name>": first})
    contract_run("emergency-stop.delete-all-workers")
    eventually(lambda: not worker_jobs(), timeout=60, what="every worker Job to be deleted")
    running = [line for line in contract_run("emergency-stop.scheduler-pods").splitlines() if " Running " in line]
    assert running == []
    eventually(lambda: not contract_run("emergency-stop.worker-pods").strip(), 60, "no worker pods")


def test_06_reenable_config_first_then_unsuspend(release):
    contract_run("re-enable.edit-configmap")
    wait_for_status(enabled=True)
    # Issue 19: while the CronJob is still suspended, a tick made by hand from it submits nothing,
    # though autonomy is on. Ticks are repeated until one reads the enabled file (kubelet is late).
    before = worker_jobs()
    suspended = f"⚠ CronJob {CRONJOB} is suspended (spec.suspend: true): this tick submits nothing"

    def enabled_tick() -> list[str] | None:
        lines = manual_tick("suspended")
        return lines if f"Config: {SOURCE} autonomy_enabled=true" in lines else None

    lines = eventually(enabled_tick, timeout=150, what="a hand-made tick that reads autonomy on")
    assert suspended in lines, lines
    assert worker_jobs() == before
    contract_run("re-enable.unsuspend")
    contract_run("re-enable.get-cronjob")
    contract_run("re-enable.curl", env={"CONTROL_PLANE_TOKEN": token()})
    before = worker_jobs()
    set_schedule("* * * * *")
    try:
        new = eventually(lambda: worker_jobs() - before, timeout=120, what="a worker Job from the CronJob's next tick")
    finally:
        set_schedule(SCHEDULE)
    assert all(name.startswith("job.batch/leviathan-worker-") for name in new)
    # The label selector also shows the kept history of earlier (disabled) ticks, so "no
    # 'autonomy disabled' message" is checked on the newest tick, the one the runbook means.
    logs = contract_run("re-enable.scheduler-logs", check_expect=False)
    assert "✓ Submitted job leviathan-worker-" in logs
    newest = max(cronjob_ticks(), key=lambda name: int(name.rsplit("-", 1)[1]))
    newest_log = kubectl("logs", f"job/{newest}", "-n", NAMESPACE).stdout
    assert not CONTRACT.command("re-enable.scheduler-logs").expect.mismatches(newest_log), newest_log


def test_07_troubleshooting_restart(release):
    contract_run("not-mounted.restart")
    kubectl("rollout", "status", "deployment/leviathan-control-plane", "-n", NAMESPACE, "--timeout=120s")
    wait_for_status(enabled=True)


def test_08_uninstall_leaves_nothing(release):
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


def test_09_every_cluster_command_of_the_contract_ran(release):
    if not RAN:
        pytest.skip("the runbook steps above did not run (select the whole file)")
    wanted = {
        command.id
        for command in CONTRACT.commands()
        if command.cluster and command.id not in NOT_RUNNABLE and not command.id.startswith("quick-reference.")
    }
    # The quick reference repeats the procedures' commands; those ran under their procedure's id.
    quick = {c.id for c in CONTRACT.commands() if c.id.startswith("quick-reference.") and c.cluster}
    repeated = {
        c.id
        for c in CONTRACT.commands()
        if c.id in quick and any(o.run == c.run and o.id in RAN for o in CONTRACT.commands())
    }
    assert wanted - RAN == set()
    assert quick - RAN - repeated == set()
