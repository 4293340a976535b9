"""Worker Jobs as plain manifests: names, labels, guardrails, and what counts as active.

Nothing here talks to the API, so --dry-run prints exactly what a real tick
would submit.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# Shared with the control plane, which reports the same pauses (GET /v1/autonomy).
from leviathan_config.worker_jobs import SLOT_ANNOTATION, TASK_LABEL
from leviathan_scheduler.settings import Task, WorkerSettings

CONFIG_ANNOTATION = "leviathan.io/config-sha256"
MAX_NAME = 63  # Job names become a pod label value, so 63 characters at most.

# CronJob-made Job names end in the scheduled time, in minutes since the epoch.
# \Z, not $: `$` also matches before a trailing newline. [0-9], not \d: no other scripts' digits.
_CRONJOB_SUFFIX = re.compile(r"-([0-9]{7,10})\Z")


def tick_slot(scheduler_job_name: str | None, now: float | None = None) -> int:
    """The tick's scheduled minute: from its CronJob Job name, else the current minute.

    Naming worker Jobs after it makes a retried or overlapping tick for the
    same slot ask for the same names, which the API refuses to create twice.
    """
    current_minute = int((time.time() if now is None else now) // 60)
    match = _CRONJOB_SUFFIX.search(scheduler_job_name or "")
    if match:
        minute = int(match.group(1))
        # Only a plausible schedule time; a manual job named e.g. "run-0001234" is not one.
        if current_minute - 60 * 24 * 7 <= minute <= current_minute + 60:
            return minute
    return current_minute


def job_name(prefix: str, task: str, slot: int) -> str:
    name = f"{prefix}-{task}-{slot}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    head = f"{prefix}-{task}"[: MAX_NAME - len(digest) - len(str(slot)) - 2].rstrip("-")
    return f"{head}-{digest}-{slot}"


def job_labels(worker: WorkerSettings, task: Task) -> dict[str, str]:
    return {**worker.labels, **worker.selector, TASK_LABEL: task.name}


def build_job(
    task: Task,
    worker: WorkerSettings,
    namespace: str,
    slot: int,
    config_sha256: str,
    owner: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    labels = job_labels(worker, task)
    container: dict[str, Any] = {"name": "worker", "image": task.image}
    if task.command:
        container["command"] = list(task.command)
    if task.args:
        container["args"] = list(task.args)
    if task.env:
        container["env"] = [dict(entry) for entry in task.env]
    if task.env_from:
        container["envFrom"] = [dict(entry) for entry in task.env_from]
    container["resources"] = dict(task.resources if task.resources is not None else worker.resources)
    container["securityContext"] = {
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    # A writable /tmp, so ordinary images work on a read-only root filesystem.
    container["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]  # noqa: S108 - an emptyDir
    container["volumeMounts"] += [dict(mount) for mount in worker.volume_mounts]
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": worker.run_as_user,
            "runAsGroup": worker.run_as_group,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "256Mi"}}, *(dict(v) for v in worker.volumes)],
    }
    # Placement (issue 22). A named ServiceAccount keeps automount off: a worker that needs the API
    # mounts a projected serviceAccountToken volume, so the chart's default stays tokenless.
    if worker.service_account_name:
        pod_spec["serviceAccountName"] = worker.service_account_name
    if worker.priority_class_name:
        pod_spec["priorityClassName"] = worker.priority_class_name
    if worker.node_selector:
        pod_spec["nodeSelector"] = dict(worker.node_selector)
    if worker.tolerations:
        pod_spec["tolerations"] = [dict(t) for t in worker.tolerations]
    if worker.affinity:
        pod_spec["affinity"] = dict(worker.affinity)
    if worker.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": name} for name in worker.image_pull_secrets]
    metadata: dict[str, Any] = {
        "name": job_name(worker.job_name_prefix, task.name, slot),
        "namespace": namespace,
        "labels": labels,
        "annotations": {
            SLOT_ANNOTATION: datetime.fromtimestamp(slot * 60, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            CONFIG_ANNOTATION: config_sha256,
        },
    }
    if owner is not None:
        metadata["ownerReferences"] = [dict(owner)]
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": {
            "backoffLimit": worker.backoff_limit,
            "activeDeadlineSeconds": task.active_deadline_seconds or worker.active_deadline_seconds,
            "ttlSecondsAfterFinished": worker.ttl_seconds_after_finished,
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
        },
    }


def cronjob_owner(tick_job_owners: list[dict[str, str]] | None) -> dict[str, Any] | None:
    """An owner reference to the CronJob that started this tick, from its own Job's owner references
    (JobTally.tick_job_owners: kind, name and uid of each, or None when the list had no such Job).

    Not a controller reference: the CronJob controller must not mistake worker
    Jobs for its own runs (they would count against concurrencyPolicy and the
    history limits). The garbage collector honours any owner reference, so
    deleting the CronJob (e.g. `helm uninstall`) deletes the workers too.
    """
    for reference in tick_job_owners or []:
        if reference.get("kind") == "CronJob" and reference.get("uid") and reference.get("name"):
            return {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": reference["name"],
                "uid": reference["uid"],
                "controller": False,
                "blockOwnerDeletion": False,
            }
    return None
