"""The watcher on its own: events, the poll safety net, and recovery from a dead observer."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from leviathan_control_plane.followed_file import FollowedFile
from leviathan_control_plane.watcher import DirectoryWatcher
from support.kubelet_volume import publish


class Recorder:
    """A followed file that counts reads and remembers every content change."""

    def __init__(self, path: Path) -> None:
        self.reads = 0
        self.changes: list[str] = []
        self.changed = threading.Event()
        self.followed = FollowedFile(str(path), self._load, self._on_change)

    def _load(self, path: str, current: str | None) -> str:
        self.reads += 1
        try:
            return Path(path).read_text()
        except OSError:
            return "<missing>"

    def _on_change(self, previous: str | None, current: str) -> None:
        self.changes.append(current)
        self.changed.set()

    def wait_for(self, content: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.changes or self.changes[-1] != content:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"still {self.changes[-1:]} after {timeout}s"
            self.changed.clear()
            self.changed.wait(min(remaining, 0.05))


@pytest.fixture
def recorder(mount: Path) -> Recorder:
    return Recorder(mount / "dev.yaml")


def start(recorder: Recorder, poll_interval: float) -> DirectoryWatcher:
    watcher = DirectoryWatcher([recorder.followed], poll_interval=poll_interval)
    watcher.start()
    return watcher


def test_kubelet_swap_is_seen_through_events_alone(mount, recorder):
    """No poll and no request: only the directory events can deliver this."""
    watcher = start(recorder, poll_interval=3600)
    try:
        for content in ("autonomy_enabled: false\n", "autonomy_enabled: true\n", "autonomy_enabled: false\n"):
            publish(mount, {"dev.yaml": content})
            recorder.wait_for(content, timeout=1.0)
        assert watcher.healthy
    finally:
        watcher.stop()


def test_own_reads_do_not_feed_back(mount, recorder):
    """Opening the file raises events too; reacting to them would loop forever."""
    watcher = start(recorder, poll_interval=3600)
    try:
        publish(mount, {"dev.yaml": "autonomy_enabled: false\n"})
        recorder.wait_for("autonomy_enabled: false\n", timeout=1.0)
        time.sleep(0.3)
        reads = recorder.reads
        time.sleep(0.5)
        assert recorder.reads == reads
    finally:
        watcher.stop()


def test_poll_covers_a_dead_observer(mount, recorder, caplog):
    watcher = start(recorder, poll_interval=0.2)
    try:
        watcher._observer.stop()
        watcher._observer.join()
        assert not watcher.healthy
        publish(mount, {"dev.yaml": "autonomy_enabled: false\n"})
        recorder.wait_for("autonomy_enabled: false\n", timeout=1.0)
        deadline = time.monotonic() + 1.0
        while not watcher.healthy:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert "file observer thread died; starting a new one" in caplog.text
    finally:
        watcher.stop()


def test_restarted_observer_delivers_events_again(mount, recorder):
    watcher = start(recorder, poll_interval=0.2)
    try:
        watcher._observer.stop()
        watcher._observer.join()
        deadline = time.monotonic() + 1.0
        while not watcher.healthy:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        watcher._poll_interval = 3600  # from here on, only events can deliver
        time.sleep(0.3)
        publish(mount, {"dev.yaml": "autonomy_enabled: false\n"})
        recorder.wait_for("autonomy_enabled: false\n", timeout=1.0)
    finally:
        watcher.stop()


def test_dead_poller_is_unhealthy_even_with_a_live_observer(mount, recorder):
    watcher = start(recorder, poll_interval=0.05)
    try:
        assert watcher.healthy
        watcher._stopping.set()  # the poller's loop ends; the observer keeps running
        watcher._poller.join(timeout=2)
        assert watcher._observer.is_alive()
        assert not watcher.healthy
    finally:
        watcher.stop()
