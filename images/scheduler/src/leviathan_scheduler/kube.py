"""The scheduler's API calls, with bounded retries: list (page by page) and create Jobs, get its one ConfigMap
and its CronJob.

Plus one call that is never retried: create an Event, which only tells operators.

Imported only once autonomy is known to be on: the disabled path never loads
the Kubernetes client.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from leviathan_config.job_list import CHUNK_BYTES, PAGE_SIZE, ListError, ListRead, read_pages
from leviathan_config.kube_credentials import CredentialsError, kubeconfig_namespace, load_configuration
from leviathan_config.worker_jobs import JobTally
from leviathan_scheduler.exit_codes import (
    EXIT_API_FORBIDDEN,
    EXIT_API_REJECTED,
    EXIT_API_UNAVAILABLE,
)
from leviathan_scheduler.output import say

JOBS = "batch/jobs"
CRONJOBS = "batch/cronjobs"
CONFIGMAPS = "configmaps"
EVENTS = "events"
# The chart's worker admission policy says this in every denial (chart/templates/worker-admission-policy.yaml),
# and its binding's name ends in this (named in the API's refusal when the ConfigMap is missing: 422).
POLICY_DENIAL = "are refused: autonomy is not enabled in ConfigMap"
POLICY_BINDING = "-worker-switch."


class ApiFailure(Exception):
    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.message = message


class AlreadyExists(Exception):
    pass


class NotFound(Exception):
    pass


class EventNotRecorded(Exception):
    """An Event could not be created; the tick goes on."""


class PolicyRefused(Exception):
    """The worker admission policy refused a create: the API server's view of the switch is off."""


def load_client(namespace: str | None) -> tuple[client.ApiClient, str]:
    """API client from KUBECONFIG, or in-cluster config inside a pod; and the namespace."""
    try:
        configuration = load_configuration()
    except CredentialsError as exc:
        raise ApiFailure(EXIT_API_UNAVAILABLE, f"✗ Cannot load Kubernetes credentials: {exc}") from None
    # In a pod the caller has already tried the pod's namespace.
    namespace = namespace or kubeconfig_namespace()
    if not namespace:
        raise ApiFailure(
            EXIT_API_UNAVAILABLE,
            "✗ Cannot tell which namespace to use: pass --namespace or set LEVIATHAN_NAMESPACE",
        )
    # This module retries with backoff and a time budget; urllib3 must not retry on its own (load_configuration).
    return client.ApiClient(configuration), namespace


