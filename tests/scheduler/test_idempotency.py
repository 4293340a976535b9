"""Ticks for the same slot ask for the same Job names; the API's 409 keeps them from submitting twice."""

from __future__ import annotations

import subprocess

from support.emulator import NAMESPACE, Call, finished_status, job, job_list
from support.paths import SCHEDULER
from support.scheduler import (
    TASK_NAMES,
    assert_no_traceback,
    job_name,
    lines,
    settings_path_for,
    worker_jobs,
    worker_labels,
)

LIST = Call("GET", "LIST", "batch/jobs", NAMESPACE)
CREATE = Call("POST", "CREATE", "batch/jobs", NAMESPACE)


def names(jobs) -> list[str]:
    return sorted(j["metadata"]["name"] for j in jobs)


def already_exists_lines(stderr: str) -> list[str]:
    return [line for line in lines(stderr) if "already exists" in line]


def test_a_retried_tick_whose_jobs_finished_creates_nothing_new(enabled_config, run_scheduler, emulator, slot):
    """The CronJob retries a tick (same Job name, same slot) after its workers already finished."""
    first = run_scheduler()
    assert first.returncode == 0, first.stderr
    expected = sorted(job_name(task, slot) for task in TASK_NAMES)
    assert names(worker_jobs(emulator)) == expected
    for name in expected:
        emulator.patch(name, {"status": finished_status()})

    second = run_scheduler()
    assert second.returncode == 0, second.stderr
    assert_no_traceback(second)
    # The finished Jobs do not block the tasks, so both creates are tried and both answered 409.
    assert emulator.requests() == [LIST, CREATE, CREATE, LIST, CREATE, CREATE]
    assert already_exists_lines(second.stderr) == [
        f"✓ Job {job_name(task, slot)} already exists (task {task}): this slot was already submitted"
        for task in TASK_NAMES
    ]
    assert lines(second.stderr)[-1] == (
        "✓ Tick done: submitted 0, already existed 2; active workers before the tick 0/5"
    )
    # No duplicate, and the stored Jobs were not replaced by the second attempt.
    assert names(worker_jobs(emulator)) == expected
    assert all(j["status"] == finished_status() for j in worker_jobs(emulator))


def test_overlapping_ticks_submit_each_job_once(enabled_config, run_scheduler, emulator, slot):
    """A second tick for the slot lists before the first one's creates are visible (stale list)."""
    first = run_scheduler()
    assert first.returncode == 0
    emulator.react(lambda k: k["list"][1:] << job_list())  # every later list answers "no Jobs"
    second = run_scheduler()
    assert second.returncode == 0, second.stderr
    assert emulator.requests() == [LIST, CREATE, CREATE, LIST, CREATE, CREATE]
    assert len(already_exists_lines(second.stderr)) == 2
    assert "submitted 0, already existed 2" in lines(second.stderr)[-1]
    assert names(worker_jobs(emulator)) == sorted(job_name(task, slot) for task in TASK_NAMES)


def test_one_job_of_the_slot_exists_the_other_is_submitted(enabled_config, run_scheduler, emulator, slot):
    emulator.seed(job(job_name("inventory", slot), worker_labels("inventory"), finished="Complete"))
    result = run_scheduler()
    assert result.returncode == 0
    assert lines(result.stderr) == [
        f"✓ Job {job_name('inventory', slot)} already exists (task inventory): this slot was already submitted",
        f"✓ Submitted job {job_name('index', slot)} (task index)",
        "✓ Tick done: submitted 1, already existed 1; active workers before the tick 0/5",
    ]
    assert names(worker_jobs(emulator)) == sorted(job_name(task, slot) for task in TASK_NAMES)


def test_the_next_slot_submits_again_once_the_jobs_finished(enabled_config, run_scheduler, emulator, slot):
    assert run_scheduler().returncode == 0
    for task in TASK_NAMES:
        emulator.patch(job_name(task, slot), {"status": finished_status("Failed")})
    result = run_scheduler(slot=slot + 5)
    assert result.returncode == 0
    assert "submitted 2, already existed 0" in lines(result.stderr)[-1]
    assert names(worker_jobs(emulator)) == sorted(job_name(task, s) for task in TASK_NAMES for s in (slot, slot + 5))


def test_the_next_slot_waits_while_the_jobs_run(enabled_config, run_scheduler, emulator, slot):
    assert run_scheduler().returncode == 0
    result = run_scheduler(slot=slot + 5)
    assert result.returncode == 0
    assert "submitted 0, already existed 0, skipped 2 (2 already has an active Job)" in lines(result.stderr)[-1]
    assert names(worker_jobs(emulator)) == sorted(job_name(task, slot) for task in TASK_NAMES)


def test_concurrent_ticks_never_duplicate(enabled_config, emulator, kubeconfig, config_path, tmp_path, slot):
    """Two ticks of the same slot started at once: whatever the interleaving, each Job exists once."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LEVIATHAN_AUTONOMY_CONFIG": str(config_path),
        "LEVIATHAN_SCHEDULER_CONFIG": str(settings_path_for(config_path)),
        "KUBECONFIG": str(kubeconfig),
        "LEVIATHAN_NAMESPACE": NAMESPACE,
        "LEVIATHAN_SCHEDULER_JOB_NAME": f"leviathan-dev-scheduler-{slot}",
    }
    ticks = [
        subprocess.Popen([str(SCHEDULER)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [tick.communicate(timeout=60) for tick in ticks]
    assert [tick.returncode for tick in ticks] == [0, 0], outputs
    stderr = "".join(err for _, err in outputs)
    assert "Traceback" not in stderr
    assert stderr.count("✓ Submitted job ") == 2
    assert names(worker_jobs(emulator)) == sorted(job_name(task, slot) for task in TASK_NAMES)


def test_only_a_whole_cronjob_suffix_names_the_slot():
    """`$` would accept a trailing newline, and `\\d` other scripts' digits (issue 11)."""
    from leviathan_scheduler.jobs import tick_slot

    now = 29_000_000 * 60.0
    assert tick_slot("leviathan-dev-scheduler-28999990", now) == 28_999_990
    assert tick_slot("leviathan-dev-scheduler-28999990\n", now) == 29_000_000
    assert tick_slot("leviathan-dev-scheduler-٢٨٩٩٩٩٩٠", now) == 29_000_000
