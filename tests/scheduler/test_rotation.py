"""Which task goes first: the least recently submitted, so no schedule or limit starves a task (issue 11).

The old rule started at `slot % len(tasks)`; every slot of `*/5` is a multiple
of 5, so with 5 or 10 tasks and tight limits some tasks were never reached.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest

from leviathan_scheduler.plan import plan_tick
from leviathan_scheduler.settings import SchedulerSettings, Task
from support.emulator import finished_status
from support.scheduler import current_slot, job_name, worker_jobs

# Minutes of the hour each schedule fires at (cron semantics: */7 restarts every hour).
SCHEDULES = {
    "*/5": range(0, 60, 5),
    "*/10": range(0, 60, 10),
    "hourly": range(0, 1),
    "*/7": range(0, 60, 7),
}
DAY_START = 20_000 * 24 * 60  # a midnight, in minutes since the epoch


def settings(task_count: int, per_tick: int) -> SchedulerSettings:
    tasks = tuple(Task(name=f"task-{index}", image="busybox:1.37.0") for index in range(task_count))
    return SchedulerSettings(tasks, max_concurrent_workers=task_count, max_jobs_per_tick=per_tick, worker=None)


@pytest.mark.parametrize("schedule", SCHEDULES)
def test_a_day_of_ticks_reaches_every_task(schedule):
    """Workers finish before the next tick; the history is what the tick's Job list shows."""
    for task_count in range(1, 13):
        for per_tick in range(1, task_count + 1):
            config = settings(task_count, per_tick)
            last: dict[str, int] = {}
            ticks_since: Counter[str] = Counter()
            longest_wait = 0
            slots = [DAY_START + hour * 60 + minute for hour in range(24) for minute in SCHEDULES[schedule]]
            for slot in slots:
                plan = plan_tick(config, Counter(), 0, last)
                assert len(plan.submit) == per_tick
                for task in config.tasks:
                    ticks_since[task.name] += 1
                for task in plan.submit:
                    last[task.name] = slot
                    longest_wait = max(longest_wait, ticks_since.pop(task.name))
            case = f"{task_count} tasks, maxJobsPerTick {per_tick}, {schedule}"
            assert set(last) == {task.name for task in config.tasks}, case
            # And fairly: no task waits more than ceil(tasks / per tick) ticks for its turn.
            assert longest_wait <= math.ceil(task_count / per_tick), case


def test_running_tasks_are_passed_over_without_losing_their_place():
    config = settings(3, 1)
    last = {"task-0": 10, "task-1": 20, "task-2": 30}
    plan = plan_tick(config, Counter({"task-0": 1}), 1, last)
    assert [task.name for task in plan.submit] == ["task-1"]
    plan = plan_tick(config, Counter(), 0, {**last, "task-1": 40})
    assert [task.name for task in plan.submit] == ["task-0"]


def test_real_ticks_every_five_minutes_reach_all_five_tasks(publish_config, run_scheduler, emulator):
    """Five tasks, one Job per tick, `*/5` slots, each worker done before the next tick: five ticks, five tasks."""
    tasks = [{"name": f"task-{index}", "image": "busybox:1.37.0"} for index in range(5)]
    publish_config({"scheduler": {"maxJobsPerTick": 1, "maxConcurrentWorkers": 5, "tasks": tasks}})
    first = current_slot() - current_slot() % 60 - 60
    submitted = []
    for tick in range(5):
        slot = first + 5 * tick
        result = run_scheduler(slot=slot)
        assert result.returncode == 0, result.stderr
        [new] = [j for j in worker_jobs(emulator) if j["metadata"]["name"].endswith(f"-{slot}")]
        submitted.append(new["metadata"]["labels"]["leviathan.io/task"])
        emulator.patch(new["metadata"]["name"], {"status": finished_status()})
    assert submitted == [task["name"] for task in tasks]
    # The sixth tick starts over with the least recently submitted task.
    slot = first + 25
    assert run_scheduler(slot=slot).returncode == 0
    assert job_name("task-0", slot) in {j["metadata"]["name"] for j in worker_jobs(emulator)}
