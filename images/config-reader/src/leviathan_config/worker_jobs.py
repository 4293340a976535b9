"""Worker Jobs as both sidecars read them, and the pause-after-failures rule.

The scheduler decides from these which tasks it does not submit; the control
plane reports the same decision in GET /v1/autonomy. One definition here, so
the two can never disagree about which tasks are paused. Pure functions over
Job manifests (dicts as the API returns them), and JobTally, which keeps only what
the rule and the scheduler's plan need of a list read page by page: no API calls.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

TASK_LABEL = "leviathan.io/task"
SLOT_ANNOTATION = "leviathan.io/scheduled-time"
# Set by the operator (make resume-task) on a task's Jobs: their failures no longer pause it.
RESUMED_ANNOTATION = "leviathan.io/resumed"
DEFAULT_PAUSE_AFTER_FAILURES = 3


@dataclass(frozen=True)
class PauseRule:
    """Which Jobs count (labels) and after how many failures in a row a task stops; 0 turns pausing off."""

    tasks: tuple[str, ...]
    selector: Mapping[str, str]
    pause_after_failures: int = DEFAULT_PAUSE_AFTER_FAILURES


@dataclass(frozen=True)
class PausedTask:
    task: str
    consecutive_failures: int
    last_failed_job: str


def is_ours(job: Mapping[str, Any], selector: Mapping[str, str]) -> bool:
    """The label check the API should have done; done again in case it did not."""
    labels = (job.get("metadata") or {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in selector.items())


def is_active(job: Mapping[str, Any]) -> bool:
    """Unfinished: no Complete or Failed condition yet. A Job being deleted still counts."""
    conditions = (job.get("status") or {}).get("conditions") or []
    return not any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions)


def has_failed(job: Mapping[str, Any]) -> bool:
    conditions = (job.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Failed" and c.get("status") == "True" for c in conditions)


def task_of(job: Mapping[str, Any]) -> str | None:
    return ((job.get("metadata") or {}).get("labels") or {}).get(TASK_LABEL)


def submitted_slot(job: Mapping[str, Any]) -> int:
    """The scheduled minute a worker Job was submitted for (its annotation, else its creation); -1 if unknown."""
    metadata = job.get("metadata") or {}
    stamp = (metadata.get("annotations") or {}).get(SLOT_ANNOTATION) or metadata.get("creationTimestamp")
    try:
        return int(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() // 60)
    except (TypeError, ValueError):
        return -1


class JobTally:
    """What both sidecars keep of the release's Jobs, fed one Job at a time while a list streams in.

    Never a Job itself: per declared task (all tasks when `tasks` is None) the number of
    active worker Jobs, the newest scheduled minute, and the failed Jobs newer than its
    newest finished Job that ends a streak (name, minute, uid: about 200 bytes each,
    dropped as soon as a newer success is seen); the number of active worker Jobs in
    all; and the owner references of the Job named `tick_job`. A Job with huge
    annotations or labels costs no more than these.
    """

    def __init__(
        self, selector: Mapping[str, str], tasks: Iterable[str] | None = None, tick_job: str | None = None
    ) -> None:
        self._selector = dict(selector)
        self._tasks = None if tasks is None else frozenset(tasks)
        self._tick_job = tick_job
        self.jobs = 0
        self.active_total = 0
        self.active_by_task: Counter[str] = Counter()
        self.newest_slot: dict[str, int] = {}
        self.tick_job_owners: list[dict[str, str]] | None = None
        # task -> the newest streak-ending Job's (minute, name), and {name: (minute, uid)} of failures after it.
        self._breakers: dict[str, tuple[int, str]] = {}
        self._failures: dict[str, dict[str, tuple[int, str]]] = {}

    def add(self, job: Mapping[str, Any]) -> None:
        self.jobs += 1
        metadata = job.get("metadata") or {}
        name = metadata.get("name") or ""
        if self._tick_job and name == self._tick_job:
            self.tick_job_owners = [
                {key: str(reference.get(key) or "") for key in ("kind", "name", "uid")}
                for reference in metadata.get("ownerReferences") or []
                if isinstance(reference, Mapping)
            ]
        if not is_ours(job, self._selector):
            return
        active = is_active(job)
        self.active_total += active
        task = task_of(job)
        if task is None or (self._tasks is not None and task not in self._tasks):
            return
        slot = submitted_slot(job)
        self.newest_slot[task] = max(self.newest_slot.get(task, -1), slot)
        if active:
            self.active_by_task[task] += 1
            return
        key = (slot, name)
        breaker = self._breakers.get(task)
        if breaker is not None and key <= breaker:
            return  # older than a success: outside the streak
        if has_failed(job) and (metadata.get("annotations") or {}).get(RESUMED_ANNOTATION) != "true":
            self._failures.setdefault(task, {})[name] = (slot, str(metadata.get("uid") or ""))
        else:
            self._breakers[task] = key
            failures = self._failures.get(task, {})
            self._failures[task] = {n: f for n, f in failures.items() if (f[0], n) > key}

    def streaks(self) -> dict[str, tuple[int, str]]:
        """Per task: how many of its newest finished worker Jobs failed in a row, and the newest of them.

        A Complete Job ends the streak, and so does a failed one the operator marked resumed
        (RESUMED_ANNOTATION); Jobs still running are left out.
        """
        streaks = {}
        for task, failures in self._failures.items():
            if failures:
                newest = max(failures, key=lambda name: (failures[name][0], name))
                streaks[task] = (len(failures), newest)
        return streaks

    def uid_of_failed(self, task: str, name: str) -> str | None:
        return (self._failures.get(task, {}).get(name) or (0, ""))[1] or None

    def paused(self, rule: PauseRule) -> list[PausedTask]:
        """The declared tasks whose last `pause_after_failures` finished worker Jobs all failed, in declared order."""
        if not rule.pause_after_failures:
            return []
        streaks = self.streaks()
        paused = []
        for task in rule.tasks:
            count, last = streaks.get(task, (0, ""))
            if count >= rule.pause_after_failures:
                paused.append(PausedTask(task, count, last))
        return paused


def failure_streaks(jobs: Iterable[Mapping[str, Any]], selector: Mapping[str, str]) -> dict[str, tuple[int, str]]:
    """JobTally.streaks over a list of Jobs."""
    tally = JobTally(selector)
    for job in jobs:
        tally.add(job)
    return tally.streaks()


def paused_tasks(jobs: Iterable[Mapping[str, Any]], rule: PauseRule) -> list[PausedTask]:
    """JobTally.paused over a list of Jobs (of the declared tasks only)."""
    tally = JobTally(rule.selector, rule.tasks)
    for job in jobs:
        tally.add(job)
    return tally.paused(rule)


def pause_rule_from(document: Mapping[str, Any]) -> tuple[PauseRule | None, Mapping[str, str]]:
    """The rule and the release's list selector, read from a loaded config document for a reader of the
    pause (the control plane); (None, {}) when the file declares no tasks.

    Only the shape is checked here (ValueError names the key): the scheduler validates these keys in
    full and fails closed on a value it refuses, so then it submits nothing at all.
    """
    scheduler = _mapping(document.get("scheduler", {}), "scheduler")
    tasks = scheduler.get("tasks") or []
    if not isinstance(tasks, list) or not all(isinstance(t, Mapping) and isinstance(t.get("name"), str) for t in tasks):
        raise ValueError("scheduler.tasks: not a list of tasks with names")
    if not tasks:
        return None, {}
    threshold = scheduler.get("pauseAfterFailures", DEFAULT_PAUSE_AFTER_FAILURES)
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
        raise ValueError("scheduler.pauseAfterFailures: not a whole number of at least 0")
    worker = _mapping(document.get("worker"), "worker")
    selector = _labels(worker.get("selector"), "worker.selector")
    release_selector = _labels(worker.get("releaseSelector"), "worker.releaseSelector")
    return PauseRule(tuple(t["name"] for t in tasks), selector, threshold), release_selector


def label_selector(labels: Mapping[str, str]) -> str:
    """`a=b,c=d`, as the API's labelSelector takes it."""
    return ",".join(f"{key}={value}" for key, value in labels.items())


def _mapping(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{key}: not a mapping")
    return value


def _labels(value: Any, key: str) -> dict[str, str]:
    labels = _mapping(value, key)
    if not labels or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise ValueError(f"{key}: not a non-empty mapping of label strings")
    return dict(labels)