class JobsApi:
    def __init__(
        self,
        api_client: client.ApiClient,
        namespace: str,
        retry_budget_seconds: float,
        service_account: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._batch = client.BatchV1Api(api_client)
        self._core = client.CoreV1Api(api_client)
        self.namespace = namespace
        # One budget for the whole tick, spent only on failed attempts and the pauses
        # between them: a degraded API cannot hold a tick for (1 + maxJobsPerTick)
        # budgets, and a long healthy tick still gets its retries.
        self._budget = retry_budget_seconds
        self._spent = 0.0
        self._service_account = service_account
        self._sleep = sleep

    def tally_jobs(self, label_selector: str, tally: JobTally) -> ListRead:
        """Every Job the selector matches, page by page, each reduced into `tally` as it streams in.

        The whole list is never held (docs/DECISIONS.md, issue 20). A list that cannot be read to
        its last page (an expired continue token, a broken-off body, an answer that is not a list)
        is an ApiFailure: the tick has not seen every Job, so it must submit nothing.
        """

        def fetch(token: str | None) -> Iterator[bytes]:
            response = self._call(
                "list",
                lambda timeout: self._batch.list_namespaced_job(
                    self.namespace,
                    label_selector=label_selector,
                    limit=PAGE_SIZE,
                    **({"_continue": token} if token else {}),
                    _preload_content=False,
                    _request_timeout=timeout,
                ),
            )
            return _body(response)

        try:
            return read_pages(fetch, tally.add)
        except ListError as exc:
            raise ApiFailure(
                EXIT_API_REJECTED,
                f"✗ Kubernetes API answered list {JOBS} with something that is not a Job list ({exc})",
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ApiFailure(
                EXIT_API_UNAVAILABLE,
                f"✗ Kubernetes API broke off list {JOBS} in namespace {self.namespace} while it was read "
                f"({_describe_connection_error(exc)}): the tick has not seen every Job, so it submits nothing",
            ) from None

    def create_job(self, manifest: dict[str, Any], before_retry: Callable[[], None] | None = None) -> bool:
        """True when created, False when a Job of that name already exists.

        `before_retry` runs before every retry (after a 503 or a timeout), never before the first
        attempt; whatever it raises ends the create there, unretried.
        """
        try:
            self._call(
                "create",
                lambda timeout: self._batch.create_namespaced_job(
                    self.namespace, manifest, _preload_content=False, _request_timeout=timeout
                ),
                before_retry=before_retry,
            )
        except AlreadyExists:
            return False
        return True

    def read_config_map(self, name: str, key: str) -> bytes | None:
        """The bytes of one key of a ConfigMap, b"" when the key is absent; None when the ConfigMap is not found."""
        unusable = f"✗ Kubernetes API answered get ConfigMap {name} with no usable data"
        document = self._get(CONFIGMAPS, unusable, lambda timeout: self._core.read_namespaced_config_map(
            name, self.namespace, _preload_content=False, _request_timeout=timeout))  # fmt: skip
        if document is None:
            return None
        data = document.get("data") or {}
        value = data.get(key, "") if isinstance(data, dict) else None
        if not isinstance(value, str):
            raise ApiFailure(EXIT_API_REJECTED, unusable)
        return value.encode("utf-8", "surrogatepass")

    def cronjob_suspended(self, name: str) -> bool | None:
        """The CronJob's spec.suspend (absent is false); None when the CronJob is not found."""
        unusable = f"✗ Kubernetes API answered get CronJob {name} with no usable spec"
        document = self._get(CRONJOBS, unusable, lambda timeout: self._batch.read_namespaced_cron_job(
            name, self.namespace, _preload_content=False, _request_timeout=timeout))  # fmt: skip
        if document is None:
            return None
        spec = document.get("spec") or {}
        suspend = spec.get("suspend", False) if isinstance(spec, dict) else None
        if not isinstance(suspend, bool):
            raise ApiFailure(EXIT_API_REJECTED, unusable)
        return suspend

    def _get(self, kind: str, unusable: str, read: Callable[[Any], Any]) -> dict[str, Any] | None:
        """One object, decoded; None when it is not found. An answer that is not a JSON object is an
        ApiFailure with the `unusable` line."""
        try:
            response = self._call("get", read, kind)
        except NotFound:
            return None
        try:
            document = json.loads(response.data)
        except (ValueError, AttributeError):
            document = None
        if not isinstance(document, dict):
            raise ApiFailure(EXIT_API_REJECTED, unusable)
        return document

    def create_event(self, event: dict[str, Any]) -> bool:
        """True when created, False when an Event of that name already exists; EventNotRecorded otherwise.

        One attempt, never retried: an Event only tells operators, so it must not cost the tick its retries.
        """
        remaining = max(self._budget - self._spent, 1.0)
        started = time.monotonic()
        try:
            self._core.create_namespaced_event(
                self.namespace, event, _preload_content=False, _request_timeout=(min(5.0, remaining),) * 2
            )
            return True
        except ApiException as exc:
            if exc.status == 409:
                return False
            problem = f"{exc.status} {exc.reason or ''}".strip()
            if exc.status in (401, 403):
                problem += f"; the scheduler's Role must allow create on {EVENTS}"
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            problem = _describe_connection_error(exc)
        self._spent += time.monotonic() - started  # a failed attempt, as in _call
        raise EventNotRecorded(problem)

    def _call(
        self,
        verb: str,
        request: Callable[[tuple[float, float]], Any],
        resource: str = JOBS,
        before_retry: Callable[[], None] | None = None,
    ) -> Any:
        delay = 0.5
        attempts = 0
        while True:
            attempts += 1
            if attempts > 1 and before_retry is not None:
                before_retry()
            remaining = max(self._budget - self._spent, 1.0)
            started = time.monotonic()
            try:
                return request((min(5.0, remaining), min(15.0, remaining)))
            except ApiException as exc:
                problem = self._classify(verb, exc, resource)
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                problem = _describe_connection_error(exc)
            self._spent += time.monotonic() - started
            remaining = self._budget - self._spent
            if remaining <= 0:
                raise ApiFailure(
                    EXIT_API_UNAVAILABLE,
                    f"✗ Kubernetes API unavailable for {verb} {resource} in namespace {self.namespace}: "
                    f"{problem} (gave up after {attempts} attempts in {self._budget:g}s)",
                )
            pause = min(delay, remaining)
            say(f"… {verb} {resource} failed ({problem}); retrying in {pause:.1f}s")
            self._sleep(pause)
            self._spent += pause
            delay = min(delay * 2, 8.0)

    def _classify(self, verb: str, exc: ApiException, resource: str = JOBS) -> str:
        """A retryable problem's description; raises for everything else."""
        status = exc.status or 0
        reason = exc.reason or ""
        if status in (403, 422) and verb == "create" and _refused_by_policy(_status_message(exc)):
            raise PolicyRefused()
        if status == 404 and verb == "get":
            raise NotFound()
        if status in (401, 403):
            account = self._service_account or "<scheduler service account>"
            raise ApiFailure(
                EXIT_API_FORBIDDEN,
                f"✗ Kubernetes API refused {verb} {resource} in namespace {self.namespace} ({status} {reason}): "
                f"the scheduler's Role must allow {verb} on {_rbac_name(resource)}; check with "
                f"kubectl auth can-i {verb} {_rbac_name(resource)} -n {self.namespace} "
                f"--as=system:serviceaccount:{self.namespace}:{account}",
            )
        if status == 409 and verb == "create":
            raise AlreadyExists()
        if status == 410 and verb == "list":
            raise ApiFailure(
                EXIT_API_REJECTED,
                f"✗ Kubernetes API answered list {resource} in namespace {self.namespace} with 410 Gone: the list "
                "changed too much while it was read page by page (its continue token expired); the tick has not "
                "seen every Job, so it submits nothing (the next tick lists again)",
            )
        if status == 429 or status >= 500:
            return f"{status} {reason}".strip()
        raise ApiFailure(
            EXIT_API_REJECTED,
            f"✗ Kubernetes API rejected {verb} {resource} in namespace {self.namespace} "
            f"({status} {reason}): {_status_message(exc)}",
        )


def _body(response: Any) -> Iterator[bytes]:
    """A response's body in chunks; the connection goes back to the pool only when read to the end."""
    finished = False
    try:
        yield from response.stream(CHUNK_BYTES)
        finished = True
    finally:
        if finished:
            response.release_conn()
        else:
            response.close()


def _refused_by_policy(message: str) -> bool:
    return "ValidatingAdmissionPolicy" in message and (POLICY_DENIAL in message or POLICY_BINDING in message)


def _rbac_name(resource: str) -> str:
    """batch/jobs -> jobs.batch, configmaps -> configmaps: as kubectl auth can-i spells them."""
    group, _, plural = resource.rpartition("/")
    return f"{plural}.{group}" if group else plural


def _status_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body).get("message"))[:300]
    except (TypeError, ValueError, AttributeError):
        return "no details"


def _describe_connection_error(exc: Exception) -> str:
    reason = getattr(exc, "reason", None) or exc
    return f"{type(reason).__name__}: {reason}"[:300]
