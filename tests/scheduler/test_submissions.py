"""An enabled tick against the emulator: what it submits, and every guardrail."""

from __future__ import annotations

import hashlib
import re
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import ClassVar

import pytest

from support.emulator import NAMESPACE, Call, KubeEmulator, job
from support.kubelet_volume import publish
from support.scheduler import (
    CONFIG_FILE,
    RELEASE,
    SETTINGS_FILE,
    TASK_NAMES,
    TASKS,
    WORKER_APP,
    assert_no_traceback,
    chart_config,
    chart_settings,
    current_slot,
    job_name,
    lines,
    owner_reference,
    run_tick,
    settings_path_for,
    tick_job,
    worker_jobs,
    worker_labels,
)

LIST = Call("GET", "LIST", "batch/jobs", NAMESPACE)
CREATE = Call("POST", "CREATE", "batch/jobs", NAMESPACE)

RESTRICTED_CONTAINER = {
    "runAsNonRoot": True,
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "privileged": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}

WORKER_VALUES = {
    "backoffLimit": 2,
    "activeDeadlineSeconds": 900,
    "ttlSecondsAfterFinished": 3600,
    "runAsUser": 20001,
    "runAsGroup": 20002,
}


def names(jobs) -> set[str]:
    return {j["metadata"]["name"] for j in jobs}


def submitted_lines(stderr: str) -> list[str]:
    return [line for line in lines(stderr) if line.startswith("✓ Submitted job ")]


def summary(stderr: str) -> str:
    [line] = [line for line in lines(stderr) if line.startswith(("✓ Tick done", "✗ Tick stopped"))]
    return line


