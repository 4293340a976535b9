"""The scheduler's part of the config: tasks, guardrails and worker Job settings.

The chart's values schema already validates these, but the ConfigMap can be
edited by hand, so they are checked again here. Any problem makes the tick
fail closed with a message naming the key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


class SettingsError(Exception):
    """The scheduler or worker section of the config is unusable."""


@dataclass(frozen=True)
class Task:
    name: str
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    resources: Mapping[str, Any] | None = None
    active_deadline_seconds: int | None = None


@dataclass(frozen=True)
class WorkerSettings:
    job_name_prefix: str
    selector: Mapping[str, str]
    release_selector: Mapping[str, str]
    labels: Mapping[str, str]
    backoff_limit: int
    active_deadline_seconds: int
    ttl_seconds_after_finished: int
    run_as_user: int
    run_as_group: int
    resources: Mapping[str, Any]
    image_pull_secrets: tuple[str, ...]


@dataclass(frozen=True)
class SchedulerSettings:
    tasks: tuple[Task, ...]
    max_concurrent_workers: int
    max_jobs_per_tick: int
    worker: WorkerSettings | None  # None only when no task is declared


def parse_settings(document: Mapping[str, Any]) -> SchedulerSettings:
    scheduler = _mapping(document.get("scheduler", {}), "scheduler")
    raw_tasks = _list(scheduler.get("tasks", []), "scheduler.tasks")
    tasks = tuple(_task(raw, f"scheduler.tasks[{index}]") for index, raw in enumerate(raw_tasks))
    names = [task.name for task in tasks]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise SettingsError(f"scheduler.tasks: task names must be unique, {', '.join(duplicates)} repeats")
    if not tasks:
        return SchedulerSettings((), 0, 0, None)
    return SchedulerSettings(
        tasks=tasks,
        max_concurrent_workers=_int(scheduler.get("maxConcurrentWorkers"), "scheduler.maxConcurrentWorkers", 0),
        max_jobs_per_tick=_int(scheduler.get("maxJobsPerTick"), "scheduler.maxJobsPerTick", 0),
        worker=_worker(_mapping(document.get("worker"), "worker")),
    )


def _task(raw: Any, where: str) -> Task:
    task = _mapping(raw, where)
    unknown = set(task) - {"name", "image", "command", "args", "env", "resources", "activeDeadlineSeconds"}
    if unknown:
        raise SettingsError(f"{where}: unknown key {sorted(unknown)[0]}")
    name = _string(task.get("name"), f"{where}.name")
    if not DNS_LABEL.match(name) or len(name) > 30:
        raise SettingsError(f"{where}.name: {name!r} is not a DNS label of at most 30 characters")
    env = []
    for index, item in enumerate(_list(task.get("env", []), f"{where}.env")):
        entry = _mapping(item, f"{where}.env[{index}]")
        env_name = _string(entry.get("name"), f"{where}.env[{index}].name")
        if not ENV_NAME.match(env_name):
            raise SettingsError(f"{where}.env[{index}].name: {env_name!r} is not a valid variable name")
        env.append((env_name, _string(entry.get("value", ""), f"{where}.env[{index}].value", allow_empty=True)))
    deadline = task.get("activeDeadlineSeconds")
    return Task(
        name=name,
        image=_string(task.get("image"), f"{where}.image"),
        command=_strings(task.get("command", []), f"{where}.command"),
        args=_strings(task.get("args", []), f"{where}.args"),
        env=tuple(env),
        resources=_mapping(task["resources"], f"{where}.resources") if "resources" in task else None,
        active_deadline_seconds=None if deadline is None else _int(deadline, f"{where}.activeDeadlineSeconds", 1),
    )


def _worker(worker: Mapping[str, Any]) -> WorkerSettings:
    selector = _string_map(worker.get("selector"), "worker.selector")
    if not selector.get("app"):
        raise SettingsError("worker.selector: an app label is required")
    labels = _string_map(worker.get("labels", {}), "worker.labels")
    release_selector = _string_map(worker.get("releaseSelector"), "worker.releaseSelector")
    if not release_selector or not release_selector.items() <= {**labels, **selector}.items():
        raise SettingsError("worker.releaseSelector: must be non-empty and match the worker Jobs' labels")
    return WorkerSettings(
        job_name_prefix=_job_name_prefix(worker.get("jobNamePrefix")),
        selector=selector,
        release_selector=release_selector,
        labels=labels,
        backoff_limit=_int(worker.get("backoffLimit"), "worker.backoffLimit", 0),
        active_deadline_seconds=_int(worker.get("activeDeadlineSeconds"), "worker.activeDeadlineSeconds", 1),
        ttl_seconds_after_finished=_int(worker.get("ttlSecondsAfterFinished"), "worker.ttlSecondsAfterFinished", 0),
        run_as_user=_int(worker.get("runAsUser"), "worker.runAsUser", 1),
        run_as_group=_int(worker.get("runAsGroup"), "worker.runAsGroup", 1),
        resources=_mapping(worker.get("resources", {}), "worker.resources"),
        image_pull_secrets=_strings(worker.get("imagePullSecrets", []), "worker.imagePullSecrets"),
    )


def _job_name_prefix(value: Any) -> str:
    prefix = _string(value, "worker.jobNamePrefix")
    if not DNS_LABEL.match(prefix) or len(prefix) > 40:
        raise SettingsError(f"worker.jobNamePrefix: {prefix!r} is not a DNS label of at most 40 characters")
    return prefix


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise SettingsError(f"{where}: expected a mapping")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise SettingsError(f"{where}: expected a list")
    return value


def _string(value: Any, where: str, allow_empty: bool = False) -> str:
    if value is None:
        raise SettingsError(f"{where}: missing")
    if not isinstance(value, str):
        raise SettingsError(f"{where}: expected a string")
    if not value and not allow_empty:
        raise SettingsError(f"{where}: expected a non-empty string")
    return value


def _strings(value: Any, where: str) -> tuple[str, ...]:
    items = _list(value, where)
    if not all(isinstance(item, str) for item in items):
        raise SettingsError(f"{where}: expected a list of strings")
    return tuple(items)


def _string_map(value: Any, where: str) -> dict[str, str]:
    mapping = _mapping(value, where)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
        raise SettingsError(f"{where}: expected string keys and values")
    return dict(mapping)


def _int(value: Any, where: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise SettingsError(f"{where}: expected an integer of at least {minimum}")
    return value
