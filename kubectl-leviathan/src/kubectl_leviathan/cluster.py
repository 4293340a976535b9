"""One cluster: the switch, the stop and the worker Jobs through the API, and the API server's proof.

Every call carries a timeout and none is retried here (the fleet runner retries whole commands);
every failure becomes a `ClusterError` whose message is one line that names the cause.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import urllib3
from kubernetes import client, config

from kubectl_leviathan import switch
from kubectl_leviathan.names import CHART_LABEL, SWITCHED_BY, Names

# The chart's worker admission policy says this in every refusal, and its binding's name ends in the
# second (named in the refusal when the ConfigMap is missing: 422). chart/templates/worker-admission-policy.yaml.
POLICY_DENIAL = "are refused: autonomy is not enabled in ConfigMap"
POLICY_BINDING = "-worker-switch."
RECORD_KEY = "prior.json"
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


def dry(dry_run: bool) -> list[tuple[str, str]]:
    """dryRun=All: admission runs (every policy), nothing is stored."""
    return [("dryRun", "All")] if dry_run else []


class ClusterError(Exception):
    """One line naming the cause. `unreachable` ones are worth another try."""

    def __init__(self, message: str, unreachable: bool = False) -> None:
        super().__init__(message)
        self.unreachable = unreachable


class Refused(ClusterError):
    """The API server refused a change (403 from RBAC or an admission policy)."""


@dataclass(frozen=True)
class Target:
    context: str | None = None
    kubeconfig: str | None = None
    as_user: str | None = None
    as_groups: tuple[str, ...] = ()
    release: str = "leviathan"
    namespace: str = "leviathan"
    env: str | None = None
    timeout: float = 10.0
    server: str | None = None  # filled in once the kubeconfig is read, for messages

    @property
    def label(self) -> str:
        return self.context or "(current context)"


@dataclass(frozen=True)
class State:
    text: str | None
    resource_version: str
    suspended: bool | None
    switched_by: str | None
    chart: str | None

    @property
    def switch(self) -> str:
        return switch.state_of(self.text)

    @property
    def reason(self) -> str | None:
        return switch.reason_of(self.text)

    def summary(self) -> str:
        stop = {True: ", stopped", False: "", None: ", no CronJob"}[self.suspended]
        return f"{self.switch}{stop}"


@dataclass(frozen=True)
class Proof:
    refused: bool
    seconds: float
    message: str

    def line(self) -> str:
        if self.refused:
            return f"✓ the API server refuses new worker Jobs (after {self.seconds * 1000:.0f} ms)"
        return f"✗ the API server does NOT refuse new worker Jobs: {self.message}"


@dataclass
class Record:
    """The state before a fleet brake, kept in the cluster until `enable --fleet-restore`."""

    switch_line: str
    reason_line: str | None
    suspended: bool | None
    switched_by: str | None
    reason: str | None
    state: str
    braked_at: str = field(default_factory=lambda: datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))

    def to_json(self) -> str:
        return json.dumps(self.__dict__, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Record:
        data = json.loads(text)
        return cls(**{key: data.get(key) for key in cls.__dataclass_fields__})


def answered(status: int, body: bytes) -> ClusterError:
    """An API server's refusal as one line, with the message of its Status object."""
    try:
        message = json.loads(body or b"{}").get("message") or ""
    except (ValueError, AttributeError):
        message = body[:200].decode("utf-8", "replace")
    if status == 401:
        return ClusterError("not authenticated (401): the kubeconfig's credentials for this context are refused")
    if status == 403:
        return Refused(f"forbidden: {message}")
    if status in (429, 500, 502, 503, 504):
        return ClusterError(f"the API server answered {status}: {message}", unreachable=True)
    return ClusterError(f"the API server answered {status}: {message}")


def describe(exc: BaseException, target: Target) -> ClusterError:
    """Any failure of a call as one line."""
    if isinstance(exc, ClusterError):
        return exc
    server = target.server or "the API server"
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError | TimeoutError):
        return ClusterError(f"cannot reach the API server {server}: no answer within {target.timeout:.1f} s", True)
    if isinstance(exc, urllib3.exceptions.HTTPError | OSError):
        cause = exc
        while getattr(cause, "reason", None) is not None and cause is not cause.reason:
            cause = cause.reason
        text = str(cause).rsplit("] ", 1)[-1] if "] " in str(cause) else str(cause).rsplit(": ", 1)[-1]
        return ClusterError(f"cannot reach the API server {server}: {text}", unreachable=True)
    return ClusterError(f"{type(exc).__name__}: {exc}")


