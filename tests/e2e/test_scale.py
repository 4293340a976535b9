"""Issue 20's smoke test: the release with 10,000 finished worker Jobs in its namespace.

The chart as installed (dev values); 10,000 worker-shaped Jobs marked finished through the
status subresource (tests/support/scale.py, a few hundred a second), three of one task's
newest failed. Then the control plane must report that pause, with no API problem, within
a couple of polls, each replica (server and its Job-list process) staying under the chart's
128Mi limit, which the node enforces (a restart, an OOM kill say, fails the test); and a
scheduler tick must finish, skip the paused task and submit the other.

Runs after the runbook module (which uninstalls its release) and before the enforcement
module, which installs its own: this one creates the Jobs, installs the release, and at the
end uninstalls and deletes the Jobs. About 80 s on the local control plane
(10,000 Jobs made in 43 s), six minutes when the machine is busy with other work.
LEVIATHAN_E2E_SCALE_JOBS sets another count (e.g. 1000 for a quick run).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from leviathan_scheduler.jobs import job_name
from support import scale
from support.cluster import LOCAL, NAMESPACE, NO_SCHEDULED_TICKS, RELEASE, eventually, helm, install_args, kubectl
from support.paths import REPO

JOBS = int(os.environ.get("LEVIATHAN_E2E_SCALE_JOBS", "10000"))
CRONJOB = "leviathan-dev-scheduler"
WORKERS = "app=leviathan-worker,app.kubernetes.io/instance=leviathan"
LIMIT_MIB = 128


@pytest.fixture(scope="module")
def crowded(namespace: str, images):
    settings = scale.dev_settings(NAMESPACE)
    paused_task = settings.tasks[1].name
    newest = int(time.time() // 60) - 30
    planned = scale.worker_jobs(settings, NAMESPACE, JOBS, newest, failed={paused_task: 3})
    # Before the release, so its admission policy (about 13 ms of API server CPU a worker create) is not in the way.
    took = scale.create_finished(NAMESPACE, planned)
    print(f"{JOBS} finished worker Jobs created in {took:.0f} s", flush=True)
    # No scheduled tick in the module (the chart's */5 would submit the other task's worker before the
    # test's own tick, which then finds it active and submits nothing): the test runs its tick itself.
    helm(*install_args(images), *NO_SCHEDULED_TICKS, "--wait", "--timeout", "3m")
    last_failed = job_name(settings.worker.job_name_prefix, paused_task, newest)  # its newest Job: failed
    yield paused_task, last_failed
    # The release first: its CronJob would otherwise go on submitting workers.
    helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", check=False)
    scale.delete_jobs(NAMESPACE, WORKERS)


def status_detail() -> dict:
    """GET /v1/autonomy as `make status` prints it (the line before the status answer)."""
    port = 18480 + int(os.environ.get("LEVIATHAN_CLUSTER_INDEX", "0"))
    lines = subprocess.run(
        ["make", "-s", "-C", str(REPO), "status", f"LOCAL_PORT={port}"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return json.loads(lines[-2])


def peak_mib(container_id: str) -> float:
    """The largest resident size (VmHWM) each process of a container on the local node has had, summed.

    Its processes are those in its memory cgroup: kubelet's cgroupfs layout, kubepods/<qos>/pod<uid>/<id>.
    """
    [procs] = Path("/sys/fs/cgroup/memory/kubepods").glob(
        f"**/{container_id.removeprefix('containerd://')}/cgroup.procs"
    )
    total = 0
    for pid in procs.read_text().split():
        status = Path(f"/proc/{pid}/status").read_text()
        total += int(re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE).group(1))  # type: ignore[union-attr]
    return total / 1024


def test_the_control_plane_reports_the_pause_among_10000_jobs_within_its_memory(crowded):
    paused_task, last_failed = crowded
    expected = [{"task": paused_task, "consecutive_failures": 3, "last_failed_job": last_failed}]

    def reported() -> bool:
        detail = status_detail()
        return detail["paused_tasks"] == expected and detail["kubernetes_api_problem"] is None

    eventually(reported, timeout=90, what=f"the control plane to report {paused_task} paused among {JOBS} Jobs")
    if not LOCAL:
        return  # the processes are in the cluster's containers: the bench measures them (make bench-cluster)
    pods = json.loads(
        kubectl("get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=control-plane", "-o", "json").stdout
    )["items"]
    assert pods
    for pod in pods:
        for container in pod["status"]["containerStatuses"]:
            where = f"{pod['metadata']['name']} {container['name']}"
            assert container["restartCount"] == 0, f"{where} restarted: {container.get('lastState')}"
            peak = peak_mib(container["containerID"])
            print(f"{where}: peak RSS {peak:.0f} MiB with {JOBS} Jobs", flush=True)
            assert peak < LIMIT_MIB, f"{where} peaked at {peak:.0f} MiB (limit {LIMIT_MIB}Mi)"


def test_a_tick_among_10000_jobs_skips_the_paused_task_and_submits_the_other(crowded):
    paused_task, last_failed = crowded
    name = f"e2e-scale-{int(time.time())}"
    kubectl("create", "job", f"--from=cronjob/{CRONJOB}", name, "-n", NAMESPACE)
    done = "jsonpath={.status.succeeded}{.status.failed}"
    eventually(lambda: kubectl("get", "job", name, "-n", NAMESPACE, "-o", done).stdout, 180, f"tick {name}")
    log = kubectl("logs", f"job/{name}", "-n", NAMESPACE).stdout
    assert kubectl("get", "job", name, "-n", NAMESPACE, "-o", "jsonpath={.status.succeeded}").stdout == "1", log
    assert f"⏸ Task {paused_task} paused after 3 consecutive failures (last: {last_failed})" in log
    assert re.search(r"^✓ Submitted job \S+ \(task (?!" + re.escape(paused_task) + r"\))", log, re.MULTILINE), log
    assert "✓ Tick done: submitted 1" in log and "1 paused after failures" in log, log
