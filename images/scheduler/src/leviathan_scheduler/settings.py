"""The scheduler's settings file: tasks, guardrails and worker Job settings (scheduler.yaml, in a
ConfigMap of its own; the switch file holds only the switch).

The chart's values schema already validates these, but the ConfigMap can be
edited by hand, so they are checked again here, every field that reaches a
Job manifest, before the first API call: the dry run and a real tick refuse
the same files. Any problem makes the tick fail closed with a message naming
the key. Patterns are always matched whole (fullmatch): `$` would let a
trailing newline through.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from leviathan_config.worker_jobs import DEFAULT_PAUSE_AFTER_FAILURES

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
LABEL_VALUE = re.compile(r"([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?")
# An image reference: registry[:port]/path[:tag][@digest], no spaces or control characters.
IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]*")
# Kubernetes quantities: 100m, 0.5, 128Mi, 1e3, 2G...
QUANTITY = re.compile(
    r"\+?(?P<number>[0-9]+(\.[0-9]*)?|\.[0-9]+)(?P<suffix>[eE][-+]?[0-9]{1,3}|[KMGTPE]i|[numkMGTPE])?"
)
_SCALE = {
    "": Decimal(1),
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
    **{f"{prefix}i": Decimal(1024) ** power for power, prefix in enumerate("KMGTPE", start=1)},
}
# Resource names Kubernetes accepts in a container; anything else needs a domain (example.com/gpu).
STANDARD_RESOURCES = ("cpu", "memory", "ephemeral-storage")
INT32_MAX = 2**31 - 1


class SettingsError(Exception):
    """The scheduler or worker section of the config is unusable."""


@dataclass(frozen=True)
class Task:
    name: str
    image: str
    command: tuple[str, ...] = ()
    args: tuple[str, ...] = ()
    # Kubernetes EnvVar objects: a literal `value`, or `valueFrom` a Secret or ConfigMap key (never copied here).
    env: tuple[Mapping[str, Any], ...] = ()
    env_from: tuple[Mapping[str, Any], ...] = ()
    resources: Mapping[str, Mapping[str, str]] | None = None
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
    resources: Mapping[str, Mapping[str, str]]
    image_pull_secrets: tuple[str, ...]
    # Placement and mounts (issue 22); the pod and container security the scheduler sets stays.
    service_account_name: str | None = None
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Mapping[str, Any], ...] = ()
    affinity: Mapping[str, Any] = field(default_factory=dict)
    volumes: tuple[Mapping[str, Any], ...] = ()
    volume_mounts: tuple[Mapping[str, Any], ...] = ()
    priority_class_name: str | None = None


@dataclass(frozen=True)
class SchedulerSettings:
    tasks: tuple[Task, ...]
    max_concurrent_workers: int
    max_jobs_per_tick: int
    worker: WorkerSettings | None  # None only when no task is declared
    # A task whose last N finished worker Jobs all failed is not submitted; 0 turns this off.
    pause_after_failures: int = DEFAULT_PAUSE_AFTER_FAILURES


def load_settings(path: str | None = None) -> tuple[str, SchedulerSettings]:
    """The settings file ($LEVIATHAN_SCHEDULER_CONFIG, mounted from its own ConfigMap): its path and
    settings. SettingsError names the file and what is wrong with it (missing, unreadable, invalid)."""
    from leviathan_config import ConfigState, read_settings_file, settings_path_from_env

    path = path or settings_path_from_env()
    loaded = read_settings_file(path)
    if loaded.state is not ConfigState.LOADED:
        raise SettingsError(
            f"settings file {loaded.problem}" if loaded.state is ConfigState.NOT_MOUNTED else loaded.problem
        )
    try:
        return path, parse_settings(loaded.document)
    except SettingsError as exc:
        raise SettingsError(f"{path}: {exc}") from None


def parse_settings(document: Mapping[str, Any]) -> SchedulerSettings:
    scheduler = _mapping(document.get("scheduler", {}), "scheduler")
    _known_keys(scheduler, "scheduler", {"maxConcurrentWorkers", "maxJobsPerTick", "pauseAfterFailures", "tasks"})
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
        pause_after_failures=_int(
            scheduler.get("pauseAfterFailures", DEFAULT_PAUSE_AFTER_FAILURES), "scheduler.pauseAfterFailures", 0
        ),
    )


def _task(raw: Any, where: str) -> Task:
    task = _mapping(raw, where)
    _known_keys(
        task, where, {"name", "image", "command", "args", "env", "envFrom", "resources", "activeDeadlineSeconds"}
    )
    name = _string(task.get("name"), f"{where}.name")
    if not DNS_LABEL.fullmatch(name) or len(name) > 30:
        raise SettingsError(f"{where}.name: {name!r} is not a DNS label of at most 30 characters")
    env = tuple(
        _env_var(item, f"{where}.env[{index}]") for index, item in enumerate(_list(task.get("env", []), f"{where}.env"))
    )
    env_from = tuple(
        _env_from(item, f"{where}.envFrom[{index}]")
        for index, item in enumerate(_list(task.get("envFrom", []), f"{where}.envFrom"))
    )
    deadline = task.get("activeDeadlineSeconds")
    return Task(
        name=name,
        image=_image(task.get("image"), f"{where}.image"),
        command=_strings(task.get("command", []), f"{where}.command"),
        args=_strings(task.get("args", []), f"{where}.args"),
        env=env,
        env_from=env_from,
        resources=_resources(task["resources"], f"{where}.resources") if "resources" in task else None,
        active_deadline_seconds=None if deadline is None else _int(deadline, f"{where}.activeDeadlineSeconds", 1),
    )


_WORKER_KEYS = {
    "jobNamePrefix",
    "selector",
    "releaseSelector",
    "labels",
    "backoffLimit",
    "activeDeadlineSeconds",
    "ttlSecondsAfterFinished",
    "runAsUser",
    "runAsGroup",
    "resources",
    "imagePullSecrets",
    "serviceAccountName",
    "nodeSelector",
    "tolerations",
    "affinity",
    "volumes",
    "volumeMounts",
    "priorityClassName",
}


def _worker(worker: Mapping[str, Any]) -> WorkerSettings:
    _known_keys(worker, "worker", _WORKER_KEYS)
    selector = _labels(worker.get("selector"), "worker.selector")
    if not selector.get("app"):
        raise SettingsError("worker.selector: an app label is required")
    labels = _labels(worker.get("labels", {}), "worker.labels")
    release_selector = _labels(worker.get("releaseSelector"), "worker.releaseSelector")
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
        resources=_resources(worker.get("resources", {}), "worker.resources"),
        image_pull_secrets=_secret_names(worker.get("imagePullSecrets", []), "worker.imagePullSecrets"),
        **_placement(worker),
    )


# Secret and ConfigMap references only: a task's env never carries a secret value through this config.
_KEY_REFS = {"secretKeyRef", "configMapKeyRef"}
_SOURCE_REFS = {"secretRef", "configMapRef"}
# Volume sources a worker may use; hostPath and the like would leave the restricted pod security.
_VOLUME_SOURCES = {
    "secret",
    "configMap",
    "emptyDir",
    "persistentVolumeClaim",
    "projected",
    "downwardAPI",
    "ephemeral",
    "csi",
}
_TOLERATION_KEYS = {"key", "operator", "value", "effect", "tolerationSeconds"}


def _env_var(raw: Any, where: str) -> dict[str, Any]:
    entry = _mapping(raw, where)
    _known_keys(entry, where, {"name", "value", "valueFrom"})
    name = _string(entry.get("name"), f"{where}.name")
    if not ENV_NAME.fullmatch(name):
        raise SettingsError(f"{where}.name: {name!r} is not a valid variable name")
    if "valueFrom" not in entry:
        return {"name": name, "value": _string(entry.get("value", ""), f"{where}.value", allow_empty=True)}
    if "value" in entry:
        raise SettingsError(f"{where}: give value or valueFrom, not both")
    source = _mapping(entry["valueFrom"], f"{where}.valueFrom")
    if len(source) != 1 or not set(source) <= _KEY_REFS:
        raise SettingsError(f"{where}.valueFrom: exactly one of {', '.join(sorted(_KEY_REFS))}")
    [(kind, ref)] = source.items()
    ref = _mapping(ref, f"{where}.valueFrom.{kind}")
    _known_keys(ref, f"{where}.valueFrom.{kind}", {"name", "key", "optional"})
    out = {"name": _dns_name(ref.get("name"), f"{where}.valueFrom.{kind}.name"),
           "key": _string(ref.get("key"), f"{where}.valueFrom.{kind}.key")}  # fmt: skip
    if "optional" in ref:
        out["optional"] = _bool(ref["optional"], f"{where}.valueFrom.{kind}.optional")
    return {"name": name, "valueFrom": {kind: out}}


def _env_from(raw: Any, where: str) -> dict[str, Any]:
    entry = _mapping(raw, where)
    _known_keys(entry, where, {"prefix", *_SOURCE_REFS})
    kinds = [k for k in entry if k in _SOURCE_REFS]
    if len(kinds) != 1:
        raise SettingsError(f"{where}: exactly one of {', '.join(sorted(_SOURCE_REFS))}")
    ref = _mapping(entry[kinds[0]], f"{where}.{kinds[0]}")
    _known_keys(ref, f"{where}.{kinds[0]}", {"name", "optional"})
    out: dict[str, Any] = {kinds[0]: {"name": _dns_name(ref.get("name"), f"{where}.{kinds[0]}.name")}}
    if "optional" in ref:
        out[kinds[0]]["optional"] = _bool(ref["optional"], f"{where}.{kinds[0]}.optional")
    if "prefix" in entry:
        out["prefix"] = _string(entry["prefix"], f"{where}.prefix")
    return out


def _placement(worker: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if worker.get("serviceAccountName"):
        out["service_account_name"] = _dns_name(worker["serviceAccountName"], "worker.serviceAccountName")
    if worker.get("priorityClassName"):
        out["priority_class_name"] = _dns_name(worker["priorityClassName"], "worker.priorityClassName")
    out["node_selector"] = _string_map(worker.get("nodeSelector", {}), "worker.nodeSelector")
    tolerations = []
    for index, raw in enumerate(_list(worker.get("tolerations", []), "worker.tolerations")):
        toleration = _mapping(raw, f"worker.tolerations[{index}]")
        _known_keys(toleration, f"worker.tolerations[{index}]", _TOLERATION_KEYS)
        tolerations.append(dict(toleration))
    out["tolerations"] = tuple(tolerations)
    out["affinity"] = dict(_mapping(worker.get("affinity", {}), "worker.affinity"))
    volumes, names = [], set()
    for index, raw in enumerate(_list(worker.get("volumes", []), "worker.volumes")):
        where = f"worker.volumes[{index}]"
        volume = _mapping(raw, where)
        name = _dns_name(volume.get("name"), f"{where}.name")
        sources = set(volume) - {"name"}
        if len(sources) != 1 or not sources <= _VOLUME_SOURCES:
            got = ", ".join(sorted(sources)) or "none"
            raise SettingsError(f"{where}: exactly one source of {', '.join(sorted(_VOLUME_SOURCES))} (got {got})")
        if name == "tmp" or name in names:
            raise SettingsError(f"{where}.name: {name!r} is taken (the scheduler mounts tmp itself)")
        names.add(name)
        volumes.append(dict(volume))
    out["volumes"] = tuple(volumes)
    mounts = []
    for index, raw in enumerate(_list(worker.get("volumeMounts", []), "worker.volumeMounts")):
        where = f"worker.volumeMounts[{index}]"
        mount = _mapping(raw, where)
        _known_keys(mount, where, {"name", "mountPath", "readOnly", "subPath"})
        if mount.get("name") not in names:
            raise SettingsError(f"{where}.name: {mount.get('name')!r} is not one of worker.volumes")
        path = _string(mount.get("mountPath"), f"{where}.mountPath")
        if not path.startswith("/") or path.rstrip("/") == "/tmp":  # noqa: S108 - the scheduler's own emptyDir
            raise SettingsError(f"{where}.mountPath: {path!r} must be an absolute path other than /tmp")
        mounts.append(dict(mount))
    out["volume_mounts"] = tuple(mounts)
    return out


def _dns_name(value: Any, where: str) -> str:
    name = _string(value, where)
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name) or len(name) > 253:
        raise SettingsError(f"{where}: {name!r} is not a Kubernetes object name")
    return name


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise SettingsError(f"{where}: expected true or false, got {value!r}")
    return value


def _job_name_prefix(value: Any) -> str:
    prefix = _string(value, "worker.jobNamePrefix")
    if not DNS_LABEL.fullmatch(prefix) or len(prefix) > 40:
        raise SettingsError(f"worker.jobNamePrefix: {prefix!r} is not a DNS label of at most 40 characters")
    return prefix


def _known_keys(mapping: Mapping[str, Any], where: str, known: set[str]) -> None:
    unknown = sorted(str(key) for key in set(mapping) - known)
    if unknown:
        raise SettingsError(f"{where}: unknown key {unknown[0]}")


def _image(value: Any, where: str) -> str:
    image = _string(value, where)
    if not IMAGE.fullmatch(image) or len(image) > 1024:
        raise SettingsError(f"{where}: {image!r} is not an image reference")
    return image


def _secret_names(value: Any, where: str) -> tuple[str, ...]:
    names = _strings(value, where)
    for name in names:
        if not DNS_SUBDOMAIN.fullmatch(name) or len(name) > 253:
            raise SettingsError(f"{where}: {name!r} is not a Secret name")
    return names


def _labels(value: Any, where: str) -> dict[str, str]:
    labels = _string_map(value, where)
    for key, label in labels.items():
        prefix, _, name = key.rpartition("/")
        if prefix and (not DNS_SUBDOMAIN.fullmatch(prefix) or len(prefix) > 253):
            raise SettingsError(f"{where}: {key!r} is not a label key (bad prefix)")
        if not LABEL_NAME.fullmatch(name) or len(name) > 63:
            raise SettingsError(f"{where}: {key!r} is not a label key")
        if not LABEL_VALUE.fullmatch(label) or len(label) > 63:
            raise SettingsError(f"{where}.{key}: {label!r} is not a label value")
    return labels


def _resources(value: Any, where: str) -> dict[str, dict[str, str]]:
    """requests and limits, each a map of resource name to quantity, with requests <= limits.

    Quantities come back as strings: the Kubernetes client refuses a bare number
    (`cpu: 2`) when it serializes the Job.
    """
    resources = _mapping(value, where)
    _known_keys(resources, where, {"requests", "limits"})
    parsed: dict[str, dict[str, Decimal]] = {}
    checked: dict[str, dict[str, str]] = {}
    for part in ("requests", "limits"):
        if part not in resources:
            continue
        quantities = _mapping(resources[part], f"{where}.{part}")
        parsed[part], checked[part] = {}, {}
        for name, quantity in quantities.items():
            at = f"{where}.{part}.{name}"
            if not isinstance(name, str) or not _resource_name(name):
                raise SettingsError(f"{where}.{part}: {name!r} is not a resource name (cpu, memory, ...)")
            amount = _quantity(quantity, at)
            if "/" in name and amount != amount.to_integral_value():
                raise SettingsError(f"{at}: an extended resource takes a whole number, not {quantity!r}")
            parsed[part][name], checked[part][name] = amount, str(quantity)
    for name, request in parsed.get("requests", {}).items():
        limit = parsed.get("limits", {}).get(name)
        if limit is not None and request > limit:
            raise SettingsError(f"{where}.requests.{name}: {checked['requests'][name]!r} is above the limit")
        if limit is not None and "/" in name and request != limit:
            raise SettingsError(f"{where}.requests.{name}: an extended resource's request must equal its limit")
    return checked


def _resource_name(name: str) -> bool:
    if name in STANDARD_RESOURCES:
        return True
    if name.startswith("hugepages-"):
        return QUANTITY.fullmatch(name.removeprefix("hugepages-")) is not None
    prefix, _, rest = name.partition("/")
    return bool(
        rest
        and DNS_SUBDOMAIN.fullmatch(prefix)
        and len(prefix) <= 253
        and LABEL_NAME.fullmatch(rest)
        and len(rest) <= 63
        and not prefix.endswith("kubernetes.io")
    )


def _quantity(value: Any, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise SettingsError(f"{where}: expected a quantity such as 100m, 0.5 or 128Mi")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise SettingsError(f"{where}: {value!r} is not a quantity of at least 0")
        return Decimal(str(value))
    match = QUANTITY.fullmatch(value)
    if match is None:
        raise SettingsError(f"{where}: {value!r} is not a quantity such as 100m, 0.5 or 128Mi")
    number, suffix = Decimal(match["number"]), match["suffix"] or ""
    if suffix[:1] in ("e", "E") and len(suffix) > 1:
        return number.scaleb(int(suffix[1:]))
    return number * _SCALE[suffix]


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
    if value > INT32_MAX:
        raise SettingsError(f"{where}: expected an integer of at most {INT32_MAX}")
    return value