@dataclass
class SharedTick:
    slot: int
    emulator: KubeEmulator
    config_path: Path
    result: subprocess.CompletedProcess[str]
    jobs: dict[str, dict]


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One tick with non-default worker values, shared by the read-only tests of TestSubmission."""
    slot = current_slot()
    home = tmp_path_factory.mktemp("submission")
    config_path = home / "autonomy" / CONFIG_FILE
    publish(config_path.parent, {CONFIG_FILE: chart_config({"worker": WORKER_VALUES})})
    publish(settings_path_for(config_path).parent, {SETTINGS_FILE: chart_settings({"worker": WORKER_VALUES})})
    with KubeEmulator() as emulator:
        kubeconfig = emulator.kubeconfig(home / "kubeconfig")
        emulator.seed(tick_job(slot))
        result = run_tick(config_path=config_path, kubeconfig=kubeconfig, home=home, slot=slot)
        assert result.returncode == 0, result.stderr
        jobs = {j["metadata"]["name"]: j for j in worker_jobs(emulator)}
        yield SharedTick(slot, emulator, config_path, result, jobs)


class TestSubmission:
    def test_exactly_one_job_per_task(self, shared):
        assert set(shared.jobs) == {job_name(task, shared.slot) for task in TASK_NAMES}

    def test_requests_are_one_list_and_one_create_per_job(self, shared):
        assert shared.emulator.requests() == [LIST, CREATE, CREATE]

    def test_the_list_asks_for_this_release_s_jobs(self, shared):
        # kmock ignores the selector, but the scheduler must still send it (a real API server uses it):
        # the release's Jobs, i.e. its workers and the tick's own Job.
        [params] = shared.emulator.params("LIST")
        assert params["labelSelector"] == "app.kubernetes.io/name=leviathan,app.kubernetes.io/instance=leviathan"

    def test_workers_are_owned_by_the_cronjob(self, shared):
        """So `helm uninstall` (deleting the CronJob) garbage-collects them; never a controller reference."""
        for manifest in shared.jobs.values():
            assert manifest["metadata"]["ownerReferences"] == [owner_reference()]

    def test_log_lines(self, shared):
        assert shared.result.stdout == ""
        assert submitted_lines(shared.result.stderr) == [
            f"✓ Submitted job {job_name(task, shared.slot)} (task {task})" for task in TASK_NAMES
        ]
        assert lines(shared.result.stderr) == [
            *submitted_lines(shared.result.stderr),
            "✓ Tick done: submitted 2, already existed 0; active workers before the tick 0/5",
        ]
        assert_no_traceback(shared.result)

    @pytest.mark.parametrize("task", TASKS, ids=TASK_NAMES)
    def test_labels_on_job_and_pod(self, shared, task):
        manifest = shared.jobs[job_name(task["name"], shared.slot)]
        expected = {
            "app": WORKER_APP,
            "app.kubernetes.io/instance": RELEASE,
            "leviathan.io/task": task["name"],
            "app.kubernetes.io/name": "leviathan",
            "app.kubernetes.io/component": "worker",
            "app.kubernetes.io/part-of": "leviathan",
            "app.kubernetes.io/managed-by": "leviathan-scheduler",
        }
        assert manifest["metadata"]["labels"] == expected
        assert manifest["spec"]["template"]["metadata"]["labels"] == expected
        assert manifest["metadata"]["namespace"] == NAMESPACE

    @pytest.mark.parametrize("task", TASKS, ids=TASK_NAMES)
    def test_job_spec_follows_the_chart_values(self, shared, task):
        spec = shared.jobs[job_name(task["name"], shared.slot)]["spec"]
        assert spec["backoffLimit"] == WORKER_VALUES["backoffLimit"]
        assert spec["ttlSecondsAfterFinished"] == WORKER_VALUES["ttlSecondsAfterFinished"]
        # The task's own deadline wins over the worker default.
        default_deadline = WORKER_VALUES["activeDeadlineSeconds"]
        assert spec["activeDeadlineSeconds"] == task.get("activeDeadlineSeconds", default_deadline)
        pod = spec["template"]["spec"]
        assert pod["restartPolicy"] == "Never"
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": WORKER_VALUES["runAsUser"],
            "runAsGroup": WORKER_VALUES["runAsGroup"],
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        [container] = pod["containers"]
        assert container["securityContext"] == RESTRICTED_CONTAINER
        assert container["image"] == task["image"]
        assert container.get("command") == task.get("command")
        assert container.get("args") == task.get("args")
        assert container.get("env") == task.get("env")
        assert container["resources"] == {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        }

    def test_annotations_record_slot_and_config(self, shared):
        digest = hashlib.sha256(shared.config_path.read_bytes()).hexdigest()
        scheduled = datetime.fromtimestamp(shared.slot * 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for manifest in shared.jobs.values():
            assert manifest["metadata"]["annotations"] == {
                "leviathan.io/scheduled-time": scheduled,
                "leviathan.io/config-sha256": digest,
            }


def test_task_resources_override_the_worker_default(publish_config, run_scheduler, emulator, slot):
    own = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}}
    publish_config({"scheduler": {"tasks": [dict(TASKS[0], resources=own), TASKS[1]]}})
    assert run_scheduler().returncode == 0
    jobs = {j["metadata"]["name"]: j for j in worker_jobs(emulator)}
    [first] = jobs[job_name("inventory", slot)]["spec"]["template"]["spec"]["containers"]
    [second] = jobs[job_name("index", slot)]["spec"]["template"]["spec"]["containers"]
    assert first["resources"] == own
    assert second["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}


def test_image_pull_secrets_reach_the_worker_pods(publish_config, run_scheduler, emulator):
    publish_config({"imagePullSecrets": ["registry-a", "registry-b"]})
    assert run_scheduler().returncode == 0
    for manifest in worker_jobs(emulator):
        assert manifest["spec"]["template"]["spec"]["imagePullSecrets"] == [
            {"name": "registry-a"},
            {"name": "registry-b"},
        ]


def test_no_tasks_means_no_api_call(publish_config, run_scheduler, emulator):
    publish_config({"scheduler": {"tasks": []}})
    result = run_scheduler()
    assert result.returncode == 0
    assert lines(result.stderr) == ["✓ Autonomy enabled but no tasks are declared (scheduler.tasks): nothing to submit"]
    assert emulator.requests() == []


@pytest.mark.parametrize(
    ("args", "env", "namespace"),
    [
        ((), {}, NAMESPACE),  # the kubeconfig context's
        (("--namespace", "ops"), {}, "ops"),
        ((), {"LEVIATHAN_NAMESPACE": "team"}, "team"),
        (("--namespace", "ops"), {"LEVIATHAN_NAMESPACE": "team"}, "ops"),
    ],
)
def test_namespace_choice(enabled_config, run_scheduler, emulator, args, env, namespace):
    result = run_scheduler(*args, env=env)
    assert result.returncode == 0, result.stderr
    assert {call.namespace for call in emulator.requests()} == {namespace}
    assert {j["metadata"]["namespace"] for j in worker_jobs(emulator)} == {namespace}
    assert len(worker_jobs(emulator)) == 2


def test_no_namespace_anywhere_is_an_api_setup_error(enabled_config, run_scheduler, emulator, tmp_path):
    kubeconfig = emulator.kubeconfig(tmp_path / "no-namespace", namespace=None)
    result = run_scheduler(kubeconfig=kubeconfig, env={"LEVIATHAN_NAMESPACE": None})
    assert result.returncode == 5
    assert "Cannot tell which namespace to use" in result.stderr
    assert_no_traceback(result)
    assert emulator.requests() == []


class TestSlot:
    def test_the_scheduler_job_name_sets_the_slot(self, enabled_config, run_scheduler, emulator, slot):
        result = run_scheduler(slot=slot - 5)
        assert result.returncode == 0
        assert names(worker_jobs(emulator)) == {job_name(task, slot - 5) for task in TASK_NAMES}

    @pytest.mark.parametrize("job_env", [None, "leviathan-dev-scheduler-manual-run", "run-0001234"])
    def test_without_a_cronjob_name_the_slot_is_the_current_minute(
        self, enabled_config, run_scheduler, emulator, job_env
    ):
        before = int(time.time() // 60)
        result = run_scheduler(env={"LEVIATHAN_SCHEDULER_JOB_NAME": job_env})
        after = int(time.time() // 60)
        assert result.returncode == 0
        slots = {int(name.rsplit("-", 1)[1]) for name in names(worker_jobs(emulator))}
        assert len(slots) == 1
        assert before <= slots.pop() <= after


class TestLabelFiltering:
    """kmock returns every Job in the namespace, whatever the selector: the scheduler must filter again."""

    FOREIGN: ClassVar[list[dict]] = [
        job("other-app-inventory", {"app": "other", "leviathan.io/task": "inventory"}),
        job("other-release-inventory", worker_labels("inventory", instance="staging")),
        job("other-release-index", worker_labels("index", instance="staging")),
        job("unlabelled", {}),
        job("prefix-lookalike", {"app": "leviathan-worker-x", "app.kubernetes.io/instance": RELEASE}),
    ]

    def test_foreign_jobs_do_not_count(self, enabled_config, run_scheduler, emulator, slot):
        emulator.seed(*self.FOREIGN)
        result = run_scheduler()
        assert result.returncode == 0, result.stderr
        assert names(worker_jobs(emulator)) == names(self.FOREIGN) | {job_name(task, slot) for task in TASK_NAMES}
        assert summary(result.stderr) == (
            "✓ Tick done: submitted 2, already existed 0; active workers before the tick 0/5"
        )

    def test_foreign_jobs_do_not_fill_the_concurrency_limit(self, publish_config, run_scheduler, emulator, slot):
        publish_config({"scheduler": {"maxConcurrentWorkers": 2}})
        emulator.seed(*self.FOREIGN)
        result = run_scheduler()
        assert result.returncode == 0, result.stderr
        assert len(submitted_lines(result.stderr)) == 2

    def test_our_own_job_does_count(self, enabled_config, run_scheduler, emulator, slot):
        """The control: the same seeding with this release's labels blocks the task."""
        emulator.seed(job("earlier-inventory", worker_labels("inventory")))
        result = run_scheduler()
        assert result.returncode == 0
        assert names(worker_jobs(emulator)) == {"earlier-inventory", job_name("index", slot)}


