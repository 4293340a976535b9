"""Worker Jobs as both sidecars read them, and the pause-after-failures rule.

The scheduler decides from these which tasks it does not submit; the control
plane reports the same decision in GET /v1/autonomy. One definition here, so
the two can never disagree about which tasks are paused. Pure functions over
Job manifests (dicts as the API returns them): no API calls.
"""

from __future__ import annotations

from collections.abc import Mapping
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


def failure_streaks(jobs: list[dict[str, Any]], selector: Mapping[str, str]) -> dict[str, tuple[int, str]]:
    """Per task: how many of its newest finished worker Jobs failed in a row, and the newest of them.

    A Complete Job ends the streak, and so does a failed one the operator marked resumed
    (RESUMED_ANNOTATION); Jobs still running are left out.
    """
    by_task: dict[str, list[dict[str, Any]]] = {}
    for job in jobs:
        task = task_of(job)
        if task is not None and is_ours(job, selector) and not is_active(job):
            by_task.setdefault(task, []).append(job)
    streaks: dict[str, tuple[int, str]] = {}
    for task, finished in by_task.items():
        finished.sort(key=lambda job: (submitted_slot(job), (job.get("metadata") or {}).get("name", "")), reverse=True)
        count, last = 0, ""
        for job in finished:
            metadata = job.get("metadata") or {}
            if not has_failed(job) or (metadata.get("annotations") or {}).get(RESUMED_ANNOTATION) == "true":
                break
            count += 1
            last = last or metadata.get("name", "")
        if count:
            streaks[task] = (count, last)
    return streaks


def paused_tasks(jobs: list[dict[str, Any]], rule: PauseRule) -> list[PausedTask]:
    """The declared tasks whose last `pause_after_failures` finished worker Jobs all failed, in declared order."""
    if not rule.pause_after_failures:
        return []
    streaks = failure_streaks(jobs, rule.selector)
    paused = []
    for task in rule.tasks:
        count, last = streaks.get(task, (0, ""))
        if count >= rule.pause_after_failures:
            paused.append(PausedTask(task, count, last))
    return paused


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
