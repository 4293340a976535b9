"""Thousands of finished worker-shaped Jobs on a real API server, fast (issue 20).

For `make bench-cluster` and the 10,000-Job e2e smoke test. Each Job is what the
scheduler would submit (leviathan_scheduler.jobs.build_job on the chart's dev values),
with `spec.managedBy` set so the Job controller leaves it alone (no pods), then marked
Complete (or Failed) through the status subresource the way a controller would: so the
API lists it as large as a real finished worker Job, managedFields included.

Creates and status patches go out concurrently over aiohttp (a dependency of the
kubernetes client), with the kubeconfig's credentials: a few hundred a second on the
local control plane, where kubectl would take minutes.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import subprocess
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import yaml
from kubernetes import client, config

from leviathan_config import parse_settings_file
from leviathan_scheduler.jobs import build_job
from leviathan_scheduler.settings import SchedulerSettings, parse_settings
from support.paths import CHART, VALUES_DIR, helm_binary

MANAGED_BY = "leviathan.io/bench"
CONCURRENCY = 24


def dev_settings_text(namespace: str, release: str = "leviathan") -> str:
    """The chart's rendered scheduler settings (values/dev.yaml), as the settings ConfigMap holds them."""
    command = [helm_binary(), "template", release, str(CHART), "-n", namespace, "-f", str(VALUES_DIR / "dev.yaml")]
    command += ["-s", "templates/configmap.yaml"]
    [settings] = [
        d["data"]["scheduler.yaml"]
        for d in yaml.safe_load_all(subprocess.check_output(command, text=True))
        if d and "scheduler.yaml" in d.get("data", {})
    ]
    return settings


def dev_settings(namespace: str) -> SchedulerSettings:
    settings = parse_settings_file(dev_settings_text(namespace).encode(), "scheduler.yaml")
    assert settings.document is not None, settings.problem
    return parse_settings(settings.document)


def finished_status(condition: str) -> dict[str, Any]:
    """What the Job controller writes for a finished Job; the API validates the pairs of conditions.

    Finished now, whatever the Job's scheduled minute: the TTL controller deletes a Job
    ttlSecondsAfterFinished after its completion.
    """
    at = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if condition == "Complete":
        conditions = [("SuccessCriteriaMet", "CompletionsReached"), ("Complete", "CompletionsReached")]
        status: dict[str, Any] = {"startTime": at, "completionTime": at, "succeeded": 1}
    else:
        conditions = [("FailureTarget", "BackoffLimitExceeded"), ("Failed", "BackoffLimitExceeded")]
        status = {"startTime": at, "failed": 1}
    status["conditions"] = [
        {"type": kind, "status": "True", "reason": reason, "message": "finished", "lastTransitionTime": at}
        for kind, reason in conditions
    ]
    return status


@dataclass(frozen=True)
class Planned:
    manifest: dict[str, Any]
    status: dict[str, Any]


def worker_jobs(
    settings: SchedulerSettings,
    namespace: str,
    count: int,
    newest_minute: int,
    failed: dict[str, int] | None = None,
    annotation_bytes: int = 0,
    first: int = 0,
) -> Iterator[Planned]:
    """`count` finished worker Jobs, the tasks in turn, five minutes apart going back from `newest_minute`.

    `failed` = {task: n}: that task's n newest Jobs failed (a pause), the rest Complete.
    `first` skips the first Jobs of the sequence (to top a namespace up to a larger count).
    """
    assert settings.worker is not None
    tasks = settings.tasks
    seen: dict[str, int] = {}
    for index in range(count):
        task = tasks[index % len(tasks)]
        nth = seen.get(task.name, 0)
        seen[task.name] = nth + 1
        if index < first:
            continue
        minute = newest_minute - 5 * (index // len(tasks))
        manifest = build_job(task, settings.worker, namespace, minute, "0" * 64)
        manifest["spec"]["managedBy"] = MANAGED_BY
        if annotation_bytes:
            manifest["metadata"]["annotations"]["example.com/bulk"] = "x" * annotation_bytes
        condition = "Failed" if nth < (failed or {}).get(task.name, 0) else "Complete"
        yield Planned(manifest, finished_status(condition))


def _session_settings() -> tuple[str, ssl.SSLContext, dict[str, str]]:
    configuration = client.Configuration()
    config.load_kube_config(client_configuration=configuration)
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    headers = {"Content-Type": "application/json"}
    token = (configuration.api_key or {}).get("authorization") or (configuration.api_key or {}).get("BearerToken")
    if token:
        headers["Authorization"] = token if token.startswith("Bearer ") else f"Bearer {token}"
    return configuration.host.rstrip("/"), context, headers


def create_finished(namespace: str, planned: Iterable[Planned], concurrency: int = CONCURRENCY) -> float:
    """Create each Job (an existing one is kept) and mark it finished; the seconds it took."""
    host, context, headers = _session_settings()
    started = time.monotonic()
    asyncio.run(_create_all(host, context, headers, namespace, iter(planned), concurrency))
    return time.monotonic() - started


async def _create_all(
    host: str, context: ssl.SSLContext, headers: dict[str, str], namespace: str, planned: Iterator[Planned], n: int
) -> None:
    jobs = f"{host}/apis/batch/v1/namespaces/{namespace}/jobs"
    patch_headers = {**headers, "Content-Type": "application/merge-patch+json"}
    connector = aiohttp.TCPConnector(ssl=context, limit=n)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def send(method: str, url: str, body: dict[str, Any], ok: tuple[int, ...], **kwargs: Any) -> None:
            for attempt in range(8):
                async with session.request(method, url, data=json.dumps(body), **kwargs) as answer:
                    if answer.status in ok:
                        return
                    text = await answer.text()
                if answer.status not in (429, 500, 503, 504) or attempt == 7:
                    raise RuntimeError(f"{method} {url}: {answer.status} {text[:300]}")
                await asyncio.sleep(0.2 * (attempt + 1))

        async def worker() -> None:
            for item in planned:  # one shared iterator: each Job is taken by one worker
                name = item.manifest["metadata"]["name"]
                await send("POST", jobs, item.manifest, (201, 409))
                await send("PATCH", f"{jobs}/{name}/status", {"status": item.status}, (200,), headers=patch_headers)

        await asyncio.gather(*(worker() for _ in range(n)))


def delete_jobs(namespace: str, label_selector: str, patience: float = 900) -> None:
    """Delete the Jobs and wait until none is listed; a deletecollection again while any is left.

    One request deletes 10,000 Jobs in about 18 s here (the API server pages through them), but a
    Job created meanwhile (a scheduler tick, say) outlives it: so the caller stops whatever creates
    them first, and each pass that still lists a Job deletes again. What is left after `patience`
    seconds is named in the error, with its age and finalizers.
    """
    batch = client.BatchV1Api(config.new_client_from_config())
    deadline = time.monotonic() + patience
    while True:
        batch.delete_collection_namespaced_job(
            namespace, label_selector=label_selector, propagation_policy="Background"
        )
        for _ in range(30):
            left = batch.list_namespaced_job(namespace, label_selector=label_selector, limit=5)
            if not left.items:
                return
            if time.monotonic() > deadline:
                count = len(left.items) + (left.metadata.remaining_item_count or 0)
                named = "; ".join(
                    f"{j.metadata.name} (created {j.metadata.creation_timestamp}, finalizers {j.metadata.finalizers})"
                    for j in left.items
                )
                raise RuntimeError(
                    f"{count} Jobs {label_selector} in {namespace} still listed {patience} s on: {named}"
                )
            time.sleep(1)