class TestGuardrails:
    def test_one_active_job_per_task(self, enabled_config, run_scheduler, emulator, slot):
        emulator.seed(job("inventory-still-running", worker_labels("inventory")))
        result = run_scheduler()
        assert result.returncode == 0
        assert names(worker_jobs(emulator)) == {"inventory-still-running", job_name("index", slot)}
        assert emulator.requests() == [LIST, CREATE]
        assert summary(result.stderr) == (
            "✓ Tick done: submitted 1, already existed 0, skipped 1 (1 already has an active Job); "
            "active workers before the tick 1/5"
        )

    @pytest.mark.parametrize("condition", ["Complete", "Failed"])
    def test_finished_jobs_do_not_count(self, enabled_config, run_scheduler, emulator, slot, condition):
        previous = [job(f"{task}-earlier", worker_labels(task), finished=condition) for task in TASK_NAMES]
        emulator.seed(*previous)
        result = run_scheduler()
        assert result.returncode == 0
        assert names(worker_jobs(emulator)) == names(previous) | {job_name(task, slot) for task in TASK_NAMES}
        assert summary(result.stderr).endswith("active workers before the tick 0/5")

    def test_a_false_condition_is_still_active(self, enabled_config, run_scheduler, emulator, slot):
        running = job("inventory-running", worker_labels("inventory"))
        running["status"] = {"active": 1, "conditions": [{"type": "Complete", "status": "False"}]}
        emulator.seed(running)
        assert run_scheduler().returncode == 0
        assert names(worker_jobs(emulator)) == {"inventory-running", job_name("index", slot)}

    @pytest.mark.parametrize(("active", "submitted"), [(0, 2), (2, 1), (3, 0), (4, 0)])
    def test_max_concurrent_workers(self, publish_config, run_scheduler, emulator, active, submitted):
        """Active Jobs of tasks no longer declared still count toward the limit of 3."""
        publish_config({"scheduler": {"maxConcurrentWorkers": 3}})
        emulator.seed(*[job(f"retired-{n}", worker_labels(f"retired-{n}")) for n in range(active)])
        result = run_scheduler()
        assert result.returncode == 0
        assert len(submitted_lines(result.stderr)) == submitted
        assert len(worker_jobs(emulator)) == active + submitted
        assert emulator.requests() == [LIST] + [CREATE] * submitted
        skipped = 2 - submitted
        expected_skip = f", skipped {skipped} ({skipped} maxConcurrentWorkers reached)" if skipped else ""
        assert summary(result.stderr) == (
            f"✓ Tick done: submitted {submitted}, already existed 0{expected_skip}; "
            f"active workers before the tick {active}/3"
        )

    @pytest.mark.parametrize("limit", [0, 1, 2])
    def test_max_jobs_per_tick(self, publish_config, run_scheduler, emulator, slot, limit):
        three = [*TASKS, {"name": "report", "image": "busybox:1.37.0"}]
        publish_config({"scheduler": {"maxJobsPerTick": limit, "tasks": three}})
        result = run_scheduler()
        assert result.returncode == 0
        # No Job of these tasks is listed yet: declaration order.
        expected = {job_name(task["name"], slot) for task in three[:limit]}
        assert names(worker_jobs(emulator)) == expected
        assert emulator.requests() == [LIST] + [CREATE] * limit
        assert f"skipped {3 - limit} ({3 - limit} maxJobsPerTick reached)" in summary(result.stderr)

    def test_max_concurrent_workers_zero_submits_nothing(self, publish_config, run_scheduler, emulator):
        publish_config({"scheduler": {"maxConcurrentWorkers": 0}})
        result = run_scheduler()
        assert result.returncode == 0
        assert worker_jobs(emulator) == []
        assert emulator.requests() == [LIST]
        assert summary(result.stderr) == (
            "✓ Tick done: submitted 0, already existed 0, skipped 2 (2 maxConcurrentWorkers reached); "
            "active workers before the tick 0/0"
        )

    def test_limits_combine(self, publish_config, run_scheduler, emulator, slot):
        three = [*TASKS, {"name": "report", "image": "busybox:1.37.0"}]
        publish_config({"scheduler": {"maxJobsPerTick": 1, "maxConcurrentWorkers": 3, "tasks": three}})
        emulator.seed(job("inventory-running", worker_labels("inventory")))
        result = run_scheduler()
        assert names(worker_jobs(emulator)) == {"inventory-running", job_name("index", slot)}
        assert summary(result.stderr) == (
            "✓ Tick done: submitted 1, already existed 0, skipped 2 "
            "(1 already has an active Job, 1 maxJobsPerTick reached); active workers before the tick 1/3"
        )


