"""Which tasks one tick submits, under the guardrails."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from leviathan_scheduler.settings import SchedulerSettings, Task

RUNNING = "already has an active Job"
TICK_LIMIT = "maxJobsPerTick reached"
CONCURRENCY_LIMIT = "maxConcurrentWorkers reached"


@dataclass
class Plan:
    submit: list[Task] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


def plan_tick(settings: SchedulerSettings, active_by_task: Counter[str], active_total: int, slot: int) -> Plan:
    """At most one active Job per task, `maxJobsPerTick` per tick, `maxConcurrentWorkers` in all.

    The starting task rotates with the slot, so tight limits do not starve
    the tasks declared last.
    """
    plan = Plan()
    tasks = settings.tasks
    if not tasks:
        return plan
    start = slot % len(tasks)
    for task in tasks[start:] + tasks[:start]:
        if active_by_task[task.name] > 0:
            plan.skipped[RUNNING] += 1
        elif len(plan.submit) >= settings.max_jobs_per_tick:
            plan.skipped[TICK_LIMIT] += 1
        elif active_total + len(plan.submit) >= settings.max_concurrent_workers:
            plan.skipped[CONCURRENCY_LIMIT] += 1
        else:
            plan.submit.append(task)
    return plan
