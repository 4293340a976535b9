"""The autonomy state as the control plane reports it.

The shared reader says what the file holds; this adds the control plane's
fail-safe default for when the file is missing or unusable, keeps the answer
bodies ready, logs each state change once and feeds the metrics.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from starlette.responses import Response

from leviathan_config import AutonomyConfig, ConfigState, printable, read_autonomy_config
from leviathan_control_plane.followed_file import FollowedFile
from leviathan_control_plane.metrics import ControlPlaneMetrics
from leviathan_control_plane.review import Review, review_from

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reported:
    config: AutonomyConfig
    enabled: bool
    # The /v1/autonomy/status answer, built once per change (a Response is
    # stateless and can be sent any number of times).
    status_response: Response = field(compare=False, repr=False)
    # When the file read last changed (its mtime), for GET /v1/autonomy.
    changed_at: float | None = field(compare=False, default=None)
    review: Review = field(compare=False, default=Review())

    @property
    def source(self) -> str:
        return self.config.source


def _bool(value: bool) -> str:
    return "true" if value else "false"


def _utc(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat().replace("+00:00", "Z")


def _transient_problem(reported: Reported) -> str:
    return reported.config.problem if reported.config.transient else ""


class AutonomyView:
    def __init__(
        self,
        config_path: str,
        default_enabled: bool,
        metrics: ControlPlaneMetrics,
        on_problem: Callable[[FollowedFile[Reported], str], None] | None = None,
        on_change: Callable[[Reported | None, Reported], None] | None = None,
    ) -> None:
        self._default_enabled = default_enabled
        self._metrics = metrics
        # Hears every change of the file's content (the cluster watch: Events, a fresh API read).
        self._on_change_hook = on_change
        self.state_changed_at: float | None = None
        metrics.watch_review(self.review_overdue)
        self.followed: FollowedFile[Reported] = FollowedFile(
            config_path, self._load, self._on_change, _transient_problem, on_problem
        )

    def current(self) -> Reported:
        return self.followed.get()

    def review_overdue(self) -> bool:
        reported = self.current()
        return reported.review.overdue(reported.enabled, time.time())

    def detail(self) -> dict[str, object]:
        """The body of GET /v1/autonomy: the status plus why and when."""
        reported = self.current()
        config = reported.config
        review = reported.review
        return {
            "autonomy_enabled": reported.enabled,
            "source": reported.source,
            "reason": config.reason,
            "config_path": config.path,
            "config_changed_at": _utc(reported.changed_at),
            "config_sha256": config.sha256 or None,
            "state_changed_at": _utc(self.state_changed_at),
            "problem": config.problem or None,
            "disabled_since": None if reported.enabled else _utc(self.state_changed_at),
            "review_by": _utc(review.timestamp),
            "review_overdue": review.overdue(reported.enabled, time.time()),
            "review_problem": review.problem or None,
        }

    def _load(self, path: str, current: Reported | None) -> Reported:
        config = read_autonomy_config(path, previous=current.config if current else None)
        if current is not None and config is current.config:
            return current  # same bytes: no new body, response or stat on every poll
        enabled = config.enabled_or(self._default_enabled)
        body = json.dumps({"autonomy_enabled": enabled, "source": config.source}).encode()
        response = Response(body, media_type="application/json")
        try:
            changed_at = os.stat(path).st_mtime if config.raw else None
        except OSError:
            changed_at = None
        return Reported(config, enabled, response, changed_at, review_from(config.document))

    def _on_change(self, previous: Reported | None, current: Reported) -> None:
        config = current.config
        state = (current.enabled, current.source)
        state_changed = previous is None or state != (previous.enabled, previous.source)
        if state_changed:
            self.state_changed_at = time.time()

        if config.state is not ConfigState.LOADED:
            log.warning(
                "config unusable: %s; reporting the default autonomy_enabled=%s (source: %s)",
                config.problem,
                _bool(current.enabled),
                current.source,
            )
        reason = f", reason: {printable(config.reason)}" if config.reason else ""
        if previous is None:
            log.info("autonomy_enabled is %s (source: %s%s)", _bool(current.enabled), current.source, reason)
        elif current.enabled != previous.enabled:
            log.info(
                "autonomy_enabled changed: %s -> %s (source: %s%s)",
                _bool(previous.enabled),
                _bool(current.enabled),
                current.source,
                reason,
            )
        elif current.source != previous.source:
            log.info(
                "autonomy config source changed: %s -> %s (autonomy_enabled: %s)",
                previous.source,
                current.source,
                _bool(current.enabled),
            )
        else:
            log.debug("config content changed (sha256 %s), state unchanged", config.sha256[:12])
        review = current.review
        if review.problem and (previous is None or previous.review.problem != review.problem):
            log.warning("%s: no review time is known; the switch is unaffected", printable(review.problem))
        self._metrics.record_config(config, current.enabled, state_changed)
        self._metrics.record_review(review, current.enabled)
        if self._on_change_hook is not None:
            self._on_change_hook(previous, current)