def test_long_names_stay_valid(publish_config, run_scheduler, emulator, slot):
    """A long release name would make `<prefix>-<task>-<slot>` too long for a label value."""
    long_task = "t" * 30
    overrides = {
        "fullnameOverride": "a-rather-long-leviathan-release",
        "scheduler": {"tasks": [{"name": long_task, "image": "busybox:1.37.0"}]},
    }
    publish_config(overrides)
    assert run_scheduler().returncode == 0
    [manifest] = worker_jobs(emulator)
    name = manifest["metadata"]["name"]
    assert len(name) <= 63
    assert re.fullmatch(rf"a-rather-long-leviathan-release-worker-t+-[0-9a-f]{{8}}-{slot}", name), name
    assert manifest["spec"]["template"]["metadata"]["labels"]["leviathan.io/task"] == long_task


def test_without_its_own_job_in_the_list_the_workers_get_no_owner(enabled_config, run_scheduler, emulator, slot):
    """Run by hand (no tick Job) the Jobs still go out, with a line saying they will outlive an uninstall."""
    result = run_scheduler(env={"LEVIATHAN_SCHEDULER_JOB_NAME": f"leviathan-dev-scheduler-manual-{slot}"})
    assert result.returncode == 0, result.stderr
    assert (
        f"… tick Job leviathan-dev-scheduler-manual-{slot} has no CronJob owner in the list: "
        "worker Jobs will outlive an uninstall"
    ) in lines(result.stderr)
    assert [j["metadata"].get("ownerReferences") for j in worker_jobs(emulator)] == [None, None]
