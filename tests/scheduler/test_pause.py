"""A task whose last pauseAfterFailures finished worker Jobs failed is not submitted; the others go on.

The state is the listed Jobs themselves: their Failed conditions, and the operator's
`leviathan.io/resumed=true` annotation (make resume-task) that ends a streak.
"""

from __future__ import annotations

from datetime import UTC, datetime

from support.emulator import finished_status, job
from support.scheduler import job_name, lines, worker_jobs, worker_labels


def failed(task: str, slot: int, resumed: bool = False, condition: str = "Failed") -> dict:
    manifest = job(job_name(task, slot), worker_labels(task))
    manifest["metadata"]["annotations"] = {
        "leviathan.io/scheduled-time": _stamp(slot),
        **({"leviathan.io/resumed": "true"} if resumed else {}),
    }
    manifest["status"] = finished_status(condition)
    return manifest


def _stamp(slot: int) -> str:
    return datetime.fromtimestamp(slot * 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def submitted(emulator, slot: int) -> list[str]:
    return sorted(j["metadata"]["name"] for j in worker_jobs(emulator) if j["metadata"]["name"].endswith(f"-{slot}"))


def test_three_failures_in_a_row_pause_the_task_and_the_other_goes_on(enabled_config, run_scheduler, emulator, slot):
    emulator.seed(*(failed("inventory", slot - 5 * n) for n in (1, 2, 3)))
    result = run_scheduler()
    assert result.returncode == 0
    assert lines(result.stderr)[0] == (
        f"⏸ Task inventory paused after 3 consecutive failures (last: {job_name('inventory', slot - 5)})"
    )
    assert submitted(emulator, slot) == [job_name("index", slot)]
    assert "skipped 1 (1 paused after failures)" in lines(result.stderr)[-1]


def test_every_tick_says_so_while_paused(enabled_config, run_scheduler, emulator, slot):
    emulator.seed(*(failed("inventory", slot - 5 * n) for n in (1, 2, 3, 4)))
    for tick in (slot, slot + 5):
        result = run_scheduler(slot=tick)
        assert f"⏸ Task inventory paused after 4 consecutive failures (last: {job_name('inventory', slot - 5)})" in (
            result.stderr
        )
    assert not [j for j in worker_jobs(emulator) if "inventory" in j["metadata"]["name"] and "Failed" not in str(j)]


def test_fewer_failures_or_a_success_in_between_do_not_pause(enabled_config, run_scheduler, emulator, slot):
    emulator.seed(
        failed("inventory", slot - 5),
        failed("inventory", slot - 10),
        failed("inventory", slot - 15, condition="Complete"),
        failed("inventory", slot - 20),
    )
    result = run_scheduler()
    assert "⏸" not in result.stderr
    assert submitted(emulator, slot) == [job_name("index", slot), job_name("inventory", slot)]


def test_resume_annotation_ends_the_streak(enabled_config, run_scheduler, emulator, slot):
    emulator.seed(*(failed("inventory", slot - 5 * n, resumed=True) for n in (1, 2, 3)))
    result = run_scheduler()
    assert "⏸" not in result.stderr
    assert job_name("inventory", slot) in submitted(emulator, slot)


def test_new_failures_after_a_resume_count_again(enabled_config, run_scheduler, emulator, slot):
    emulator.seed(*(failed("inventory", slot - 5 * n, resumed=True) for n in (4, 5, 6)))
    emulator.seed(*(failed("inventory", slot - 5 * n) for n in (1, 2, 3)))
    result = run_scheduler()
    assert f"⏸ Task inventory paused after 3 consecutive failures (last: {job_name('inventory', slot - 5)})" in (
        result.stderr
    )


def test_zero_turns_it_off(publish_config, run_scheduler, emulator, slot):
    publish_config({"scheduler": {"pauseAfterFailures": 0}})
    emulator.seed(*(failed("inventory", slot - 5 * n) for n in (1, 2, 3)))
    result = run_scheduler()
    assert "⏸" not in result.stderr
    assert job_name("inventory", slot) in submitted(emulator, slot)


def test_threshold_follows_the_setting(publish_config, run_scheduler, emulator, slot):
    publish_config({"scheduler": {"pauseAfterFailures": 1}})
    emulator.seed(failed("inventory", slot - 5))
    result = run_scheduler()
    assert f"⏸ Task inventory paused after 1 consecutive failures (last: {job_name('inventory', slot - 5)})" in (
        result.stderr
    )
