"""What the control plane reads from the Kubernetes API, and the Events it writes there.

Off the request path: one background thread reads, every POLL_SECONDS and on
each observed config change, the autonomy ConfigMap (its identity stamp) and
the release's worker Jobs (the tasks paused after failures, by the shared
rule in leviathan_config.worker_jobs), and records each observed switch change
as an Event on the ConfigMap. Requests only copy the last answer, with its
age. An API failure is a reported problem (a field and a metric), never an
error answer and never a change of the switch.

The calls themselves are made by a process of their own (api_process.py), which
reads the Job list page by page and answers with the paused tasks only: the server
process never loads the kubernetes client nor decodes an API answer, so no list,
however long, holds up /v1/autonomy/status (issue 20). Used only when
LEVIATHAN_CONFIGMAP names the ConfigMap (the chart sets it with
controlPlane.kubernetesApi.enabled), so a local run, the tests and `make bench`
never start it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from leviathan_config import ConfigState, printable
from leviathan_config.worker_jobs import PausedTask, label_selector, pause_rule_from
from leviathan_control_plane.api_process import NAMESPACE_ENV as NAMESPACE_ENV  # app.py reads it from here
from leviathan_control_plane.api_process import STAMP_ANNOTATION, ApiProblem
from leviathan_control_plane.autonomy import Reported
from leviathan_control_plane.metrics import ControlPlaneMetrics

log = logging.getLogger(__name__)

CONFIGMAP_ENV = "LEVIATHAN_CONFIGMAP"
POD_NAME_ENV = "LEVIATHAN_POD_NAME"
# STAMP_ANNOTATION is written by the chart's MutatingAdmissionPolicy (chart/templates/identity-stamp.yaml).
STAMP_NOT_YET = "unknown (no flip seen yet)"
COMPONENT = "leviathan-control-plane"
POLL_SECONDS = 10.0
# The longest the API process may take for one answer (a list of many pages included) before it is
# stopped and started again at the next poll.
ANSWER_SECONDS = 60.0
NO_ACCESS = (
    f"no Kubernetes API access ({CONFIGMAP_ENV} is not set: controlPlane.kubernetesApi.enabled=false, or a local run)"
)


def _utc(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class ClusterFacts:
    """The last answer read through the API, and what is not known and why."""

    switched_by: str | None = None
    switched_by_problem: str | None = NO_ACCESS
    paused: tuple[PausedTask, ...] | None = None
    paused_problem: str | None = NO_ACCESS
    read_at: float | None = None
    problem: str | None = NO_ACCESS

    def fields(self, now: float) -> dict[str, object]:
        """The additions to GET /v1/autonomy."""
        return {
            "switched_by": self.switched_by,
            "switched_by_problem": self.switched_by_problem,
            "paused_tasks": None
            if self.paused is None
            else [
                {"task": p.task, "consecutive_failures": p.consecutive_failures, "last_failed_job": p.last_failed_job}
                for p in self.paused
            ],
            "paused_tasks_problem": self.paused_problem,
            "kubernetes_api_read_at": _utc(self.read_at),
            "kubernetes_api_read_age_seconds": None if self.read_at is None else round(max(0.0, now - self.read_at), 1),
            "kubernetes_api_problem": self.problem,
        }


@dataclass(frozen=True)
class Change:
    """A switch change the control plane observed in the mounted file, to record as an Event."""

    reason: str
    kind: str  # Normal or Warning
    message: str
    config_sha256: str


def change_between(previous: Reported | None, current: Reported) -> Change | None:
    """The Event for a switch change: on/off, config unusable/usable again, or a new source; None otherwise."""
    if previous is None:
        return None  # the first read at start-up is not a change
    was_loaded = previous.config.state is ConfigState.LOADED
    is_loaded = current.config.state is ConfigState.LOADED
    if was_loaded and not is_loaded:
        reason, kind = "AutonomyConfigUnusable", "Warning"
    elif is_loaded and not was_loaded:
        reason, kind = "AutonomyConfigUsable", "Normal"
    elif current.enabled != previous.enabled:
        reason, kind = ("AutonomyEnabled", "Normal") if current.enabled else ("AutonomyDisabled", "Warning")
    elif current.source != previous.source:
        reason, kind = "AutonomySourceChanged", "Warning"
    else:
        return None
    on = {True: "true", False: "false"}
    message = f"autonomy_enabled {on[previous.enabled]} -> {on[current.enabled]} (source: {current.source})"
    if current.config.problem:
        message += f"; problem: {current.config.problem}"
    if current.config.reason:
        message += f"; reason: {current.config.reason}"
    return Change(reason, kind, printable(message), current.config.sha256)


def event_name(configmap: str, change: Change, resource_version: str) -> str:
    """The same name in every replica for the same observed change, so only the first create succeeds.

    From what all replicas see alike: the change, the new file's content and the
    ConfigMap's resourceVersion when it is read (docs/DECISIONS.md has the limits).
    """
    key = f"{change.reason}\n{change.config_sha256}\n{resource_version}"
    return f"{configmap}.{hashlib.sha256(key.encode()).hexdigest()[:16]}"


class ClusterWatch:
    """The background reader and Event writer; `facts` is the last answer."""

    def __init__(
        self,
        metrics: ControlPlaneMetrics,
        configmap: str | None,
        namespace: str | None = None,
        pod_name: str | None = None,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self._metrics = metrics
        self.configmap = configmap
        self._namespace = namespace
        self._pod_name = pod_name or ""
        self._poll_seconds = poll_seconds
        self.facts = ClusterFacts()
        self._config: Reported | None = None
        self._changes: list[Change] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._api: _ApiProcess | None = None
        self._resource_version = ""
        self._logged_problem: str | None = None
        self._logged_event_problem: str | None = None

    @property
    def enabled(self) -> bool:
        return self.configmap is not None

    def fields(self) -> dict[str, object]:
        return self.facts.fields(time.time())

    def observe(self, previous: Reported | None, current: Reported) -> None:
        """Called by the config's follower on every change: note the Event to write, and read again now."""
        if not self.enabled:
            return
        change = change_between(previous, current)
        with self._lock:
            self._config = current
            if change is not None:
                self._changes.append(change)
        self._wake.set()

    def start(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        self.facts = ClusterFacts(None, "not read yet", None, "not read yet", None, "not read yet")
        self._thread = threading.Thread(target=self._run, name="kubernetes-api", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._api is not None:
            self._api.close()  # an answer under way ends now
        if self._thread is not None:
            self._thread.join(timeout=1.0)  # a daemon thread: an API call under way must not hold up shutdown
            self._thread = None

    # ---- the thread ----------------------------------------------------------------

    def _run(self) -> None:
        api: _ApiProcess | None = None
        while not self._stopping.is_set():
            self._wake.clear()
            if api is not None and not api.alive:
                api = None  # it exited or was stopped: start another
            try:
                if api is None:
                    api = self._api = _ApiProcess.start(self._namespace)
                    log.info(
                        "reading ConfigMap %s and the worker Jobs in namespace %s through the Kubernetes API "
                        "every %gs; switch changes become Events",
                        self.configmap,
                        api.namespace,
                        self._poll_seconds,
                    )
                self._read(api)
            except ApiProblem as exc:
                self._failed(exc.problem)
            except Exception as exc:  # never let the thread die: the next poll tries again
                self._failed(f"{type(exc).__name__}: {exc}"[:300])
            if api is not None and api.alive:
                self._write_events(api)
            self._wake.wait(self._poll_seconds)
        if api is not None:
            api.close()

    def _read(self, api: _ApiProcess) -> None:
        assert self.configmap is not None
        with self._lock:
            config = self._config
        paused_problem: str | None = None
        jobs: dict[str, Any] | None = None
        rule = None
        document = config.config.document if config is not None else None
        if document is None:
            paused_problem = "the config is unusable, so the scheduler submits nothing (it fails closed)"
        else:
            try:
                rule, release_selector = pause_rule_from(document)
            except ValueError as exc:
                paused_problem = f"cannot read the scheduler's settings: {exc} (the scheduler fails closed on it)"
            if rule is not None:
                jobs = {
                    "selector": label_selector(release_selector),
                    "worker_selector": dict(rule.selector),
                    "tasks": list(rule.tasks),
                    "pause_after_failures": rule.pause_after_failures,
                }
        started = time.monotonic()
        answer = api.ask({"call": "read", "configmap": self.configmap, "jobs": jobs})
        configmap = answer.get("configmap")
        self._resource_version = ((configmap or {}).get("metadata") or {}).get("resourceVersion", "")
        who, who_problem = _stamp(configmap, self.configmap)
        paused: tuple[PausedTask, ...] | None = None
        if jobs is not None:
            paused = tuple(PausedTask(str(t), int(n), str(last)) for t, n, last in answer.get("paused") or ())
            self._metrics.jobs_listed.set(answer.get("jobs") or 0)
            self._metrics.list_pages.set(answer.get("pages") or 0)
        elif paused_problem is None:
            paused = ()  # no tasks declared: none paused
        self.facts = ClusterFacts(who, who_problem, paused, paused_problem, time.time(), None)
        self._metrics.api_read_seconds.set(time.monotonic() - started)
        self._metrics.record_api_read(True)
        self._metrics.paused_tasks.set(len(paused or ()))
        if self._logged_problem is not None:
            log.info("Kubernetes API reads work again")
            self._logged_problem = None

    def _failed(self, problem: str) -> None:
        last = self.facts
        keep = last.read_at is not None
        self.facts = ClusterFacts(
            last.switched_by if keep else None,
            last.switched_by_problem if keep else problem,
            last.paused if keep else None,
            last.paused_problem if keep else problem,
            last.read_at,
            problem,
        )
        self._metrics.record_api_read(False)
        if problem != self._logged_problem:
            log.warning("%s: GET /v1/autonomy keeps the last answer read, with its age", problem)
            self._logged_problem = problem

    def _write_events(self, api: _ApiProcess) -> None:
        with self._lock:
            changes, self._changes = self._changes, []
        for change in changes:
            assert self.configmap is not None
            resource_version = self._resource_version
            who = self.facts.switched_by
            message = change.message + (f"; switched by {who}" if who else "")
            event = _event(
                event_name(self.configmap, change, resource_version),
                api.namespace,
                self.configmap,
                resource_version,
                change,
                message,
                self._pod_name,
            )
            try:
                created = bool(api.ask({"call": "event", "event": event}).get("created"))
            except ApiProblem as exc:
                self._metrics.event_failures.inc()
                if exc.problem != self._logged_event_problem:
                    log.warning("cannot record the switch change as an Event: %s", exc.problem)
                    self._logged_event_problem = exc.problem
                continue
            self._logged_event_problem = None
            if created:
                self._metrics.events.inc()


def _stamp(configmap: Mapping[str, Any] | None, name: str) -> tuple[str | None, str | None]:
    if configmap is None:
        return None, f"ConfigMap {name} does not exist"
    stamp = ((configmap.get("metadata") or {}).get("annotations") or {}).get(STAMP_ANNOTATION)
    if stamp == STAMP_NOT_YET:
        return None, "no flip since the identity stamp policy was installed"
    if not stamp:
        return None, (
            f"the ConfigMap has no {STAMP_ANNOTATION} annotation: the API server does not serve "
            "MutatingAdmissionPolicy (or it was off when the switch last moved); see the audit log"
        )
    return printable(stamp), None


def _event(
    name: str,
    namespace: str,
    configmap: str,
    resource_version: str,
    change: Change,
    message: str,
    pod_name: str,
) -> dict[str, Any]:
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    involved: dict[str, str] = {"apiVersion": "v1", "kind": "ConfigMap", "name": configmap, "namespace": namespace}
    if resource_version:
        involved["resourceVersion"] = resource_version
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": involved,
        "reason": change.reason,
        "message": message[:1024],
        "type": change.kind,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": pod_name[:128],
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class _ApiProcess:
    """The API process (api_process.py): one request, one answer, each a line of JSON."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self._buffer = b""
        self.namespace = ""

    @classmethod
    def start(cls, namespace: str | None) -> _ApiProcess:
        command = [sys.executable, "-m", "leviathan_control_plane.api_process", "--namespace", namespace or ""]
        try:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        except OSError as exc:
            raise ApiProblem(f"cannot start the Kubernetes API process: {exc}"[:300]) from None
        api = cls(process)
        first = api._answer()
        if "namespace" not in first:
            api.close()
            raise ApiProblem(str(first.get("problem") or "the Kubernetes API process did not start"))
        api.namespace = str(first["namespace"])
        return api

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        """The answer to one request; ApiProblem for a failed call, and when the process does not answer."""
        try:
            assert self._process.stdin is not None
            self._process.stdin.write(json.dumps(request).encode() + b"\n")
            self._process.stdin.flush()
        except (OSError, ValueError):
            self.close()
            raise ApiProblem(self._gone()) from None
        answer = self._answer()
        if "problem" in answer:
            raise ApiProblem(str(answer["problem"]))
        return answer

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=5)

    def _gone(self) -> str:
        code = self._process.poll()
        return f"the Kubernetes API process exited ({'code ' + str(code) if code is not None else 'stopped'})"

    def _answer(self) -> dict[str, Any]:
        """The next line it writes, within ANSWER_SECONDS; the process is stopped if it takes longer."""
        assert self._process.stdout is not None
        deadline = time.monotonic() + ANSWER_SECONDS
        fd = self._process.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.close()
                    raise ApiProblem(
                        f"the Kubernetes API process gave no answer in {ANSWER_SECONDS:g}s; it is started again"
                    )
                if not selector.select(remaining):
                    continue
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.close()
                    raise ApiProblem(self._gone())
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        try:
            answer = json.loads(line)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            self.close()
            raise ApiProblem("the Kubernetes API process answered something that is not JSON")
        return answer
