"""The scheduler's test helpers: the chart-rendered config, the names a tick gives its Jobs, and one tick
as a subprocess with a clean environment (`run_tick`). The fixtures that use them are in
tests/scheduler/conftest.py.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

from support.contract import DISABLED_LINE, EXITING_LINE
from support.emulator import NAMESPACE, KubeEmulator, finished_status, job
from support.helm import render_chart
from support.paths import SCHEDULER

CONFIG_FILE = "dev.yaml"
WORKER_APP = "leviathan-worker"
RELEASE = "leviathan"
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")

# Two tasks, one with its own deadline, as in values/dev.yaml.
TASKS = [
    {
        "name": "inventory",
        "image": "busybox:1.37.0",
        "command": ["sh", "-c", "echo reconciling inventory"],
        "activeDeadlineSeconds": 600,
    },
    {
        "name": "index",
        "image": "busybox:1.37.0",
        "args": ["echo", "refreshing index"],
        "env": [{"name": "INDEX_SCOPE", "value": "dev"}],
    },
]
TASK_NAMES = [task["name"] for task in TASKS]

BASE_VALUES: dict[str, Any] = {
    "environment": "dev",
    "autonomy": {"enabled": True, "reason": ""},
    "scheduler": {"maxConcurrentWorkers": 5, "maxJobsPerTick": 3, "tasks": TASKS},
}

DISABLED_LINES = [DISABLED_LINE, EXITING_LINE]


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge helm values: mappings merge, everything else replaces."""
    merged = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


SETTINGS_FILE = "scheduler.yaml"


@cache
def _rendered_configmaps(values_json: str) -> tuple[str, str]:
    switch, settings = render_chart(json.loads(values_json), show_only=["templates/configmap.yaml"])
    return switch["data"][CONFIG_FILE], settings["data"][SETTINGS_FILE]


def chart_config(overrides: Mapping[str, Any] | None = None) -> str:
    """The body of dev.yaml (the switch file) as the chart's ConfigMap carries it, for BASE_VALUES + overrides."""
    values = merge(BASE_VALUES, overrides or {})
    return _rendered_configmaps(json.dumps(values, sort_keys=True))[0]


def chart_settings(overrides: Mapping[str, Any] | None = None) -> str:
    """The body of scheduler.yaml (tasks, guardrails, worker) as the chart's settings ConfigMap carries it."""
    values = merge(BASE_VALUES, overrides or {})
    return _rendered_configmaps(json.dumps(values, sort_keys=True))[1]


def settings_path_for(config_path: Path) -> Path:
    """Where the tests publish the settings file: beside the switch file's mount, as the chart mounts them."""
    return config_path.parent.parent / "scheduler" / SETTINGS_FILE


def job_name(task: str, slot: int) -> str:
    return f"{WORKER_APP}-{task}-{slot}"


def worker_labels(task: str, instance: str = RELEASE, app: str = WORKER_APP) -> dict[str, str]:
    """The selector labels of a worker Job of this release, plus its task."""
    return {"app": app, "app.kubernetes.io/instance": instance, "leviathan.io/task": task}


LIVE_CONFIGMAP = "leviathan-autonomy-config"


def config_map(body: str, name: str = LIVE_CONFIGMAP) -> dict[str, Any]:
    """The autonomy ConfigMap as the API serves it, with `body` as dev.yaml."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "data": {CONFIG_FILE: body},
    }


CRONJOB = "leviathan-dev-scheduler"
CRONJOB_UID = "3f1c2a9e-5b7d-4c1e-9a2f-6d8e0b4c7a11"


def cronjob(suspend: bool | None = False, name: str = CRONJOB) -> dict[str, Any]:
    """The scheduler's CronJob as the API serves it; suspend=None leaves spec.suspend out (the API's default)."""
    spec: dict[str, Any] = {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {}}}
    if suspend is not None:
        spec["suspend"] = suspend
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": NAMESPACE, "uid": CRONJOB_UID},
        "spec": spec,
    }


def tick_job_name(slot: int) -> str:
    """What the CronJob controller names the tick's Job: `<cronjob>-<scheduled minute>`."""
    return f"{CRONJOB}-{slot}"


def tick_job(slot: int) -> dict[str, Any]:
    """The tick's own Job as the CronJob controller creates it: release labels, owned by the CronJob."""
    labels = {"app.kubernetes.io/name": "leviathan", "app.kubernetes.io/instance": RELEASE}
    manifest = job(tick_job_name(slot), labels={**labels, "app.kubernetes.io/component": "scheduler"})
    manifest["metadata"]["ownerReferences"] = [
        {"apiVersion": "batch/v1", "kind": "CronJob", "name": CRONJOB, "uid": CRONJOB_UID, "controller": True}
    ]
    return manifest


def owner_reference() -> dict[str, Any]:
    """What every worker Job should carry: the CronJob, as a plain (non-controller) owner."""
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "name": CRONJOB,
        "uid": CRONJOB_UID,
        "controller": False,
        "blockOwnerDeletion": False,
    }


def worker_jobs(emulator: KubeEmulator) -> list[dict[str, Any]]:
    """The stored Jobs minus the ticks' own Jobs."""
    return [j for j in emulator.jobs() if not j["metadata"]["name"].startswith(f"{CRONJOB}-")]


def lines(text: str) -> list[str]:
    """The log lines, without the `Config: ...` line every tick starts with (test_config_line.py checks it)."""
    return [line for line in text.splitlines() if not line.startswith("Config: ")]


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout


def current_slot() -> int:
    """A recent scheduled minute, divisible by 12 like most schedules' minutes."""
    minute = int(time.time() // 60)
    return minute - minute % 12


def run_tick(
    *args: str,
    config_path: Path,
    kubeconfig: Path,
    home: Path,
    slot: int,
    env: Mapping[str, str | None] | None = None,
    command: list[str] | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """One scheduler tick as a subprocess with a clean environment.

    `env` entries override the defaults; a None value removes the variable.
    """
    environment: dict[str, str | None] = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LEVIATHAN_AUTONOMY_CONFIG": str(config_path),
        "LEVIATHAN_SCHEDULER_CONFIG": str(settings_path_for(config_path)),
        "KUBECONFIG": str(kubeconfig),
        "LEVIATHAN_SCHEDULER_JOB_NAME": tick_job_name(slot),
    }
    if SERVICE_ACCOUNT_NAMESPACE.exists():  # tests running inside a pod: keep the kubeconfig's namespace
        environment["LEVIATHAN_NAMESPACE"] = NAMESPACE
    environment.update(env or {})
    clean = {key: value for key, value in environment.items() if value is not None}
    assert "KUBERNETES_SERVICE_HOST" not in clean
    return subprocess.run(
        [*(command or [str(SCHEDULER)]), *args],
        env=clean,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )


def failed_job(task: str, slot: int, resumed: bool = False, condition: str = "Failed") -> dict:
    """A finished worker Job of the task at that slot (Failed by default), as the API lists it."""
    manifest = job(job_name(task, slot), worker_labels(task))
    manifest["metadata"]["annotations"] = {
        "leviathan.io/scheduled-time": _stamp(slot),
        **({"leviathan.io/resumed": "true"} if resumed else {}),
    }
    manifest["status"] = finished_status(condition)
    return manifest


def _stamp(slot: int) -> str:
    return datetime.fromtimestamp(slot * 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
