"""Which tasks one tick submits, under the guardrails."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

from leviathan_scheduler.settings import SchedulerSettings, Task

RUNNING = "already has an active Job"
TICK_LIMIT = "maxJobsPerTick reached"
CONCURRENCY_LIMIT = "maxConcurrentWorkers reached"
PAUSED = "paused after failures"


@dataclass
class Plan:
    submit: list[Task] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def plan_tick(
    settings: SchedulerSettings,
    active_by_task: Counter[str],
    active_total: int,
    last_submitted: Mapping[str, int],
    paused: Collection[str] = (),
) -> Plan:
    """At most one active Job per task, `maxJobsPerTick` per tick, `maxConcurrentWorkers` in all.

    Tasks are tried least recently submitted first: never submitted (no Job
    listed) before anything, then by the scheduled minute of their newest Job,
    ties in declaration order. A task that is passed over keeps its place
    while every task it waits behind moves to the back once submitted, so as
    long as a tick can submit at all, every task is reached within
    len(tasks) ticks, whatever the schedule or the limits.
    """
    plan = Plan()
    order = sorted(
        range(len(settings.tasks)), key=lambda index: (last_submitted.get(settings.tasks[index].name, -1), index)
    )
    for task in (settings.tasks[index] for index in order):
        if task.name in paused:
            plan.skipped[PAUSED] += 1
        elif active_by_task[task.name] > 0:
            plan.skipped[RUNNING] += 1
        elif len(plan.submit) >= settings.max_jobs_per_tick:
            plan.skipped[TICK_LIMIT] += 1
        elif active_total + len(plan.submit) >= settings.max_concurrent_workers:
            plan.skipped[CONCURRENCY_LIMIT] += 1
        else:
            plan.submit.append(task)
    return plan