def api_client(target: Target) -> client.ApiClient:
    configuration = client.Configuration()
    try:
        config.load_kube_config(
            config_file=target.kubeconfig, context=target.context, client_configuration=configuration
        )
    except config.ConfigException as exc:
        raise ClusterError(f"cannot use this context: {exc}") from None
    except OSError as exc:
        raise ClusterError(f"cannot read the kubeconfig: {exc}") from None
    configuration.retries = False
    api = client.ApiClient(configuration)
    api.user_agent = "kubectl-leviathan/0.1.0"
    if target.as_user:
        api.set_default_header("Impersonate-User", target.as_user)
    for group in target.as_groups:  # one header per group is what the API server reads; the client keeps one
        api.set_default_header("Impersonate-Group", group)
    return api


class Cluster:
    def __init__(self, target: Target) -> None:
        self.api = api_client(target)
        self.target = replace(target, server=self.api.configuration.host.removeprefix("https://"))
        self.names = Names(target.release, target.namespace, target.env or "dev")

    # ---- calls ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str | None = None,
        query: list[tuple[str, str]] | None = None,
        accept: str = "application/json",
    ) -> dict[str, Any]:
        """One API call by path (the generated API classes take seconds to import); the answer's JSON."""
        headers = {"Accept": accept}
        if content_type:
            headers["Content-Type"] = content_type
        timeout = self.target.timeout
        try:
            serialized = self.api.param_serialize(
                method=method,
                resource_path=path,
                query_params=query or [],
                header_params=headers,
                body=body,
                auth_settings=["BearerToken"],
            )
            response = self.api.call_api(*serialized, _request_timeout=(timeout, timeout))
            response.read()
        except Exception as exc:  # every failure becomes one line; nothing escapes as a traceback
            raise describe(exc, self.target) from None
        if not 200 <= response.status < 300:
            raise answered(response.status, response.data)
        return json.loads(response.data or b"{}")

    def path(self, kind: str, name: str = "") -> str:
        group = {"configmaps": "/api/v1", "pods": "/api/v1"}.get(kind, "/apis/batch/v1")
        return f"{group}/namespaces/{self.names.namespace}/{kind}" + (f"/{name}" if name else "")

    def table(self, path: str) -> str:
        """The API server's own table for `kubectl get` (server-side printing), as kubectl lays it out."""
        data = self.request("GET", path, accept=TABLE)
        columns = [i for i, column in enumerate(data.get("columnDefinitions", [])) if column.get("priority", 0) == 0]
        header = [data["columnDefinitions"][i]["name"].upper() for i in columns]
        rows = [[str(row["cells"][i]) for i in columns] for row in data.get("rows", [])]
        if not rows:
            return f"No resources found in {self.names.namespace} namespace."
        widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
        return "\n".join(
            "   ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
            for line in [header, *rows]
        )

    # ---- the switch -------------------------------------------------------------------------

    def configmap(self) -> dict[str, Any]:
        try:
            return self.request("GET", self.path("configmaps", self.names.configmap))
        except ClusterError as exc:
            if "answered 404" in str(exc):
                raise ClusterError(
                    f"no ConfigMap {self.names.configmap} in namespace {self.names.namespace}: "
                    f"release {self.names.release} of the leviathan chart is not installed there"
                ) from None
            raise

    def discover(self, configmap: dict[str, Any]) -> None:
        """The environment from the ConfigMap's one `<env>.yaml` key, unless --env names it."""
        if self.target.env:
            return
        keys = sorted(key for key in configmap.get("data") or {} if key.endswith(".yaml"))
        if len(keys) != 1:
            raise ClusterError(
                f"ConfigMap {self.names.configmap} holds {len(keys)} config files ({', '.join(keys) or 'none'}): "
                "pass --env"
            )
        self.names = replace(self.names, env=keys[0].removesuffix(".yaml"))

    def state(self) -> State:
        configmap = self.configmap()
        self.discover(configmap)
        metadata = configmap.get("metadata", {})
        text = (configmap.get("data") or {}).get(self.names.config_key)
        try:
            cronjob = self.request("GET", self.path("cronjobs", self.names.cronjob))
            suspended: bool | None = bool(cronjob.get("spec", {}).get("suspend"))
        except ClusterError as exc:
            if "answered 404" not in str(exc):
                raise
            suspended = None
        self.last_configmap = configmap
        return State(
            text=text,
            resource_version=metadata.get("resourceVersion", ""),
            suspended=suspended,
            switched_by=(metadata.get("annotations") or {}).get(SWITCHED_BY),
            chart=(metadata.get("labels") or {}).get(CHART_LABEL),
        )

    def write_switch(self, state: State, switch_line: str, reason_line: str | None, dry_run: bool = False) -> str:
        """A JSON merge patch of the one key, guarded by the resourceVersion read; the new resourceVersion."""
        if state.text is None:
            raise ClusterError(f"ConfigMap {self.names.configmap} has no key {self.names.config_key}")
        try:
            text = switch.with_lines(state.text, switch_line, reason_line)
        except ValueError as exc:
            raise ClusterError(f"ConfigMap {self.names.configmap}, key {self.names.config_key}: {exc}") from None
        body = {"metadata": {"resourceVersion": state.resource_version}, "data": {self.names.config_key: text}}
        answer = self.request("PATCH", self.path("configmaps", self.names.configmap), body, MERGE, dry(dry_run))
        return answer.get("metadata", {}).get("resourceVersion", "")

    def set_switch(self, enabled: bool, reason: str, first: State | None = None) -> tuple[State, float]:
        """Turn the switch; retried on a conflict (someone else wrote in between). (prior state, when done)."""
        for attempt in range(5):
            prior = first if first is not None and attempt == 0 else self.state()
            try:
                self.write_switch(prior, switch.switch_line(enabled), switch.reason_line(reason))
                return prior, time.monotonic()
            except ClusterError as exc:
                if "answered 409" not in str(exc):
                    raise
        raise ClusterError(f"ConfigMap {self.names.configmap} kept changing under five attempts to write it")

    def set_suspend(self, suspend: bool, dry_run: bool = False) -> float:
        """The runbook's patch, `{"spec":{"suspend":...}}` (a strategic merge patch, as kubectl sends it)."""
        try:
            self.request(
                "PATCH",
                self.path("cronjobs", self.names.cronjob),
                {"spec": {"suspend": suspend}},
                STRATEGIC,
                dry(dry_run),
            )
        except ClusterError as exc:
            if "answered 404" in str(exc):
                raise ClusterError(f"no CronJob {self.names.cronjob} in namespace {self.names.namespace}") from None
            raise
        return time.monotonic()

    # ---- the proof --------------------------------------------------------------------------

    def worker_job(self) -> dict[str, Any]:
        """The smallest Job the worker admission policy matches (label app=<prefix>-worker)."""
        container = {
            "name": "proof",
            "image": "busybox",
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "runAsNonRoot": True,
                "runAsUser": 65534,
                "capabilities": {"drop": ["ALL"]},
                "seccompProfile": {"type": "RuntimeDefault"},
            },
        }
        return {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "generateName": f"{self.names.worker_app}-brake-proof-",
                "labels": {"app": self.names.worker_app},
            },
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}},
        }

    def worker_refused(self) -> tuple[bool, str]:
        """One server-side dry-run create (dryRun=All: admission runs, nothing is stored)."""
        try:
            self.request("POST", self.path("jobs"), self.worker_job(), query=dry(True))
        except ClusterError as exc:
            text = str(exc)
            if ("answered 422" in text or isinstance(exc, Refused)) and (
                POLICY_DENIAL in text or POLICY_BINDING in text
            ):
                return True, text
            raise ClusterError(f"cannot prove the brake: the dry-run create of a worker Job failed: {text}") from None
        return False, "a dry-run create of a worker Job was admitted"

    def prove(self, since: float, switch_off: bool, within: float = 5.0) -> Proof:
        """Ask until the API server refuses a worker Job; how long after `since` (the brake's return) it did.

        With the switch on (a stop or a worker halt alone), the policy admits by design: one ask, and
        the answer says so. With it off, the policy's ConfigMap informer may lag a few milliseconds.
        """
        while True:
            refused, message = self.worker_refused()
            now = time.monotonic()
            if refused:
                return Proof(True, now - since, message)
            if not switch_off:
                return Proof(
                    False,
                    now - since,
                    f"autonomy is on in ConfigMap {self.names.configmap}: "
                    f"pull the switch too (kubectl leviathan disable --reason ...)",
                )
            if now - since > within:
                return Proof(
                    False,
                    now - since,
                    f"still admitted {within:.0f} s after the switch went off; is the "
                    "worker admission policy installed (Kubernetes 1.30+, admissionPolicy.enabled)?",
                )
            time.sleep(0.005)

    # ---- worker Jobs ------------------------------------------------------------------------

    def worker_jobs(self) -> list[dict[str, Any]]:
        answer = self.request("GET", self.path("jobs"), query=[("labelSelector", f"app={self.names.worker_app}")])
        return answer.get("items", [])

    def suspend_workers(self, suspend: bool) -> int:
        """Patch every worker Job, as the runbook's `xargs kubectl patch` does (finished ones too); how many."""
        jobs = self.worker_jobs()
        for job in jobs:
            self.request("PATCH", self.path("jobs", job["metadata"]["name"]), {"spec": {"suspend": suspend}}, MERGE)
        return len(jobs)

    def log(self, pod: str, tail: int) -> str:
        timeout = self.target.timeout
        path = f"{self.path('pods', pod)}/log"
        try:
            serialized = self.api.param_serialize(
                method="GET",
                resource_path=path,
                query_params=[("tailLines", str(tail))],
                header_params={"Accept": "*/*"},
                auth_settings=["BearerToken"],
            )
            response = self.api.call_api(*serialized, _request_timeout=(timeout, timeout))
            response.read()
        except Exception as exc:  # one line, as every other call
            raise describe(exc, self.target) from None
        if not 200 <= response.status < 300:
            raise answered(response.status, response.data)
        return response.data.decode("utf-8", "replace")

    def scheduler_log_lines(self, tail: int = 50) -> list[str]:
        pods = self.request("GET", self.path("pods"), query=[("labelSelector", f"app={self.names.cronjob}")])
        lines: list[str] = []
        for pod in pods.get("items", []):
            try:
                text = self.log(pod["metadata"]["name"], tail)
            except ClusterError:  # a pod without logs (pending, gone) has no pause lines, as with kubectl logs -l
                continue
            lines += text.splitlines()
        return lines

    # ---- the fleet record -------------------------------------------------------------------
    # A ConfigMap <prefix>-fleet-brake beside the autonomy ConfigMap, with the chart's labels and that
    # ConfigMap as its owner: `helm uninstall` takes it away with the release (garbage collection).
    # Created by the first fleet brake, deleted by the restore; a create is atomic, so a second brake
    # (or two at once) finds the first one's record and keeps it.

    def read_record(self) -> Record | None:
        try:
            data = self.request("GET", self.path("configmaps", self.names.fleet_record))
        except ClusterError as exc:
            if "answered 404" in str(exc):
                return None
            raise
        text = (data.get("data") or {}).get(RECORD_KEY)
        if not text:
            raise ClusterError(f"ConfigMap {self.names.fleet_record} has no {RECORD_KEY}: not a fleet brake record")
        try:
            return Record.from_json(text)
        except (ValueError, TypeError) as exc:
            raise ClusterError(f"ConfigMap {self.names.fleet_record}, {RECORD_KEY}: unreadable ({exc})") from None

    def keep_record(self, prior: State, owner: dict[str, Any]) -> tuple[Record, bool]:
        """Write the prior state unless an earlier fleet brake's record is there: (the record kept, new?)."""
        # As the reader reads it: an unusable prior file is recorded as off (what the scheduler did with it).
        reason = switch.reason_of(prior.text)
        record = Record(
            switch_line=switch.switch_line(switch.state_of(prior.text) == "on"),
            reason_line=None if reason is None else f'{switch.REASON} "{reason}"',
            suspended=prior.suspended,
            switched_by=prior.switched_by,
            reason=prior.reason,
            state=prior.summary(),
        )
        metadata = owner.get("metadata", {})
        labels = {
            key: value for key, value in (metadata.get("labels") or {}).items() if key.startswith("app.kubernetes.io/")
        }
        labels.update(
            {"app.kubernetes.io/component": "fleet-brake", "app.kubernetes.io/managed-by": "kubectl-leviathan"}
        )
        body = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": self.names.fleet_record,
                "labels": labels,
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": metadata.get("name"), "uid": metadata.get("uid")}
                ],
                "annotations": {"leviathan.io/restore": "kubectl leviathan enable --fleet-restore --reason ..."},
            },
            "data": {RECORD_KEY: record.to_json()},
        }
        try:
            self.request("POST", self.path("configmaps"), body)
            return record, True
        except ClusterError as exc:
            if "answered 409" not in str(exc):
                raise
        kept = self.read_record()
        if kept is None:  # restored and deleted between our create and read: ours is the prior state now
            return self.keep_record(prior, owner)
        return kept, False

    def clear_record(self) -> None:
        try:
            self.request("DELETE", self.path("configmaps", self.names.fleet_record))
        except ClusterError as exc:
            if "answered 404" not in str(exc):
                raise
