"""What the control plane reads from the Kubernetes API, and the Events it writes there.

Off the request path: one background thread reads, every POLL_SECONDS and on
each observed config change, the autonomy ConfigMap (its identity stamp) and
the release's worker Jobs (the tasks paused after failures, by the shared
rule in leviathan_config.worker_jobs), and records each observed switch change
as an Event on the ConfigMap. Requests only copy the last answer, with its
age. An API failure is a reported problem (a field and a metric), never an
error answer and never a change of the switch.

The Job list is read by a process of its own (job_lister.py): it asks for the
pages (limit/continue), decodes each body item by item as it streams in and
answers with the paused tasks. This thread sends it one small request line (the
connection, from the credentials loaded here) and reads one small answer line, so
listing thousands of Jobs never holds the GIL that /v1/autonomy/status needs, and
no list is ever held whole (issue 20).

Used only when LEVIATHAN_CONFIGMAP names the ConfigMap (the chart sets it with
controlPlane.kubernetesApi.enabled); the kubernetes client is imported in the
thread, so a local run, the tests and `make bench` never load it.
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

from leviathan_config import ConfigState, SettingsFile, printable, read_settings_file, settings_path_from_env
from leviathan_config.kube_credentials import (
    CredentialsError,
    in_cluster,
    kubeconfig_namespace,
    load_configuration,
    pod_namespace,
)
from leviathan_config.worker_jobs import PausedTask, PauseRule, label_selector, pause_rule_from
from leviathan_control_plane.autonomy import Reported
from leviathan_control_plane.job_lister import REQUEST_TIMEOUT, answered
from leviathan_control_plane.metrics import ControlPlaneMetrics

log = logging.getLogger(__name__)

CONFIGMAP_ENV = "LEVIATHAN_CONFIGMAP"
NAMESPACE_ENV = "LEVIATHAN_NAMESPACE"
POD_NAME_ENV = "LEVIATHAN_POD_NAME"
# "true" where the chart rendered its identity stamp policy (the API server serves MutatingAdmissionPolicy).
STAMP_POLICY_ENV = "LEVIATHAN_STAMP_POLICY"
# Written by the chart's MutatingAdmissionPolicy (chart/templates/identity-stamp.yaml).
STAMP_ANNOTATION = "autonomy.leviathan.io/switched-by"
STAMP_NOT_YET = "unknown (no flip seen yet)"
# switched_by is cut to this many characters (a user name is far shorter); longer is a flagged problem.
STAMP_MAX_CHARS = 256
UNVERIFIED = (
    f"unverified: the identity stamp policy is not in force here ({STAMP_POLICY_ENV} is not true: the API server "
    f"did not serve MutatingAdmissionPolicy when the chart was rendered), so any {STAMP_ANNOTATION} annotation "
    "is not reported: anyone who may edit the ConfigMap can write it; see the audit log"
)
COMPONENT = "leviathan-control-plane"
POLL_SECONDS = 10.0
# The longest the Job-list process may take over one whole list; then it is stopped (and started
# again at the next poll). 10,000 Jobs take about 3 s on a busy 2-core machine.
LIST_SECONDS = 60.0
# The longest lifespan start-up waits for the first credentials load (ClusterWatch.start).
CONNECT_WAIT = 2.0
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
        stamp_policy: bool = False,
    ) -> None:
        self._metrics = metrics
        self.configmap = configmap
        # Only then is the annotation the API server's stamp, and reported as switched_by.
        self._stamp_policy = stamp_policy
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
        self._connected = threading.Event()
        self._resource_version = ""
        self._settings: SettingsFile | None = None  # the last read, so an unchanged file is not parsed again
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
        # The client's import (about a second of Python): done here, before the server takes requests
        # (lifespan start-up), not in the thread while it answers them.
        with contextlib.suppress(ImportError):  # the thread reports it
            import kubernetes.client  # noqa: F401
        self._thread = threading.Thread(target=self._run, name="kubernetes-api", daemon=True)
        self._thread.start()
        # The credentials too (a kubeconfig is YAML; loading them held the GIL for about 0.1 s while
        # the first status answers waited), but for at most CONNECT_WAIT: a kubeconfig's exec plugin
        # runs without a timeout of its own, and must never keep the server from serving the file.
        self._connected.wait(CONNECT_WAIT)

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)  # a daemon thread: an API call under way must not hold up shutdown
            self._thread = None

    # ---- the thread ----------------------------------------------------------------

    def _connect(self) -> _Api:
        try:
            api = _Api.connect(self._namespace)
        finally:
            self._connected.set()  # start() waits for the first attempt, however it ends
        log.info(
            "reading ConfigMap %s and the worker Jobs in namespace %s through the Kubernetes API "
            "every %gs; switch changes become Events",
            self.configmap,
            api.namespace,
            self._poll_seconds,
        )
        return api

    def _run(self) -> None:
        api: _Api | None = None
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                if api is None:
                    api = self._connect()
                self._read(api)
            except ApiProblem as exc:
                self._failed(exc.problem)
            except Exception as exc:  # never let the thread die: the next poll tries again
                self._failed(f"{type(exc).__name__}: {exc}"[:300])
            if api is not None:
                self._write_events(api)
            self._wake.wait(self._poll_seconds)
        if api is not None:
            api.close()

    def _read(self, api: _Api) -> None:
        assert self.configmap is not None
        with self._lock:
            config = self._config
        configmap = api.get_configmap(self.configmap)
        self._resource_version = ((configmap or {}).get("metadata") or {}).get("resourceVersion", "")
        who, who_problem = _stamp(configmap, self.configmap, self._stamp_policy)
        paused: tuple[PausedTask, ...] | None = None
        paused_problem: str | None = None
        settings = self._settings = read_settings_file(settings_path_from_env(), previous=self._settings)
        document = settings.document if config is not None and config.config.document is not None else None
        if config is None or config.config.document is None:
            paused_problem = "the config is unusable, so the scheduler submits nothing (it fails closed)"
        elif document is None:
            paused_problem = (
                f"cannot read the scheduler's settings: {settings.problem} (the scheduler fails closed on it)"
            )
        else:
            try:
                rule, release_selector = pause_rule_from(document)
            except ValueError as exc:
                rule, release_selector = None, {}
                paused_problem = f"cannot read the scheduler's settings: {exc} (the scheduler fails closed on it)"
            if rule is None:
                paused = () if paused_problem is None else None
            else:
                started = time.monotonic()
                paused, listed, pages = api.paused_tasks(label_selector(release_selector), rule)
                self._metrics.api_read_seconds.set(time.monotonic() - started)
                self._metrics.jobs_listed.set(listed)
                self._metrics.list_pages.set(pages)
        self.facts = ClusterFacts(who, who_problem, paused, paused_problem, time.time(), None)
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

    def _write_events(self, api: _Api) -> None:
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
                created = api.create_event(event)
            except ApiProblem as exc:
                self._metrics.event_failures.inc()
                if exc.problem != self._logged_event_problem:
                    log.warning("cannot record the switch change as an Event: %s", exc.problem)
                    self._logged_event_problem = exc.problem
                continue
            self._logged_event_problem = None
            if created:
                self._metrics.events.inc()


def _stamp(configmap: Mapping[str, Any] | None, name: str, policy: bool = True) -> tuple[str | None, str | None]:
    """switched_by and switched_by_problem: the stamp only where the stamp policy writes it, at most 256 characters."""
    if configmap is None:
        return None, f"ConfigMap {name} does not exist"
    if not policy:
        return None, UNVERIFIED
    stamp = ((configmap.get("metadata") or {}).get("annotations") or {}).get(STAMP_ANNOTATION)
    if stamp == STAMP_NOT_YET:
        return None, "no flip since the identity stamp policy was installed"
    if not stamp:
        return None, (
            f"the ConfigMap has no {STAMP_ANNOTATION} annotation: the API server does not serve "
            "MutatingAdmissionPolicy (or it was off when the switch last moved); see the audit log"
        )
    shown = printable(stamp)
    if len(shown) > STAMP_MAX_CHARS:
        return shown[:STAMP_MAX_CHARS], (
            f"the {STAMP_ANNOTATION} annotation is {len(shown)} characters long (escaped): switched_by shows its "
            f"first {STAMP_MAX_CHARS}; no user name is that long, see the audit log"
        )
    return shown, None


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


class ApiProblem(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class _Api:
    """The ConfigMap read and the Event writes, with the official client (JSON in and out, no model classes);
    the Job list, through the Job-list process."""

    def __init__(self, configuration: Any, namespace: str) -> None:
        from kubernetes import client

        self._configuration = configuration
        self._core = client.CoreV1Api(client.ApiClient(configuration))
        self.namespace = namespace
        self._lister: _Lister | None = None

    @classmethod
    def connect(cls, namespace: str | None) -> _Api:
        try:
            import kubernetes.client  # noqa: F401
        except ImportError as exc:
            raise ApiProblem(f"the kubernetes client is not installed: {exc}") from None
        try:
            configuration = load_configuration()  # no retries of its own: the next poll is the retry
        except CredentialsError as exc:
            raise ApiProblem(f"cannot load Kubernetes credentials: {exc}"[:300]) from None
        namespace = namespace or (pod_namespace() if in_cluster() else kubeconfig_namespace())
        if not namespace:
            raise ApiProblem(f"cannot tell the namespace: set {NAMESPACE_ENV}")
        if configuration.proxy:
            raise ApiProblem("a proxy for the Kubernetes API (the kubeconfig's proxy-url) is not supported")
        return cls(configuration, namespace)

    def get_configmap(self, name: str) -> dict[str, Any] | None:
        return self._call(
            f"get configmaps/{name}",
            lambda: self._core.read_namespaced_config_map(
                name, self.namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            ),
            missing_ok=True,
        )

    def paused_tasks(self, selector: str, rule: PauseRule) -> tuple[tuple[PausedTask, ...], int, int]:
        """The paused tasks, from every Job the selector matches; and the Jobs and pages read.

        The Job-list process reads the list; this thread sends it the request and waits for the
        answer. A list that cannot be read to its last page is an ApiProblem.
        """
        if self._lister is None or not self._lister.alive:
            self._lister = _Lister.start()
        answer = self._lister.ask(
            {
                "call": "tally",
                "api": self._connection(),
                "namespace": self.namespace,
                "label_selector": selector,
                "worker_selector": dict(rule.selector),
                "tasks": list(rule.tasks),
                "pause_after_failures": rule.pause_after_failures,
            }
        )
        if "problem" in answer:
            raise ApiProblem(str(answer["problem"]))
        try:
            paused = tuple(PausedTask(str(t), int(n), str(last)) for t, n, last in answer["paused"])
            return paused, int(answer["jobs"]), int(answer["pages"])
        except (KeyError, TypeError, ValueError):
            self._lister.close()
            raise ApiProblem("the Job-list process answered something else than paused tasks") from None

    def _connection(self) -> dict[str, Any]:
        """Where and how the kubernetes client would connect: the Job-list process's part of the request."""
        configuration = self._configuration
        headers = {
            auth["key"]: auth["value"]
            for auth in configuration.auth_settings().values()  # refreshes a rotated service-account token
            if auth.get("in") == "header" and auth.get("value")
        }
        return {
            "host": configuration.host,
            "headers": headers,
            "ca_file": configuration.ssl_ca_cert,
            "cert_file": configuration.cert_file,
            "key_file": configuration.key_file,
            "verify": bool(configuration.verify_ssl),
            "server_name": getattr(configuration, "tls_server_name", None),
        }

    def close(self) -> None:
        if self._lister is not None:
            self._lister.close()

    def create_event(self, event: dict[str, Any]) -> bool:
        """True when created; False when another replica already recorded this change."""
        answer = self._call(
            "create events",
            lambda: self._core.create_namespaced_event(
                self.namespace, event, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            ),
            exists_ok=True,
        )
        return answer is not None

    def _call(self, what: str, request: Any, missing_ok: bool = False, exists_ok: bool = False) -> Any:
        response = self._request(what, request, missing_ok, exists_ok)
        if response is None:
            return None
        try:
            return json.loads(response.data)
        except ValueError:
            raise ApiProblem(f"the Kubernetes API answered {what} with something that is not JSON") from None

    def _request(self, what: str, request: Any, missing_ok: bool = False, exists_ok: bool = False) -> Any:
        """The response; None for a tolerated 404 or 409."""
        from kubernetes.client.exceptions import ApiException

        try:
            return request()
        except ApiException as exc:
            if (exc.status == 404 and missing_ok) or (exc.status == 409 and exists_ok):
                return None
            raise ApiProblem(answered(what, self.namespace, exc.status, exc.reason)) from None
        except Exception as exc:  # urllib3 and socket errors: the API is unreachable
            reason = getattr(exc, "reason", None) or exc
            raise ApiProblem(f"cannot reach the Kubernetes API for {what}: {type(reason).__name__}"[:300]) from None


