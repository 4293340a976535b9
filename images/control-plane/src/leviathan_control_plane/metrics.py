"""Prometheus metrics, in a registry owned by the app (no global state).

Alert examples (docs/RUNBOOK.md):
  autonomy off for over an hour:
    leviathan_autonomy_enabled == 0
      and time() - leviathan_autonomy_state_changed_timestamp_seconds > 3600
  config broken or missing:
    leviathan_autonomy_config_source{source!~"configmap:.*"} == 1
  config or token unreadable for a passing reason (last good content still served):
    leviathan_file_read_failing == 1
  a disable's review_by has passed (the switch stays off):
    leviathan_autonomy_review_overdue == 1
  a task paused after failures (the scheduler stops submitting it):
    leviathan_tasks_paused > 0
  the Kubernetes API unreadable (who and the paused tasks are as last read):
    leviathan_kubernetes_api_read_failing == 1
  off for a day with no review time:
    leviathan_autonomy_enabled == 0 and leviathan_autonomy_review_by_timestamp_seconds == 0
      and time() - leviathan_autonomy_disabled_since_timestamp_seconds > 86400
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge

from leviathan_config import SOURCE_ERROR, SOURCE_NOT_MOUNTED, AutonomyConfig, configmap_source
from leviathan_control_plane.review import Review


class ControlPlaneMetrics:
    def __init__(self, config_path: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.enabled = Gauge(
            "leviathan_autonomy_enabled",
            "Autonomy as the control plane reports it (1 on, 0 off).",
            registry=self.registry,
        )
        self.source = Gauge(
            "leviathan_autonomy_config_source",
            "1 for the source the status is read from, 0 for the others.",
            ["source"],
            registry=self.registry,
        )
        self.state_changed = Gauge(
            "leviathan_autonomy_state_changed_timestamp_seconds",
            "When the reported autonomy state or its source last changed.",
            registry=self.registry,
        )
        self.reloads = Counter(
            "leviathan_autonomy_config_reloads",
            "Times new config content was loaded.",
            registry=self.registry,
        )
        self.errors = Counter(
            "leviathan_autonomy_config_errors",
            "Times the config turned unusable (missing or invalid).",
            registry=self.registry,
        )
        self.read_failing = Gauge(
            "leviathan_file_read_failing",
            "1 while a followed file cannot be read for a passing reason (the last good content is kept).",
            ["file"],
            registry=self.registry,
        )
        self.read_failures = Counter(
            "leviathan_file_read_failures",
            "Times a followed file became unreadable for a passing reason (e.g. out of file descriptors).",
            ["file"],
            registry=self.registry,
        )
        self.requests = Counter(
            "leviathan_http_requests",
            "HTTP requests answered, by status code.",
            ["code"],
            registry=self.registry,
        )
        self.disabled_since = Gauge(
            "leviathan_autonomy_disabled_since_timestamp_seconds",
            "When autonomy was last seen turning off; 0 while it is on.",
            registry=self.registry,
        )
        self.review_by = Gauge(
            "leviathan_autonomy_review_by_timestamp_seconds",
            "The config's review_by; 0 when it has none (or none that reads as a time).",
            registry=self.registry,
        )
        self.review_overdue = Gauge(
            "leviathan_autonomy_review_overdue",
            "1 while autonomy is off and its review_by has passed (the switch stays off).",
            registry=self.registry,
        )
        self.review_invalid = Gauge(
            "leviathan_autonomy_review_by_invalid",
            "1 while the config's review_by cannot be read as a date and time with a zone.",
            registry=self.registry,
        )
        self.api_read_failing = Gauge(
            "leviathan_kubernetes_api_read_failing",
            "1 while the last read of the ConfigMap stamp or the worker Jobs through the API failed.",
            registry=self.registry,
        )
        self.api_read_failures = Counter(
            "leviathan_kubernetes_api_read_failures",
            "Reads through the Kubernetes API that failed.",
            registry=self.registry,
        )
        self.paused_tasks = Gauge(
            "leviathan_tasks_paused",
            "Tasks paused after failures, as of the last read of the worker Jobs.",
            registry=self.registry,
        )
        self.jobs_listed = Gauge(
            "leviathan_kubernetes_api_jobs_listed",
            "Jobs in the last complete list of the release's Jobs (read page by page).",
            registry=self.registry,
        )
        self.list_pages = Gauge(
            "leviathan_kubernetes_api_list_pages",
            "Pages (list requests) the last complete list of the release's Jobs took.",
            registry=self.registry,
        )
        self.api_read_seconds = Gauge(
            "leviathan_kubernetes_api_read_seconds",
            "How long the last successful read through the Kubernetes API took (ConfigMap and Job list).",
            registry=self.registry,
        )
        self.events = Counter(
            "leviathan_switch_events",
            "Switch changes recorded as Kubernetes Events by this replica.",
            registry=self.registry,
        )
        self.event_failures = Counter(
            "leviathan_switch_event_failures",
            "Switch changes that could not be recorded as Kubernetes Events.",
            registry=self.registry,
        )
        self._by_code: dict[int, Counter] = {}
        self._sources = (configmap_source(config_path), SOURCE_NOT_MOUNTED, SOURCE_ERROR)
        for source in self._sources:
            self.source.labels(source=source).set(0)
        for file in ("config", "token"):
            self.read_failing.labels(file=file).set(0)
        self.enabled_before: bool | None = None

    def record_config(self, config: AutonomyConfig, enabled: bool, state_changed: bool) -> None:
        self.enabled.set(1 if enabled else 0)
        for source in self._sources:
            self.source.labels(source=source).set(1 if source == config.source else 0)
        if state_changed:
            self.state_changed.set(time.time())
        if config.problem:
            self.errors.inc()
        else:
            self.reloads.inc()

    def watch_review(self, overdue: Callable[[], bool]) -> None:
        # Time passes without a config change: computed on every scrape.
        self.review_overdue.set_function(lambda: 1.0 if overdue() else 0.0)

    def record_review(self, review: Review, enabled: bool) -> None:
        if enabled:
            self.disabled_since.set(0)
        elif self.enabled_before is not False:
            self.disabled_since.set(time.time())
        self.enabled_before = enabled
        self.review_by.set(review.timestamp or 0)
        self.review_invalid.set(1 if review.problem else 0)

    def record_read_problem(self, file: str, failing: bool) -> None:
        self.read_failing.labels(file=file).set(1 if failing else 0)
        if failing:
            self.read_failures.labels(file=file).inc()

    def record_api_read(self, ok: bool) -> None:
        self.api_read_failing.set(0 if ok else 1)
        if not ok:
            self.api_read_failures.inc()

    def count_response(self, status: int) -> None:
        counter = self._by_code.get(status)
        if counter is None:
            counter = self._by_code[status] = self.requests.labels(code=str(status))
        counter.inc()
