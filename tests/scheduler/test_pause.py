"""A task whose last pauseAfterFailures finished worker Jobs failed is not submitted; the others go on.

The state is the listed Jobs themselves: their Failed conditions, and the operator's
`leviathan.io/resumed=true` annotation (make resume-task) that ends a streak.
"""

from __future__ import annotations

import socket
import time

import kmock
import pytest
from kubernetes import client

from leviathan_scheduler.kube import EventNotRecorded, JobsApi
from leviathan_scheduler.tick import pause_event
from support.emulator import NAMESPACE, Call
from support.scheduler import assert_no_traceback, failed_job, job_name, lines, worker_jobs


def submitted(emulator, slot: int) -> list[str]:
    return sorted(j["metadata"]["name"] for j in worker_jobs(emulator) if j["metadata"]["name"].endswith(f"-{slot}"))


def test_three_failures_in_a_row_pause_the_task_and_the_other_goes_on(enabled_config, run_scheduler, emulator, slot):
    emulator.seed(*(failed_job("inventory", slot - 5 * n) for n in (1, 2, 3)))
    result = run_scheduler()
    assert result.returncode == 0
    assert lines(result.stderr)[0] == (
        f"⏸ Task inventory paused after 3 consecutive failures (last: {job_name('inventory', slot - 5)})"
    )
    assert submitted(emulator, slot) == [job_name("index", slot)]
    assert "skipped 1 (1 paused after failures)" in lines(result.stderr)[-1]


def test_every_tick_says_so_while_paused(enabled_config, run_scheduler, emulator, slot):
    emulator.seed(*(failed_job("inventory", slot - 5 * n) for n in (1, 2, 3, 4)))
    for tick in (slot, slot + 5):
        result = run_scheduler(slot=tick)
        assert f"⏸ Task inventory paused after 4 consecutive failures (last: {job_name('inventory', slot - 5)})" in (
            result.stderr
        )
    assert not [j for j in worker_jobs(emulator) if "inventory" in j["metadata"]["name"] and "Failed" not in str(j)]


def test_fewer_failures_or_a_success_in_between_do_not_pause(enabled_config, run_scheduler, emulator, slot):
    emulator.seed(
        failed_job("inventory", slot - 5),
        failed_job("inventory", slot - 10),
        failed_job("inventory", slot - 15, condition="Complete"),
        failed_job("inventory", slot - 20),
    )
    result = run_scheduler()
    assert "⏸" not in result.stderr
    assert submitted(emulator, slot) == [job_name("index", slot), job_name("inventory", slot)]


def test_resume_annotation_ends_the_streak(enabled_config, run_scheduler, emulator, slot):
    emulator.seed(*(failed_job("inventory", slot - 5 * n, resumed=True) for n in (1, 2, 3)))
    result = run_scheduler()
    assert "⏸" not in result.stderr
    assert job_name("inventory", slot) in submitted(emulator, slot)


def test_new_failures_after_a_resume_count_again(enabled_config, run_scheduler, emulator, slot):
    emulator.seed(*(failed_job("inventory", slot - 5 * n, resumed=True) for n in (4, 5, 6)))
    emulator.seed(*(failed_job("inventory", slot - 5 * n) for n in (1, 2, 3)))
    result = run_scheduler()
    assert f"⏸ Task inventory paused after 3 consecutive failures (last: {job_name('inventory', slot - 5)})" in (
        result.stderr
    )


def test_zero_turns_it_off(publish_config, run_scheduler, emulator, slot):
    publish_config({"scheduler": {"pauseAfterFailures": 0}})
    emulator.seed(*(failed_job("inventory", slot - 5 * n) for n in (1, 2, 3)))
    result = run_scheduler()
    assert "⏸" not in result.stderr
    assert job_name("inventory", slot) in submitted(emulator, slot)


def test_threshold_follows_the_setting(publish_config, run_scheduler, emulator, slot):
    publish_config({"scheduler": {"pauseAfterFailures": 1}})
    emulator.seed(failed_job("inventory", slot - 5))
    result = run_scheduler()
    assert f"⏸ Task inventory paused after 1 consecutive failures (last: {job_name('inventory', slot - 5)})" in (
        result.stderr
    )


# ---- the pause as a Kubernetes Event -------------------------------------------------------------

EVENTS = kmock.resource("v1/events")
EVENT_CREATE = Call("POST", "CREATE", "events", NAMESPACE)


def with_uid(manifest: dict, uid: str) -> dict:
    manifest["metadata"]["uid"] = uid
    return manifest