class _Lister:
    """The Job-list process (job_lister.py): one request line in, one answer line out."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self._buffer = b""

    @classmethod
    def start(cls) -> _Lister:
        command = [sys.executable, "-m", "leviathan_control_plane.job_lister"]
        try:
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        except OSError as exc:
            raise ApiProblem(f"cannot start the Job-list process: {exc}"[:300]) from None
        lister = cls(process)
        if not lister._answer().get("ready"):
            lister.close()
            raise ApiProblem("the Job-list process did not start")
        return lister

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            assert self._process.stdin is not None
            self._process.stdin.write(json.dumps(request).encode() + b"\n")
            self._process.stdin.flush()
        except (OSError, ValueError):
            self.close()
            raise ApiProblem(self._gone()) from None
        return self._answer()

    def _answer(self) -> dict[str, Any]:
        """Its next line, within LIST_SECONDS; it is stopped if it takes longer."""
        assert self._process.stdout is not None
        deadline = time.monotonic() + LIST_SECONDS
        fd = self._process.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    self.close()
                    raise ApiProblem(
                        f"the Job-list process gave no answer in {LIST_SECONDS:g}s (a slow Kubernetes API?); "
                        "it is started again at the next poll"
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
            raise ApiProblem("the Job-list process answered something that is not JSON")
        return answer

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.wait(timeout=5)
        for pipe in (self._process.stdin, self._process.stdout):
            with contextlib.suppress(OSError):
                pipe.close()  # type: ignore[union-attr]

    def _gone(self) -> str:
        code = self._process.poll()
        how = f"code {code}" if code is not None else "stopped"
        return f"the Job-list process exited ({how}); it is started again at the next poll"