def test_a_pause_is_one_event_on_the_last_failed_job_however_many_ticks(enabled_config, run_scheduler, emulator, slot):
    last = job_name("inventory", slot - 5)
    emulator.seed(with_uid(failed_job("inventory", slot - 5), "0d9c1b7e-1111-4a2b-9c3d-5e6f7a8b9c0d"))
    emulator.seed(*(failed_job("inventory", slot - 5 * n) for n in (2, 3)))
    first = run_scheduler()
    second = run_scheduler(slot=slot + 5)
    assert first.returncode == second.returncode == 0
    [event] = emulator.events()
    assert event["metadata"]["name"] == f"{last}.task-paused"
    assert event["involvedObject"] == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": last,
        "namespace": NAMESPACE,
        "uid": "0d9c1b7e-1111-4a2b-9c3d-5e6f7a8b9c0d",
    }
    assert (event["type"], event["reason"]) == ("Warning", "TaskPaused")
    assert event["message"] == (
        f"Task inventory paused after 3 consecutive failures (last: {last}): the scheduler submits it no more "
        "until resumed. After fixing the cause: make resume-task TASK=inventory, or kubectl annotate jobs "
        "-n leviathan -l app=leviathan-worker,leviathan.io/task=inventory leviathan.io/resumed=true --overwrite"
    )
    # Each tick asks once; the second is answered AlreadyExists and says nothing more.
    assert emulator.requests().count(EVENT_CREATE) == 2
    assert f"✓ Event {last}.task-paused (TaskPaused) records the pause of task inventory" in lines(first.stderr)
    assert "Event" not in second.stderr
    # The contract line is unchanged on both ticks.
    for result in (first, second):
        assert f"⏸ Task inventory paused after 3 consecutive failures (last: {last})" in lines(result.stderr)


def test_resumed_failures_make_no_event_and_the_next_pause_makes_its_own(enabled_config, run_scheduler, emulator, slot):
    emulator.seed(*(failed_job("inventory", slot - 5 * n, resumed=True) for n in (4, 5, 6)))
    run_scheduler(slot=slot - 15)
    emulator.seed(*(failed_job("inventory", slot - 5 * n) for n in (1, 2, 3)))
    run_scheduler()
    assert [e["metadata"]["name"] for e in emulator.events()] == [f"{job_name('inventory', slot - 5)}.task-paused"]


def test_no_pause_no_event(enabled_config, run_scheduler, emulator, slot):
    emulator.seed(failed_job("inventory", slot - 5), failed_job("inventory", slot - 10))
    assert run_scheduler().returncode == 0
    assert emulator.events() == []
    assert EVENT_CREATE not in emulator.requests()


@pytest.mark.parametrize(
    ("status", "said"),
    [
        (403, "403 Forbidden; the scheduler's Role must allow create on events"),
        (500, "500 Internal Server Error"),
        (503, "503 Service Unavailable"),
    ],
)
def test_an_event_that_cannot_be_recorded_changes_nothing_else(
    enabled_config, run_scheduler, emulator, slot, status, said
):
    emulator.react(lambda k: k[kmock.action.CREATE, EVENTS] << status)
    emulator.seed(*(failed_job("inventory", slot - 5 * n) for n in (1, 2, 3)))
    result = run_scheduler()
    assert_no_traceback(result)
    assert result.returncode == 0
    assert f"… Event TaskPaused for task inventory not recorded ({said}); the tick goes on" in lines(result.stderr)
    assert emulator.requests().count(EVENT_CREATE) == 1  # one attempt, no retries
    assert submitted(emulator, slot) == [job_name("index", slot)]
    assert lines(result.stderr)[-1].startswith("✓ Tick done: submitted 1, already existed 0, skipped 1")


def test_an_event_that_times_out_costs_one_attempt_and_no_retry_pauses():
    """A server that accepts and never answers: one bounded attempt, charged to the budget like any failure."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(4)
        configuration = client.Configuration()
        configuration.host = f"http://127.0.0.1:{server.getsockname()[1]}"
        configuration.retries = False
        pauses: list[float] = []
        api = JobsApi(client.ApiClient(configuration), NAMESPACE, 1.0, sleep=pauses.append)
        started = time.monotonic()
        with pytest.raises(EventNotRecorded, match="ReadTimeoutError"):
            api.create_event(pause_event(NAMESPACE, "inventory", 3, "leviathan-worker-inventory-1", None, "w"))
        assert time.monotonic() - started < 3
        assert pauses == []
        server.settimeout(0)
        server.accept()  # the one connection
        with pytest.raises(BlockingIOError):
            server.accept()  # and no second
